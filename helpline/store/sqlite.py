"""The store: hand-written SQL over one aiosqlite connection in WAL mode."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from helpline.errors import HelplineError
from helpline.events import Message, RawInbound
from helpline.flow.state import State
from helpline.privacy import SecretError, Vault, private_database
from helpline.store.migrations import PERSON_TABLES, upgrade

INLINE_LEASE_SECONDS = 60.0
OPERATION_INSERT = ("INSERT INTO operations (key, channel, kind, body, address, created_at, "
                    "not_before, expires_at, next_try_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
INBOX_INSERT = ("INSERT OR IGNORE INTO inbox (pid, channel, event, body, received_at) "
                "VALUES (?, ?, ?, ?, ?)")
INBOX_DONE = "UPDATE inbox SET pid = '', body = NULL, done = 1 WHERE id = ?"
KEY_CHECK_LABEL = b"helpline key check v1"
MAX_REPLAYS = 3  # starts that may find an event unprocessed before it is given up
# How long a queued operation is worth carrying out (a reply a week late is still read;
# the platforms' delete windows are shorter, and set their own).
DEFAULT_EXPIRY_SECONDS = 7 * 86400.0


def _run_batch(conn: sqlite3.Connection,
               works: Sequence[Callable[[sqlite3.Connection], object]]
               ) -> list[Exception | None]:
    """In the database thread: every work in one transaction, each in a savepoint."""
    errors: list[Exception | None] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            conn.execute("SAVEPOINT work")
            try:
                work(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO work")
                errors.append(exc)
            else:
                errors.append(None)
            conn.execute("RELEASE work")
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return errors


def _fail_all(futures: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    """Every caller waiting on a trip that failed gets the error; a cancellation (the
    store is closing) is passed on after they have been told."""
    error = exc if isinstance(exc, Exception) else RuntimeError("the store is closing")
    for future in futures:
        if not future.done():
            future.set_exception(error)
    if not isinstance(exc, Exception):
        raise exc


class KeyMismatch(HelplineError):
    """The database was written with another secret key."""


KEY_MISMATCH = ("this database was written with another secret key; start with the key it "
                "was made with (HELPLINE_SECRET_KEY, or secret.key beside the database), or "
                "move the database aside to begin an empty one")
# Where an older database (before the key check value) keeps a value to try the key on.
KEY_SAMPLES = (("people", "address"), ("operations", "body"), ("outbox", "body"),
               ("jobs", "body"), ("cases", "summary"))


def key_matches(db: sqlite3.Connection, vault: Vault) -> bool | None:
    """Whether ``vault`` holds the key the database was written with: by its check value,
    or (a database older than it) by decrypting a value it holds. True or False, or None
    when it holds nothing to check the key by. Reads only (``Store.open``, ``helpline
    doctor``)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "key_check" in tables:
        row = db.execute("SELECT value FROM key_check WHERE id = 1").fetchone()
        if row is not None:
            return hmac.compare_digest(bytes(row[0]), vault.check_value(KEY_CHECK_LABEL))
    for table, column in KEY_SAMPLES:
        if table in tables:
            row = db.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL "
                             "LIMIT 1").fetchone()
            if row is not None:
                try:
                    vault.decrypt(bytes(row[0]))
                except SecretError:
                    return False
                return True
    return None


def _key_matches_at(path: Path, vault: Vault) -> bool | None:
    if not path.exists():
        return None
    with closing(sqlite3.connect(path)) as db:
        return key_matches(db, vault)


def _count(db: sqlite3.Connection, kind: str, outcome: str, n: int) -> None:
    db.execute("INSERT INTO operation_outcomes (kind, outcome, count) VALUES (?, ?, ?) "
               "ON CONFLICT(kind, outcome) DO UPDATE SET count = count + excluded.count",
               (kind, outcome, n))


def _select_people(conn: sqlite3.Connection, pids: list[str]) -> dict[str, tuple[Any, ...]]:
    """In the database thread: the people rows of ``pids``, by pid."""
    found: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(pids), 500):  # below SQLite's limit of bound parameters
        chunk = pids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
                "SELECT pid, channel, address, state, updated_at, unreachable FROM people "
                f"WHERE pid IN ({marks})", chunk):
            found[row[0]] = tuple(row)
    return found


