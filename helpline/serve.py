"""``helpline run``: the configured channels, the scheduler and the app, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from helpline.app import App
from helpline.channels import registry
from helpline.channels.base import Channel
from helpline.channels.registry import ChannelServices
from helpline.collector import settled_garbage_collector
from helpline.config import Settings
from helpline.runtime import StoppedStandingBy, open_app, setup_logging
from helpline.scheduler import build_scheduler
from helpline.store.database import Database

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from helpline.console.feature import Desking
    from helpline.console.server import ConsoleServer
    from helpline.outreach.service import OutreachService
    from helpline.outreach.store import Campaigns

log = logging.getLogger("helpline.serve")
OutreachLines = Callable[[], Awaitable[list[str]]]
ConsoleStart = Callable[[Settings, Database, "Desking | None", OutreachLines],
                        Awaitable["ConsoleServer | None"]]


def channel_services(settings: Settings) -> ChannelServices:
    """What the channels are given besides their options."""
    from helpline.i18n import CatalogTranslator

    return ChannelServices(
        translator=CatalogTranslator(settings.locales, settings.default_language),
        languages=tuple(settings.languages), desk_chat=settings.handoff.staff_chat)


def build_channels(settings: Settings) -> list[Channel]:
    """Every channel whose settings are present (helpline/channels/registry.py)."""
    return registry.build_channels(settings.channel_options(), channel_services(settings))


async def _started(app: App, stop: asyncio.Event, leading: bool = True) -> bool:
    """Start the channels, unless asked to stop first: a channel may wait for its platform
    (Telegram's getMe is retried with backoff while the Bot API cannot be reached), and a
    stop meanwhile must not wait for it. A failure to start is raised."""
    starting = asyncio.create_task(app.start(leading), name="start-channels")
    stopping = asyncio.create_task(stop.wait(), name="stop-requested")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        log.info("stopped before the channels were up")
        return False
    starting.result()
    return True


def install_outreach(app: App, channels: Sequence[Channel]) -> OutreachService:
    """Outreach campaigns (helpline.outreach): sent through the Signal channel when it
    runs (deep links and keywords are counted on any channel); the desk's /dnc marks
    numbers on its suppression list."""
    from helpline.channels.signal import SignalChannel
    from helpline.handoff import HandoffFeature
    from helpline.outreach import install

    signal = next((c for c in channels if isinstance(c, SignalChannel)), None)
    service = install(app, signal)
    desk = app.features.get("handoff")
    if isinstance(desk, HandoffFeature) and desk.service is not None:
        desk.service.do_not_contact = service.do_not_contact
    return service


def outreach_lines(settings: Settings, repo: Campaigns) -> OutreachLines:
    """The campaigns' status over the last twelve weeks (the console's outreach page), as
    ``helpline outreach status`` prints it."""
    import time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from helpline.outreach.report import status_lines

    async def lines() -> list[str]:
        now = time.time()
        first = datetime.fromtimestamp(now - 84 * 86400, ZoneInfo(settings.timezone)).date()
        return await status_lines(repo, settings, first, now) or []

    return lines


def install_desk(app: App, channels: Sequence[Channel]) -> Desking | None:
    """The advocate desk, when a staff chat is set and Telegram is running; or the console
    as the desk (``[console] desk``: "console", or "both" beside Telegram's)."""
    if app.settings.console.enabled and app.settings.console.desk != "telegram":
        from helpline.desks import install_desks

        return install_desks(app, app.store, channels)
    if not app.settings.handoff.staff_chat:
        return None
    from helpline.channels.telegram import TelegramChannel
    from helpline.handoff.telegram_desk import install_telegram_desk

    telegram = next((c for c in channels if isinstance(c, TelegramChannel)), None)
    if telegram is None:
        log.warning("handoff.staff_chat is set but Telegram is not: no advocate desk")
        return None
    if not app.settings.handoff.advocates:
        log.warning("no advocates are listed (HELPLINE_ADVOCATES): nobody can claim cases")
    install_telegram_desk(app, telegram)
    return None


async def serve(settings: Settings, channels: Sequence[Channel], stop: asyncio.Event) -> None:
    setup_logging(settings.log_level, settings.log_format)
    try:
        async with open_app(settings, settings.secret_key, channels, stop) as app:
            await _serve_app(app, settings, channels, stop)
    except StoppedStandingBy:
        log.info("stopped while standing by")


async def _serve_app(app: App, settings: Settings, channels: Sequence[Channel],
                     stop: asyncio.Event) -> None:
    desking = install_desk(app, channels)
    if desking is not None and app.key_locks is not None:
        # Serving together: the console's pages on every worker learn what changed.
        desking.desk.hub.share(app.key_locks.tell)
        await app.key_locks.hear(desking.desk.hub.heard)
    outreach = install_outreach(app, channels)
    console_start: ConsoleStart | None = None
    if settings.console.enabled:
        # Imported before the app starts, not after: once the channels are up, the
        # loop is for the events they hand over.
        from helpline.console.server import start_console as console_start
    together = app.key_locks is not None
    if not await _started(app, stop, leading=not together):
        return
    console = (await console_start(settings, app.store.database, desking,
                                   outreach_lines(settings, outreach.repo))
               if console_start is not None else None)
    scheduler = build_scheduler(app)
    leading: asyncio.Task[None] | None = None
    if together:
        log.info("helpline running with %s, together with the other workers",
                 ", ".join(c.name for c in channels))
        leading = asyncio.create_task(_lead(app, scheduler, stop), name="lead")
    else:
        scheduler.start()
        log.info("helpline running with %s", ", ".join(c.name for c in channels))
    try:
        with settled_garbage_collector():
            await stop.wait()
    finally:
        if leading is not None:
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leading
        if scheduler.running:
            scheduler.shutdown(wait=False)
        if console is not None:
            await console.stop()


async def _lead(app: App, scheduler: AsyncIOScheduler, stop: asyncio.Event) -> None:
    """Serving together: wait to be the leader (the run lock; one worker at a time holds
    it), then run what only one worker runs: the channels that read a platform's one
    stream (Signal's socket, Telegram's polling) and the timed jobs. Losing the lock's
    connection stops this worker (``Database.watch_run_lock``)."""
    database = app.store.database
    if not await database.hold_run_lock(stop, leader=True):
        return
    led = await app.lead()
    scheduler.start()
    log.info("leading: this worker also runs the timed jobs%s",
             "".join(f" and reads {name}" for name in led))
    await database.watch_run_lock(stop.set)
