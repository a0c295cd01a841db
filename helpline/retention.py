"""Retention you can check: what the purge would remove now (``helpline purge --dry-run``)
and anything kept past its period (``helpline retention check``, and ``helpline doctor``).

The bot purges every ``[retention] purge_every_hours``; a record is *kept past its period*
when a purge run that long ago (and ten minutes more) would already have removed it: the
purge is not running (the bot has been stopped), or something keeps what it should not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from helpline.config import Settings
from helpline.privacy import Vault
from helpline.store import Store

SLACK_SECONDS = 600.0  # a purge takes a moment, and its timer is not exact


@dataclass(frozen=True)
class Kind:
    name: str  # as the purge counts it
    what: str
    period: str


def kinds(settings: Settings) -> list[Kind]:
    """Every kind of record the purge removes, with its period (from ``[retention]``)."""
    r = settings.retention
    return [
        Kind("people", "conversations (state, reply address, saved services, check-ins)",
             f"{r.conversation_days:g} days after the last message (conversation_days), "
             "unless a check-in is booked or a case is open"),
        Kind("message_ids", "platform ids of messages, kept for quick exit",
             f"{r.message_id_hours:g} hours (message_id_hours)"),
        Kind("inbox", "keyed hashes of processed events, against re-delivery",
             f"{r.message_id_hours:g} hours (message_id_hours)"),
        Kind("operations", "replies, deletes and timers not carried out",
             f"until each one's own expiry (a reply {r.reply_days:g} days, reply_days; a "
             "delete, the platform's delete window)"),
        Kind("cases", "advocate-desk cases, closed", f"{r.case_days:g} days after closing "
             "(case_days)"),
        Kind("case_events", "a closed case's audit log", "with its case"),
        Kind("staff_erasures", "erasures asked of staff (helpline erase): who asked, for "
             "which case, when", f"{r.case_days:g} days (case_days)"),
        Kind("stats_counts", "statistics: counts by week that identify no one",
             f"{r.stats_days:g} days (stats_days)"),
        Kind("console_setup", "advocate console set-up links", "until they expire (a day)"),
        Kind("console_sessions", "advocate console sessions",
             "a day after they were last used"),
        Kind("console_audit", "the advocate console's audit log",
             f"{r.case_days:g} days (case_days)"),
        Kind("outreach_recipients", "outreach campaigns' numbers (encrypted)",
             "until the campaign is closed, or [outreach] keep_days after its last send"),
        Kind("outreach_sends", "times of outreach sends (for pacing; tied to no one)",
             "2 days"),
        Kind("console_lines", "the console's case transcripts (encrypted)",
             "until the case closes, or [console] keep_transcript_hours "
             f"({settings.console.keep_transcript_hours:g}) after; at once at a quick "
             "exit or erase"),
        Kind("console_threads", "the console's record of a closed case's page (its handle "
             "and times)", f"{r.case_days:g} days after closing (case_days)"),
    ]


async def purge(settings: Settings, secret: str, dry_run: bool, now: float | None = None
                ) -> dict[str, int]:
    """Purge the database now (or, ``dry_run``, count what a purge would remove)."""
    r = settings.retention
    store = await Store.open(settings.database, Vault(secret))
    try:
        return await store.purge(time.time() if now is None else now, r.conversation_days,
                                 r.message_id_hours, r.model_dump(), dry_run=dry_run)
    finally:
        await store.close()


async def overdue(settings: Settings, secret: str, now: float | None = None
                  ) -> dict[str, int]:
    """What is kept past its period: what a purge one interval ago would have removed."""
    grace = settings.retention.purge_every_hours * 3600 + SLACK_SECONDS
    moment = (time.time() if now is None else now) - grace
    return await purge(settings, secret, dry_run=True, now=moment)


def report(settings: Settings, counts: dict[str, int]) -> list[str]:
    """One line per kind: its count, what it is and its period."""
    known = kinds(settings)
    lines = [f"{counts.get(k.name, 0):>7}  {k.name}: {k.what} (kept {k.period})"
             for k in known]
    names = {k.name for k in known}
    lines += [f"{n:>7}  {name}" for name, n in sorted(counts.items()) if name not in names]
    return lines


__all__ = ["SLACK_SECONDS", "Kind", "kinds", "overdue", "purge", "report"]
