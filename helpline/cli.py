"""Command line: ``helpline run | chat | doctor | flows check | flows schema | flows graph |
i18n | resources | telegram ids | console``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from helpline.config import ConfigError, Settings, config_path, flow_roots, load_settings
from helpline.errors import HelplineError
from helpline.flow.loader import FlowError, check_flows, load_flows
from helpline.privacy import SecretError

T = TypeVar("T")

if TYPE_CHECKING:
    from helpline.channels.base import Channel
    from helpline.stats.counts import Count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpline", description=__doc__)
    parser.add_argument("--config", help="path to helpline.toml (or set HELPLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="serve the configured channels (Telegram, Signal)")
    doctor = sub.add_parser("doctor", help="check what an operator can get wrong, one line "
                            "per item: ok, or what to do")
    doctor.add_argument("--offline", action="store_true",
                        help="skip what needs the platforms (token, webhook, desk, bridge)")
    backup = sub.add_parser("backup", help="copy the live database (safe while helpline "
                            "runs) into a folder, as helpline-<UTC time>.db")
    backup.add_argument("folder", help="where the copy goes (keep it apart from the key)")
    backup.add_argument("--db", help="SQLite file (default from config)")
    restore = sub.add_parser("restore", help="put a backup in place of the database "
                             "(helpline stopped; the current one is kept aside)")
    restore.add_argument("backup", help="a file made by helpline backup")
    restore.add_argument("--db", help="SQLite file (default from config)")
    telegram = sub.add_parser("telegram", help="Telegram set-up helpers")
    tsub = telegram.add_subparsers(dest="telegram_command", required=True)
    ids = tsub.add_parser("ids", help="show the chat ids of the groups the bot is in and the "
                          "user ids of who writes there, to fill in the desk settings")
    ids.add_argument("--seconds", type=float, default=60.0,
                     help="how long to watch (default 60)")
    chat = sub.add_parser("chat", help="talk to the flows in this terminal")
    chat.add_argument("--db", help="SQLite file (default from config: ./var/helpline.db)")
    chat.add_argument("--flows", help="flows folder (default: the bundled flows)")
    flows = sub.add_parser("flows", help="check, describe and draw flows")
    fsub = flows.add_subparsers(dest="flows_command", required=True)
    check = fsub.add_parser("check", help="report every problem in a flows folder")
    check.add_argument("dir", nargs="?", help="flows folder (default from config)")
    check.add_argument("--strict", action="store_true",
                       help="missing and fuzzy translations are errors too")
    fsub.add_parser("schema", help="print the JSON Schema of a flow file")
    graph = fsub.add_parser("graph", help="print a Mermaid flowchart of one flow")
    graph.add_argument("flow", help="flow id")
    graph.add_argument("--flows", help="flows folder (default from config)")
    i18n = sub.add_parser("i18n", help="extract every text into locales/helpline.pot, "
                          "update each catalogue, and check them")
    i18n.add_argument("--init", action="append", default=[], metavar="LANG",
                      help="start a catalogue for LANG (repeatable)")
    i18n.add_argument("--check", action="store_true", help="only check; write nothing")
    i18n.add_argument("--strict", action="store_true",
                      help="missing and fuzzy translations are errors too")
    _resources_parser(sub)
    from helpline.console.cli import add_parser as console_parser
    from helpline.outreach.cli import add_parser as outreach_parser

    console_parser(sub)
    outreach_parser(sub)
    return parser


def _resources_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    erase = sub.add_parser("erase", help="erase the person of a desk case, as 'delete my data' "
                           "does, on a request made to staff (the running bot does it)")
    erase.add_argument("handle", help="the case's handle, like K7F2")
    erase.add_argument("--by", required=True, metavar="NAME",
                       help="who took the request (kept in the audit entry)")
    stats = sub.add_parser("stats", help="statistics that identify no one, by week, channel, "
                           "language and event (small counts hidden)")
    stats.add_argument("--since", required=True, metavar="DATE", help="first day (YYYY-MM-DD)")
    stats.add_argument("--until", metavar="DATE", help="last day (default: today)")
    form = stats.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="as CSV")
    form.add_argument("--json", action="store_true", help="as JSON")
    notice = sub.add_parser("privacy-notice", help="print the privacy notice made from the "
                            "settings, as the bot's privacy command shows it")
    notice.add_argument("--lang", help="one language (default: every enabled language)")
    purge = sub.add_parser("purge", help="remove now what retention says must go (the bot "
                           "does it every [retention] purge_every_hours)")
    purge.add_argument("--dry-run", action="store_true",
                       help="count what would go, by kind; remove nothing")
    retention = sub.add_parser("retention", help="check what is kept past its period")
    retention.add_argument("retention_command", choices=["check"])
    rotate = sub.add_parser("rotate-key", help="move every pseudonym and encrypted value to "
                            "a new secret key (helpline stopped; docs/key-rotation.md)")
    rotate.add_argument("--new-key-file", required=True, metavar="FILE",
                        help="the new key, alone in a file only its owner can read, or - to "
                        "read it from standard input")
    rotate.add_argument("--forget-unmatched", action="store_true",
                        help="forget people who cannot be re-keyed instead of refusing")
    move = sub.add_parser("migrate-db", help="copy an organisation's SQLite database into an "
                          "empty PostgreSQL one, and check every row (docs/postgresql.md)")
    move.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH",
                      help="the SQLite file (helpline stopped)")
    move.add_argument("--to", dest="target", required=True, metavar="postgresql://...",
                      help="the PostgreSQL database, empty")
    resources = sub.add_parser("resources", help="the service directory: import, openings")
    resources.add_argument("--db", help="SQLite file or PostgreSQL URL (default from config)")
    rsub = resources.add_subparsers(dest="resources_command", required=True)
    imp = rsub.add_parser("import", help="import an HSDS datapackage folder, HSDS JSON, or "
                          "the YAML form; replaces the previous import from the same source")
    imp.add_argument("path", help="folder (or datapackage.json), .json, or .yaml file")
    imp.add_argument("--skip-bad", action="store_true",
                     help="import the good rows and report the bad (default: all or nothing)")
    imp.add_argument("--source", help="name of the source (default: the resolved path)")
    imp.add_argument("--map", action="append", metavar="CSV",
                     help="more taxonomy mapping rules, before data/taxonomy-map.csv's")
    imp.add_argument("--create", action="store_true",
                     help="create the database when there is none yet")
    openings = rsub.add_parser("openings", help="set how many are free now (beds, places)")
    openings.add_argument("service_id")
    openings.add_argument("available", type=int)
    openings.add_argument("--unit", help="what is counted, when a service counts several")
    rsub.add_parser("list", help="list services with their ids and openings")


def with_db(settings: Settings, db: str) -> Settings:
    """The settings with ``--db``: a SQLite file or a PostgreSQL URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return settings.model_copy(update={"database_url": db})
    return settings.model_copy(update={"db": Path(db), "database_url": ""})


