"""When the next campaign message may go out: pure rules over the settings and a few
counts, so that they are tested without a clock or a database.

* at most ``per_hour`` sends in any hour, each gap ``3600 / per_hour`` seconds with jitter
  (between half and one and a half of it: sends do not tick like a machine);
* none inside ``quiet_hours`` (in the organisation's time zone);
* at most ``daily_cap`` sends a day (every campaign together);
* with ``desk_capacity``: only while the open desk cases plus the replies expected
  (``reply_rate`` x the sends of the last ``reply_hours`` not yet answered) leave room for
  one more reply.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from helpline.config import Outreach
from helpline.office_hours import OfficeHours


@dataclass(frozen=True)
class Load:
    """What pacing weighs, read at one moment."""

    last_hour: int  # sends in the last hour
    today: int  # sends since the start of the day (organisation's time zone)
    unanswered: int  # sends of the last reply_hours not answered yet
    open_cases: int  # desk cases open now


class Pacing:
    def __init__(self, options: Outreach, timezone: str,
                 rng: random.Random | None = None) -> None:
        self.options = options
        self.quiet = OfficeHours(options.quiet_hours, (), timezone)
        self.zone = self.quiet.zone
        self.rng = rng or random.Random()

    def gap(self) -> float:
        """Seconds to wait after a send before the next, with jitter."""
        return 3600.0 / self.options.per_hour * self.rng.uniform(0.5, 1.5)

    def is_quiet(self, at: float) -> bool:
        return bool(self.options.quiet_hours) and self.quiet.is_open(at)

    def day_start(self, at: float) -> float:
        local = datetime.fromtimestamp(at, self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def why_not(self, at: float, load: Load) -> str | None:
        """None when a message may go out now; else why not (a code: quiet_hours,
        per_hour, daily_cap, desk_cap)."""
        o = self.options
        if self.is_quiet(at):
            return "quiet_hours"
        if load.last_hour >= o.per_hour:
            return "per_hour"
        if load.today >= o.daily_cap:
            return "daily_cap"
        if o.desk_capacity and (load.open_cases + o.reply_rate * (load.unanswered + 1)
                                > o.desk_capacity):
            return "desk_cap"
        return None

    def next_try(self, at: float, why: str) -> float:
        """When to look again after ``why_not`` said ``why``."""
        if why == "quiet_hours":
            moment = at
            for _ in range(24 * 8):  # the first minute-aligned quarter hour after quiet
                moment += 900
                if not self.is_quiet(moment):
                    return moment
            return at + 3600
        if why == "daily_cap":
            local = datetime.fromtimestamp(at, self.zone)
            tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
            return tomorrow.timestamp()
        return at + 300.0  # per_hour, desk_cap: the counts change as time goes on


__all__ = ["Load", "Pacing"]
