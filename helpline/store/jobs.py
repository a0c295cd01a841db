"""Durable timed work (a check-in, a desk reminder): the ``jobs`` table and its repository.

APScheduler's own job stores are not used: nothing in memory may be the only copy. A
person with a job booked is not purged as idle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from helpline.store.database import Database
from helpline.store.schema import Migration, Part, reencrypt_fernet

ENCRYPTED = (("jobs", "body"),)

MIGRATIONS: list[Migration] = [
    Migration(
        1, "jobs",
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid TEXT NOT NULL,
            kind TEXT NOT NULL,
            due_at REAL NOT NULL,
            body BLOB NOT NULL,              -- encrypted job details (JSON)
            created_at REAL NOT NULL
        );
        CREATE INDEX jobs_due ON jobs(due_at);
        CREATE INDEX jobs_pid ON jobs(pid);
        """,
        shipped_as=1,
    ),
    Migration(2, "values still in the Fernet form written again in the AES-GCM form", "",
              reencrypt_fernet(ENCRYPTED), shipped_as=9),
]

JOBS = Part("jobs", MIGRATIONS, person_tables=("jobs",), keeps_people=("SELECT pid FROM jobs",),
            encrypted=ENCRYPTED)


# A job kind: erase the person, as "delete my data" does, on a request made to staff
# (``helpline erase HANDLE``); the running bot carries it out under the person's lock.
ERASE_ON_REQUEST = "erase"


@dataclass(frozen=True)
class Job:
    id: int
    pid: str
    kind: str
    due_at: float
    body: dict[str, Any]


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, pid: str, kind: str, due_at: float, body: dict[str, Any],
                  now: float) -> int:
        encrypted = self.db.vault.encrypt(json.dumps(body).encode())
        return await self.db.write(lambda db: int(db.execute(
            "INSERT INTO jobs (pid, kind, due_at, body, created_at) VALUES (?, ?, ?, ?, ?)",
            (pid, kind, due_at, encrypted, now)).lastrowid or 0))

    async def due(self, now: float) -> list[Job]:
        rows = await self.db.rows("SELECT id, pid, kind, due_at, body FROM jobs "
                                  "WHERE due_at <= ? ORDER BY due_at", (now,))
        return [Job(r["id"], r["pid"], r["kind"], r["due_at"],
                    json.loads(self.db.vault.decrypt(r["body"]))) for r in rows]

    async def delete(self, job_id: int) -> bool:
        """Take the job off the list; False when it was gone already (another worker, or
        the one before a takeover, ran it): it is this caller's to run only when True."""
        return bool(await self.db.write(lambda db: db.execute(
            "DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount))

    async def cancel(self, pid: str, kind: str | None = None) -> None:
        """Drop the person's jobs of ``kind``, or all of their own (a check-in they cancel,
        a quick exit). An erasure asked of staff is not theirs to cancel: it stays."""
        if kind is None:
            await self.db.write(lambda db: db.execute(
                "DELETE FROM jobs WHERE pid = ? AND kind != ?", (pid, ERASE_ON_REQUEST)))
        else:
            await self.db.write(lambda db: db.execute(
                "DELETE FROM jobs WHERE pid = ? AND kind = ?", (pid, kind)))
