"""What ``helpline outreach status`` shows, as lines (the console can show the same):
each campaign's state, what to do when it is paused, what is left to send, and by ISO week
what happened, from the aggregate statistics, small counts hidden. No number anywhere."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from helpline.config import Settings
from helpline.outreach.store import Campaign, Campaigns
from helpline.stats import Stats, week_of

EVENTS = (("sent", "outreach_sent"), ("delivered", "outreach_delivered"),
          ("failed", "outreach_failed"), ("replied", "outreach_replied"),
          ("opted out", "outreach_opted_out"), ("engaged", "outreach_engaged"),
          ("by link/keyword", "outreach_attributed"))


def _shown(value: int, min_count: int) -> str:
    return f"<{min_count}" if 0 < value < min_count else str(value)


def _total(values: list[int], min_count: int) -> str:
    """A total of counts shown by week: hidden when it would let a hidden one be worked
    out (one hidden, or the hidden ones under min_count together)."""
    total = sum(values)
    if 0 < total < min_count:
        return f"<{min_count}"
    hidden = [v for v in values if 0 < v < min_count]
    if hidden and (len(hidden) == 1 or sum(hidden) < min_count):
        return "hidden"
    return str(total)


def _rate(replied: str, sent: str) -> str:
    if not (replied.isdigit() and sent.isdigit()) or int(sent) == 0:
        return "-" if sent == "0" else "hidden"
    return f"{100 * int(replied) / int(sent):.0f}%"


WHAT_TO_DO = {
    "admin": "paused by an admin: helpline outreach resume {name}",
    "rate_limit": ("Signal asked the bot to slow down. Wait an hour or more, consider a "
                   "lower [outreach] per_hour, then: helpline outreach resume {name}"),
    "captcha": ("Signal asks for a captcha before more new people can be written to. Solve "
                "one at https://signalcaptchas.org/challenge/generate.html, copy the "
                "signalcaptcha:// link, then: helpline outreach resume {name} --captcha "
                "'signalcaptcha://...' (docs/outreach.md, \"A captcha\")"),
}


def what_to_do(campaign: Campaign) -> str | None:
    """For a paused campaign, what the admin does next (None when it is not paused)."""
    if campaign.state != "paused":
        return None
    return WHAT_TO_DO.get(campaign.paused, WHAT_TO_DO["admin"]).format(name=campaign.name)


async def status_lines(repo: Campaigns, settings: Settings, first: date, now: float,
                       name: str | None = None) -> list[str] | None:
    """The status of every campaign (or the one named; None when there is none such) over
    the weeks from ``first``."""
    zone = settings.timezone
    since = week_of(datetime(first.year, first.month, first.day, 12, tzinfo=ZoneInfo(zone))
                    .timestamp(), zone)
    campaigns = await repo.all()
    if name:
        campaigns = [c for c in campaigns if c.name == name]
        if not campaigns:
            return None
    counts = await Stats(repo.db, zone).counts(since, week_of(now, zone))
    by: dict[tuple[str, str, str], int] = defaultdict(int)
    for c in counts:
        if c.campaign and c.event.startswith("outreach_"):
            by[(c.campaign, c.week, c.event)] += c.count
    low = settings.stats.min_count
    lines: list[str] = []
    for campaign in campaigns:
        left = await repo.counts(campaign.id, now, campaign.followup_days)
        lines.append(f"{campaign.name}: {campaign.state}"
                     + (f" ({campaign.language}, first message names the organisation)"
                        if campaign.reveal else f" ({campaign.language})"))
        todo = what_to_do(campaign)
        if todo is not None:
            lines.append("  what to do: " + todo)
        if campaign.state != "closed":
            lines.append(f"  to write to: {left.pending}; suppressed since: {left.suppressed}; "
                         f"not written to (their safe time): {left.skipped}; "
                         f"under way at a stop (not sent again): {left.unknown}"
                         + (f"; follow-ups due: {left.followups_due}"
                            if campaign.followup else ""))
        weeks = sorted({w for (n, w, _) in by if n == campaign.name})
        lines.append("  week      " + "".join(f"{label:>17}" for label, _ in EVENTS)
                     + f"{'reply rate':>12}")
        columns: dict[str, list[int]] = defaultdict(list)
        for week in weeks:
            cells = []
            for _, event in EVENTS:
                value = by.get((campaign.name, week, event), 0)
                columns[event].append(value)
                cells.append(_shown(value, low))
            lines.append(f"  {week:<10}" + "".join(f"{c:>17}" for c in cells)
                         + f"{_rate(cells[3], cells[0]):>12}")
        totals = [_total(columns[event], low) for _, event in EVENTS]
        lines.append(f"  {'all':<10}" + "".join(f"{c:>17}" for c in totals)
                     + f"{_rate(totals[3], totals[0]):>12}")
    if not campaigns:
        lines.append("no campaigns (helpline outreach create makes one)")
    return lines


__all__ = ["EVENTS", "WHAT_TO_DO", "status_lines", "what_to_do"]