@dataclass(frozen=True)
class PersonRow:
    pid: str
    channel: str
    address: str
    state: State
    updated_at: float
    unreachable: bool


OperationKind = Literal["send", "delete", "timer"]
ANONYMOUS = "x:"  # the key prefix of operations tied to no one (a quick exit's deletes)


@dataclass(frozen=True)
class Operation:
    """One platform operation waiting in the queue, in order per ``key`` (a person's pid,
    a desk case, or an anonymous key). ``body``: a Message (send), the platform message
    ids (delete) or the timer's seconds (timer)."""

    id: int
    key: str
    channel: str
    kind: OperationKind
    body: Any
    attempts: int
    next_try_at: float
    not_before: float = 0.0
    expires_at: float | None = None
    # Where to send, decrypted; None: the person's own address (``key`` is their pid).
    address: str | None = None

    @property
    def message(self) -> Message:
        assert self.kind == "send"
        message: Message = self.body
        return message


@dataclass(frozen=True)
class PendingDelete:
    """Platform deletes to ask for (a quick exit's), kept tied to no person until done or
    until the platform's delete window (``until``) is over."""

    channel: str
    address: str
    ids: tuple[str, ...]
    until: float  # the platform's delete window ends: give up
    due_at: float = 0.0  # not asked for before (a quick exit's neutral reply stays a moment)


@dataclass(frozen=True)
class InboxRow:
    """An event the platform handed us that was not processed yet."""

    id: int
    pid: str
    raw: RawInbound


def anonymous_key() -> str:
    return ANONYMOUS + secrets.token_hex(8)


def _encode_body(kind: OperationKind, body: Any) -> bytes:
    if kind == "send":
        return json.dumps(body.to_json()).encode()
    if kind == "delete":
        return json.dumps(list(body)).encode()
    return json.dumps(int(body)).encode()


def _decode_body(kind: str, raw: bytes) -> Any:
    data = json.loads(raw)
    if kind == "send":
        return Message.from_json(data)
    if kind == "delete":
        return tuple(str(i) for i in data)
    return int(data)


@dataclass(frozen=True)
class Job:
    id: int
    pid: str
    kind: str
    due_at: float
    body: dict[str, Any]


