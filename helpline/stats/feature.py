"""Statistics as a feature: it observes what happens (the app's and every feature's
``Happening``s) and counts each into its bucket. It keeps nothing of anyone."""

from __future__ import annotations

from helpline.feature import Feature, Happening, Plugs, Services
from helpline.stats.counts import Stats
from helpline.stats.schema import STATS
from helpline.store import Store


class StatsFeature(Feature[Stats]):
    name = "stats"
    part = STATS

    def __init__(self, zone: str = "UTC") -> None:
        self.zone = zone

    def repository(self, store: Store) -> Stats:
        return Stats(store.database, self.zone)

    def plug(self, services: Services[Stats], plugs: Plugs) -> None:
        stats = services.repository

        async def count(happening: Happening) -> None:
            await stats.count(happening.event, happening.at, happening.channel,
                              happening.language.lower(), happening.detail, happening.campaign)

        plugs.observe(count)


__all__ = ["StatsFeature"]
