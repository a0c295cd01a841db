"""Numbered schema upgrades, applied in order and recorded in ``schema_version``.

Append new migrations at the end with the next number; never edit one that has shipped.
Nothing here stores a platform id, a name or message text in readable form: ``pid`` is a
keyed pseudonym, and every ``BLOB`` holding content is encrypted by the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "people, conversation state, outbox, message ids, jobs",
        """
        CREATE TABLE people (
            pid TEXT PRIMARY KEY,            -- HMAC pseudonym of channel + platform id
            channel TEXT NOT NULL,
            address BLOB NOT NULL,           -- encrypted reply address
            state BLOB,                      -- encrypted conversation state (JSON)
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            unreachable INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX people_updated ON people(updated_at);

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid TEXT NOT NULL,
            channel TEXT NOT NULL,
            body BLOB NOT NULL,              -- encrypted message (JSON)
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_at REAL NOT NULL
        );
        CREATE INDEX outbox_pid ON outbox(pid, id);

        CREATE TABLE message_ids (
            pid TEXT NOT NULL,
            platform_msg_id TEXT NOT NULL,   -- the platform's id of a message in the chat
            at REAL NOT NULL,
            from_bot INTEGER NOT NULL
        );
        CREATE INDEX message_ids_pid ON message_ids(pid, at);

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
    ),
]

# Tables with a ``pid`` column: "delete my data" clears a person from every one of them.
PERSON_TABLES: list[str] = ["people", "outbox", "message_ids", "jobs"]


async def current_version(db: aiosqlite.Connection) -> int:
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT MAX(version) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def upgrade(db: aiosqlite.Connection) -> int:
    """Apply every migration newer than the database; returns the version reached."""
    version = await current_version(db)
    await db.commit()
    known = max(m.version for m in MIGRATIONS)
    if version > known:
        raise RuntimeError(
            f"the database is at schema version {version}, newer than this helpline ({known}); "
            "upgrade helpline or restore a matching backup"
        )
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        await db.execute("BEGIN")
        try:
            for statement in _statements(migration.sql):
                await db.execute(statement)
            await db.execute("INSERT INTO schema_version (version) VALUES (?)",
                             (migration.version,))
            await db.commit()
        except Exception:
            await db.rollback()
            raise
        version = migration.version
    return version


def _statements(sql: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
