"""A console on a loopback port over a temporary database, with a controllable clock and a
cheap Argon2 (the production parameters are checked once, in test_console_accounts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pyotp
from argon2 import PasswordHasher

from helpline.console.accounts import Accounts, Policy
from helpline.console.server import ConsoleServer, serve_console
from helpline.console.web import Console, Statistics
from helpline.privacy import Vault
from helpline.stats.counts import Stats
from helpline.store import Store
from tests.conftest import SECRET, Clock

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
                      policy: Policy | None = None) -> AsyncIterator[Rig]:
    clock = clock or Clock()
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    accounts = Accounts(store.database, store.vault, policy or Policy(), CHEAP, clock)
    server = await serve_console(
        Console(accounts, "http://127.0.0.1", Statistics(Stats(store.database))), "127.0.0.1",
        0)
    try:
        yield Rig(store, accounts, server, clock)
    finally:
        await server.stop()
        await store.close()
