"""The store: hand-written SQL over one aiosqlite connection in WAL mode."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from helpline.events import Message, RawInbound
from helpline.privacy import Vault
from helpline.state import State
from helpline.store.database import Database
from helpline.store.jobs import Jobs
from helpline.store.schema import Part, Retention
from helpline.store.sql import AsyncConn, Row, SyncConn

INLINE_LEASE_SECONDS = 60.0
OPERATION_INSERT = ("INSERT INTO operations (key, channel, kind, body, address, created_at, "
                    "not_before, expires_at, next_try_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
INBOX_INSERT = ("INSERT OR IGNORE INTO inbox (pid, channel, event, body, received_at) "
                "VALUES (?, ?, ?, ?, ?)")
INBOX_DONE = "UPDATE inbox SET pid = '', body = NULL, done = 1 WHERE id = ?"
# A person's queued operations wait for a time only when held for a safe time (App._hold):
# their next message lets them go at once.
RELEASE_HELD = ("UPDATE operations SET not_before = ?, next_try_at = CASE WHEN next_try_at "
                "< ? THEN next_try_at ELSE ? END WHERE key = ? AND not_before > ?")
Hold = tuple[float, float]  # (not before, dropped after): a message held for a safe time
MAX_REPLAYS = 3  # starts that may find an event unprocessed before it is given up
# How long a queued operation is worth carrying out (a reply a week late is still read;
# the platforms' delete windows are shorter, and set their own).
DEFAULT_EXPIRY_SECONDS = 7 * 86400.0


def _count(db: SyncConn, kind: str, outcome: str, n: int) -> None:
    db.execute("INSERT INTO operation_outcomes (kind, outcome, count) VALUES (?, ?, ?) "
               "ON CONFLICT(kind, outcome) DO UPDATE SET "
               "count = operation_outcomes.count + excluded.count",
               (kind, outcome, n))


PERSON_SELECT = ("SELECT pid, channel, address, state, updated_at, unreachable FROM people "
                 "WHERE pid IN ({marks})")


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
    received_at: float = 0.0


class _RolledBack(Exception):
    """A dry-run purge ends its transaction by this: rolled back, with what it counted."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("dry run")
        self.counts = counts


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


