"""Outreach's tables: campaigns, their recipients for the life of a campaign, the times of
sends (for pacing, tied to no one), the permanent suppression list, and who was reached.

* ``outreach_key`` holds outreach's own key (random, encrypted with the vault) for its
  keyed hashes of numbers: ``helpline rotate-key`` re-encrypts it like every encrypted
  value, so the suppression list, which keeps no number to make its hashes again from,
  outlives a key rotation.
* ``outreach_recipients`` keeps each number only as a keyed hash (``rkey``) and the number
  encrypted (``address``), and only while its campaign lives: ``close``, or
  ``[outreach] keep_days`` after the campaign's last send, deletes them (the purge).
* ``outreach_suppressed`` keeps a keyed hash of a number (``skey``, made with a label of
  its own: it matches no other column) and why, for good: no number.
* ``outreach_people``: a person on Signal (their pseudonym) who answered a campaign
  message, or who said when a message is safe, with the suppression hash of their number:
  their quick exit or erasure then suppresses it, and no campaign writes to them outside
  their safe time (nor at all when they asked to be written to only after they write).
  It names no campaign; quick exit, erasure and the idle purge clear it with the person.
* ``outreach_sends``: when sends went out, with nothing else (how many this hour, today).
"""

from __future__ import annotations

from helpline.store.schema import Migration, Part, Retention
from helpline.store.sql import AsyncConn

ENCRYPTED = (("outreach_key", "secret"), ("outreach_campaigns", "message"),
             ("outreach_campaigns", "followup"), ("outreach_recipients", "address"),
             ("outreach_people", "deletes"))

MIGRATIONS: list[Migration] = [
    Migration(
        1, "outreach campaigns, recipients, suppression list",
        """
        CREATE TABLE outreach_key (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            secret BLOB NOT NULL             -- encrypted: the key of rkey and skey
        );

        CREATE TABLE outreach_campaigns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,       -- a code: lower case, digits, - _
            state TEXT NOT NULL,             -- ready, running, paused, done, closed
            message BLOB NOT NULL,           -- encrypted first message
            followup BLOB,                   -- encrypted follow-up message, or NULL
            followup_days REAL NOT NULL DEFAULT 0,
            language TEXT NOT NULL,
            flow TEXT NOT NULL DEFAULT '',   -- the flow a reply starts ('' = the welcome)
            engaged TEXT NOT NULL DEFAULT '',  -- flows counted as engaged, comma-separated
            keyword TEXT NOT NULL DEFAULT '',  -- a Signal first-message keyword (normalized)
            code TEXT NOT NULL UNIQUE,       -- the Telegram deep-link code
            reveal INTEGER NOT NULL DEFAULT 0,
            paused TEXT NOT NULL DEFAULT '', -- why: admin, rate_limit, captcha
            challenge TEXT NOT NULL DEFAULT '',  -- the bridge's challenge token (captcha)
            next_send_at REAL NOT NULL DEFAULT 0,
            keep_days REAL NOT NULL,         -- [outreach] keep_days when it was created
            created_at REAL NOT NULL,
            last_send_at REAL,
            closed_at REAL
        );

        CREATE TABLE outreach_recipients (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            campaign INTEGER NOT NULL REFERENCES outreach_campaigns(id) ON DELETE CASCADE,
            rkey TEXT NOT NULL,              -- keyed hash of the number (its own label)
            skey TEXT NOT NULL,              -- the number's suppression hash
            address BLOB,                    -- encrypted E.164 number (NULL once it is
                                             -- not to be written to)
            status TEXT NOT NULL,            -- pending, sending, sent, failed, unknown,
                                             -- suppressed, skipped
            followup TEXT NOT NULL DEFAULT '',  -- '', sending, sent, failed, unknown
            sent_at REAL,
            not_before REAL NOT NULL DEFAULT 0,  -- waits for the person's safe time
            ids TEXT NOT NULL DEFAULT '',    -- the bridge's ids of what was sent (deletes)
            UNIQUE (campaign, rkey)
        );
        CREATE INDEX outreach_recipients_next ON outreach_recipients(campaign, status, id);
        CREATE INDEX outreach_recipients_rkey ON outreach_recipients(rkey);

        CREATE TABLE outreach_suppressed (
            skey TEXT PRIMARY KEY,
            why TEXT NOT NULL,               -- opted_out, left, advocate, admin
            at REAL NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE outreach_people (
            pid TEXT PRIMARY KEY,            -- a person on Signal
            skey TEXT NOT NULL,              -- the suppression hash of their number
            reached INTEGER NOT NULL DEFAULT 0,  -- they answered a campaign message
            safe TEXT NOT NULL DEFAULT '',   -- when a message is safe (flow var safe_time)
            deletes BLOB,                    -- encrypted: the campaign messages to delete
                                             -- at their quick exit (number and ids)
            deletes_until REAL,              -- Signal's delete window after the send
            at REAL NOT NULL
        );  -- with a rowid: rotate-key re-encrypts by it
        CREATE INDEX outreach_people_skey ON outreach_people(skey);

        CREATE TABLE outreach_sends (at REAL NOT NULL);
        CREATE INDEX outreach_sends_at ON outreach_sends(at);
        """,
    ),
    Migration(
        2, "outreach: which campaign messages Signal said were delivered",
        """
        -- The bridge's ids (timestamps) of campaign messages no delivery receipt has come
        -- for yet: a receipt (one for every message the bot sends) is looked up by key.
        CREATE TABLE outreach_sent_ids (
            sent_id TEXT NOT NULL,
            recipient INTEGER NOT NULL REFERENCES outreach_recipients(id) ON DELETE CASCADE,
            followup INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (sent_id, recipient)
        ) WITHOUT ROWID;
        CREATE INDEX outreach_sent_ids_recipient ON outreach_sent_ids(recipient);
        -- '', first, followup or first,followup: the messages a delivery receipt came for
        ALTER TABLE outreach_recipients ADD COLUMN delivered TEXT NOT NULL DEFAULT '';
        """,
    ),
]


async def purge_campaigns(db: AsyncConn, retention: Retention) -> dict[str, int]:
    """Recipients of campaigns closed, or whose last send is older than the campaign's
    ``keep_days`` (``[outreach] keep_days`` when it was made: the purge needs no setting);
    send times older than two days."""
    counts: dict[str, int] = {}
    cursor = await db.execute(
        "DELETE FROM outreach_recipients WHERE campaign IN (SELECT id FROM "
        "outreach_campaigns WHERE state = 'closed' OR (last_send_at IS NOT NULL AND "
        "last_send_at + keep_days * 86400 < ?))", (retention.now,))
    counts["outreach_recipients"] = cursor.rowcount
    cursor = await db.execute("DELETE FROM outreach_sends WHERE at < ?",
                              (retention.now - 2 * 86400,))
    counts["outreach_sends"] = cursor.rowcount
    return counts


OUTREACH = Part("outreach", MIGRATIONS, person_tables=("outreach_people",),
                exit_tables=("outreach_people",), encrypted=ENCRYPTED,
                retention=purge_campaigns)
