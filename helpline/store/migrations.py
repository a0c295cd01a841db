"""The core store's tables and their numbered migrations: people and their conversation
state, the platform's message ids, the durable inbox, the queue of platform operations.

Append new migrations at the end with the next number; never edit one that has shipped.
Nothing here stores a platform id, a name or message text in readable form: ``pid`` is a
keyed pseudonym, and every ``BLOB`` holding content is encrypted by the app. Features own
their tables in their own modules (see ``helpline.store.schema`` and ``helpline.parts``).
"""

from __future__ import annotations

from helpline.store.schema import Migration, Part, reencrypt_fernet

ENCRYPTED = (("people", "address"), ("people", "state"), ("operations", "body"),
             ("operations", "address"), ("inbox", "body"))

MIGRATIONS: list[Migration] = [
    Migration(
        1, "people, conversation state, outbox, message ids",
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
        """,
        shipped_as=1,
    ),
    Migration(
        2, 'outbox rows with their own address (not tied to a person)',
        """
        ALTER TABLE outbox ADD COLUMN address BLOB;  -- encrypted; rows not tied to a person
        """,
        shipped_as=3,
    ),
    Migration(
        3, "quick-exit deletes the platform has not done yet, kept across restarts",
        """
        CREATE TABLE pending_deletes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            channel TEXT NOT NULL,
            address BLOB NOT NULL,           -- encrypted
            ids BLOB NOT NULL,               -- encrypted JSON list of platform message ids
            until REAL NOT NULL              -- past the platform's delete window: dropped
        );

        """,
        shipped_as=4,
    ),
    Migration(
        4, "a quick exit's neutral reply: its delete is kept too, asked for after a moment",
        """
        ALTER TABLE pending_deletes ADD COLUMN due_at REAL NOT NULL DEFAULT 0;  -- not before

        """,
        shipped_as=5,
    ),
    Migration(
        5, "a durable inbox; one queue of platform operations (replaces outbox and pending "
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
        shipped_as=7,
    ),
    Migration(6, "values still in the Fernet form written again in the AES-GCM form", "",
              reencrypt_fernet(ENCRYPTED), shipped_as=9),
    Migration(
        7, "fewer indexes written at every turn: the inbox's unprocessed rows only, and no "
           "index of people by time (the purge reads the table through)",
        """
        DROP INDEX inbox_pending;
        CREATE INDEX inbox_pending ON inbox(id) WHERE done = 0;
        DROP INDEX people_updated;
        """,
    ),
    Migration(
        8, "whether the last start got as far as processing events (replays are counted "
           "only then)",
        """
        CREATE TABLE last_start (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            processing INTEGER NOT NULL      -- 1: it began processing events
        );
        INSERT INTO last_start (id, processing) VALUES (1, 1);
        """,
    ),
]

# The inbox is not among the person tables: a processed row keeps no pid, and rows a
# person sent after their erase are theirs to be answered. Operations are keyed by ``key``,
# a pid for a person's own: the store clears those itself.
CORE = Part("core", MIGRATIONS, person_tables=("people", "message_ids"),
            exit_tables=("message_ids",), encrypted=ENCRYPTED)
