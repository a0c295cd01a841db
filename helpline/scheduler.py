"""Timed work with APScheduler, in-process. Durable due-jobs live in our own ``jobs`` table
(APScheduler's own job stores are not used: nothing in memory may be the only copy)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

if TYPE_CHECKING:
    from helpline.app import App

log = logging.getLogger("helpline.scheduler")


def build_scheduler(app: App, poll_seconds: float = 15.0) -> AsyncIOScheduler:
    """Poll due check-ins, retry queued replies, and purge by retention."""
    scheduler = AsyncIOScheduler()
    scheduler.add_job(app.run_due_jobs, "interval", seconds=poll_seconds, id="due-jobs",
                      max_instances=1, coalesce=True)
    scheduler.add_job(app.deliver_pending, "interval", seconds=max(1.0, poll_seconds / 3),
                      id="outbox", max_instances=1, coalesce=True)
    scheduler.add_job(app.purge, "interval", hours=app.settings.retention.purge_every_hours,
                      id="purge", max_instances=1, coalesce=True)
    for name, job in app.timed_jobs.items():  # e.g. the advocate desk's unclaimed check
        scheduler.add_job(job, "interval", seconds=poll_seconds, id=name, max_instances=1,
                          coalesce=True)
    return scheduler
