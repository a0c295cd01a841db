"""Build the whole app from Settings: vault, store, flows, translator, channels."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from helpline.app import App
from helpline.channels.base import Channel
from helpline.config import Settings
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.resources import browse, seed_if_empty
from helpline.store import Store

# Libraries that would log URLs, update bodies or message text at INFO/DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "apscheduler", "signalbot", "aiohttp",
                 "websockets", "hpack")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@asynccontextmanager
async def open_app(settings: Settings, secret: str,
                   channels: Sequence[Channel] = ()) -> AsyncIterator[App]:
    """Start-up and shut-down as one context: flows are checked before anything opens."""
    flows = load_flows(settings.flows)
    vault = Vault(secret)
    store = await Store.open(settings.db, vault)
    translator = CatalogTranslator(settings.locales, settings.default_language)
    app = App(settings, flows, store, vault, translator, channels)
    browse.install(app)  # lookups answered from the service directory in the store
    try:
        await seed_if_empty(store, settings.resources.seed, time.time())
        yield app
    finally:
        await app.stop()
        await store.close()
