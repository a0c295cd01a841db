"""Shared fixtures: a real App on a temporary SQLite file, with a controllable clock."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpline import logfilter
from helpline.app import App
from helpline.channels.terminal import TerminalChannel
from helpline.config import Settings
from helpline.events import Inbound, Message, RawInbound
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.resources import browse
from helpline.resources.taxonomy import TaxonomyMap
from helpline.store import Store
from helpline.store.keylocks import KeyLocks
from tests.postgres import (  # noqa: F401 (fixtures for every test)
    drop_schema,
    new_schema,
    pg_url,
    postgres_server,
)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_FLOWS = ROOT / "flows"
BASIC_FLOWS = Path(__file__).resolve().parent / "flows_basic"
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """A person talking to the real pipeline through the terminal channel."""

    app: App
    channel: TerminalChannel
    clock: Clock
    platform_id: str = "person-1"
    seen: int = 0
    last_choices: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    async def send(self, text: str, platform_id: str | None = None,
                   locale_hint: str | None = None) -> list[Message]:
        return await self._inbound(Inbound(kind="text", at=0.0, text=text,
                                           locale_hint=locale_hint), platform_id)

    async def press(self, label: str) -> list[Message]:
        payload = next((p for lab, p in self.last_choices if lab == label), None)
        assert payload is not None, f"no button {label!r} among {self.last_choices}"
        return await self.press_payload(payload)

    async def press_payload(self, payload: str) -> list[Message]:
        return await self._inbound(Inbound(kind="button", at=0.0, payload=payload), None)

    async def _inbound(self, inbound: Inbound, platform_id: str | None) -> list[Message]:
        pid = platform_id or self.platform_id
        self.clock.advance(1)
        await self.app.handle(RawInbound("terminal", pid, f"addr-{pid}", inbound,
                                         message_id=str(int(self.clock.now))))
        return self.new_messages()

    def new_messages(self) -> list[Message]:
        out = [m for _, m in self.channel.sent[self.seen:]]
        self.seen = len(self.channel.sent)
        for message in out:
            if message.choices:
                self.last_choices = tuple((c.label, c.payload) for c in message.choices)
        return out

    @property
    def pid(self) -> str:
        return self.app.vault.pseudonym("terminal", self.platform_id)


def make_settings(tmp_path: Path, flows: Path = BUNDLED_FLOWS, **updates: object) -> Settings:
    return Settings(db=tmp_path / "helpline.db", flows=flows, secret_key=SECRET).model_copy(
        update=updates
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


HarnessFactory = Callable[..., Awaitable[Harness]]


# TESTS_BACKEND=postgresql: the harness's conversations are kept in PostgreSQL (a
# schema of each test's own on the tests' server) instead of the SQLite file.
TEST_BACKEND = os.environ.get("TESTS_BACKEND", "sqlite")
# TESTS_TOGETHER=1 (with TESTS_BACKEND=postgresql): the harness's app serves as one of
# several workers together ([workers] together: people's locks across workers, rows
# always read afresh, the inbox swept for what another worker left).
TEST_TOGETHER = os.environ.get("TESTS_TOGETHER") == "1"


@pytest.fixture
async def harness_factory(tmp_path: Path, clock: Clock, request: pytest.FixtureRequest
                          ) -> AsyncIterator[HarnessFactory]:
    stores: list[Store] = []
    schemas: list[str] = []
    locks: list[KeyLocks] = []

    async def build(flows: Path = BUNDLED_FLOWS, settings: Settings | None = None,
                    backend: str = TEST_BACKEND) -> Harness:
        settings = settings or make_settings(tmp_path, flows)
        if backend == "postgresql" and not settings.on_postgres:
            if not schemas:  # one database a test: a second harness is a restart
                schemas.append(await new_schema(request.getfixturevalue("postgres_server")))
            settings = settings.model_copy(update={"database_url": schemas[0]})
        vault = Vault(SECRET)
        store = await Store.open(settings.database, vault)
        stores.append(store)
        channel = TerminalChannel()
        app = App(settings, load_flows(settings.flows), store, vault,
                  CatalogTranslator(settings.locales), [channel], clock=clock)
        browse.install(app)  # as runtime.open_app does
        if TEST_TOGETHER and settings.on_postgres:
            locks.append(await KeyLocks.open(settings.database))
            app.serve_together(locks[-1])
        await app.start()
        return Harness(app, channel, clock)

    yield build
    for store in stores:
        await store.close()
    for held in locks:
        await held.close()
    for url in schemas:
        await drop_schema(request.getfixturevalue("postgres_server"), url)


@pytest.fixture
async def harness(harness_factory: HarnessFactory) -> Harness:
    return await harness_factory()


@pytest.fixture
async def basic(harness_factory: HarnessFactory) -> Harness:
    return await harness_factory(BASIC_FLOWS)


# Libraries whose records the privacy filter must keep clean (helpline/logfilter.py).
LIBRARY_LOGGERS = ("telegram", "httpx", "httpcore", "aiosqlite", "apscheduler", "aiohttp",
                   "signalbot", "websockets", "hpack", "tornado", "asyncio")


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG, the libraries' too, through the privacy filter that
    ``helpline run`` puts on its handlers."""
    caplog.set_level(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logfilter.install(caplog.handler)
    yield caplog
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database path for ``helpline`` commands run in-process: the folder is the working
    directory, HELPLINE_DB points there and HELPLINE_SECRET_KEY is the tests' key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HELPLINE_DB", str(tmp_path / "helpline.db"))
    return tmp_path / "helpline.db"


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """What the captured records say in every form a log line takes: the text form and
    the JSON form (``log_format = "json"``), one after the other."""
    from helpline.logformat import JsonFormatter

    json_form = JsonFormatter()
    return caplog.text + "\n".join(json_form.format(r) for r in caplog.records)


async def eventually(probe: Callable[[], Awaitable[object]], expected: object,
                     timeout: float = 5.0) -> None:
    """Poll an async ``probe`` (every 20 ms) until it returns ``expected``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await probe() != expected and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert await probe() == expected


@pytest.fixture(scope="session")
def bundled() -> TaxonomyMap:
    """The mapping table bundled with helpline (data/taxonomy-map.csv), loaded once."""
    found, problems = TaxonomyMap.load()
    assert problems == []
    return found
