"""Lookups at national size: the directory is searched through indexes, not read whole.

Each service carries, beside its record, the facts matching weighs (``ranking.facts``),
and two small tables say which needs each service has and which places it serves (the
normalised terms matching uses: its areas, towns and postcodes). A lookup resolves the
typed area against every place the directory knows (``Places``, a word index built again
only when services or places changed), lets the ranking index (``ranking.RankIndex``)
choose the few services that can be among the first ``RESULTS``, parses only those (kept
in a bounded cache), and ranks them with ``matching.match``, the same pure function the
small directory used.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process

from helpline.flow.engine import normalize
from helpline.resources import matching
from helpline.resources.matching import Criteria, Outcome
from helpline.resources.model import Capacity, Service

# How many services a lookup returns, best first: the browse keeps the first 100
# (browse.MAX_KEPT; a test holds the two together).
RESULTS = 100
# Parsed services kept between lookups. Each is a dozen objects the garbage collector walks
# (with 20,000 kept, the loop was held up to 112 ms in the 100,000-service benchmark); a
# lookup parses at most about RESULTS.
PARSED_CACHE = 1000
SLICE = 50  # services parsed or ranked before the event loop gets a turn
# Short forms people type for the words of place names, read as the full word both in what
# is typed and in the directory's places ("St. Albury", "St Albury", "Saint Albury").
SHORT_FORMS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort"}
TYPO_SCORE = 85  # how close (rapidfuzz ratio, 0-100) a misspelt place must be to be taken


def canonical(text: str) -> str:
    return " ".join(SHORT_FORMS.get(w, w) for w in normalize(text).split())


@dataclass(frozen=True)
class IndexRow:
    """What the index keeps of one service."""

    needs: tuple[str, ...]
    terms: tuple[str, ...]
    anywhere: bool
    active: bool
    latitude: float | None
    longitude: float | None


# What matching reads of a service; the rest (descriptions, phones, hours...) is read only
# for the cards on screen.
MATCH_FIELDS = {"id", "name", "status", "needs", "areas", "languages", "interpretation",
                "min_age", "max_age", "genders", "free", "documents", "locations"}
LOCATION_FIELDS = {"city", "postcode", "confidential", "latitude", "longitude"}


_MATCH_INCLUDE: dict[str, Any] = {**{f: True for f in MATCH_FIELDS - {"locations"}},
                                  "locations": {"__all__": LOCATION_FIELDS}}


def match_data(service: Service) -> str:
    """The service as matching needs it, as JSON (parsed again as a ``Service``)."""
    return service.model_dump_json(include=_MATCH_INCLUDE, exclude_defaults=True)


def index_row(service: Service, terms: set[str] | None = None) -> IndexRow:
    """``terms``: ``matching._terms(service)``, when worked out already."""
    point = next(((loc.latitude, loc.longitude) for loc in service.locations
                  if not loc.confidential and loc.latitude is not None
                  and loc.longitude is not None), (None, None))
    if terms is None:
        terms = matching._terms(service)
    anywhere = any(matching._place(a) == "anywhere" for a in service.areas) or not terms
    return IndexRow(tuple(service.needs), tuple(sorted(terms)), anywhere,
                    service.status == "active", *point)


@dataclass(frozen=True)
class Resolved:
    hits: dict[str, int] | None  # as matching._resolve: None when no place is named
    read_as: str = ""  # a misspelt place taken to mean this one (to be said)
    suggestions: tuple[str, ...] = ()  # several places spelt nearly so: ask which


class Places:
    """Every place of the directory, indexed by word, to resolve a typed area quickly,
    forgiving case, accents, "St."/"Saint" and small typos."""

    def __init__(self) -> None:
        self.gazetteer: dict[str, set[str]] = {}
        self.inside: dict[str, set[str]] = {}
        self.by_word: dict[str, list[str]] = {}  # canonical word -> canonical places
        self.by_compact: dict[str, list[str]] = {}
        self.originals: dict[str, list[str]] = {}  # canonical place -> normalised places
        self.names: list[str] = []  # canonical places, for typos
        self.digits: set[str] = set()  # canonical places with a digit (postcodes)
        self.shown: dict[str, str] = {}  # normalised place -> as the directory writes it
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
            out.shown.setdefault(key, place)
            out.shown.setdefault(normal, parent)
            known.add(key)
            known.add(normal)
            if n % (SLICE * 10) == 0:
                await asyncio.sleep(0)
        known.discard("")
        for n, term in enumerate(known):
            canon = canonical(term)
            out.originals.setdefault(canon, []).append(term)
            if any(ch.isdigit() for ch in term):
                out.by_compact.setdefault(canon.replace(" ", ""), []).append(canon)
                out.digits.add(canon)
            if n % (SLICE * 20) == 0:
                await asyncio.sleep(0)
        for n, canon in enumerate(out.originals):
            for word in set(canon.split()):
                out.by_word.setdefault(word, []).append(canon)
            if n % (SLICE * 20) == 0:
                await asyncio.sleep(0)
        out.names = sorted(out.originals)
        out.count = len(known)
        return out

    def resolve(self, typed: str) -> Resolved:
        """As ``matching._resolve`` over every known place; only places sharing a word with
        the typed text (or a postcode written without its space) can be named by it. When
        none is, one place spelt nearly so (and only one that close) is taken instead."""
        text = canonical(typed)
        near: set[str] = set(self.by_compact.get(text.replace(" ", ""), ()))
        for word in set(text.split()):
            near.update(self.by_word.get(word, ()))
        compact = text.replace(" ", "")
        padded = f" {text} "
        named = [c for c in near  # matching._named, with what it works out kept
                 if f" {c} " in padded or (len(text) >= 3 and padded in f" {c} ")
                 or (c in self.digits and compact == c.replace(" ", ""))]
        read_as = ""
        if not named and len(text) >= 4 and not any(ch.isdigit() for ch in text):
            best = process.extract(text, self.names, scorer=fuzz.ratio,
                                   score_cutoff=TYPO_SCORE, limit=4)
            if len(best) == 1 or (best and best[1][1] < best[0][1] - 5):
                named = [best[0][0]]
                read_as = self._shown(best[0][0])
            elif best:  # several as close: the person says which
                close = [b[0] for b in best if b[1] >= best[0][1] - 5][:3]
                return Resolved(None, suggestions=tuple(self._shown(c) for c in close))
        if not named:
            return Resolved(None)
        hits = {term: 3 for canon in named for term in self.originals[canon]}
        return Resolved(matching._expand(hits, self.gazetteer, self.inside), read_as)

    def _shown(self, canon: str) -> str:
        original = self.originals[canon][0]
        return self.shown.get(original, original.title())


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
