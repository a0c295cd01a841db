"""The store: hand-written SQL over one aiosqlite connection in WAL mode."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from helpline.events import Message
from helpline.flow.state import State
from helpline.privacy import Vault, private_database
from helpline.store.migrations import PERSON_TABLES, upgrade

INLINE_LEASE_SECONDS = 60.0
OUTBOX_INSERT = ("INSERT INTO outbox (pid, channel, body, created_at, next_try_at) "
                 "VALUES (?, ?, ?, ?, ?)")


def _run_batch(conn: sqlite3.Connection,
               works: Sequence[Callable[[sqlite3.Connection], None]]) -> list[Exception | None]:
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


@dataclass(frozen=True)
class OutboxItem:
    id: int
    pid: str
    channel: str
    message: Message
    attempts: int
    next_try_at: float
    # Set for rows not tied to a person (the advocate desk): where to send, decrypted.
    address: str | None = None


INSERT_PENDING = ("INSERT INTO pending_deletes (channel, address, ids, until, due_at) "
                  "VALUES (?, ?, ?, ?, ?)")


@dataclass(frozen=True)
class PendingDelete:
    """Platform deletes a quick exit asked for that are not done yet."""

    channel: str
    address: str
    ids: tuple[str, ...]
    until: float  # the platform's delete window ends: give up
    id: int = 0
    due_at: float = 0.0  # not asked for before (a quick exit's neutral reply stays a moment)


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
        self._batch: list[tuple[Callable[[sqlite3.Connection], None], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._reads: dict[str, list[asyncio.Future[tuple[Any, ...] | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path | str, vault: Vault) -> Store:
        if str(path) != ":memory:":
            private_database(Path(path))  # 0600 (and so its -wal and -shm), folder 0700
        db = await aiosqlite.connect(str(path), isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten, not left
        await db.execute("PRAGMA busy_timeout=5000")
        await upgrade(db)
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

    async def _in_one_trip(self, work: Callable[[sqlite3.Connection], None]) -> None:
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
    ) -> list[OutboxItem] | None:
        """Save the new state and queue the replies in one transaction (state before reply).

        Returns the queued replies, which the caller may send without reading them back,
        or None when older replies of this person are still queued (send those first:
        read the outbox)."""
        body = self.vault.encrypt(state.to_json().encode())
        addr = self.vault.encrypt_text(address)
        replies = self._outbox_rows(pid, channel, messages, now)
        queued: list[OutboxItem] = []
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
            older = db.execute("SELECT 1 FROM outbox WHERE pid = ? LIMIT 1",
                               (pid,)).fetchone() is not None
            for message, row in zip(messages, replies, strict=True):
                row_id = db.execute(OUTBOX_INSERT, row).lastrowid
                assert row_id is not None
                queued.append(OutboxItem(row_id, pid, channel, message, 0, row[4]))
            if inbound_msg_id is not None:
                db.execute(
                    "INSERT INTO message_ids (pid, platform_msg_id, at, from_bot) "
                    "VALUES (?, ?, ?, 0)", (pid, inbound_msg_id, now),
                )

        await self._in_one_trip(work)
        return None if older else queued

    async def enqueue(self, pid: str, channel: str, messages: Sequence[Message],
                      now: float) -> None:
        async with self.transaction() as db:
            await self._enqueue(db, pid, channel, messages, now)

    async def _enqueue(self, db: aiosqlite.Connection, pid: str, channel: str,
                       messages: Sequence[Message], now: float) -> None:
        if messages:  # one trip to the database thread for all of them
            await db.executemany(OUTBOX_INSERT, self._outbox_rows(pid, channel, messages, now))

    def _outbox_rows(self, pid: str, channel: str, messages: Sequence[Message],
                     now: float) -> list[tuple[Any, ...]]:
        # The caller sends these at once (it holds the person's lock); the periodic sweep
        # (App.deliver_pending) only takes them up if that has not happened in a while
        # (a crash: start-up sends everything queued anyway). Without this lease, under
        # load the sweep queued behind every busy conversation for rows being sent.
        due = now + INLINE_LEASE_SECONDS
        return [(pid, channel, self.vault.encrypt(json.dumps(message.to_json()).encode()),
                 now, due) for message in messages]

    async def enqueue_to(self, key: str, channel: str, address: str,
                         messages: Sequence[Message], now: float) -> None:
        """Queue messages under ``key`` (not a person: e.g. a desk case) with their own
        encrypted address; delivered in order like a person's replies."""
        async with self.transaction() as db:
            for message in messages:
                await db.execute(
                    "INSERT INTO outbox (pid, channel, body, created_at, next_try_at, address) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, channel, self.vault.encrypt(json.dumps(message.to_json()).encode()),
                     now, now, self.vault.encrypt_text(address)),
                )

    async def drop_outbox(self, key: str) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM outbox WHERE pid = ?", (key,))

    async def mark_unreachable(self, pid: str) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE people SET unreachable = 1 WHERE pid = ?", (pid,))
            await db.execute("DELETE FROM outbox WHERE pid = ?", (pid,))

    async def erase_person(self, pid: str) -> None:
        """Delete every row of this person, in every table, at once."""
        async with self.transaction() as db:
            for table in PERSON_TABLES:
                await db.execute(f"DELETE FROM {table} WHERE pid = ?", (pid,))

    async def clear_conversation(self, pid: str, now: float,
                                 pending: PendingDelete | None = None) -> int:
        """Quick exit: forget the state, pending replies and message ids; keep nothing said.
        ``pending``: the platform deletes about to be asked for, kept (encrypted, tied to no
        person) until they are done, in the same transaction as the forgetting."""
        row_id = 0
        async with self.transaction() as db:
            if pending is not None:
                cursor = await db.execute(INSERT_PENDING, self._pending_values(pending))
                row_id = cursor.lastrowid or 0
            await db.execute("UPDATE people SET state = NULL, updated_at = ? WHERE pid = ?",
                             (now, pid))
            await db.execute("DELETE FROM outbox WHERE pid = ?", (pid,))
            await db.execute("DELETE FROM message_ids WHERE pid = ?", (pid,))
            # Saved services too: whoever picks up the phone next must not find them.
            await db.execute("DELETE FROM saved_services WHERE pid = ?", (pid,))
        return row_id

    # ------------------------------------------------------------- pending deletes

    def _pending_values(self, pending: PendingDelete) -> tuple[object, ...]:
        return (pending.channel, self.vault.encrypt_text(pending.address),
                self.vault.encrypt(json.dumps(list(pending.ids)).encode()), pending.until,
                pending.due_at)

    async def keep_deletes(self, pending: PendingDelete) -> int:
        """Write down deletes to ask for (tied to no person); returns the row id."""
        async with self.transaction() as db:
            cursor = await db.execute(INSERT_PENDING, self._pending_values(pending))
            return cursor.lastrowid or 0

    async def pending_deletes(self) -> list[PendingDelete]:
        rows = await self.db.execute_fetchall(
            "SELECT id, channel, address, ids, until, due_at FROM pending_deletes ORDER BY id")
        return [PendingDelete(r[1], self.vault.decrypt_text(r[2]),
                              tuple(json.loads(self.vault.decrypt(r[3]))), r[4], r[0], r[5])
                for r in rows]

    async def deletes_left(self, row_id: int, ids: Sequence[str]) -> None:
        """What is still to delete of a pending row (nothing: the row goes)."""
        async with self.transaction() as db:
            if ids:
                await db.execute("UPDATE pending_deletes SET ids = ? WHERE id = ?",
                                 (self.vault.encrypt(json.dumps(list(ids)).encode()), row_id))
            else:
                await db.execute("DELETE FROM pending_deletes WHERE id = ?", (row_id,))

    # ------------------------------------------------------------- outbox

    async def pending(self, pid: str | None = None, limit: int = 100) -> list[OutboxItem]:
        query = ("SELECT id, pid, channel, body, attempts, next_try_at, address FROM outbox "
                 + ("WHERE pid = ? " if pid else "") + "ORDER BY id LIMIT ?")
        params: tuple[Any, ...] = (pid, limit) if pid else (limit,)
        rows = await self.db.execute_fetchall(query, params)
        return [
            OutboxItem(r[0], r[1], r[2], Message.from_json(json.loads(self.vault.decrypt(r[3]))),
                       r[4], r[5], None if r[6] is None else self.vault.decrypt_text(r[6]))
            for r in rows
        ]

    async def pids_with_pending(self) -> list[tuple[str, str, float]]:
        async with self.db.execute(
            "SELECT pid, channel, MIN(next_try_at) FROM outbox GROUP BY pid, channel"
        ) as cursor:
            return [(r[0], r[1], r[2]) for r in await cursor.fetchall()]

    async def delivered(self, item_id: int, pid: str, platform_ids: Iterable[str],
                        now: float, pending: PendingDelete | None = None) -> int:
        """A queued message went out. ``pending``: deletes to ask for later of what was just
        sent (a quick exit's neutral reply), kept in the same commit; returns their row id
        (0: none)."""
        ids = [(pid, mid, now) for mid in platform_ids]
        values = None if pending is None else self._pending_values(pending)
        row_id = 0

        def work(db: sqlite3.Connection) -> None:
            nonlocal row_id
            db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
            db.executemany("INSERT INTO message_ids (pid, platform_msg_id, at, from_bot) "
                           "VALUES (?, ?, ?, 1)", ids)
            if values is not None:
                row_id = db.execute(INSERT_PENDING, values).lastrowid or 0

        await self._in_one_trip(work)
        return row_id

    async def retry_later(self, item_id: int, next_try_at: float) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_try_at = ? WHERE id = ?",
                (next_try_at, item_id),
            )

    async def drop_outbox_item(self, item_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

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
            async with db.execute(
                "SELECT pid FROM people WHERE updated_at < ? AND pid NOT IN "
                "(SELECT pid FROM jobs) AND pid NOT IN (SELECT pid FROM outbox) AND pid NOT IN "
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
            cursor = await db.execute("DELETE FROM pending_deletes WHERE until < ?", (now,))
            counts["pending_deletes"] = cursor.rowcount
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
