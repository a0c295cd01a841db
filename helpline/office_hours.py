"""When advocates are on shift: a weekly schedule in one time zone, minus holidays.

A shift is written ``"DAYS HH:MM-HH:MM"``: DAYS is a day (``mon``) or a range (``mon-fri``,
``fri-mon`` wraps); the end may be ``24:00``; a shift that ends before it starts runs past
midnight into the next day. No shifts at all means "always staffed".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SHIFT = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*"
                    r"(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Shift:
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight, up to 1440; <= start: runs into the next day


def parse_shift(text: str) -> Shift:
    match = _SHIFT.match(text.casefold())
    if match is None:
        raise ValueError(f"'{text}' is not a shift like 'mon-fri 09:00-17:00'")
    first, last, h1, m1, h2, m2 = match.groups()
    if first not in DAYS or (last is not None and last not in DAYS):
        raise ValueError(f"'{text}': days are written {', '.join(DAYS)}")
    a = DAYS.index(first)
    b = DAYS.index(last) if last is not None else a
    days = frozenset((a + i) % 7 for i in range((b - a) % 7 + 1))
    start, end = int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)
    if int(m1) > 59 or int(m2) > 59 or start >= 1440 or end > 1440:
        raise ValueError(f"'{text}': times run from 00:00 to 24:00")
    return Shift(days, start, end)


class OfficeHours:
    def __init__(self, shifts: Iterable[str], holidays: Iterable[str], timezone: str) -> None:
        self.shifts = [parse_shift(s) for s in shifts]
        self.holidays = {date.fromisoformat(d) for d in holidays}
        self.zone = ZoneInfo(timezone)

    def is_open(self, at: float) -> bool:
        """True when ``at`` (unix time) falls in a shift on a day that is not a holiday."""
        if not self.shifts:
            return True
        local = datetime.fromtimestamp(at, self.zone)
        minute = local.hour * 60 + local.minute
        today = local.date()
        yesterday = today - timedelta(days=1)
        for shift in self.shifts:
            if shift.end > shift.start:
                if (local.weekday() in shift.days and today not in self.holidays
                        and shift.start <= minute < shift.end):
                    return True
                continue
            # Overnight: the evening part today, the morning part from yesterday's shift.
            if (local.weekday() in shift.days and today not in self.holidays
                    and minute >= shift.start):
                return True
            if (yesterday.weekday() in shift.days and yesterday not in self.holidays
                    and minute < shift.end):
                return True
        return False

    def next_open(self, at: float, within_days: int = 8) -> float | None:
        """The first moment at or after ``at`` (unix time) inside a shift: ``at`` itself
        when it is in one, else the start of the next shift on a day that is not a
        holiday; None when none starts within ``within_days``."""
        if self.is_open(at):
            return at
        local = datetime.fromtimestamp(at, self.zone)
        for offset in range(within_days + 1):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            starts = [datetime.combine(day, time(s.start // 60, s.start % 60),
                                       self.zone).timestamp()
                      for s in self.shifts if day.weekday() in s.days]
            later = [t for t in starts if t >= at]
            if later:
                return min(later)
        return None

    def local_time(self, at: float) -> time:
        return datetime.fromtimestamp(at, self.zone).time()
