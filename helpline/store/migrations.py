"""Numbered schema upgrades, applied in order and recorded in ``schema_version``.

Append new migrations at the end with the next number; never edit one that has shipped.
Nothing here stores a platform id, a name or message text in readable form: ``pid`` is a
keyed pseudonym, and every ``BLOB`` holding content is encrypted by the app.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosqlite

from helpline.errors import HelplineError
from helpline.privacy import Vault
from helpline.resources.schema import RANKING_SQL

# A migration's Python step: runs after its SQL, in the same transaction, with the vault
# (None when the caller has no checked key). Returns False when it cannot be done without
# the key: the upgrade then stops there, undone, until a start that has it.
Step = Callable[[aiosqlite.Connection, Vault | None], Awaitable[bool]]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str
    step: Step | None = None


# Every column that holds an encrypted value (see privacy.Vault).
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("people", "address"), ("people", "state"), ("operations", "body"),
    ("operations", "address"), ("jobs", "body"), ("saved_services", "service"),
    ("cases", "summary"), ("inbox", "body"))


async def reencrypt_fernet(db: aiosqlite.Connection, vault: Vault | None) -> bool:
    """Values still in the Fernet form of the first releases (they begin with ``gAAAAA``)
    are written again in the current AES-GCM form (without the key: only when there are
    none)."""
    for table, column in ENCRYPTED_COLUMNS:
        rows = await db.execute_fetchall(
            f"SELECT rowid, {column} FROM {table} "
            f"WHERE substr({column}, 1, 6) = CAST('gAAAAA' AS BLOB)")
        if rows and vault is None:
            return False
        if vault is not None:
            await db.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                                 [(vault.encrypt(vault.decrypt(bytes(value))), rowid)
                                  for rowid, value in rows])
    return True


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
    Migration(
        2,
        "service directory (public data), openings, saved services",
        """
        CREATE TABLE directory_sources (
            source TEXT PRIMARY KEY,         -- where an import came from (a path or a name)
            format TEXT NOT NULL,
            imported_at REAL NOT NULL,
            services INTEGER NOT NULL,
            fictional INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE services (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL REFERENCES directory_sources(source) ON DELETE CASCADE,
            name TEXT NOT NULL,
            data TEXT NOT NULL               -- the service record as JSON (public directory data)
        );
        CREATE INDEX services_source ON services(source);

        CREATE TABLE service_capacity (
            service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
            unit TEXT NOT NULL,
            available INTEGER NOT NULL,
            maximum INTEGER,
            description TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (service_id, unit)
        );

        CREATE TABLE directory_places (
            source TEXT NOT NULL REFERENCES directory_sources(source) ON DELETE CASCADE,
            place TEXT NOT NULL,             -- a town, region or postcode of the directory
            within TEXT NOT NULL             -- a larger area it lies in
        );
        CREATE INDEX directory_places_source ON directory_places(source);

        CREATE TABLE saved_services (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid TEXT NOT NULL,
            service BLOB NOT NULL            -- encrypted service id
        );
        CREATE INDEX saved_services_pid ON saved_services(pid);
        """,
    ),
    Migration(
        3,
        "advocate desk: cases, case audit log, outbox rows with their own address",
        """
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid TEXT NOT NULL,               -- the person's pseudonym; '' once closed
            channel TEXT NOT NULL,           -- kind of channel (telegram, signal)
            handle TEXT NOT NULL UNIQUE,     -- neutral case handle shown to both sides
            status TEXT NOT NULL,            -- waiting, claimed, closed
            advocate TEXT,                   -- staff Telegram user id of the claimer
            topic TEXT,                      -- desk topic (forum thread) id
            card TEXT,                       -- desk message id of the case card
            summary BLOB,                    -- encrypted JSON: only what the person shared
            locale TEXT,
            later TEXT,                      -- offline answer: asked, yes
            opened_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            claimed_at REAL,
            closed_at REAL,
            timeout_at REAL                  -- when the unclaimed notice was sent
        );
        CREATE INDEX cases_pid ON cases(pid, status);
        CREATE INDEX cases_topic ON cases(topic);

        CREATE TABLE case_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id INTEGER NOT NULL,
            event TEXT NOT NULL,             -- opened, claimed, unclaimed, transferred, ...
            actor TEXT NOT NULL,             -- person, system, or an advocate's user id
            at REAL NOT NULL                 -- never any content
        );
        CREATE INDEX case_events_case ON case_events(case_id, id);

        ALTER TABLE outbox ADD COLUMN address BLOB;  -- encrypted; rows not tied to a person
        """,
    ),
    Migration(
        4,
        "quick-exit deletes the platform has not done yet, kept across restarts",
        """
        CREATE TABLE pending_deletes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            channel TEXT NOT NULL,
            address BLOB NOT NULL,           -- encrypted
            ids BLOB NOT NULL,               -- encrypted JSON list of platform message ids
            until REAL NOT NULL              -- past the platform's delete window: dropped
        );
        """,
    ),
    Migration(
        5,
        "a quick exit's neutral reply: its delete is kept too, asked for after a moment",
        """
        ALTER TABLE pending_deletes ADD COLUMN due_at REAL NOT NULL DEFAULT 0;  -- not before
        """,
    ),
    Migration(
        6,
        "a counter every change to the directory moves, so lookups re-read it only then",
        """
        CREATE TABLE directory_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );
        INSERT INTO directory_version (id, version) VALUES (1, 0);
        CREATE TRIGGER services_insert_counts AFTER INSERT ON services
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER services_update_counts AFTER UPDATE ON services
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER services_delete_counts AFTER DELETE ON services
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER service_capacity_insert_counts AFTER INSERT ON service_capacity
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER service_capacity_update_counts AFTER UPDATE ON service_capacity
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER service_capacity_delete_counts AFTER DELETE ON service_capacity
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER directory_places_insert_counts AFTER INSERT ON directory_places
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER directory_places_update_counts AFTER UPDATE ON directory_places
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER directory_places_delete_counts AFTER DELETE ON directory_places
        BEGIN UPDATE directory_version SET version = version + 1; END;
        """,
    ),
    Migration(
        7,
        "a durable inbox; one queue of platform operations (replaces outbox and pending "
        "deletes); counts of operations that ended undone; the key check value",
        """
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid TEXT NOT NULL,               -- the person's pseudonym; '' once processed
            channel TEXT NOT NULL,
            event TEXT NOT NULL,             -- keyed hash of the platform's id of the event
            body BLOB,                       -- encrypted event; NULL once processed
            received_at REAL NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            replays INTEGER NOT NULL DEFAULT 0  -- starts that found it not yet processed
        );
        CREATE UNIQUE INDEX inbox_event ON inbox(channel, event);
        CREATE INDEX inbox_pending ON inbox(done, id);

        CREATE TABLE operations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,               -- a pid, a desk case, or 'x:...' (tied to no one)
            channel TEXT NOT NULL,
            kind TEXT NOT NULL,              -- send, delete, timer
            body BLOB NOT NULL,              -- encrypted JSON (a message, ids, seconds)
            address BLOB,                    -- encrypted; NULL: the person's own address
            created_at REAL NOT NULL,
            not_before REAL NOT NULL,
            expires_at REAL,                 -- NULL: never
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_at REAL NOT NULL
        );
        CREATE INDEX operations_key ON operations(key, id);
        INSERT INTO operations (key, channel, kind, body, address, created_at, not_before,
                                expires_at, attempts, next_try_at)
            SELECT pid, channel, 'send', body, address, created_at, created_at, NULL,
                   attempts, next_try_at FROM outbox ORDER BY id;
        INSERT INTO operations (key, channel, kind, body, address, created_at, not_before,
                                expires_at, attempts, next_try_at)
            SELECT 'x:kept' || id, channel, 'delete', ids, address, due_at, due_at, until,
                   0, due_at FROM pending_deletes ORDER BY id;
        DROP TABLE outbox;
        DROP TABLE pending_deletes;

        CREATE TABLE operation_outcomes (
            kind TEXT NOT NULL,              -- send, delete, timer
            outcome TEXT NOT NULL,           -- rejected, gone, expired, failed
            count INTEGER NOT NULL,          -- aggregate only: no person, no time
            PRIMARY KEY (kind, outcome)
        );

        CREATE TABLE key_check (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            value BLOB NOT NULL              -- HMAC of a fixed label under the key, never the key
        );
        """,
    ),
    Migration(
        8,
        "directory search indexes: needs and places per service, active, anywhere, a point",
        """
        ALTER TABLE services ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE services ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE services ADD COLUMN anywhere INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE services ADD COLUMN latitude REAL;
        ALTER TABLE services ADD COLUMN longitude REAL;
        CREATE INDEX services_unindexed ON services(id) WHERE indexed = 0;
        CREATE INDEX services_anywhere ON services(id) WHERE anywhere = 1 AND active = 1;
        ALTER TABLE services ADD COLUMN match_data TEXT;  -- only what matching reads
        CREATE TABLE directory_needs (
            need TEXT NOT NULL,
            anywhere INTEGER NOT NULL,       -- the service works anywhere
            service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
            PRIMARY KEY (need, anywhere, service_id)
        ) WITHOUT ROWID;
        CREATE INDEX directory_needs_service ON directory_needs(service_id);
        CREATE TABLE directory_terms (
            term TEXT NOT NULL,              -- a normalised place a service serves
            service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
            PRIMARY KEY (term, service_id)
        ) WITHOUT ROWID;
        CREATE INDEX directory_terms_service ON directory_terms(service_id);
        """,
    ),
]

MIGRATIONS.append(Migration(
    9,
    "values still in the Fernet form written again in the AES-GCM form",
    "",
    reencrypt_fernet,
))

MIGRATIONS.append(Migration(
    10,
    "directory ranking facts per service, and a counter of changes to services and places",
    RANKING_SQL,
))

# Tables with a ``pid`` column: "delete my data" clears a person from every one of them.
# (The inbox is not among them: a processed row keeps no pid, and rows a person sent after
# their erase are theirs to be answered.) Operations are keyed by ``key``, a pid for a
# person's own: see Store.erase_person.
PERSON_TABLES: list[str] = ["people", "message_ids", "jobs", "saved_services", "cases"]


async def current_version(db: aiosqlite.Connection) -> int:
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT MAX(version) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def upgrade(db: aiosqlite.Connection, vault: Vault | None = None) -> int:
    """Apply every migration newer than the database; returns the version reached. Without
    a (checked) vault, the upgrade stops at a migration whose step needs it: that one and
    the ones after it are done at the next start that has the key."""
    version = await current_version(db)
    await db.commit()
    known = max(m.version for m in MIGRATIONS)
    if version > known:
        raise HelplineError(
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
            if migration.step is not None and not await migration.step(db, vault):
                await db.rollback()
                break
            await db.execute("INSERT INTO schema_version (version) VALUES (?)",
                             (migration.version,))
            await db.commit()
        except Exception:
            await db.rollback()
            raise
        version = migration.version
    return version


def _statements(sql: str) -> list[str]:
    """The statements of a migration, comments dropped; a trigger's body (``BEGIN ...;
    END``) stays in one piece (sqlite3.complete_statement says where a statement ends)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    statements: list[str] = []
    pending = ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().removesuffix(";").strip())
            pending = ""
    return statements