class Store:
    """The core store: people and their conversation state, the inbox, the operations
    queue, message ids; erasing and purging a person across every part's tables. Content
    columns are encrypted and decrypted with the vault."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # How long a queued reply is worth sending ([retention] reply_days; App sets it).
        self.reply_expiry = DEFAULT_EXPIRY_SECONDS
        self.db = database.conn  # for features' own reads (their tables, their queries)
        self.vault = database.vault
        self.jobs = Jobs(database)
        parts = database.parts
        self._person_tables = [t for part in parts for t in part.person_tables]
        self._exit_tables = [t for part in parts for t in part.exit_tables]
        self._keeps = [q for part in parts for q in part.keeps_people]
        self._retention = [part.retention for part in parts if part.retention is not None]

    @classmethod
    async def open(cls, path: Path | str, vault: Vault, verify_key: bool = True,
                   parts: Sequence[Part] | None = None) -> Store:
        """Open (creating or upgrading) the database with every part's tables (``parts``:
        ``helpline.parts.ALL``). A database written with another secret key is refused
        (KeyMismatch) before anything is written; ``verify_key=False`` is for tools that
        touch only the public directory tables, with no key of theirs."""
        if parts is None:
            from helpline.parts import ALL
            parts = ALL
        return cls(await Database.open(path, vault, parts, verify_key))

    async def close(self) -> None:
        await self.database.close()

    def transaction(self) -> AbstractAsyncContextManager[AsyncConn]:
        return self.database.transaction()

    # ------------------------------------------------------------- people

    async def person(self, pid: str) -> PersonRow | None:
        """The person's row, read together with every other person asked for meanwhile."""
        row = await self.database.by_key(PERSON_SELECT, "pid", pid)
        if row is None:
            return None
        state = State()
        if row["state"] is not None:
            state = State.from_json(self.vault.decrypt(row["state"]))
        return PersonRow(row["pid"], row["channel"], self.vault.decrypt_text(row["address"]),
                         state, row["updated_at"], bool(row["unreachable"]))

    async def address(self, pid: str) -> str | None:
        row = await self.database.row("SELECT address FROM people WHERE pid = ?", (pid,))
        return None if row is None else self.vault.decrypt_text(row["address"])

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
        hold: Hold | None = None,
        release_held: bool = False,
    ) -> list[Operation] | None:
        """Save the new state, queue the turn's operations (``timers`` first, then the
        replies) and cross the inbox row off, in one transaction (state before reply).
        ``hold``: the replies wait (a turn the bot started, held for a safe time);
        ``release_held``: the person wrote, so what was held for them goes now, first.

        Returns the queued operations, which the caller may carry out without reading them
        back, or None when older operations of this person are still queued (those go
        first: read the queue)."""
        body = self.vault.encrypt(state.to_json().encode())
        addr = self.vault.encrypt_text(address)
        planned: list[tuple[OperationKind, Any]] = [("timer", t) for t in timers]
        planned += [("send", m) for m in messages]
        start, until = hold if hold is not None else (None, None)
        rows = [self._operation_row(pid, channel, kind, value, None, now,
                                    start if kind == "send" else None,
                                    until if kind == "send" else None)
                for kind, value in planned]
        queued: list[Operation] = []
        older = False

        def work(db: SyncConn) -> None:
            nonlocal older
            db.execute(
                "INSERT INTO people (pid, channel, address, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(pid) DO UPDATE SET "
                "address = excluded.address, state = excluded.state, "
                "updated_at = excluded.updated_at, unreachable = 0",
                (pid, channel, addr, body, now, now),
            )
            if release_held:  # a person's key has a time to wait for only when held
                db.execute(RELEASE_HELD, (now, now, now, pid, now))
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

        await self.database.write(work)
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
                now + self.reply_expiry if expires_at is None else expires_at,
                max(start, now + INLINE_LEASE_SECONDS) if lease else start)

    async def enqueue(self, pid: str, channel: str, messages: Sequence[Message],
                      now: float, hold: Hold | None = None) -> None:
        """Queue replies to a person outside a turn of theirs (an advocate's words);
        ``hold``: they wait for a safe time (not before, and dropped after)."""
        if not messages:
            return
        start, until = hold if hold is not None else (None, None)
        rows = [self._operation_row(pid, channel, "send", m, None, now, start, until)
                for m in messages]
        await self.database.write(lambda db: db.executemany(OPERATION_INSERT, rows))

    async def enqueue_to(self, key: str, channel: str, address: str,
                         messages: Sequence[Message], now: float) -> None:
        """Queue messages under ``key`` (not a person: e.g. a desk case) with their own
        encrypted address; carried out in order like a person's replies."""
        rows = [self._operation_row(key, channel, "send", m, address, now, lease=False)
                for m in messages]
        if rows:
            await self.database.write(lambda db: db.executemany(OPERATION_INSERT, rows))

    async def drop_outbox(self, key: str) -> None:
        """Forget every operation queued under ``key``."""
        await self.database.write(
            lambda db: db.execute("DELETE FROM operations WHERE key = ?", (key,)))

    async def mark_unreachable(self, pid: str) -> None:
        """The platform said the person is gone: their queued operations end."""
        def work(db: SyncConn) -> None:
            db.execute("UPDATE people SET unreachable = 1 WHERE pid = ?", (pid,))
            dropped = db.execute("DELETE FROM operations WHERE key = ?", (pid,)).rowcount
            if dropped:
                _count(db, "send", "gone", dropped)

        await self.database.write(work)

    async def erase_person(self, pid: str, pending: PendingDelete | None = None,
                           inbox_id: int | None = None) -> str | None:
        """Delete every row of this person, in every table, at once. ``pending``: the chat
        deletes to ask for, kept tied to no one in the same transaction; returns their
        queue key (None: none)."""
        key = anonymous_key() if pending is not None else None
        row = None if pending is None else self._delete_row(key or "", pending)

        def work(db: SyncConn) -> None:
            for table in self._person_tables:
                db.execute(f"DELETE FROM {table} WHERE pid = ?", (pid,))
            db.execute("DELETE FROM operations WHERE key = ?", (pid,))
            if row is not None:
                db.execute(OPERATION_INSERT, row)
            if inbox_id is not None:
                db.execute(INBOX_DONE, (inbox_id,))

        await self.database.write(work)
        return key

    async def clear_conversation(self, pid: str, now: float,
                                 pending: PendingDelete | None = None) -> str | None:
        """Quick exit: forget the state, queued replies, message ids and what every part
        clears at an exit (its ``exit_tables``); keep nothing said.
        ``pending``: the platform deletes about to be asked for, kept (encrypted, tied to no
        person) until they are done, in the same transaction as the forgetting; returns
        their queue key (None: none)."""
        key = anonymous_key() if pending is not None else None
        row = None if pending is None else self._delete_row(key or "", pending)

        def work(db: SyncConn) -> None:
            if row is not None:
                db.execute(OPERATION_INSERT, row)
            db.execute("UPDATE people SET state = NULL, updated_at = ? WHERE pid = ?",
                       (now, pid))
            db.execute("DELETE FROM operations WHERE key = ?", (pid,))
            for table in self._exit_tables:  # message ids, saved services...
                db.execute(f"DELETE FROM {table} WHERE pid = ?", (pid,))

        await self.database.write(work)
        return key

    def _delete_row(self, key: str, pending: PendingDelete) -> tuple[Any, ...]:
        return self._operation_row(key, pending.channel, "delete", pending.ids,
                                   pending.address, pending.due_at, pending.due_at,
                                   pending.until, lease=False)  # asked for as soon as due

    async def keep_deletes(self, pending: PendingDelete) -> str:
        """Write down deletes to ask for (tied to no person); returns their queue key."""
        key = anonymous_key()
        row = self._delete_row(key, pending)
        await self.database.write(lambda db: db.execute(OPERATION_INSERT, row))
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

        def work(db: SyncConn) -> None:
            ids.clear()
            for row in rows:
                cursor = db.execute(INBOX_INSERT, row)
                ids.append(cursor.lastrowid if cursor.rowcount == 1 else None)

        await self.database.write_inbox(work)
        return ids

    async def replay_at_start(self) -> list[InboxRow]:
        """The events to process first at a start: those written down but not processed (a
        crash, a stop, a turn that failed), oldest first. An event that several starts in a
        row found unprocessed may be what kills the bot: after ``MAX_REPLAYS`` it is
        crossed off (counted), so that it cannot keep the bot from ever starting."""
        def work(db: SyncConn) -> None:
            # A start counts against an event only when the one before it got as far as
            # processing events (``processing_began``): kills during start-ups in a row
            # tried nothing. And only the first unprocessed event of each person can have
            # been in a turn then (one person's events are processed one at a time): the
            # ones behind it were never tried.
            row = db.execute("SELECT processing FROM last_start WHERE id = 1").fetchone()
            if row is None or row[0]:
                db.execute("UPDATE inbox SET replays = replays + 1 WHERE id IN "
                           "(SELECT MIN(id) FROM inbox WHERE done = 0 GROUP BY pid)")
            db.execute("INSERT INTO last_start (id, processing) VALUES (1, 0) "
                       "ON CONFLICT(id) DO UPDATE SET processing = 0")
            given_up = db.execute(
                "UPDATE inbox SET pid = '', body = NULL, done = 1 WHERE done = 0 AND "
                "replays > ?", (MAX_REPLAYS,)).rowcount
            if given_up:
                _count(db, "inbox", "given up", given_up)

        await self.database.write(work)
        return await self.unprocessed()

    async def processing_began(self) -> None:
        """This start got as far as processing events: at the next start, what this one
        left unprocessed counts as tried once (``replay_at_start``)."""
        await self.database.write(lambda db: db.execute(
            "UPDATE last_start SET processing = 1 WHERE id = 1"))

    async def unprocessed(self) -> list[InboxRow]:
        """Events written down but not processed yet, oldest first."""
        rows = await self.database.rows(
            "SELECT id, pid, channel, body, received_at FROM inbox WHERE done = 0 ORDER BY id")
        return [self._inbox_row(r) for r in rows]

    async def unprocessed_of(self, pid: str) -> list[InboxRow]:
        """One person's (or desk topic's) events not processed yet, oldest first."""
        rows = await self.database.all_by_key(
            "SELECT id, pid, channel, body, received_at FROM inbox "
            "WHERE done = 0 AND pid IN ({marks}) ORDER BY id", "pid", pid)
        return [self._inbox_row(r) for r in rows]

    async def left_waiting(self, before: float, limit: int = 500
                           ) -> list[tuple[str, str, set[int]]]:
        """Who has events written down before ``before`` and not processed yet (with
        several workers: what a worker that stopped or died left behind): pid, channel
        and the events' ids, the oldest events' people first. Nothing is decrypted."""
        rows = await self.database.rows(
            "SELECT id, pid, channel FROM inbox WHERE done = 0 AND received_at < ? "
            "ORDER BY id LIMIT ?", (before, limit))
        found: dict[tuple[str, str], set[int]] = {}
        for r in rows:
            found.setdefault((r["pid"], r["channel"]), set()).add(r["id"])
        return [(pid, channel, ids) for (pid, channel), ids in found.items()]

    def _inbox_row(self, r: Row) -> InboxRow:
        return InboxRow(r["id"], r["pid"], RawInbound.from_json(
            r["channel"], json.loads(self.vault.decrypt(r["body"]))), r["received_at"])

    async def turn_failed(self, inbox_id: int, limit: int = MAX_REPLAYS) -> bool:
        """Several workers serving together: an event's turn failed on one of them, or is
        tried again after the worker that had it died (maybe of it). After ``limit`` such
        tries, on any workers, it is crossed off (counted), so that it does not come back
        for ever. True when it was given up."""
        def work(db: SyncConn) -> bool:
            db.execute("UPDATE inbox SET replays = replays + 1 WHERE id = ?", (inbox_id,))
            given_up = db.execute(
                "UPDATE inbox SET pid = '', body = NULL, done = 1 WHERE id = ? AND done = 0 "
                "AND replays >= ?", (inbox_id, limit)).rowcount
            if given_up:
                _count(db, "inbox", "given up", given_up)
            return bool(given_up)

        return await self.database.write(work)

    async def inbox_done(self, inbox_id: int) -> None:
        """Cross an event off without a turn (it could not be processed: never again)."""
        await self.database.write(lambda db: db.execute(INBOX_DONE, (inbox_id,)))

    # ------------------------------------------------------------- operations

    async def operations(self, key: str | None = None, limit: int = 100) -> list[Operation]:
        """Queued operations of ``key`` (or of everyone), in order."""
        query = ("SELECT id, key, channel, kind, body, attempts, next_try_at, not_before, "
                 "expires_at, address FROM operations "
                 + ("WHERE key = ? " if key else "") + "ORDER BY id LIMIT ?")
        params: tuple[Any, ...] = (key, limit) if key else (limit,)
        rows = await self.database.rows(query, params)
        return [Operation(r["id"], r["key"], r["channel"], r["kind"],
                          _decode_body(r["kind"], self.vault.decrypt(r["body"])),
                          r["attempts"], r["next_try_at"], r["not_before"], r["expires_at"],
                          None if r["address"] is None else self.vault.decrypt_text(r["address"]))
                for r in rows]

    async def keys_with_operations(self) -> list[tuple[str, float]]:
        """Every key with something queued, and when its first operation is due."""
        rows = await self.database.rows(
            "SELECT key, CASE WHEN next_try_at > not_before THEN next_try_at ELSE not_before "
            "END AS due FROM operations o WHERE id = "
            "(SELECT MIN(id) FROM operations WHERE key = o.key)")
        return [(r["key"], r["due"]) for r in rows]

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

        def work(db: SyncConn) -> None:
            db.execute("DELETE FROM operations WHERE id = ?", (op.id,))
            if ids:
                db.executemany("INSERT INTO message_ids (pid, platform_msg_id, at, from_bot) "
                               "VALUES (?, ?, ?, 1)", ids)
            if row is not None:
                db.execute(OPERATION_INSERT, row)

        await self.database.write(work)
        return key

    async def operation_ended(self, op: Operation, outcome: str) -> None:
        """An operation ends undone (rejected for good, expired): it leaves the queue and
        is counted, by kind and outcome only."""
        def work(db: SyncConn) -> None:
            if db.execute("DELETE FROM operations WHERE id = ?", (op.id,)).rowcount:
                _count(db, op.kind, outcome, 1)

        await self.database.write(work)

    async def retry_later(self, op_id: int, next_try_at: float,
                          body: tuple[str, ...] | None = None) -> None:
        """Try the operation again at ``next_try_at`` (``body``: the deletes still to do)."""
        encrypted = None if body is None else self.vault.encrypt(_encode_body("delete", body))

        def work(db: SyncConn) -> None:
            db.execute("UPDATE operations SET attempts = attempts + 1, next_try_at = ? "
                       "WHERE id = ?", (next_try_at, op_id))
            if encrypted is not None:
                db.execute("UPDATE operations SET body = ? WHERE id = ?", (encrypted, op_id))

        await self.database.write(work)

    async def outcomes(self) -> dict[tuple[str, str], int]:
        """How many operations ended undone, by (kind, outcome)."""
        rows = await self.database.rows("SELECT kind, outcome, count FROM operation_outcomes")
        return {(r["kind"], r["outcome"]): r["count"] for r in rows}

    async def count_operations(self, kind: str | None = None) -> int:
        query = "SELECT COUNT(*) AS n FROM operations" + (" WHERE kind = ?" if kind else "")
        row = await self.database.row(query, (kind,) if kind else ())
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------- message ids

    async def message_ids(self, pid: str, since: float, from_bot_only: bool = False
                          ) -> list[str]:
        query = "SELECT platform_msg_id FROM message_ids WHERE pid = ? AND at >= ?"
        if from_bot_only:
            query += " AND from_bot = 1"
        rows = await self.database.rows(query + " ORDER BY at", (pid, since))
        return [r["platform_msg_id"] for r in rows]

    # ------------------------------------------------------------- retention

    async def purge(self, now: float, conversation_days: float, message_id_hours: float,
                    settings: dict[str, float] | None = None, dry_run: bool = False
                    ) -> dict[str, int]:
        """Enforce retention: idle people (unless a part keeps them: a booked job, an open
        case) and old message ids go, and each part removes what its own period says
        (``settings``: every retention setting by name, e.g. ``case_days``); returns
        counts removed. ``dry_run``: the same purge, rolled back (what it would remove)."""
        await self.database.flushed()  # it sees what was queued before it (counts)
        try:
            return await self._purge(Retention(now, conversation_days, message_id_hours,
                                               settings or {}), dry_run)
        except _RolledBack as done:
            return done.counts

    async def _purge(self, retention: Retention, dry_run: bool) -> dict[str, int]:
        now, conversation_days = retention.now, retention.conversation_days
        message_id_hours = retention.message_id_hours
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
                    "ON CONFLICT(kind, outcome) DO UPDATE SET "
               "count = operation_outcomes.count + excluded.count",
                    (kind, "expired", n))
            cursor = await db.execute("DELETE FROM operations WHERE expires_at < ?", (now,))
            counts["operations"] = cursor.rowcount
            kept = "".join(f" AND pid NOT IN ({query})" for query in self._keeps)
            async with db.execute(
                "SELECT pid FROM people WHERE updated_at < ? AND pid NOT IN "
                f"(SELECT key FROM operations){kept}", (idle_before,)) as cursor:
                stale = [r[0] for r in await cursor.fetchall()]
            for pid in stale:
                for table in self._person_tables:
                    await db.execute(f"DELETE FROM {table} WHERE pid = ?", (pid,))
            counts["people"] = len(stale)
            cursor = await db.execute("DELETE FROM message_ids WHERE at < ?",
                                      (now - message_id_hours * 3600,))
            counts["message_ids"] = cursor.rowcount
            # Processed events keep only their keyed hash, against re-delivery, this long.
            cursor = await db.execute("DELETE FROM inbox WHERE done = 1 AND received_at < ?",
                                      (now - message_id_hours * 3600,))
            counts["inbox"] = cursor.rowcount
            for hook in self._retention:
                counts.update(await hook(db, retention))
            if dry_run:
                raise _RolledBack(counts)  # the transaction is rolled back
        return counts

    async def count(self, table: str) -> int:
        async with self.db.execute(f"SELECT COUNT(*) FROM {table}") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
