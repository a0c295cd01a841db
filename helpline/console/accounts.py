"""Console accounts: set-up links, passwords (Argon2id), the TOTP second factor, lockout,
sessions and the audit log, over the console's tables (``helpline.console.schema``).

Nothing secret is stored as it is: set-up tokens and session ids only as SHA-256 hashes,
passwords as Argon2id hashes, TOTP secrets encrypted with the vault. Nothing here logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from helpline.console.passwords import password_problem
from helpline.console.roles import ROLES, Role
from helpline.errors import HelplineError
from helpline.privacy import Vault
from helpline.store.database import Database
from helpline.store.sql import AsyncConn, Row

RANK = {role: rank for rank, role in enumerate(ROLES)}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
COMMAND_LINE = "command line"  # the audit log's actor for what an admin did with the CLI
TOTP_STEP_SECONDS = 30
SEEN_EVERY_SECONDS = 30.0  # a session's last-seen time is written at most this often
UNKNOWN_NAMES_KEPT = 10_000  # failed names that are no account, counted in memory

Clock = Callable[[], float]


class AccountError(HelplineError):
    """Something an admin asked for that cannot be done (said in one line)."""


@dataclass(frozen=True)
class Policy:
    """The console's account settings (``[console]``)."""

    setup_hours: float = 24.0
    idle_minutes: float = 20.0
    session_hours: float = 12.0
    max_failures: int = 5
    lockout_minutes: float = 15.0
    issuer: str = "Helpline console"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    status: Literal["pending", "active", "disabled"]
    locked_until: float
    created_at: float

    def may(self, role: Role) -> bool:
        """Whether this user has ``role`` or a higher one."""
        return RANK[self.role] >= RANK[role]


@dataclass(frozen=True)
class SetupLink:
    user: User
    token: str  # shown once, never stored
    expires_at: float


@dataclass(frozen=True)
class Enrolment:
    """What the set-up page shows after a password is chosen: the TOTP secret to add to an
    authenticator app, and the same as an otpauth URI (and QR code)."""

    secret: str
    uri: str


@dataclass(frozen=True)
class LoginResult:
    user: User | None  # None: refused
    session: str | None = None  # the new session id (for the cookie), when logged in
    locked_minutes: float = 0.0  # > 0: refused because the account is paused


@dataclass(frozen=True)
class Session:
    user: User
    token_hash: bytes


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    event: str
    target: str
    detail: str


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _user(row: Row) -> User:
    return User(int(row["id"]), str(row["name"]), row["role"], row["status"],
                float(row["locked_until"]), float(row["created_at"]))


_USER_COLUMNS = "u.id, u.name, u.role, u.status, u.locked_until, u.created_at"


