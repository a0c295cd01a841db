"""Lookups at national size: the directory is searched through indexes, not read whole.

``services`` carries ``active``, ``anywhere`` and a point per service, and two small tables
say which needs each service has and which places it serves (the normalised terms matching
uses: its areas, towns and postcodes). A lookup asks SQLite for the candidates (the need
asked for, and the places the typed area names or services that work anywhere), parses only
those (kept in a bounded cache), and ranks them with ``matching.match``, the same pure
function the small directory used. Parsing and ranking go a slice at a time, giving the
event loop back between slices (worker threads were tried: they wait for the GIL and held
the loop up to 28 ms), so no lookup holds it more than a few milliseconds.

Typed areas are resolved against every place the directory knows through a word index
(``Places``), built again only when the directory changed.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from helpline.flow.engine import normalize
from helpline.resources import matching
from helpline.resources.matching import Criteria, Outcome
from helpline.resources.model import Capacity, Service

# At most this many services are weighed by one lookup. Only a search with neither a need
# nor an area (or a shared location) at national size has more; then those with a recent
# opening come first, then by name (or the nearest, for a shared location).
MAX_CANDIDATES = 3000
PARSED_CACHE = 20_000  # parsed services kept between lookups
SLICE = 50  # services parsed or ranked before the event loop gets a turn


@dataclass(frozen=True)
class IndexRow:
    """What the index keeps of one service."""

    needs: tuple[str, ...]
    terms: tuple[str, ...]
    anywhere: bool
    active: bool
    latitude: float | None
    longitude: float | None


def index_row(service: Service) -> IndexRow:
    point = next(((loc.latitude, loc.longitude) for loc in service.locations
                  if not loc.confidential and loc.latitude is not None
                  and loc.longitude is not None), (None, None))
    return IndexRow(tuple(service.needs), tuple(sorted(matching._terms(service))),
                    matching._anywhere(service), service.status == "active", *point)


class Places:
    """Every place of the directory, indexed by word, to resolve a typed area quickly."""

    def __init__(self) -> None:
        self.gazetteer: dict[str, set[str]] = {}
        self.inside: dict[str, set[str]] = {}
        self.by_word: dict[str, list[str]] = {}
        self.by_compact: dict[str, list[str]] = {}
        self.count = 0

    @classmethod
    async def build(cls, terms: Iterable[str], places: Iterable[tuple[str, str]]) -> Places:
        """From the directory's terms and (place, larger area) pairs, as
        ``matching._gazetteer`` and ``_inside`` do, a slice at a time."""
        out = cls()
        known: set[str] = set(terms)
        for n, (place, parent) in enumerate(places):
            key, normal = normalize(place), normalize(parent)
            out.gazetteer.setdefault(key, set()).add(normal)
            out.inside.setdefault(normal, set()).add(key)
            known.add(key)
            known.add(normal)
            if n % (SLICE * 10) == 0:
                await asyncio.sleep(0)
        known.discard("")
        for n, term in enumerate(known):
            for word in set(term.split()):
                out.by_word.setdefault(word, []).append(term)
            if any(ch.isdigit() for ch in term):
                out.by_compact.setdefault(term.replace(" ", ""), []).append(term)
            if n % (SLICE * 20) == 0:
                await asyncio.sleep(0)
        out.count = len(known)
        return out

    def resolve(self, typed: str) -> dict[str, int] | None:
        """As ``matching._resolve`` over every known place; only places sharing a word with
        the typed text (or a postcode written without its space) can be named by it."""
        text = normalize(typed)
        near: set[str] = set(self.by_compact.get(text.replace(" ", ""), ()))
        for word in set(text.split()):
            near.update(self.by_word.get(word, ()))
        return matching._resolve(text, near, self.gazetteer, self.inside)


async def rank_in_slices(services: Sequence[Service],
                         capacities: Mapping[str, Sequence[Capacity]],
                         criteria: Criteria, now: float, stale_hours: float, locale: str,
                         hits: dict[str, int] | None) -> Outcome:
    """``matching.match`` over slices of the candidates, merged: the same order as one
    call (the order is total: it ends with the service id)."""
    outcomes: list[Outcome] = []
    for start in range(0, max(len(services), 1), SLICE):
        outcomes.append(matching.match(services[start:start + SLICE], capacities, {},
                                       criteria, now, stale_hours, locale, hits))
        await asyncio.sleep(0)
    merged = list(heapq.merge(*(o.matches for o in outcomes), key=matching.rank))
    return Outcome(merged, unknown_area=outcomes[0].unknown_area)


class ParsedCache:
    """Parsed services by id, the least recently used dropped past ``size``."""

    def __init__(self, size: int = PARSED_CACHE) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[str, Service]] = OrderedDict()

    async def parse(self, rows: Sequence[tuple[str, str]]) -> list[Service]:
        out = []
        items = self._items
        for n, (ident, data) in enumerate(rows):
            if n % SLICE == SLICE - 1:
                await asyncio.sleep(0)
            kept = items.get(ident)
            if kept is not None and kept[0] == data:
                items.move_to_end(ident)
                out.append(kept[1])
                continue
            service = Service.model_validate_json(data)
            items[ident] = (data, service)
            out.append(service)
        while len(items) > self.size:
            items.popitem(last=False)
        return out
