"""Cases and their audit log, in the app's store.

A case row holds the person's pseudonym only while the case is open; closing it forgets the
pseudonym and the summary, so what stays (handle, kind of channel, advocate id, times and
the audit events) says nothing about who talked or what was said. The retention purge
deletes closed cases and their audit events ``retention.case_days`` after closing (the
tables and that rule: ``helpline.handoff.schema``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from helpline.store import Store
from helpline.store.jobs import ERASE_ON_REQUEST
from helpline.store.sql import Row

# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a handle read out over a phone is not misheard.
HANDLE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
HANDLE_LENGTH = 4
OPEN = ("waiting", "claimed")

Status = Literal["waiting", "claimed", "closed"]
_COLUMNS = ("id, pid, channel, handle, status, advocate, topic, card, summary, locale, later, "
            "opened_at, updated_at, claimed_at, closed_at, timeout_at")


@dataclass(frozen=True)
class Case:
    id: int
    pid: str
    channel: str
    handle: str
    status: Status
    advocate: str | None
    topic: str | None
    card: str | None
    summary: dict[str, Any]
    locale: str | None
    later: str | None  # the offline question: "asked" while unanswered, "yes" after a yes
    opened_at: float
    updated_at: float
    claimed_at: float | None
    closed_at: float | None
    timeout_at: float | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


def new_handle() -> str:
    return "".join(secrets.choice(HANDLE_ALPHABET) for _ in range(HANDLE_LENGTH))


class Cases:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _row(self, r: Row) -> Case:
        fields = dict(r)  # by column name
        summary = fields.pop("summary")
        return Case(**fields, summary={} if summary is None else json.loads(
            self.store.vault.decrypt(summary)))

    async def _one(self, where: str, params: tuple[Any, ...]) -> Case | None:
        row = await self.store.database.row(
            f"SELECT {_COLUMNS} FROM cases WHERE {where} ORDER BY id DESC LIMIT 1", params)
        return None if row is None else self._row(row)

    async def get(self, case_id: int) -> Case | None:
        return await self._one("id = ?", (case_id,))

    async def by_handle(self, handle: str) -> Case | None:
        return await self._one("handle = ?", (handle.strip().upper(),))

    async def request_erasure(self, case: Case, by: str, now: float) -> int:
        """A request made to staff to erase this case's person: written down (who asked,
        for which handle, when; kept like the cases' own audit) and queued as a job that
        the running bot carries out (helpline.store.jobs.ERASE_ON_REQUEST). Returns the
        audit entry's id."""
        async with self.store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO staff_erasures (handle, requested_by, requested_at) "
                "VALUES (?, ?, ?)", (case.handle, by, now))
            entry = int(cursor.lastrowid or 0)
        await self.store.jobs.add(case.pid, ERASE_ON_REQUEST, now, {"request": entry}, now)
        return entry

    async def open_for(self, pid: str) -> Case | None:
        return await self._one("pid = ? AND status IN ('waiting', 'claimed')", (pid,))

    async def by_topic(self, topic: str) -> Case | None:
        return await self._one("topic = ?", (topic,))

    async def waiting(self) -> list[Case]:
        return [self._row(r) for r in await self.store.database.rows(
            f"SELECT {_COLUMNS} FROM cases WHERE status = 'waiting' ORDER BY id")]

    async def place_in_queue(self, case: Case) -> int:
        row = await self.store.database.row(
            "SELECT COUNT(*) AS n FROM cases WHERE status = 'waiting' AND id <= ? "
            "AND (later IS NULL OR later = 'yes')", (case.id,))
        return int(row["n"]) if row else 1

    async def open(self, pid: str, channel: str, summary: dict[str, Any], locale: str | None,
                   now: float, later: str | None = None) -> Case:
        body = self.store.vault.encrypt(json.dumps(summary).encode())
        async with self.store.transaction() as db:
            for _ in range(50):
                handle = new_handle()
                async with db.execute("SELECT 1 FROM cases WHERE handle = ?",
                                      (handle,)) as cursor:
                    if await cursor.fetchone() is None:
                        break
            else:  # pragma: no cover - 390625 handles
                raise RuntimeError("no free case handle")
            cursor = await db.execute(
                "INSERT INTO cases (pid, channel, handle, status, summary, locale, later, "
                "opened_at, updated_at) VALUES (?, ?, ?, 'waiting', ?, ?, ?, ?, ?)",
                (pid, channel, handle, body, locale, later, now, now))
            case_id = int(cursor.lastrowid or 0)
            await db.execute("INSERT INTO case_events (case_id, event, actor, at) "
                             "VALUES (?, 'opened', 'person', ?)", (case_id, now))
        case = await self.get(case_id)
        assert case is not None
        return case

    async def update(self, case: Case, event: str | None, actor: str, now: float,
                     when_status: tuple[str, ...] = OPEN, **fields: Any) -> bool:
        """Change fields (only while the case's status is one of ``when_status``) and log
        ``event``. Returns False when the case had moved on (someone else was faster)."""
        if fields.get("status") == "closed":
            fields.update(pid="", summary=None, closed_at=now)
        sets = ", ".join(f"{name} = ?" for name in fields)
        marks = ",".join("?" * len(when_status))
        async with self.store.transaction() as db:
            cursor = await db.execute(
                f"UPDATE cases SET {sets}{', ' if sets else ''}updated_at = ? "
                f"WHERE id = ? AND status IN ({marks})",
                (*fields.values(), now, case.id, *when_status))
            if cursor.rowcount != 1:
                return False
            if event is not None:
                await db.execute("INSERT INTO case_events (case_id, event, actor, at) "
                                 "VALUES (?, ?, ?, ?)", (case.id, event, actor, now))
        return True

    async def events(self, case_id: int) -> list[tuple[str, str, float]]:
        return [(r["event"], r["actor"], r["at"]) for r in await self.store.database.rows(
            "SELECT event, actor, at FROM case_events WHERE case_id = ? ORDER BY id",
            (case_id,))]
