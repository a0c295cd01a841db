"""Starting and stopping the console with ``helpline run`` (``[console] enabled``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from argon2 import PasswordHasher

from helpline.config import Settings
from helpline.console.accounts import Accounts, Clock, Policy
from helpline.console.listen import parse_listen
from helpline.console.web import Console, OutreachStatus, Statistics
from helpline.errors import HelplineError
from helpline.stats.counts import Stats
from helpline.store.database import Database

if TYPE_CHECKING:
    from helpline.console.feature import Desking

log = logging.getLogger("helpline.console")


def policy(settings: Settings) -> Policy:
    c = settings.console
    return Policy(setup_hours=c.setup_hours, idle_minutes=c.idle_minutes,
                  session_hours=c.session_hours, max_failures=c.max_failures,
                  lockout_minutes=c.lockout_minutes, issuer=c.issuer)


def public_url(settings: Settings) -> str:
    """The address advocates open: ``[console] public_url``, else http://<listen>."""
    return settings.console.public_url or f"http://{settings.console.listen}"


def accounts(settings: Settings, database: Database, hasher: PasswordHasher | None = None,
             clock: Clock = time.time) -> Accounts:
    return Accounts(database, database.vault, policy(settings), hasher, clock)


@dataclass
class ConsoleServer:
    runner: web.AppRunner
    site: web.TCPSite
    console: Console

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when asked for port 0)."""
        return int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        if self.console.desking is not None:  # live pages end first, not at a time-out
            self.console.desking.desk.hub.close()
        await self.runner.cleanup()


async def serve_console(console: Console, host: str, port: int) -> ConsoleServer:
    """The console on host:port (0: any free port), until ``stop``. No access log: an
    address can carry what a log must not."""
    runner = web.AppRunner(console.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return ConsoleServer(runner, site, console)


async def start_console(settings: Settings, database: Database,
                        desking: Desking | None = None,
                        outreach: OutreachStatus | None = None) -> ConsoleServer | None:
    """The console, when ``[console] enabled``; None otherwise. ``desking``: the console
    is a desk too (``[console] desk``), with the queue and the case pages; ``outreach``:
    the campaigns' status, for the supervisors' outreach page."""
    if not settings.console.enabled:
        return None
    host, port = parse_listen(settings.console.listen)  # doctor warns about the rest
    try:
        shown = (Statistics(Stats(database, settings.timezone), settings.stats.min_count)
                 if settings.stats.enabled else None)
        server = await serve_console(
            Console(accounts(settings, database), public_url(settings), shown, desking,
                    outreach),
            host, port)
    except OSError as exc:
        raise HelplineError(f"the console cannot listen on {settings.console.listen} "
                            f"({exc.strerror or type(exc).__name__}); is something else "
                            "using it? Change [console] listen") from None
    log.info("console listening on %s", settings.console.listen)
    return server