def _migrate_db(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.parts import ALL
    from helpline.privacy import Vault
    from helpline.store.migrate import migrate

    if not settings.secret_key:
        print("helpline: set HELPLINE_SECRET_KEY (the SQLite database's key) first",
              file=sys.stderr)
        return 2
    try:
        moved = asyncio.run(migrate(args.source, args.target, Vault(settings.secret_key), ALL))
    except (HelplineError, SecretError) as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    for table, count in moved.counts.items():
        print(f"{table}: {count}")
    print(f"moved {sum(moved.counts.values())} rows in {len(moved.counts)} tables; every "
          f"count matches and {moved.decrypted} encrypted values open with the key. Set "
          "HELPLINE_DB to the PostgreSQL URL and start helpline run.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except HelplineError as exc:  # said in one line, as every start-up failure is
        print(f"helpline: {exc}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        if args.command == "doctor":
            print(f"{'error':<7}  config: {exc}")
        else:
            print(f"helpline: {exc}", file=sys.stderr)
        return 2
    config_file = config_path(args.config)
    if args.command == "doctor":
        return _doctor(args, settings, config_file)
    if args.command == "run":
        return _run(settings, config_file)
    command = _COMMANDS.get(args.command)
    if command is not None:
        return command(args, settings)
    if args.command == "console":
        from helpline.console.cli import run_console

        if args.db:
            settings = with_db(settings, args.db)
        return asyncio.run(run_console(args, settings))
    if args.command == "outreach":
        from helpline.outreach.cli import run_outreach

        if args.db:
            settings = with_db(settings, args.db)
        return asyncio.run(run_outreach(args, settings))
    if args.command == "resources":
        from helpline.resources.cli import run_resources

        if args.db:
            settings = with_db(settings, args.db)
        try:
            return asyncio.run(run_resources(args, settings))
        except (HelplineError, SecretError) as exc:
            print(f"helpline: {exc}", file=sys.stderr)
            return 2
    return 2


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    """``helpline purge [--dry-run]`` and ``helpline retention check`` (exit 1 when anything
    is kept past its period)."""
    from helpline import retention

    if not settings.secret_key:
        print(f"helpline: HELPLINE_SECRET_KEY is required for 'helpline {args.command}' (the "
              "purge reads who may go by their pseudonyms)", file=sys.stderr)
        return 2
    if not settings.has_database():
        print(f"helpline: {settings.db} does not exist; nothing is kept", file=sys.stderr)
        return 2 if args.command == "purge" else 0
    every = settings.retention.purge_every_hours
    try:
        if args.command == "purge":
            counts = asyncio.run(retention.purge(settings, settings.secret_key, args.dry_run))
            print(f"{'would remove' if args.dry_run else 'removed'}, by kind"
                  f"{' (nothing was removed: --dry-run)' if args.dry_run else ''}:")
            print("\n".join(retention.report(settings, counts)))
            return 0
        counts = asyncio.run(retention.overdue(settings, settings.secret_key))
    except (HelplineError, SecretError) as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    if not any(counts.values()):
        print(f"ok: nothing is kept past its period (the bot purges every {every:g} hours)")
        return 0
    print("kept past its period, by kind:")
    print("\n".join(line for line in retention.report(settings, counts)
                    if not line.lstrip().startswith("0 ")))
    print(f"fix: the bot purges every {every:g} hours while it runs (start helpline run), "
          "or remove them now with: helpline purge")
    return 1


def _offline(work: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
    """Run a command's database work; a failure is said in one line (False)."""
    try:
        return True, asyncio.run(work)
    except (HelplineError, SecretError) as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return False, None


def _erase(args: argparse.Namespace, settings: Settings) -> int:
    """``helpline erase HANDLE --by NAME``: written down and queued; the running bot erases
    the person within a poll (at its next start when it is not running)."""
    import time as clock

    from helpline.handoff.cases import Cases
    from helpline.privacy import Vault
    from helpline.store import Store

    if not settings.secret_key:
        print("helpline: set HELPLINE_SECRET_KEY (the database's key) first", file=sys.stderr)
        return 2
    if not settings.has_database():
        print(f"helpline: {settings.db} does not exist", file=sys.stderr)
        return 2

    async def queue() -> tuple[str, int] | None:
        store = await Store.open(settings.database, Vault(settings.secret_key))
        try:
            cases = Cases(store)
            case = await cases.by_handle(args.handle)
            if case is None or not case.pid:  # no pid: its person was erased already
                return None
            return case.handle, await cases.request_erasure(case, args.by, clock.time())
        finally:
            await store.close()

    ran, found = _offline(queue())
    if not ran:
        return 2
    if found is None:
        print(f"helpline: no case {args.handle.strip().upper()} (a case goes with its person "
              "when they erase their data, and closed cases after retention.case_days)",
              file=sys.stderr)
        return 1
    handle, entry = found
    print(f"queued: helpline run erases the person of case {handle} at its next poll (within "
          f"a minute), or at its next start if it is not running; audit entry {entry}")
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    """``helpline stats --since DATE [--until DATE] [--csv|--json]``."""
    from datetime import date, datetime, time
    from zoneinfo import ZoneInfo

    from helpline.stats import Stats, week_of
    from helpline.stats.report import as_csv, as_json, as_text, table

    zone = ZoneInfo(settings.timezone)
    try:
        first = date.fromisoformat(args.since)
        last = date.fromisoformat(args.until) if args.until else datetime.now(zone).date()
    except ValueError:
        print("helpline: --since and --until take dates like 2026-11-01", file=sys.stderr)
        return 2
    if last < first:
        print("helpline: --until is before --since", file=sys.stderr)
        return 2
    weeks = [week_of(datetime.combine(d, time(12), zone).timestamp(), settings.timezone)
             for d in (first, last)]
    if not settings.has_database():
        print(f"helpline: {settings.db} does not exist", file=sys.stderr)
        return 2

    async def read() -> list[Count]:
        from helpline.privacy import Vault
        from helpline.store import Store

        store = await Store.open(settings.database, Vault(settings.secret_key or "x" * 32),
                                 verify_key=False)  # counts are no one's: no key needed
        try:
            return list(await Stats(store.database, settings.timezone).counts(*weeks))
        finally:
            await store.close()

    ran, counts = _offline(read())
    if not ran or counts is None:
        return 2
    rows = table(counts, settings.stats.min_count)
    if args.csv:
        print(as_csv(rows), end="")
    elif args.json:
        print(as_json(rows))
    else:
        print(f"statistics of {weeks[0]} to {weeks[1]} (ISO weeks, {settings.timezone}); "
              f"counts under {settings.stats.min_count} show as <{settings.stats.min_count}, "
              "and totals that would reveal them as hidden")
        print(as_text(rows) if rows else "nothing counted in these weeks")
    return 0


def _privacy_notice(args: argparse.Namespace, settings: Settings) -> int:
    """Each enabled language's notice (or ``--lang``'s), as the bot shows it."""
    from helpline.app import engine_config
    from helpline.flow.loader import load_flows
    from helpline.i18n import CatalogTranslator
    from helpline.state import State

    languages = [args.lang] if args.lang else settings.languages
    unknown = [code for code in languages if code not in settings.languages]
    if unknown:
        print(f"helpline: {', '.join(unknown)} is not an enabled language (languages = "
              f"{', '.join(settings.languages)})", file=sys.stderr)
        return 2
    from helpline.flow.engine import Engine

    translator = CatalogTranslator(settings.locales, settings.default_language)
    engine = Engine(load_flows(settings.flows, flow_roots(settings)),
                    engine_config(settings, translator), translator)
    texts = [engine.privacy_text(State(locale=code)) for code in languages]
    for code, text in zip(languages, texts, strict=True):
        if len(languages) > 1:
            print(f"[{code}]")
        print(text)
        if len(languages) > 1:
            print()
    return 0


def _rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.parts import ALL
    from helpline.privacy import Vault
    from helpline.runlock import run_alone
    from helpline.store.rotate import rotate

    if not settings.secret_key:
        print("helpline: set HELPLINE_SECRET_KEY to the key in use (the one to rotate from)",
              file=sys.stderr)
        return 2
    try:
        new_key = _read_new_key(args.new_key_file)
        old, new = Vault(settings.secret_key), Vault(new_key)
        if settings.on_postgres:
            raise HelplineError("rotate-key works on the SQLite file only so far; with "
                                "PostgreSQL, keep the key (see docs/postgresql.md)")
        if not Path(settings.db).exists():
            raise HelplineError(f"{settings.db} does not exist; there is nothing to re-key")
        with run_alone(settings.db, "rotating the key"):
            done = rotate(Path(settings.db), old, new, ALL, args.forget_unmatched)
    except (HelplineError, SecretError, OSError) as exc:
        print(f"helpline: {exc if not isinstance(exc, OSError) else type(exc).__name__}",
              file=sys.stderr)
        return 2
    print("\n".join(done.lines()))
    print("the database now opens with the new key only: set HELPLINE_SECRET_KEY (or "
          "secret.key) to it before helpline run; backups made before still need the old "
          "key (docs/key-rotation.md)")
    return 0


def _read_new_key(where: str) -> str:
    """The new key from a file only its owner may read, or from standard input ("-")."""
    if where == "-":
        return sys.stdin.readline().strip()
    path = Path(where)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise HelplineError(f"{path} can be read by others (mode {mode:04o}); make it "
                            f"private with: chmod 600 {path}")
    return path.read_text(encoding="utf-8").strip()


def _flows(args: argparse.Namespace, settings: Settings) -> int:
    if args.flows_command == "schema":
        from helpline.flow.model import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    folder = Path(getattr(args, "dir", None) or getattr(args, "flows", None) or settings.flows)
    if args.flows_command == "check":
        flowset, problems = check_flows(folder, flow_roots(settings))
        for problem in problems:
            print(problem)
        from helpline.i18n_check import report

        lines, bad_translations = report(settings, folder, strict=args.strict)
        print("\n".join(lines), end="\n" if lines else "")
        if problems or bad_translations:
            print(f"{len(problems)} problem(s) in {folder}, {bad_translations} in the "
                  f"translations in {settings.locales}", file=sys.stderr)
            return 1
        print(f"{len(flowset.flows)} flows OK in {folder}")
        return 0
    if args.flows_command == "graph":
        from helpline.flow.graph import mermaid

        try:
            flowset = load_flows(folder, flow_roots(settings))
        except FlowError as exc:
            print(exc, file=sys.stderr)
            return 1
        if args.flow not in flowset:
            print(f"helpline: no flow '{args.flow}' in {folder}; flows: "
                  + ", ".join(sorted(flowset.flows)), file=sys.stderr)
            return 1
        print(mermaid(flowset[args.flow]), end="")
        return 0
    return 2


def _i18n(args: argparse.Namespace, settings: Settings) -> int:
    from helpline import bundled
    from helpline.i18n_check import report, update_catalogs

    if not args.check and settings.locales.resolve().is_relative_to(bundled.INSTALLED):
        print("helpline: the bundled catalogues belong to the installed package; copy "
              f"{settings.locales} to a folder of your own, set locales (and flows) to it, "
              "and run helpline i18n again (or use --check)", file=sys.stderr)
        return 2
    if not args.check:
        for path in update_catalogs(settings.locales, settings.flows, args.init,
                                    settings.handoff.canned):
            print(f"updated {path}")
    lines, errors = report(settings, settings.flows, strict=args.strict)
    print("\n".join(lines), end="\n" if lines else "")
    if errors:
        print(f"{errors} problem(s) in the translations in {settings.locales}", file=sys.stderr)
        return 1
    return 0


def _refuse_invalid_flows(folder: Path, roots: tuple[str, ...]) -> bool:
    _, problems = check_flows(folder, roots)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"helpline: refusing to start: {len(problems)} problem(s) in the flows in "
              f"{folder}; fix them (helpline flows check) and start again", file=sys.stderr)
    return bool(problems)


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    updates: dict[str, object] = {}
    if args.db:
        updates["db"] = Path(args.db)
    if args.flows:
        updates["flows"] = Path(args.flows)
    if not settings.resources.seed:  # the fictional sample, for `helpline chat` only
        from helpline.resources import SAMPLE_DIRECTORY

        updates["resources"] = settings.resources.model_copy(
            update={"seed": str(SAMPLE_DIRECTORY)})
    settings = settings.model_copy(update=updates)
    if _refuse_invalid_flows(settings.flows, flow_roots(settings)):
        return 1
    from helpline.chat import run_chat
    from helpline.privacy import SecretError

    try:
        return asyncio.run(run_chat(settings))
    except (HelplineError, SecretError) as exc:  # a short key, a database of another key
        print(f"helpline: {exc}", file=sys.stderr)
        return 2


def _doctor(args: argparse.Namespace, settings: Settings, config_file: Path | None) -> int:
    from helpline.doctor import has_errors, offline_findings, online_findings

    findings = offline_findings(settings, config_file)
    for finding in findings:
        print(finding, flush=True)
    if not args.offline:
        online = asyncio.run(online_findings(settings))
        for finding in online:
            print(finding)
        findings.extend(online)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    print(f"{errors} error(s), {warnings} warning(s)"
          + ("; helpline run refuses to start until the errors are fixed" if errors else ""))
    return 1 if has_errors(findings) else 0


def _telegram(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.channels.telegram_checks import SeenChat, SeenUser, watch_ids

    try:
        options = settings.telegram.checked()
    except ConfigError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    groups: list[SeenChat] = []
    people: list[SeenUser] = []

    def on_chat(chat: SeenChat) -> None:
        groups.append(chat)
        kind = "supergroup with topics" if chat.forum else chat.kind
        print(f"group  {chat.chat_id}  {kind}  {chat.title!r}", flush=True)

    def on_user(user: SeenUser) -> None:
        people.append(user)
        print(f"  user {user.user_id}  {user.name!r} wrote in {user.chat_id}", flush=True)

    print(f"Watching for {args.seconds:g} s what the bot sees in groups. Add the bot to the "
          "staff group and ask each advocate to write a line there. Nothing is marked as "
          "read: helpline still gets every update. Best run while helpline is stopped.",
          flush=True)
    try:
        private = asyncio.run(watch_ids(options, args.seconds, on_chat, on_user))
    except HelplineError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        private = 0
    if private:
        print(f"({private} private chat(s) not shown: people writing to the bot)")
    forums = [g for g in groups if g.forum]
    if not groups:
        print("No group seen yet. Is the bot in the group? Write a message there and run "
              "this again.")
        return 1
    chosen = forums[0] if len(forums) == 1 else None
    print("\nFor helpline.toml (check the group and remove anyone who is not an advocate):")
    print("[handoff]")
    print(f"staff_chat = {chosen.chat_id if chosen else groups[0].chat_id}")
    ids = sorted({u.user_id for u in people
                  if chosen is None or u.chat_id == chosen.chat_id})
    print(f"advocates = [{', '.join(str(i) for i in ids)}]")
    return 0


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.backup import backup_database, restore_database
    from helpline.privacy import Vault

    if args.db:
        settings = with_db(settings, args.db)
    if settings.on_postgres:
        print("helpline: backup and restore copy the SQLite file; back a PostgreSQL "
              "database up with pg_dump (docs/postgresql.md)", file=sys.stderr)
        return 2
    db = settings.db
    try:
        if args.command == "backup":
            print(backup_database(db, Path(args.folder)))
            return 0
        if not settings.secret_key:
            print("helpline: set HELPLINE_SECRET_KEY (the key the backup was made with) "
                  "first: restore checks that it opens the backup", file=sys.stderr)
            return 2
        restored = restore_database(Path(args.backup), db, Vault(settings.secret_key))
    except (HelplineError, SecretError) as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    for path in restored.kept:
        print(f"kept the database it replaced as {path}")
    print(f"restored {restored.database} from {args.backup}; start helpline again (it "
          "upgrades an older backup's schema at start)")
    return 0


def _one_line(exc: BaseException) -> str:
    """A start-up failure in one line with no secret: the project's own errors say what to
    do; anything else shows only its type and where it was raised."""
    if isinstance(exc, HelplineError | ConfigError | SecretError):
        return str(exc)
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, RuntimeError) and "schema version" in str(exc):
        return str(exc)  # the store's own message about a newer database
    return (f"could not start ({type(exc).__name__}{where}); helpline doctor checks the "
            "settings, the database and the platforms")


def _run(settings: Settings, config_file: Path | None = None) -> int:
    if not settings.secret_key:
        print("helpline: HELPLINE_SECRET_KEY is required for 'helpline run'; make one with: "
              "python -c 'import secrets; print(secrets.token_urlsafe(48))'", file=sys.stderr)
        return 2
    if _refuse_invalid_flows(settings.flows, flow_roots(settings)):
        return 1
    from helpline.doctor import has_errors, offline_findings
    from helpline.serve import build_channels

    findings = [f for f in offline_findings(settings, config_file, flows=False)
                if f.level != "ok"]
    for finding in findings:
        print(f"helpline: {finding}", file=sys.stderr)
    if has_errors(findings):
        print(f"helpline: refusing to start: {sum(f.level == 'error' for f in findings)} "
              "error(s) above; fix them and start again (helpline doctor checks)",
              file=sys.stderr)
        return 2

    try:
        channels = build_channels(settings)
    except ConfigError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    if not channels:
        from helpline.channels.registry import switched_on_by

        print("helpline: no channel configured; "
              f"{switched_on_by(settings.channel_options())}", file=sys.stderr)
        return 2
    from helpline.runlock import AlreadyRunning, run_alone

    try:
        if settings.on_postgres:  # one worker at a time: a lock in the database (serve)
            return _serve(settings, channels)
        with run_alone(settings.db, "starting helpline run again"):
            return _serve(settings, channels)
    except AlreadyRunning as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, channels: list[Channel]) -> int:
    """``helpline run`` once its checks passed and it holds the database's run lock."""
    from helpline.backup import backup_before_upgrade
    from helpline.serve import serve

    try:
        saved = None if settings.on_postgres else backup_before_upgrade(settings.db)
    except HelplineError as exc:
        print(f"helpline: refusing to upgrade the database without a backup: {exc}",
              file=sys.stderr)
        return 2
    if saved is not None:
        print(f"helpline: the database's schema is upgraded at this start; a copy from "
              f"before is in {saved}", file=sys.stderr)
    stop = asyncio.Event()

    async def main_loop() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, channels, stop)

    try:
        asyncio.run(main_loop())
    except Exception as exc:
        print(f"helpline: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "telegram": _telegram, "backup": _backup, "restore": _backup, "flows": _flows,
    "chat": _chat, "i18n": _i18n, "stats": _stats, "erase": _erase,
    "privacy-notice": _privacy_notice, "rotate-key": _rotate_key, "purge": _retention,
    "migrate-db": _migrate_db,
    "retention": _retention,
}


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
