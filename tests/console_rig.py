"""A console on a loopback port over a temporary database, with a controllable clock and a
cheap Argon2 (the production parameters are checked once, in test_console_accounts)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
from argon2 import PasswordHasher

from helpline.app import App
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.config import Console as ConsoleSettings
from helpline.config import Delivery, Handoff
from helpline.console.accounts import Accounts, Policy
from helpline.console.desk import ConsoleDesk
from helpline.console.feature import Desking
from helpline.console.server import ConsoleServer, serve_console
from helpline.console.web import SESSION_COOKIE, Console, OutreachStatus, Statistics
from helpline.desks import install_desks
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.stats.counts import Stats
from helpline.store import Store
from tests.conftest import SECRET, Clock, make_settings
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI
from tests.telegram_person import CHAT, presses, says, until_async

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "quiet river lamp stone"


@dataclass
class Rig:
    store: Store
    accounts: Accounts
    server: ConsoleServer
    clock: Clock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def link(self, token: str) -> str:
        return f"{self.url}/setup#{token}"

    async def secret(self, name: str) -> str:
        row = await self.store.database.row(
            "SELECT totp_secret FROM console_users WHERE name = ?", (name,))
        assert row is not None
        return self.store.vault.decrypt_text(row["totp_secret"])

    async def code(self, name: str, steps_later: int = 0) -> str:
        """The code of ``name``'s authenticator app now (the clock moved on ``steps_later``
        time steps first, so that a code is not one used already)."""
        self.clock.advance(30 * steps_later)
        return pyotp.TOTP(await self.secret(name)).at(self.clock.now)

    async def active_user(self, name: str, role: str = "advocate",
                          password: str = PASSWORD) -> None:
        """An account set up through its link, as the set-up pages do."""
        link = await self.accounts.add_user(name, role)
        enrolment = await self.accounts.choose_password(link.token, password)
        assert not isinstance(enrolment, str), enrolment
        code = pyotp.TOTP(enrolment.secret).at(self.clock.now)
        assert await self.accounts.confirm_code(link.token, code) is not None

    async def audit(self) -> list[tuple[str, str, str, str]]:
        """The audit log, oldest first: (actor, event, target, detail)."""
        entries = await self.accounts.audit_log(1000)
        return [(e.actor, e.event, e.target, e.detail) for e in reversed(entries)]


@asynccontextmanager
async def console_rig(tmp_path: Path, clock: Clock | None = None,
                      policy: Policy | None = None,
                      outreach: Callable[[Store], OutreachStatus] | None = None
                      ) -> AsyncIterator[Rig]:
    clock = clock or Clock()
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    accounts = Accounts(store.database, store.vault, policy or Policy(), CHEAP, clock)
    server = await serve_console(
        Console(accounts, "http://127.0.0.1", Statistics(Stats(store.database)),
                outreach=outreach(store) if outreach is not None else None), "127.0.0.1",
        0)
    try:
        yield Rig(store, accounts, server, clock)
    finally:
        await server.stop()
        await store.close()


# ------------------------------------------------------------------ the console as a desk

FORUM = -1001234567890  # the staff group, when both desks are on
TELEGRAM_ADVOCATE = 111
NOTE = "I left last week and I need somewhere safe"


@dataclass
class DeskRig(Rig):
    """A console that is the desk (or one of both), beside the real App, store, flows and
    python-telegram-bot on the loopback Telegram fake."""

    app: App
    api: FakeBotAPI
    desking: Desking

    @property
    def desk(self) -> ConsoleDesk:
        return self.desking.desk

    def person_texts(self) -> list[str]:
        return self.api.sent_texts(CHAT)

    async def person(self, text: str, count: int = 1) -> list[str]:
        """The person writes; returns what the bot says back (``count`` messages)."""
        return await says(self.api, text, count)

    async def press(self, label: str, count: int = 1) -> list[str]:
        return await presses(self.api, label, count)

    async def ask_for_advocate(self) -> str:
        """The person asks for an advocate through the bundled flows; returns the case
        handle the bot gave them, once the console has the case."""
        await self.person("hi")
        await self.press("Yes")
        await self.person("4")
        await self.press("Yes")
        await self.person(NOTE)
        said = " ".join(await self.press("Evenings"))
        handle = said.split("case number is ")[1][:4]
        await until_async(lambda: self._has_thread(handle))
        return handle

    async def _has_thread(self, handle: str) -> bool:
        return any(c.handle == handle for c, _ in await self.desk.open_cases())

    async def thread_of(self, handle: str) -> int:
        return next(t for c, t in await self.desk.open_cases() if c.handle == handle)




@asynccontextmanager
async def desk_rig(tmp_path: Path, api: FakeBotAPI, mode: str = "console",
                   clock: Clock | None = None, **console: Any) -> AsyncIterator[DeskRig]:
    """``mode``: "console" (the console is the desk) or "both" (beside the Telegram desk
    in the fake's forum ``FORUM``, where ``TELEGRAM_ADVOCATE`` is listed)."""
    clock = clock or Clock(time.time())  # the app's and the desk's clock is the real one
    both = mode == "both"
    settings = make_settings(
        tmp_path, handoff=Handoff(staff_chat=FORUM if both else 0,
                                  advocates=[TELEGRAM_ADVOCATE] if both else []),
        delivery=Delivery(retry_first_seconds=0.05, retry_max_seconds=0.2),
        console=ConsoleSettings(enabled=True, desk=mode, **console))
    vault = Vault(SECRET)
    store = await Store.open(settings.db, vault)
    channel = TelegramChannel(TelegramOptions(
        token=TOKEN, api_url=api.root, poll_timeout_seconds=1,
        exit_reply_delete_after_seconds=0.2, rate_limit=False))
    app = App(settings, load_flows(settings.flows), store, vault,
              CatalogTranslator(settings.locales), [channel])
    desking = install_desks(app, store, [channel])
    assert desking is not None
    await app.start()
    accounts = Accounts(store.database, store.vault, Policy(), CHEAP, clock)
    server = await serve_console(Console(accounts, "http://127.0.0.1", None, desking),
                                 "127.0.0.1", 0)
    try:
        yield DeskRig(store, accounts, server, clock, app, api, desking)
    finally:
        await server.stop()
        await desking.desk.settled()
        await app.stop()
        await store.close()


@dataclass
class Advocate:
    """A signed-in console user speaking HTTP to the console (no browser): the session
    cookie and the CSRF token a page would carry."""

    rig: Rig
    name: str
    token: str
    http: aiohttp.ClientSession

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.token}"}

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.rig.url + path, headers=self.headers,
                                 allow_redirects=False) as response:
            return response.status, await response.text()

    async def post(self, path: str, **form: str) -> tuple[int, str]:
        data = {"csrf": self.rig.server.console.csrf(self.token), **form}
        async with self.http.post(self.rig.url + path, data=data, allow_redirects=False,
                                  headers={**self.headers, "X-Requested-With": "fetch"}
                                  ) as response:
            return response.status, await response.text()

    @asynccontextmanager
    async def events(self, path: str) -> AsyncIterator[EventReader]:
        async with self.http.get(self.rig.url + path, headers=self.headers,
                                 timeout=aiohttp.ClientTimeout(total=None)) as response:
            yield EventReader(response)


class EventReader:
    """Server-sent events as a page's EventSource reads them."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.status = response.status

    async def next(self, kind: str | None = None, timeout: float = 5.0
                   ) -> tuple[str, dict[str, Any]]:
        """The next event (of ``kind``, skipping others)."""
        async with asyncio.timeout(timeout):
            name, data = "", ""
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise AssertionError("the stream ended")
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and name:
                    if kind is None or name == kind:
                        return name, json.loads(data or "{}")
                    name, data = "", ""


@asynccontextmanager
async def advocate(rig: Rig, name: str, role: str = "advocate") -> AsyncIterator[Advocate]:
    await rig.active_user(name, role)
    result = await rig.accounts.login(name, PASSWORD, await rig.code(name, steps_later=1))
    assert result.session is not None
    async with aiohttp.ClientSession() as http:
        yield Advocate(rig, name, result.session, http)
