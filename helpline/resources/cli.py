"""``helpline resources import | openings | list`` (for admins; English output)."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

from helpline.config import Settings
from helpline.privacy import Vault
from helpline.resources.importer import import_directory
from helpline.resources.matching import openings
from helpline.resources.store import Directory, OpeningsError, set_openings
from helpline.store import Store


async def run_resources(args: argparse.Namespace, settings: Settings) -> int:
    # A wrong path must not leave an empty database behind that looks like the real one.
    if not settings.has_database() and not (
            args.resources_command == "import" and getattr(args, "create", False)):
        create = (" (or add --create to make a new one there)"
                  if args.resources_command == "import" else "")
        print(f"helpline: no database at {settings.db}; check --db, HELPLINE_DB or the "
              f"config's db{create}. Nothing was created.", file=sys.stderr)
        return 1
    # These commands touch only the public directory tables, never anything tied to a
    # person, so they need no secret: a throwaway key opens the store.
    store = await Store.open(settings.database, Vault(secrets.token_urlsafe(48)),
                             verify_key=False)
    try:
        if args.resources_command == "import":
            return await _import(store, args)
        if args.resources_command == "openings":
            return await _openings(store, args)
        if args.resources_command == "list":
            return await _list(store, settings)
        return 2
    finally:
        await store.close()


async def _import(store: Store, args: argparse.Namespace) -> int:
    result = await import_directory(store, Path(args.path), time.time(),
                                    skip_bad=args.skip_bad, source=args.source,
                                    maps=tuple(Path(m) for m in args.map or ()))
    for note in result.notes:
        print(f"note: {note}")
    for problem in result.problems:
        print(problem, file=sys.stderr if not result.applied else sys.stdout)
    print(result.summary(), file=sys.stdout if result.applied else sys.stderr)
    for line in result.counts():
        print(line)
    return 0 if result.applied else 1


async def _openings(store: Store, args: argparse.Namespace) -> int:
    try:
        capacity = await set_openings(store, args.service_id, args.available, time.time(),
                                      unit=args.unit)
    except OpeningsError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 1
    print(f"{args.service_id}: {capacity.available} {capacity.unit}(s) free, counted now")
    return 0


async def _list(store: Store, settings: Settings) -> int:
    directory = Directory(store)
    now = time.time()
    caps = await directory.capacities()
    for service in await directory.services():
        state = openings(caps.get(service.id, []), now, settings.resources.openings_stale_hours)
        shown = state.shown
        count = ""
        if shown is not None:
            age = (now - shown.updated) / 3600
            count = f"  [{state.kind}: {shown.available} {shown.unit}, {age:.0f} h ago]"
        status = "" if service.status == "active" else f"  ({service.status})"
        print(f"{service.id}  {service.name}  ({', '.join(service.needs)}){status}{count}")
    for source in await directory.sources():
        fictional = ", fictional" if source.fictional else ""
        print(f"# {source.services} service(s) from {source.source} ({source.format}"
              f"{fictional})")
    return 0
