"""``helpline console add-user | list-users | disable-user | reset-user`` (for admins;
English output)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from helpline.console.roles import ROLES

if TYPE_CHECKING:  # the rest is imported when a console command runs, not at every start
    from helpline.config import Settings
    from helpline.console.accounts import SetupLink


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = sub.add_parser("console", help="the advocate console's accounts")
    console.add_argument("--db", help="SQLite file or PostgreSQL URL (default from config)")
    csub = console.add_subparsers(dest="console_command", required=True)
    add = csub.add_parser("add-user", help="add an account and print its one-time set-up link")
    add.add_argument("name", help="the console user name (letters, digits, . _ -)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--create", action="store_true",
                     help="create the database when there is none yet")
    csub.add_parser("list-users", help="every account, its role and state")
    disable = csub.add_parser("disable-user", help="stop an account at once (its sessions "
                              "end); reset-user makes it usable again")
    disable.add_argument("name")
    reset = csub.add_parser("reset-user", help="a new set-up link; the password, the second "
                            "factor and the sessions stop working at once")
    reset.add_argument("name")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_link(link: SetupLink, base: str) -> None:
    print(f"Set-up link for {link.user.name} ({link.user.role}):")
    print(f"  {base}/setup#{link.token}")
    print(f"It works once, until {_when(link.expires_at)}. Give it to {link.user.name} "
          "yourself, through a channel you trust; it is not shown again.")


async def run_console(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.console.accounts import AccountError
    from helpline.console.server import accounts, public_url
    from helpline.errors import HelplineError
    from helpline.privacy import SecretError, Vault
    from helpline.store import Store

    if not settings.secret_key:
        print("helpline: set HELPLINE_SECRET_KEY (the key helpline run uses) first: the "
              "console's second-factor keys are encrypted with it", file=sys.stderr)
        return 2
    if not settings.has_database() and not getattr(args, "create", False):
        create = " (or add --create to make a new one there)" if (
            args.console_command == "add-user") else ""
        print(f"helpline: no database at {settings.db}; check --db, HELPLINE_DB or the "
              f"config's db{create}. Nothing was created.", file=sys.stderr)
        return 1
    try:
        store = await Store.open(settings.database, Vault(settings.secret_key))
    except (HelplineError, SecretError) as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    try:
        found = accounts(settings, store.database)
        command = args.console_command
        if command == "add-user":
            _print_link(await found.add_user(args.name, args.role), public_url(settings))
        elif command == "reset-user":
            _print_link(await found.reset_user(args.name), public_url(settings))
            print("Its password, second factor and sessions no longer work.")
        elif command == "disable-user":
            user = await found.disable_user(args.name)
            print(f"{user.name} is disabled; their sessions have ended. "
                  f"helpline console reset-user {user.name} gives them a new set-up link.")
        elif command == "list-users":
            users = await found.users()
            if not users:
                print("No accounts yet: helpline console add-user NAME --role ROLE")
            for user in users:
                state = {"pending": "not set up yet"}.get(user.status, user.status)
                if user.status == "active" and user.locked_until > found.clock():
                    state = f"paused until {_when(user.locked_until)}"
                print(f"{user.name:<24} {user.role:<11} {state}")
        return 0
    except AccountError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
