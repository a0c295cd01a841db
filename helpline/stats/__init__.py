"""Statistics that identify no one: events counted into aggregate buckets (week x channel x
language x event, with a detail such as a kind of help, and a campaign where there is one)
at the moment they happen. No row, log line or file ties an event to a person or a
pseudonym: a bucket holds a count and nothing else. ``helpline stats`` prints them with
small counts hidden (``helpline.stats.report``)."""

from helpline.stats.counts import EVENTS, Stats, claim_time_bucket, week_of
from helpline.stats.schema import STATS

__all__ = ["EVENTS", "STATS", "Stats", "claim_time_bucket", "week_of"]
