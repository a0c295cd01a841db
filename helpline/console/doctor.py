"""``helpline doctor``'s lines about the console (also printed by ``helpline run`` at start)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from urllib.parse import urlsplit

from helpline.config import Settings
from helpline.console.listen import is_loopback, parse_listen
from helpline.findings import Finding, ok, warning


def check_console(settings: Settings) -> list[Finding]:
    console = settings.console
    if not console.enabled:
        return [ok("console", "off ([console] enabled = false)")]
    found: list[Finding] = []
    host, _ = parse_listen(console.listen)
    if not is_loopback(host):
        found.append(warning("console", f"it listens on {console.listen}, plain HTTP: keep "
                             "it on 127.0.0.1 behind a TLS reverse proxy (docs/console.md), "
                             "or make sure only the proxy can reach it"))
    public = console.public_url or f"http://{console.listen}"
    address = urlsplit(public)
    if address.scheme != "https" and not is_loopback(address.hostname or ""):
        found.append(warning("console", f"public_url {public} is not https: browsers keep "
                             "the console's Secure cookies for https (or this machine "
                             "itself), so nobody could sign in; set [console] public_url to "
                             "the https address of your reverse proxy"))
    active = _active_accounts(settings)
    if active == 0:
        found.append(warning("console", "no active account yet: helpline console add-user "
                             "NAME --role admin, then follow the set-up link"
                             + (" (the console is the desk: nobody can answer cases)"
                                if console.desk != "telegram" else "")))
    if console.desk == "both" and not settings.handoff.staff_chat:
        found.append(warning("console", "[console] desk = both, but no Telegram staff group "
                             "is set ([handoff] staff_chat): cases go to the console alone"))
    if not found:
        desk = {"telegram": "cases on the Telegram desk", "console": "the console is the "
                "desk", "both": "cases on the console and the Telegram desk"}[console.desk]
        found.append(ok("console", f"on, listening on {console.listen} for {public}"
                        + (f", {active} active account(s)" if active else "") + f"; {desk}"))
    return found


def _active_accounts(settings: Settings) -> int | None:
    """Active accounts in the database (read only); None when it cannot tell yet."""
    if settings.on_postgres or not settings.db.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{settings.db}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT COUNT(*) FROM console_users WHERE status = 'active'"
                             ).fetchone()
    except sqlite3.Error:  # no console tables yet (they come at the next start)
        return None
    return int(row[0])