class Accounts:
    """The console's accounts in one database. ``hasher``: Argon2id with argon2-cffi's
    defaults (RFC 9106's second recommended profile: 64 MiB, 3 passes, 4 lanes); tests pass
    a cheaper one."""

    def __init__(self, database: Database, vault: Vault, policy: Policy | None = None,
                 hasher: PasswordHasher | None = None, clock: Clock = time.time) -> None:
        self.database = database
        self.vault = vault
        self.policy = policy or Policy()
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        # A hash to check a password against when the name is no account, so that a
        # refusal takes as long either way (made at the first such sign-in).
        self._dummy = ""
        self._unknown: OrderedDict[bytes, tuple[int, float]] = OrderedDict()

    # ------------------------------------------------------------- reading

    async def _one_user(self, where: str, params: tuple[object, ...]) -> User | None:
        row = await self.database.row(
            f"SELECT {_USER_COLUMNS} FROM console_users u WHERE {where}", params)
        return None if row is None else _user(row)

    async def user(self, name: str) -> User | None:
        return await self._one_user("u.name = ?", (name,))

    async def users(self) -> list[User]:
        rows = await self.database.rows(
            f"SELECT {_USER_COLUMNS} FROM console_users u ORDER BY u.name")
        return [_user(r) for r in rows]

    # ------------------------------------------------------------- the admin's commands

    async def add_user(self, name: str, role: str, actor: str = COMMAND_LINE) -> SetupLink:
        if not NAME.match(name):
            raise AccountError(f"'{name}' cannot be a user name: use 1 to 64 letters, digits, "
                               "dots, dashes or underscores, starting with a letter or digit")
        if role not in ROLES:
            raise AccountError(f"'{role}' is not a role; use one of {', '.join(ROLES)}")
        now = self.clock()
        async with self.database.transaction() as db:
            try:
                cursor = await db.execute(
                    "INSERT INTO console_users (name, role, status, created_at, updated_at) "
                    "VALUES (?, ?, 'pending', ?, ?)", (name, role, now, now))
            except sqlite3.IntegrityError:
                raise AccountError(f"there is already a user named '{name}'; "
                                   "helpline console reset-user gives a new set-up link"
                                   ) from None
            user_id = int(cursor.lastrowid or 0)
            token, expires = await self._new_link(db, user_id, now)
            await self._audit(db, now, actor, "user added", name, f"role {role}")
        user = await self.user(name)
        assert user is not None
        return SetupLink(user, token, expires)

    async def reset_user(self, name: str, actor: str = COMMAND_LINE) -> SetupLink:
        """A new set-up link; the password, second factor, sessions and earlier links stop
        working at once (a lost phone, a forgotten password, a disabled account back)."""
        user = await self._existing(name)
        now = self.clock()
        async with self.database.transaction() as db:
            await db.execute(
                "UPDATE console_users SET status = 'pending', password_hash = NULL, "
                "totp_secret = NULL, totp_step = 0, failures = 0, locked_until = 0, "
                "updated_at = ? WHERE id = ?", (now, user.id))
            await self._end_sessions(db, user.id)
            token, expires = await self._new_link(db, user.id, now)
            await self._audit(db, now, actor, "user reset", user.name)
        return SetupLink(user, token, expires)

    async def disable_user(self, name: str, actor: str = COMMAND_LINE) -> User:
        user = await self._existing(name)
        now = self.clock()
        async with self.database.transaction() as db:
            await db.execute("UPDATE console_users SET status = 'disabled', updated_at = ? "
                             "WHERE id = ?", (now, user.id))
            await self._end_sessions(db, user.id)
            await self._audit(db, now, actor, "user disabled", user.name)
        return user

    async def _existing(self, name: str) -> User:
        user = await self.user(name)
        if user is None:
            raise AccountError(f"there is no user named '{name}' (helpline console "
                               "list-users shows them)")
        return user

    async def _new_link(self, db: AsyncConn, user_id: int, now: float
                        ) -> tuple[str, float]:
        await db.execute("DELETE FROM console_setup WHERE user_id = ?", (user_id,))
        token = secrets.token_urlsafe(32)
        expires = now + self.policy.setup_hours * 3600
        await db.execute("INSERT INTO console_setup (token_hash, user_id, expires_at) "
                         "VALUES (?, ?, ?)", (digest(token), user_id, expires))
        return token, expires

    async def _end_sessions(self, db: AsyncConn, user_id: int) -> None:
        await db.execute("DELETE FROM console_sessions WHERE user_id = ?", (user_id,))
        await db.execute("DELETE FROM console_setup WHERE user_id = ?", (user_id,))

    # ------------------------------------------------------------- set-up links

    async def setup_user(self, token: str) -> User | None:
        """The account a set-up link is for, while the link is unused and not expired."""
        return await self._one_user(
            "u.id = (SELECT user_id FROM console_setup WHERE token_hash = ? AND "
            "expires_at > ?) AND u.status = 'pending'", (digest(token), self.clock()))

    async def choose_password(self, token: str, password: str) -> Enrolment | str:
        """Step one of the set-up: the password is checked and hashed (not in force yet), and
        a new TOTP secret is offered. A text: why the password will not do."""
        user = await self.setup_user(token)
        if user is None:
            return "This set-up link has expired or was used already."
        problem = password_problem(password, user.name)
        if problem is not None:
            return problem
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        secret = pyotp.random_base32()
        async with self.database.transaction() as db:
            await db.execute("UPDATE console_setup SET password_hash = ?, totp_secret = ? "
                             "WHERE token_hash = ?",
                             (hashed, self.vault.encrypt_text(secret), digest(token)))
        return self.enrolment(user, secret)

    def enrolment(self, user: User, secret: str) -> Enrolment:
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.name,
                                                   issuer_name=self.policy.issuer)
        return Enrolment(secret, uri)

    async def pending_enrolment(self, token: str) -> Enrolment | None:
        """The secret offered at step one, to show again after a wrong code."""
        row = await self.database.row(
            "SELECT user_id, totp_secret FROM console_setup WHERE token_hash = ? AND "
            "expires_at > ? AND totp_secret IS NOT NULL", (digest(token), self.clock()))
        user = await self.setup_user(token)
        if row is None or user is None:
            return None
        return self.enrolment(user, self.vault.decrypt_text(row["totp_secret"]))

    async def confirm_code(self, token: str, code: str) -> User | None:
        """Step two: a code from the authenticator app proves it was set up; the password
        and the secret are then in force, the account active and the link used up."""
        row = await self.database.row(
            "SELECT user_id, password_hash, totp_secret FROM console_setup WHERE "
            "token_hash = ? AND expires_at > ? AND totp_secret IS NOT NULL",
            (digest(token), self.clock()))
        user = await self.setup_user(token)
        if row is None or user is None:
            return None
        secret = self.vault.decrypt_text(row["totp_secret"])
        # The set-up code is not used up: the person may sign in with the same code, in
        # the same 30 seconds, without waiting for the next one.
        if self._matching_step(secret, code, 0) is None:
            return None
        now = self.clock()
        async with self.database.transaction() as db:
            cursor = await db.execute("DELETE FROM console_setup WHERE token_hash = ?",
                                      (digest(token),))
            if cursor.rowcount != 1:  # used by a request at the same moment
                return None
            await db.execute(
                "UPDATE console_users SET status = 'active', password_hash = ?, "
                "totp_secret = ?, totp_step = 0, failures = 0, locked_until = 0, "
                "updated_at = ? WHERE id = ?",
                (row["password_hash"], self.vault.encrypt_text(secret), now, user.id))
            await self._audit(db, now, user.name, "account set up", user.name)
        return await self.user(user.name)

    def _matching_step(self, secret: str, code: str, after: int) -> int | None:
        """The time step whose code ``code`` is (this one, or one step either side for a
        clock a little off), if later than ``after`` (a code works once)."""
        code = "".join(code.split())
        if len(code) != 6 or not all(c.isdecimal() for c in code):
            return None
        code = "".join(str(unicodedata.decimal(c)) for c in code)  # ٤٢ (a phone's digits)
        totp = pyotp.TOTP(secret)
        now = self.clock()
        for offset in (0, -1, 1):
            at = now + offset * TOTP_STEP_SECONDS
            if hmac.compare_digest(totp.at(at), code):
                step = totp.timecode(_utc(at))
                return step if step > after else None
        return None

    # ------------------------------------------------------------- logging in

    async def login(self, name: str, password: str, code: str) -> LoginResult:
        """Name, password and a TOTP code together. A refusal says nothing of which was
        wrong; the audit log does (a right password with a wrong code is worth knowing)."""
        now = self.clock()
        row = await self.database.row(
            f"SELECT {_USER_COLUMNS}, u.password_hash, u.totp_secret, u.totp_step, "
            "u.failures FROM console_users u WHERE u.name = ?", (name,))
        if row is None or row["status"] != "active":
            if not self._dummy:
                self._dummy = await asyncio.to_thread(self.hasher.hash,
                                                      secrets.token_urlsafe(16))
            await asyncio.to_thread(self._verify, self._dummy, password)
            if row is not None:
                await self.audit(str(row["name"]), "login refused", str(row["name"]),
                                 f"account {row['status']}")
            else:
                await self.audit("", "login failed", "", "no such account")
            return LoginResult(None, locked_minutes=self._unknown_failed(name, now))
        user = _user(row)
        if user.locked_until > now:
            await self.audit(user.name, "login refused", user.name, "account paused")
            return LoginResult(None, locked_minutes=self.policy.lockout_minutes)
        password_ok = await asyncio.to_thread(self._verify, str(row["password_hash"]),
                                              password)
        secret = self.vault.decrypt_text(row["totp_secret"])
        step = self._matching_step(secret, code, int(row["totp_step"]))
        if password_ok and step is not None:
            return await self._logged_in(user, password, str(row["password_hash"]), step, now)
        reason = "wrong password" if not password_ok else "wrong code"
        failures = int(row["failures"]) + 1
        locked = failures >= self.policy.max_failures
        async with self.database.transaction() as db:
            await db.execute(
                "UPDATE console_users SET failures = ?, locked_until = ? WHERE id = ?",
                (0 if locked else failures,
                 now + self.policy.lockout_minutes * 60 if locked else 0, user.id))
            await self._audit(db, now, user.name, "login failed", user.name, reason)
            if locked:
                await self._audit(db, now, user.name, "account paused", user.name,
                                  f"{failures} failed logins in a row")
        return LoginResult(None, locked_minutes=self.policy.lockout_minutes if locked else 0)

    async def _logged_in(self, user: User, password: str, hashed: str, step: int,
                         now: float) -> LoginResult:
        rehash = (await asyncio.to_thread(self.hasher.hash, password)
                  if self.hasher.check_needs_rehash(hashed) else None)
        token = secrets.token_urlsafe(32)
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "UPDATE console_users SET totp_step = ?, failures = 0, locked_until = 0 "
                "WHERE id = ? AND totp_step < ?", (step, user.id, step))
            if cursor.rowcount != 1:  # the same code used by a request at the same moment
                await self._audit(db, now, user.name, "login failed", user.name,
                                  "code used already")
                return LoginResult(None)
            if rehash is not None:
                await db.execute("UPDATE console_users SET password_hash = ? WHERE id = ?",
                                 (rehash, user.id))
            await db.execute("INSERT INTO console_sessions (token_hash, user_id, created_at, "
                             "seen_at) VALUES (?, ?, ?, ?)", (digest(token), user.id, now, now))
            await self._audit(db, now, user.name, "login", user.name)
        return LoginResult(user, token)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(hashed, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _unknown_failed(self, name: str, now: float) -> float:
        """Failed logins under a name that is no account are counted too (in memory), so
        that the pause after repeated failures does not tell which names exist."""
        key = digest(name.lower())
        failures, until = self._unknown.pop(key, (0, 0.0))
        if until > now:
            self._unknown[key] = (failures, until)
            return self.policy.lockout_minutes
        failures += 1
        locked = failures >= self.policy.max_failures
        self._unknown[key] = (0, now + self.policy.lockout_minutes * 60) if locked else (
            failures, 0.0)
        while len(self._unknown) > UNKNOWN_NAMES_KEPT:
            self._unknown.popitem(last=False)
        return self.policy.lockout_minutes if locked else 0.0

    # ------------------------------------------------------------- sessions

    async def session(self, token: str, touch: bool = True
                      ) -> Session | Literal["expired"] | None:
        """The session of a cookie's id: None when there is none (or its account is no
        longer active), "expired" when it idled out or grew too old (it is ended).
        ``touch``: the request counts as activity (a live page checking that its session
        still holds does not)."""
        token_hash = digest(token)
        row = await self.database.row(
            f"SELECT {_USER_COLUMNS}, s.created_at AS opened, s.seen_at FROM "
            "console_sessions s JOIN console_users u ON u.id = s.user_id "
            "WHERE s.token_hash = ?", (token_hash,))
        if row is None or row["status"] != "active":
            return None
        user = _user(row)
        now = self.clock()
        idle = now - float(row["seen_at"]) > self.policy.idle_minutes * 60
        if idle or now - float(row["opened"]) > self.policy.session_hours * 3600:
            async with self.database.transaction() as db:
                await db.execute("DELETE FROM console_sessions WHERE token_hash = ?",
                                 (token_hash,))
                await self._audit(db, now, user.name, "signed out", user.name,
                                  "idle" if idle else "session too old")
            return "expired"
        if touch and now - float(row["seen_at"]) > SEEN_EVERY_SECONDS:
            async with self.database.transaction() as db:
                await db.execute("UPDATE console_sessions SET seen_at = ? WHERE "
                                 "token_hash = ?", (now, token_hash))
        return Session(user, token_hash)

    async def logout(self, session: Session) -> None:
        now = self.clock()
        async with self.database.transaction() as db:
            await db.execute("DELETE FROM console_sessions WHERE token_hash = ?",
                             (session.token_hash,))
            await self._audit(db, now, session.user.name, "logout", session.user.name)

    async def end_session(self, token: str) -> None:
        """Ends the session of a cookie's id, if there is one (a new login replaces it)."""
        async with self.database.transaction() as db:
            await db.execute("DELETE FROM console_sessions WHERE token_hash = ?",
                             (digest(token),))

    # ------------------------------------------------------------- the audit log

    async def audit(self, actor: str, event: str, target: str = "", detail: str = "") -> None:
        """One entry: who, what, when (and on which account or case). Never content."""
        async with self.database.transaction() as db:
            await self._audit(db, self.clock(), actor, event, target, detail)

    async def _audit(self, db: AsyncConn, now: float, actor: str, event: str,
                     target: str = "", detail: str = "") -> None:
        await db.execute("INSERT INTO console_audit (at, actor, event, target, detail) "
                         "VALUES (?, ?, ?, ?, ?)", (now, actor, event, target, detail))

    async def audit_log(self, limit: int = 100, before: int | None = None
                        ) -> list[AuditEntry]:
        """The newest entries first (``before``: entries older than that id)."""
        rows = await self.database.rows(
            "SELECT id, at, actor, event, target, detail FROM console_audit "
            "WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit))
        return [AuditEntry(int(r["id"]), float(r["at"]), str(r["actor"]), str(r["event"]),
                           str(r["target"]), str(r["detail"])) for r in rows]


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
