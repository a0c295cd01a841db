"""The statistics' one table. It has no pid column and no encrypted column: nothing in it
belongs to anyone, so erasure and the purge have nothing to do with it (a count stays)."""

from __future__ import annotations

from helpline.store.schema import Migration, Part

MIGRATIONS: list[Migration] = [
    Migration(
        1, "aggregate counts",
        """
        CREATE TABLE stats_counts (
            week TEXT NOT NULL,              -- ISO week in the organisation's time zone
            channel TEXT NOT NULL,           -- a kind of channel: telegram, signal...
            language TEXT NOT NULL,
            event TEXT NOT NULL,             -- helpline.stats.EVENTS
            detail TEXT NOT NULL DEFAULT '', -- a kind of help, a flow, a time bucket
            campaign TEXT NOT NULL DEFAULT '',
            count INTEGER NOT NULL,
            PRIMARY KEY (week, channel, language, event, detail, campaign)
        ) WITHOUT ROWID;
        """,
    ),
]

STATS = Part("stats", MIGRATIONS)
