"""Build the whole app from Settings: vault, store, flows, translator, channels."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from helpline import logfilter
from helpline.app import App
from helpline.channels.base import Channel
from helpline.config import Settings, flow_roots
from helpline.errors import HelplineError
from helpline.feature import Feature
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.logformat import TEXT_FORMAT, LogFormat, formatter
from helpline.privacy import Vault
from helpline.resources import browse, seed_if_empty
from helpline.stats.feature import StatsFeature
from helpline.store import Store
from helpline.store.keylocks import KeyLocks

# Libraries that would log URLs, update bodies or message text at INFO/DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "apscheduler", "signalbot", "aiohttp",
                 "websockets", "hpack", "aiosqlite")


def setup_logging(level: str = "INFO", form: LogFormat = "text") -> None:
    """Log to stderr at ``level``, as text or as JSON lines (helpline/logformat.py).
    Libraries stay at WARNING (less noise), and every handler of the root logger gets the
    privacy filter (helpline/logfilter.py): at any level, a library's record carries no
    message text, platform id, name, pseudonym or ciphertext."""
    logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        logfilter.install(handler)
        if form == "json":
            handler.setFormatter(formatter(form))


class StoppedStandingBy(HelplineError):
    """``helpline run`` was stopped while another worker served the database."""


@asynccontextmanager
async def open_app(settings: Settings, secret: str, channels: Sequence[Channel] = (),
                   stop: asyncio.Event | None = None) -> AsyncIterator[App]:
    """Start-up and shut-down as one context: flows are checked before anything opens.
    ``stop`` (``helpline run``): on PostgreSQL, stand by while another worker serves the
    database, and stop serving (set it) if the run lock is lost."""
    flows = load_flows(settings.flows, flow_roots(settings))
    vault = Vault(secret)
    store = await Store.open(settings.database, vault)
    together = settings.workers.together and stop is not None
    locks: KeyLocks | None = None
    try:
        if together:
            locks = await KeyLocks.open(settings.database)
        serving = together or await store.database.hold_run_lock(stop)
    except BaseException:
        await store.close()
        raise
    if not serving:
        await store.close()
        raise StoppedStandingBy("stopped while standing by")
    watch: asyncio.Task[None] | None = None
    if locks is not None and stop is not None:
        watch = asyncio.create_task(locks.watch(stop.set))
    elif stop is not None:
        watch = asyncio.create_task(store.database.watch_run_lock(stop.set))
    translator = CatalogTranslator(settings.locales, settings.default_language)
    # Lookups answered from the service directory in the store (the desk is added by
    # helpline.serve when one is set up).
    # Statistics that identify no one, unless turned off ([stats] enabled).
    features: list[Feature[Any]] = [browse.ResourcesFeature()]
    if settings.stats.enabled:
        features.append(StatsFeature(settings.timezone))
    app = App(settings, flows, store, vault, translator, channels, features=features)
    if locks is not None:
        app.serve_together(locks)
    try:
        await seed_if_empty(store, settings.resources.seed, time.time())
        yield app
    finally:
        if watch is not None:
            watch.cancel()
        await app.stop()
        await store.close()
        if locks is not None:
            await locks.close()
