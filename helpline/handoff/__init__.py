"""The advocate desk: cases, office hours, the two-way relay, and desks (Telegram first).

``HandoffFeature(desk)`` plugs a desk into the app (``helpline.feature``): the Handoff
effect opens cases, the answers to its "leave a message?" menu, a hook before the engine
relays typed text while a case is open (``routing.route`` says where it goes), quick exit
and erase close cases, the desk is a channel of the operations queue ("desk"), and the
unclaimed-case check runs with the scheduler. ``install(app, desk)`` adds it.
"""

from __future__ import annotations

from types import MappingProxyType

from helpline.events import Handoff
from helpline.feature import Feature, Host, Plugs, Services
from helpline.handoff.cases import Cases
from helpline.handoff.desk import Desk, DeskEvent
from helpline.handoff.relay import LEGACY_MENU_VAR, MENU_ASKED, OWNER, DeskRecords, HandoffService
from helpline.handoff.schema import HANDOFF
from helpline.resources.store import Directory
from helpline.store import Store

__all__ = ["Desk", "DeskEvent", "HandoffFeature", "HandoffService", "install"]


class HandoffFeature(Feature[DeskRecords]):
    name = OWNER
    part = HANDOFF
    legacy_vars = MappingProxyType({LEGACY_MENU_VAR: MENU_ASKED})

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.service: HandoffService | None = None  # once plugged in

    def repository(self, store: Store) -> DeskRecords:
        return DeskRecords(Cases(store), Directory(store))

    def plug(self, services: Services[DeskRecords], plugs: Plugs) -> None:
        self.service = service = HandoffService(services, self.desk)
        plugs.effect(Handoff, service.on_handoff)
        plugs.picks(service.on_pick)
        plugs.before_engine(service.intercept)
        plugs.fact("desk", service.desk_takes_messages)
        plugs.fact("advocates", service.advocates_on_shift)
        plugs.on_leave(service.on_leave)
        plugs.channel(service.channel)
        plugs.every("handoff-unclaimed", service.check_unclaimed)

    def added(self) -> None:
        if self.service is not None:
            self.desk.listen(self.service.on_desk_event)


def install(app: Host, desk: Desk) -> HandoffService:
    """Add the desk to ``app``; returns its service (what tests and the desk's admin
    commands reach)."""
    feature = HandoffFeature(desk)
    app.add(feature)
    assert feature.service is not None
    return feature.service
