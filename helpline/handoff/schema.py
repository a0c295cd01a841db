"""The advocate desk's tables: cases and their audit log (never any content)."""

from __future__ import annotations

from helpline.store.schema import Migration, Part, Retention, reencrypt_fernet
from helpline.store.sql import AsyncConn

ENCRYPTED = (("cases", "summary"),)

MIGRATIONS: list[Migration] = [
    Migration(
        1, "advocate desk: cases, case audit log",
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
        """,
        shipped_as=3,
    ),
    Migration(2, "values still in the Fernet form written again in the AES-GCM form", "",
              reencrypt_fernet(ENCRYPTED), shipped_as=9),
    Migration(3, "erasures asked of staff: who asked, for which case, when", """
        CREATE TABLE staff_erasures (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            handle TEXT NOT NULL,            -- the case's handle (the person is erased)
            requested_by TEXT NOT NULL,      -- the staff member who took the request
            requested_at REAL NOT NULL
        );
        """),
]


async def purge_closed_cases(db: AsyncConn, retention: Retention
                             ) -> dict[str, int]:
    """Cases closed longer ago than their period (``[retention] case_days``), with their
    audit events, and audit events as old whose case is gone already."""
    days = retention.settings.get("case_days")
    if days is None:
        return {}
    closed_before = retention.now - days * 86400
    cursor = await db.execute(
        "DELETE FROM case_events WHERE case_id IN (SELECT id FROM cases WHERE "
        "status = 'closed' AND closed_at < ?) OR (at < ? AND case_id NOT IN "
        "(SELECT id FROM cases))", (closed_before, closed_before))
    events = cursor.rowcount
    cursor = await db.execute("DELETE FROM cases WHERE status = 'closed' AND closed_at < ?",
                              (closed_before,))
    cases = cursor.rowcount
    cursor = await db.execute("DELETE FROM staff_erasures WHERE requested_at < ?",
                              (closed_before,))
    return {"case_events": events, "cases": cases, "staff_erasures": cursor.rowcount}


# An open case keeps the person: an advocate may still reply.
HANDOFF = Part("handoff", MIGRATIONS, person_tables=("cases",),
               keeps_people=("SELECT pid FROM cases WHERE status != 'closed'",),
               encrypted=ENCRYPTED, retention=purge_closed_cases)
