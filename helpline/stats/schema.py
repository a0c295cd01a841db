"""The statistics' one table. It has no pid column and no encrypted column: nothing in it
belongs to anyone, so erasure has nothing to do with it; the purge drops weeks older than
``[retention] stats_days``."""

from __future__ import annotations

from helpline.store.schema import Migration, Part, Retention
from helpline.store.sql import AsyncConn

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

async def purge_old_weeks(db: AsyncConn, retention: Retention) -> dict[str, int]:
    """Buckets of weeks that ended longer ago than ``[retention] stats_days``."""
    from helpline.stats.counts import week_of

    days = retention.settings.get("stats_days")
    if days is None:
        return {}
    # The week before the cutoff's own week, so that a week is kept whole.
    oldest = week_of(retention.now - days * 86400)
    cursor = await db.execute("DELETE FROM stats_counts WHERE week < ?", (oldest,))
    return {"stats_counts": cursor.rowcount}


STATS = Part("stats", MIGRATIONS, retention=purge_old_weeks)
