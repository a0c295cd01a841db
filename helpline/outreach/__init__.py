"""Outreach campaigns, paced and safe (docs/outreach.md).

``OutreachFeature(signal)`` plugs outreach into the app (``helpline.feature``): a timed job
sends campaign messages through the Signal channel, paced (``helpline.outreach.pacing``);
a hook before the engine (ahead of the desk's) counts replies, opt-outs, deep links and
keywords; a leave hook suppresses the number of someone a campaign reached who quick-exits
or erases their data. Campaigns are made and steered with ``helpline outreach``
(``helpline.outreach.cli``). ``install(app, signal)`` adds it.
"""

from __future__ import annotations

from helpline.channels.base import Channel
from helpline.feature import Feature, Host, Plugs, Services
from helpline.outreach.pacing import Pacing
from helpline.outreach.schema import OUTREACH
from helpline.outreach.service import OWNER, OutreachService
from helpline.outreach.store import Campaigns
from helpline.store import Store

__all__ = ["OutreachFeature", "OutreachService", "install"]

# Before the desk's hook (100): a reply to a campaign is counted whatever happens next.
HOOK_ORDER = 50


class OutreachFeature(Feature[Campaigns]):
    name = OWNER
    part = OUTREACH

    def __init__(self, signal: Channel | None, pacing: Pacing | None = None) -> None:
        self.signal = signal
        self.pacing = pacing
        self.service: OutreachService | None = None

    def repository(self, store: Store) -> Campaigns:
        return Campaigns(store)

    def plug(self, services: Services[Campaigns], plugs: Plugs) -> None:
        pacing = self.pacing or Pacing(services.settings.outreach, services.settings.timezone)
        self.service = service = OutreachService(services, self.signal, pacing)
        plugs.before_engine(service.intercept, HOOK_ORDER)
        plugs.on_leave(service.on_leave)
        plugs.every("outreach-send", service.tick)
        on_delivery = getattr(self.signal, "on_delivery", None)
        if on_delivery is not None:  # the Signal channel: its delivery receipts
            on_delivery(service.on_delivered)


def install(app: Host, signal: Channel | None, pacing: Pacing | None = None
            ) -> OutreachService:
    """Add outreach to ``app``; returns its service (tests, the desk's /dnc, the console)."""
    feature = OutreachFeature(signal, pacing)
    app.add(feature)
    assert feature.service is not None
    return feature.service
