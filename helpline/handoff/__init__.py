"""The advocate desk: cases, office hours, the two-way relay, and desks (Telegram first).

``install(app, desk)`` wires a desk into the app: the Handoff effect opens cases, typed text
is relayed while a case is open, quick exit and erase close cases, the desk is a channel
of the operations queue ("desk"), and the unclaimed-case check runs with the scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpline.events import Handoff, OverlayPick
from helpline.handoff.desk import Desk, DeskEvent
from helpline.handoff.relay import DESK, HandoffService

if TYPE_CHECKING:
    from helpline.app import App

__all__ = ["Desk", "DeskEvent", "HandoffService", "install"]


def install(app: App, desk: Desk) -> HandoffService:
    service = HandoffService(app, desk)
    app.effect_handlers[Handoff] = service.on_handoff
    service.other_picks = app.effect_handlers.get(OverlayPick)  # e.g. the directory's
    app.effect_handlers[OverlayPick] = service.on_pick
    app.intercept = service.intercept
    app.facts["desk"] = service.desk_takes_messages
    app.facts["advocates"] = service.advocates_on_shift
    app.leave_hooks.append(service.on_leave)
    app.channels[DESK] = service.channel
    app.timed_jobs["handoff-unclaimed"] = service.check_unclaimed
    desk.listen(service.on_desk_event)
    return service
