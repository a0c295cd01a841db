"""The advocate console's tables: accounts, set-up links, sessions and the audit log.

Nothing here is about a person who writes to the bot. Secrets are never stored as they are:
passwords as Argon2 hashes, set-up links and session ids as SHA-256 hashes, TOTP secrets
encrypted with the vault. The audit log says who did what and when, never any content.
"""

from __future__ import annotations

from helpline.store.schema import Migration, Part, Retention
from helpline.store.sql import AsyncConn

ENCRYPTED = (("console_users", "totp_secret"), ("console_setup", "totp_secret"),
             ("console_lines", "body"))

MIGRATIONS: list[Migration] = [
    Migration(
        1, "advocate console: accounts, set-up links, sessions, audit log",
        """
        CREATE TABLE console_users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- the advocate's console user name
            role TEXT NOT NULL,              -- advocate, supervisor, admin
            status TEXT NOT NULL,            -- pending (set-up link), active, disabled
            password_hash TEXT,              -- Argon2id
            totp_secret BLOB,                -- encrypted with the vault
            totp_step INTEGER NOT NULL DEFAULT 0,  -- last time step used (no replay)
            failures INTEGER NOT NULL DEFAULT 0,   -- failed logins in a row
            locked_until REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );

        CREATE TABLE console_setup (
            token_hash BLOB PRIMARY KEY,     -- SHA-256 of the link's token
            user_id INTEGER NOT NULL REFERENCES console_users(id) ON DELETE CASCADE,
            expires_at REAL NOT NULL,
            password_hash TEXT,              -- chosen, not in force until a code is confirmed
            totp_secret BLOB                 -- offered, encrypted with the vault
        );

        CREATE TABLE console_sessions (
            token_hash BLOB PRIMARY KEY,     -- SHA-256 of the cookie's session id
            user_id INTEGER NOT NULL REFERENCES console_users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            seen_at REAL NOT NULL
        );
        CREATE INDEX console_sessions_user ON console_sessions(user_id);

        CREATE TABLE console_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            actor TEXT NOT NULL,             -- a console user name, or 'command line'
            event TEXT NOT NULL,             -- login, login failed, logout, ...
            target TEXT NOT NULL DEFAULT '', -- the account or case acted on
            detail TEXT NOT NULL DEFAULT ''  -- e.g. which factor failed; never content
        );
        CREATE INDEX console_audit_at ON console_audit(at);
        """,
    ),
    Migration(
        2, "the console as a desk: case threads, their transcripts, advocates' presence",
        """
        CREATE TABLE console_threads (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            handle TEXT NOT NULL,            -- the case handle (the thread's name)
            peer TEXT,                       -- its Telegram topic, when both desks are on
            card TEXT,                       -- the card's message id, once posted
            status TEXT NOT NULL DEFAULT 'open',  -- open, closed
            opened_at REAL NOT NULL,
            closed_at REAL,
            delete_after REAL                -- when a closed case's transcript goes
        );
        CREATE INDEX console_threads_peer ON console_threads(peer);

        CREATE TABLE console_lines (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            thread INTEGER NOT NULL,         -- console_threads.id
            at REAL NOT NULL,
            kind TEXT NOT NULL,              -- desk (posted by the relay), advocate, note
            author TEXT NOT NULL DEFAULT '', -- the advocate's staff id (advocate, note)
            body BLOB NOT NULL,              -- the text, encrypted with the vault
            state TEXT NOT NULL DEFAULT ''   -- an advocate's message: sent, waiting, not sent
        );
        CREATE INDEX console_lines_thread ON console_lines(thread, id);

        CREATE TABLE console_staff (
            user_id INTEGER PRIMARY KEY,     -- console_users.id
            presence TEXT NOT NULL DEFAULT 'away',  -- on (on shift), away
            capacity INTEGER NOT NULL,       -- cases taken at once (automatic assignment)
            updated_at REAL NOT NULL
        );
        """,
    ),
]


async def purge_console(db: AsyncConn, retention: Retention) -> dict[str, int]:
    """Expired set-up links; sessions not seen for a day (a session idles out long before
    that); audit entries older than ``[retention] case_days``, as the desk's audit log."""
    removed: dict[str, int] = {}
    cursor = await db.execute("DELETE FROM console_setup WHERE expires_at < ?",
                              (retention.now,))
    removed["console_setup"] = cursor.rowcount
    cursor = await db.execute("DELETE FROM console_sessions WHERE seen_at < ?",
                              (retention.now - 86400,))
    removed["console_sessions"] = cursor.rowcount
    days = retention.settings.get("case_days")
    if days is not None:
        cursor = await db.execute("DELETE FROM console_audit WHERE at < ?",
                                  (retention.now - days * 86400,))
        removed["console_audit"] = cursor.rowcount
    # Transcripts past their time (``[console] keep_transcript_hours``, set at closing;
    # the console's own job removes them too, every poll).
    cursor = await db.execute(
        "DELETE FROM console_lines WHERE thread IN (SELECT id FROM console_threads WHERE "
        "delete_after IS NOT NULL AND delete_after <= ?)", (retention.now,))
    removed["console_lines"] = cursor.rowcount
    if days is not None:  # a closed case's thread (its handle and times) goes with the case
        cursor = await db.execute(
            "DELETE FROM console_threads WHERE status = 'closed' AND closed_at < ? AND id "
            "NOT IN (SELECT thread FROM console_lines)", (retention.now - days * 86400,))
        removed["console_threads"] = cursor.rowcount
    return removed


CONSOLE = Part("console", MIGRATIONS, encrypted=ENCRYPTED, retention=purge_console)