class Store:
    """All reads and writes. Content columns are encrypted and decrypted with the vault."""

    def __init__(self, db: aiosqlite.Connection, vault: Vault) -> None:
        self.db = db
        self.vault = vault
        self._write = asyncio.Lock()
        self._batch: list[tuple[Callable[[sqlite3.Connection], object],
                               asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._reads: dict[str, list[asyncio.Future[tuple[Any, ...] | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path | str, vault: Vault, verify_key: bool = True) -> Store:
        """Open (creating or upgrading) the database. A database written with another
        secret key is refused (KeyMismatch) before anything is written; ``verify_key=False``
        is for tools that touch only the public directory tables, with no key of theirs."""
        if verify_key and str(path) != ":memory:" and (
                await asyncio.to_thread(_key_matches_at, Path(path), vault)) is False:
            raise KeyMismatch(KEY_MISMATCH)  # before anything is written
        if str(path) != ":memory:":
            private_database(Path(path))  # 0600 (and so its -wal and -shm), folder 0700
        db = await aiosqlite.connect(str(path), isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten, not left
        await db.execute("PRAGMA busy_timeout=5000")
        try:
            await upgrade(db, vault if verify_key else None)
            if verify_key:  # the check value, where there is none yet
                await db.execute("INSERT OR IGNORE INTO key_check (id, value) VALUES (1, ?)",
                                 (vault.check_value(KEY_CHECK_LABEL),))
                await db.commit()
        except BaseException:
            await db.close()
            raise
        return cls(db, vault)

    async def close(self) -> None:
        for task in (self._reader, self._flusher):  # queued reads and writes finish first
            if task is not None:
                await asyncio.shield(task)
        await self.db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()

    async def _in_one_trip(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``work`` as its own transaction, with group commit: one trip to the database
        thread and one commit for every write queued meanwhile.

        ``transaction()`` awaits each statement: one trip per statement, each waiting for
        its turn on a busy event loop while the write lock is held. The hot writes (a turn,
        a delivery) come here instead: the first caller starts a flush; whoever queues while
        a flush runs goes in the next one. Each work runs inside a savepoint, so a failing
        one is undone alone and its caller gets the error; the others commit. Every caller
        returns only after its commit. aiosqlite has no public call for this; ``_execute``
        is the one all its own methods use."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((work, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._batch:
                batch, self._batch = self._batch, []
                works = [work for work, _ in batch]
                try:
                    async with self._write:
                        errors = await self.db._execute(  # type: ignore[no-untyped-call]
                            _run_batch, self.db._conn, works)
                except BaseException as exc:  # the commit itself failed: nothing was saved
                    _fail_all((future for _, future in batch), exc)
                    continue
                for (_, future), error in zip(batch, errors, strict=True):
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        finally:
            self._flusher = None

    # ------------------------------------------------------------- people

    async def person(self, pid: str) -> PersonRow | None:
        row = await self._person_row(pid)
        if row is None:
            return None
        state = State()
        if row[3] is not None:
            state = State.from_json(self.vault.decrypt(row[3]))
        return PersonRow(row[0], row[1], self.vault.decrypt_text(row[2]), state, row[4],
                         bool(row[5]))

    async def _person_row(self, pid: str) -> tuple[Any, ...] | None:
        """The person's row, read together with every other row asked for meanwhile: one
        trip to the database thread for all (as writes do, see ``_in_one_trip``)."""
        future: asyncio.Future[tuple[Any, ...] | None] = (
            asyncio.get_running_loop().create_future())
        self._reads.setdefault(pid, []).append(future)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_people())
        return await future

    async def _read_people(self) -> None:
        try:
            while self._reads:
                wanted, self._reads = self._reads, {}
                try:
                    rows = await self.db._execute(  # type: ignore[no-untyped-call]
                        _select_people, self.db._conn, list(wanted))
                except BaseException as exc:
                    _fail_all((f for futures in wanted.values() for f in futures), exc)
                    continue
                for pid, futures in wanted.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(rows.get(pid))
        finally:
            self._reader = None

    async def address(self, pid: str) -> str | None:
        rows = await self.db.execute_fetchall("SELECT address FROM people WHERE pid = ?", (pid,))
        row = next(iter(rows), None)
        return None if row is None else self.vault.decrypt_text(row[0])

    async def save_turn(
        self,
        pid: str,
        channel: str,
        address: str,
        state: State,
        messages: Sequence[Message],
        now: float,
        inbound_msg_id: str | None = None,
        inbox_id: int | None = None,
        timers: Sequence[int] = (),
    ) -> list[Operation] | None:
        """Save the new state, queue the turn's operations (``timers`` first, then the
        replies) and cross the inbox row off, in one transaction (state before reply).

        Returns the queued operations, which the caller may carry out without reading them
        back, or None when older operations of this person are still queued (those go
        first: read the queue)."""
        body = self.vault.encrypt(state.to_json().encode())
        addr = self.vault.encrypt_text(address)
        planned: list[tuple[OperationKind, Any]] = [("timer", t) for t in timers]
        planned += [("send", m) for m in messages]
        rows = [self._operation_row(pid, channel, kind, value, None, now)
                for kind, value in planned]
        queued: list[Operation] = []
        older = False

        def work(db: sqlite3.Connection) -> None:
            nonlocal older
            db.execute(
                "INSERT INTO people (pid, channel, address, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(pid) DO UPDATE SET "
                "address = excluded.address, state = excluded.state, "
                "updated_at = excluded.updated_at, unreachable = 0",
                (pid, channel, addr, body, now, now),
            )
            older = db.execute("SELECT 1 FROM operations WHERE key = ? LIMIT 1",
                               (pid,)).fetchone() is not None
            for (kind, value), row in zip(planned, rows, strict=True):
                row_id = db.execute(OPERATION_INSERT, row).lastrowid
                assert row_id is not None
                queued.append(Operation(row_id, pid, channel, kind, value, 0, row[8], row[6],
                                        row[7]))
            if inbound_msg_id is not None:
                db.execute(
                    "INSERT INTO message_ids (pid, platform_msg_id, at, from_bot) "
                    "VALUES (?, ?, ?, 0)", (pid, inbound_msg_id, now),
                )
            if inbox_id is not None:
                db.execute(INBOX_DONE, (inbox_id,))

        await self._in_one_trip(work)
        return None if older else queued

    def _operation_row(self, key: str, channel: str, kind: OperationKind, value: Any,
                       address: str | None, now: float, not_before: float | None = None,
                       expires_at: float | None = None, lease: bool = True
                       ) -> tuple[Any, ...]:
        # ``lease``: the caller carries these out at once (it holds the person's lock); the
        # periodic sweep (App.deliver_pending) only takes them up if that has not happened
        # in a while (a crash: start-up carries out everything queued anyway). Without this
        # lease, under load the sweep queued behind every busy conversation for rows being
        # sent. Without it, the sweep takes them up as soon as they are due.
        start = now if not_before is None else not_before
        return (key, channel, kind, self.vault.encrypt(_encode_body(kind, value)),
                None if address is None else self.vault.encrypt_text(address), now, start,
                now + DEFAULT_EXPIRY_SECONDS if expires_at is None else expires_at,
                max(start, now + INLINE_LEASE_SECONDS) if lease else start)

    async def enqueue(self, pid: str, channel: str, messages: Sequence[Message],
                      now: float) -> None:
        """Queue replies to a person outside a turn of theirs (an advocate's words)."""
        if not messages:
            return
        rows = [self._operation_row(pid, channel, "send", m, None, now) for m in messages]
        await self._in_one_trip(lambda db: db.executemany(OPERATION_INSERT, rows))

    async def enqueue_to(self, key: str, channel: str, address: str,
                         messages: Sequence[Message], now: float) -> None:
        """Queue messages under ``key`` (not a person: e.g. a desk case) with their own
        encrypted address; carried out in order like a person's replies."""
        rows = [self._operation_row(key, channel, "send", m, address, now, lease=False)
                for m in messages]
        if rows:
            await self._in_one_trip(lambda db: db.executemany(OPERATION_INSERT, rows))

    async def drop_outbox(self, key: str) -> None:
        """Forget every operation queued under ``key``."""
        await self._in_one_trip(
            lambda db: db.execute("DELETE FROM operations WHERE key = ?", (key,)))

    async def mark_unreachable(self, pid: str) -> None:
        """The platform said the person is gone: their queued operations end."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE people SET unreachable = 1 WHERE pid = ?", (pid,))
            dropped = db.execute("DELETE FROM operations WHERE key = ?", (pid,)).rowcount
            if dropped:
                _count(db, "send", "gone", dropped)

        await self._in_one_trip(work)

    async def erase_person(self, pid: str, pending: PendingDelete | None = None,
                           inbox_id: int | None = None) -> str | None:
        """Delete every row of this person, in every table, at once. ``pending``: the chat
        deletes to ask for, kept tied to no one in the same transaction; returns their
        queue key (None: none)."""
        key = anonymous_key() if pending is not None else None
        row = None if pending is None else self._delete_row(key or "", pending)

        def work(db: sqlite3.Connection) -> None:
            for table in PERSON_TABLES:
                db.execute(f"DELETE FROM {table} WHERE pid = ?", (pid,))
            db.execute("DELETE FROM operations WHERE key = ?", (pid,))
            if row is not None:
                db.execute(OPERATION_INSERT, row)
            if inbox_id is not None:
                db.execute(INBOX_DONE, (inbox_id,))

        await self._in_one_trip(work)
        return key

    async def clear_conversation(self, pid: str, now: float,
                                 pending: PendingDelete | None = None) -> str | None:
        """Quick exit: forget the state, queued replies and message ids; keep nothing said.
        ``pending``: the platform deletes about to be asked for, kept (encrypted, tied to no
        person) until they are done, in the same transaction as the forgetting; returns
        their queue key (None: none)."""
        key = anonymous_key() if pending is not None else None
        row = None if pending is None else self._delete_row(key or "", pending)

        def work(db: sqlite3.Connection) -> None:
            if row is not None:
                db.execute(OPERATION_INSERT, row)
            db.execute("UPDATE people SET state = NULL, updated_at = ? WHERE pid = ?",
                       (now, pid))
            db.execute("DELETE FROM operations WHERE key = ?", (pid,))
            db.execute("DELETE FROM message_ids WHERE pid = ?", (pid,))
            # Saved services too: whoever picks up the phone next must not find them.
            db.execute("DELETE FROM saved_services WHERE pid = ?", (pid,))

        await self._in_one_trip(work)
        return key

    def _delete_row(self, key: str, pending: PendingDelete) -> tuple[Any, ...]:
        return self._operation_row(key, pending.channel, "delete", pending.ids,
                                   pending.address, pending.due_at, pending.due_at,
                                   pending.until, lease=False)  # asked for as soon as due

    async def keep_deletes(self, pending: PendingDelete) -> str:
        """Write down deletes to ask for (tied to no person); returns their queue key."""
        key = anonymous_key()
        row = self._delete_row(key, pending)
        await self._in_one_trip(lambda db: db.execute(OPERATION_INSERT, row))
        return key

    # ------------------------------------------------------------- inbox

    async def accept(self, events: Sequence[tuple[str, str, str, RawInbound]], now: float
                     ) -> list[int | None]:
        """Write down events a platform handed us (pid, channel, event key, event), in one
        commit with whatever else is queued. Returns each row's id, or None for an event
        already received (a re-delivery)."""
        rows = [(pid, channel, event, self.vault.encrypt(json.dumps(raw.to_json()).encode()),
                 now) for pid, channel, event, raw in events]
        ids: list[int | None] = []

        def work(db: sqlite3.Connection) -> None:
            ids.clear()
            for row in rows:
                cursor = db.execute(INBOX_INSERT, row)
                ids.append(cursor.lastrowid if cursor.rowcount == 1 else None)

        await self._in_one_trip(work)
        return ids

    async def replay_at_start(self) -> list[InboxRow]:
        """The events to process first at a start: those written down but not processed (a
        crash, a stop, a turn that failed), oldest first. An event that several starts in a
        row found unprocessed may be what kills the bot: after ``MAX_REPLAYS`` it is
        crossed off (counted), so that it cannot keep the bot from ever starting."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE inbox SET replays = replays + 1 WHERE done = 0")
            given_up = db.execute(
                "UPDATE inbox SET pid = '', body = NULL, done = 1 WHERE done = 0 AND "
                "replays > ?", (MAX_REPLAYS,)).rowcount
            if given_up:
                _count(db, "inbox", "given up", given_up)

        await self._in_one_trip(work)
        return await self.unprocessed()

    async def unprocessed(self) -> list[InboxRow]:
        """Events written down but not processed yet, oldest first."""
        rows = await self.db.execute_fetchall(
            "SELECT id, pid, channel, body FROM inbox WHERE done = 0 ORDER BY id")
        return [InboxRow(r[0], r[1], RawInbound.from_json(
                    r[2], json.loads(self.vault.decrypt(r[3])))) for r in rows]

    async def inbox_done(self, inbox_id: int) -> None:
        """Cross an event off without a turn (it could not be processed: never again)."""
        await self._in_one_trip(lambda db: db.execute(INBOX_DONE, (inbox_id,)))

    # ------------------------------------------------------------- operations

    async def operations(self, key: str | None = None, limit: int = 100) -> list[Operation]:
        """Queued operations of ``key`` (or of everyone), in order."""
        query = ("SELECT id, key, channel, kind, body, attempts, next_try_at, not_before, "
                 "expires_at, address FROM operations "
                 + ("WHERE key = ? " if key else "") + "ORDER BY id LIMIT ?")
        params: tuple[Any, ...] = (key, limit) if key else (limit,)
        async with self.db.execute(query, params) as cursor:
            cursor.row_factory = sqlite3.Row
            rows = await cursor.fetchall()
        return [Operation(r["id"], r["key"], r["channel"], r["kind"],
                          _decode_body(r["kind"], self.vault.decrypt(r["body"])),
                          r["attempts"], r["next_try_at"], r["not_before"], r["expires_at"],
                          None if r["address"] is None else self.vault.decrypt_text(r["address"]))
                for r in rows]

    async def keys_with_operations(self) -> list[tuple[str, float]]:
        """Every key with something queued, and when its first operation is due."""
        async with self.db.execute(
            "SELECT key, MAX(next_try_at, not_before) FROM operations o WHERE id = "
            "(SELECT MIN(id) FROM operations WHERE key = o.key)"
        ) as cursor:
            return [(r[0], r[1]) for r in await cursor.fetchall()]

    async def operation_done(self, op: Operation, pid: str | None, platform_ids: Iterable[str],
                             now: float, follow_up: PendingDelete | None = None
                             ) -> str | None:
        """An operation went through: it leaves the queue, and in the same commit the
        platform's ids of what was sent are kept under ``pid`` (for quick exit), and
        ``follow_up`` deletes (a quick exit's neutral reply) are queued tied to no one.
        Returns the follow-up's queue key."""
        ids = [(pid, mid, now) for mid in platform_ids] if pid is not None else []
        key = anonymous_key() if follow_up is not None else None
        row = None if follow_up is None else self._delete_row(key or "", follow_up)

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM operations WHERE id = ?", (op.id,))
            if ids:
                db.executemany("INSERT INTO message_ids (pid, platform_msg_id, at, from_bot) "
                               "VALUES (?, ?, ?, 1)", ids)
            if row is not None:
                db.execute(OPERATION_INSERT, row)

        await self._in_one_trip(work)
        return key

    async def operation_ended(self, op: Operation, outcome: str) -> None:
        """An operation ends undone (rejected for good, expired): it leaves the queue and
        is counted, by kind and outcome only."""
        def work(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM operations WHERE id = ?", (op.id,)).rowcount:
                _count(db, op.kind, outcome, 1)

        await self._in_one_trip(work)

    async def retry_later(self, op_id: int, next_try_at: float,
                          body: tuple[str, ...] | None = None) -> None:
        """Try the operation again at ``next_try_at`` (``body``: the deletes still to do)."""
        encrypted = None if body is None else self.vault.encrypt(_encode_body("delete", body))

        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE operations SET attempts = attempts + 1, next_try_at = ? "
                       "WHERE id = ?", (next_try_at, op_id))
            if encrypted is not None:
                db.execute("UPDATE operations SET body = ? WHERE id = ?", (encrypted, op_id))

        await self._in_one_trip(work)

    async def outcomes(self) -> dict[tuple[str, str], int]:
        """How many operations ended undone, by (kind, outcome)."""
        rows = await self.db.execute_fetchall(
            "SELECT kind, outcome, count FROM operation_outcomes")
        return {(r[0], r[1]): r[2] for r in rows}

    async def count_operations(self, kind: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM operations" + (" WHERE kind = ?" if kind else "")
        rows = list(await self.db.execute_fetchall(query, (kind,) if kind else ()))
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------- message ids

    async def message_ids(self, pid: str, since: float, from_bot_only: bool = False
                          ) -> list[str]:
        query = "SELECT platform_msg_id FROM message_ids WHERE pid = ? AND at >= ?"
        if from_bot_only:
            query += " AND from_bot = 1"
        async with self.db.execute(query + " ORDER BY at", (pid, since)) as cursor:
            return [r[0] for r in await cursor.fetchall()]

    # ------------------------------------------------------------- jobs

    async def add_job(self, pid: str, kind: str, due_at: float, body: dict[str, Any],
                      now: float) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO jobs (pid, kind, due_at, body, created_at) VALUES (?, ?, ?, ?, ?)",
                (pid, kind, due_at, self.vault.encrypt(json.dumps(body).encode()), now),
            )
            return int(cursor.lastrowid or 0)

    async def due_jobs(self, now: float) -> list[Job]:
        async with self.db.execute(
            "SELECT id, pid, kind, due_at, body FROM jobs WHERE due_at <= ? ORDER BY due_at",
            (now,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [Job(r[0], r[1], r[2], r[3], json.loads(self.vault.decrypt(r[4]))) for r in rows]

    async def next_job_due(self) -> float | None:
        async with self.db.execute("SELECT MIN(due_at) FROM jobs") as cursor:
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def delete_job(self, job_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    async def cancel_jobs(self, pid: str, kind: str | None = None) -> None:
        async with self.transaction() as db:
            if kind is None:
                await db.execute("DELETE FROM jobs WHERE pid = ?", (pid,))
            else:
                await db.execute("DELETE FROM jobs WHERE pid = ? AND kind = ?", (pid, kind))

    # ------------------------------------------------------------- retention

    async def purge(self, now: float, conversation_days: float, message_id_hours: float,
                    case_days: float | None = None) -> dict[str, int]:
        """Enforce retention: idle people and old message ids go, and (with ``case_days``)
        advocate-desk cases closed longer ago than that, with their audit events; returns
        counts removed."""
        counts: dict[str, int] = {}
        idle_before = now - conversation_days * 86400
        async with self.transaction() as db:
            # Operations past their time end first (counted), so a queue that the platform
            # never took keeps no one from being forgotten.
            async with db.execute("SELECT kind, COUNT(*) FROM operations WHERE expires_at < ? "
                                  "GROUP BY kind", (now,)) as cursor:
                expired = list(await cursor.fetchall())
            for kind, n in expired:
                await db.execute(
                    "INSERT INTO operation_outcomes (kind, outcome, count) VALUES (?, ?, ?) "
                    "ON CONFLICT(kind, outcome) DO UPDATE SET count = count + excluded.count",
                    (kind, "expired", n))
            cursor = await db.execute("DELETE FROM operations WHERE expires_at < ?", (now,))
            counts["operations"] = cursor.rowcount
            async with db.execute(
                "SELECT pid FROM people WHERE updated_at < ? AND pid NOT IN "
                "(SELECT pid FROM jobs) AND pid NOT IN (SELECT key FROM operations) AND pid NOT IN "
                "(SELECT pid FROM cases WHERE status != 'closed')",  # an advocate may reply
                (idle_before,),
            ) as cursor:
                stale = [r[0] for r in await cursor.fetchall()]
            for pid in stale:
                for table in PERSON_TABLES:
                    await db.execute(f"DELETE FROM {table} WHERE pid = ?", (pid,))
            counts["people"] = len(stale)
            cursor = await db.execute("DELETE FROM message_ids WHERE at < ?",
                                      (now - message_id_hours * 3600,))
            counts["message_ids"] = cursor.rowcount
            # Processed events keep only their keyed hash, against re-delivery, this long.
            cursor = await db.execute("DELETE FROM inbox WHERE done = 1 AND received_at < ?",
                                      (now - message_id_hours * 3600,))
            counts["inbox"] = cursor.rowcount
            if case_days is not None:
                closed_before = now - case_days * 86400
                # Events of the expired cases, and events as old whose case is gone already.
                cursor = await db.execute(
                    "DELETE FROM case_events WHERE case_id IN (SELECT id FROM cases WHERE "
                    "status = 'closed' AND closed_at < ?) OR (at < ? AND case_id NOT IN "
                    "(SELECT id FROM cases))", (closed_before, closed_before))
                counts["case_events"] = cursor.rowcount
                cursor = await db.execute(
                    "DELETE FROM cases WHERE status = 'closed' AND closed_at < ?",
                    (closed_before,))
                counts["cases"] = cursor.rowcount
        return counts

    async def count(self, table: str) -> int:
        async with self.db.execute(f"SELECT COUNT(*) FROM {table}") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
