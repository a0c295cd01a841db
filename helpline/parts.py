"""Every part of helpline that keeps rows, in the order their tables are upgraded. The core
store erases, clears and purges people by these declarations (``helpline.store.schema``)."""

from __future__ import annotations

from helpline.console.schema import CONSOLE
from helpline.handoff.schema import HANDOFF
from helpline.outreach.schema import OUTREACH
from helpline.resources.schema import RESOURCES
from helpline.stats.schema import STATS
from helpline.store.jobs import JOBS
from helpline.store.migrations import CORE
from helpline.store.schema import Part

ALL: tuple[Part, ...] = (CORE, JOBS, RESOURCES, HANDOFF, STATS, CONSOLE, OUTREACH)
