"""Counting: events are added up in memory and written as one upsert per bucket in the
database's next group commit (the same commit as the turn that caused them, under load:
no trip and no wait of their own; a turn used to wait for up to three commits of its
counts before its own). What a bucket may hold is checked here, so that nothing identifying can be
passed in by mistake: the event is one of ``EVENTS``; channel, language, detail and
campaign are short words of a fixed alphabet, never free text."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from helpline.store.database import Database
from helpline.store.sql import SyncConn

EVENTS: tuple[str, ...] = (
    "conversation_started",  # a first message, or the first after resume_after_hours
    "first_contact",         # someone the bot had not met (or no longer remembers)
    "flow_reached",          # detail: the flow ([stats] flows lists which)
    "lookup",                # detail: the kind of help asked for ("" = any)
    "lookup_unmet",          # nothing with a confirmed opening matched; detail: need/area
    "service_viewed",
    "service_saved",
    "handoff_asked",
    "handoff_claimed",
    "handoff_closed",
    "claim_time",            # detail: claim_time_bucket()
    "checkin_booked",
    "checkin_sent",
    "quick_exit",
    "erasure",
    # Outreach (helpline.outreach), each under its campaign; detail "followup" for a
    # follow-up message, "link" / "keyword" for an attribution.
    "outreach_sent",         # a campaign message that went out or ended (all below)
    "outreach_delivered",    # Signal took it
    "outreach_failed",       # refused for good (not on Signal, say)
    "outreach_replied",      # the first answer to a campaign message
    "outreach_opted_out",    # an opt-out word, or quick exit / erasure after a reply
    "outreach_engaged",      # someone reached a flow the campaign names
    "outreach_attributed",   # a new conversation by a campaign's deep link or keyword
)
# A code (a kind of help, a flow, a place the directory knows, a bucket), never a
# person's words: no spaces, no capitals, at most 64 characters.
_WORD = re.compile(r"[\w.:/+-]{0,64}")
CLAIM_BUCKETS = ((300, "under-5m"), (900, "5-15m"), (3600, "15-60m"), (4 * 3600, "1-4h"),
                 (24 * 3600, "4-24h"))


def week_of(at: float, zone: str = "UTC") -> str:
    """The ISO week of a moment in the organisation's time zone, like 2026-W49."""
    year, week, _ = datetime.fromtimestamp(at, ZoneInfo(zone)).isocalendar()
    return f"{year}-W{week:02d}"


def claim_time_bucket(seconds: float) -> str:
    """Time from a handoff asked to its claim, as a histogram bucket."""
    for limit, label in CLAIM_BUCKETS:
        if seconds < limit:
            return label
    return "over-24h"


@dataclass(frozen=True)
class Count:
    week: str
    channel: str
    language: str
    event: str
    detail: str
    campaign: str
    count: int


_UPSERT = ("INSERT INTO stats_counts (week, channel, language, event, detail, campaign, count) "
           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (week, channel, language, event, detail, "
           "campaign) DO UPDATE SET count = stats_counts.count + excluded.count")

log = logging.getLogger("helpline.stats")
Bucket = tuple[str, str, str, str, str, str]


class Stats:
    def __init__(self, db: Database, zone: str = "UTC") -> None:
        self.db = db
        self.zone = zone
        # Counted, not yet written; the lock because the database's thread takes them.
        self._lock = threading.Lock()
        self._pending: Counter[Bucket] = Counter()
        self._queued = False

    async def count(self, event: str, at: float, channel: str, language: str,
                    detail: str = "", campaign: str = "") -> None:
        """One more of ``event`` in its bucket. Raises ValueError for an unknown event or a
        value that is not a short code (so free text can never become a bucket)."""
        if event not in EVENTS:
            raise ValueError(f"unknown statistics event {event!r}")
        values = (channel, language, detail, campaign)
        if not all(_WORD.fullmatch(v) and v == v.lower() for v in values):
            raise ValueError("statistics buckets take short codes only")
        bucket = (week_of(at, self.zone), channel, language, event, detail, campaign)
        with self._lock:
            self._pending[bucket] += 1
            queued, self._queued = self._queued, True
        if not queued:
            self.db.write_soon(self._write_pending).add_done_callback(self._written)

    def _write_pending(self, db: SyncConn) -> None:
        """In the database's thread, in its group commit: every bucket counted so far."""
        with self._lock:
            pending, self._pending, self._queued = self._pending, Counter(), False
        db.executemany(_UPSERT, [(*bucket, n) for bucket, n in pending.items()])

    @staticmethod
    def _written(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("statistics could not be written (%s)", type(exc).__name__)

    async def counts(self, since: str, until: str) -> list[Count]:
        """Every bucket of the weeks from ``since`` to ``until`` (ISO weeks, inclusive)."""
        await self.db.flushed()  # what was counted a moment ago too
        rows = await self.db.rows(
            "SELECT week, channel, language, event, detail, campaign, count FROM stats_counts "
            "WHERE week >= ? AND week <= ? ORDER BY week, event, channel, language, detail, "
            "campaign", (since, until))
        return [Count(*tuple(r)) for r in rows]
