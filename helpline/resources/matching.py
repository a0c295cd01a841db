"""Which services fit what a person chose to tell, best first. Pure: no I/O, no clock.

* **Filters** (a service that fails one is not shown): the need (unless "something
  else"), the area (when the place is known to the directory; services that work anywhere
  pass), the age group and gender when the service is limited to others, and status.
* **Fit** (ranks what passed): the place itself over a larger area it lies in over
  "anywhere"; a service made for the person's age group or gender; speaking the language
  asked for (or offering interpretation); free when cost matters; no documents asked for
  when the person has none.
* **Order**: confirmed openings first (counted recently, more than zero), then fit; among
  equals, services known to be full come after those whose openings are not known.
* **Near a shared location** (instead of a typed area): services with a known,
  non-confidential location come first, nearest first; then the others (services that work
  anywhere, or whose only place is confidential) in the order above. The point is used for
  this one ranking and kept nowhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from helpline.events import SHARED_LOCATION
from helpline.flow.engine import normalize
from helpline.i18n import babel_locale
from helpline.resources.model import GENDERS, Capacity, LanguageTag, Service

UNSAID = ("", "not_said", "skip", "any", "none_said", "prefer_not_to_say")


def _one(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


@dataclass(frozen=True)
class Criteria:
    needs: tuple[str, ...] = ()
    area: str = ""
    language: str = ""
    age_group: str = ""  # under_18 | 18_plus
    gender: str = ""  # women | men | nonbinary
    cost: str = ""  # free: only what costs nothing matters
    documents: str = ""  # none: the person has no ID documents
    # A location shared this turn (Lookup.near): never kept, never shown.
    near: tuple[float, float] | None = field(default=None, repr=False)

    @classmethod
    def from_lookup(cls, criteria: Mapping[str, Any]) -> Criteria:
        raw_needs = criteria.get("needs")
        needs = raw_needs if isinstance(raw_needs, list) else [raw_needs]

        def word(key: str) -> str:
            value = normalize(_one(criteria.get(key))).replace(" ", "_")
            return "" if value in UNSAID else value

        age = {"minor": "under_18", "under18": "under_18", "adult": "18_plus",
               "18plus": "18_plus"}.get(word("age_group"), word("age_group"))
        gender = {"woman": "women", "man": "men", "female": "women", "male": "men",
                  "non_binary": "nonbinary"}.get(word("gender"), word("gender"))
        return cls(
            needs=tuple(normalize(str(n)).replace(" ", "_") for n in needs if n),
            area="" if _one(criteria.get("area")) == SHARED_LOCATION
            else _one(criteria.get("area")),
            language=_one(criteria.get("language")),
            age_group=age if age in ("under_18", "18_plus") else "",
            gender=gender if gender in GENDERS else "",
            cost=word("cost"), documents=word("documents"),
        )


OpeningKind = Literal["open", "full", "stale", "unknown"]


@dataclass(frozen=True)
class Openings:
    kind: OpeningKind
    shown: Capacity | None = None  # the count to show (the largest fresh one, or the latest)


def openings(capacities: Sequence[Capacity], now: float, stale_hours: float) -> Openings:
    if not capacities:
        return Openings("unknown")
    fresh = [c for c in capacities if now - c.updated <= stale_hours * 3600]
    stale = [c for c in capacities if c not in fresh]
    open_ = [c for c in fresh if c.available > 0]
    if open_:
        return Openings("open", max(open_, key=lambda c: (c.available, c.updated)))
    if stale:
        return Openings("stale", max(stale, key=lambda c: c.updated))
    return Openings("full", max(fresh, key=lambda c: c.updated))


@dataclass(frozen=True)
class Match:
    service: Service
    fit: int
    openings: Openings
    speaks: bool = False  # speaks the language asked for
    km: float | None = None  # from a shared location to the nearest non-confidential place


@dataclass
class Outcome:
    matches: list[Match]
    unknown_area: bool = False  # the place typed is not in the directory: area not used
    area_read_as: str = ""  # the place a misspelt area was taken to mean (said to the person)
    area_suggestions: tuple[str, ...] = ()  # places spelt nearly like an unknown area


NOT_RESOLVED: dict[str, int] = {}


def match(services: Sequence[Service], capacities: Mapping[str, Sequence[Capacity]],
          places: Mapping[str, Sequence[str]], criteria: Criteria, now: float,
          stale_hours: float = 72.0, locale: str = "en",
          area_hits: dict[str, int] | None = NOT_RESOLVED) -> Outcome:
    """``area_hits``: the typed area already resolved against the whole directory (by
    ``search.Places``; None when it names no place), when ``services`` are only the
    candidates an index found."""
    outcome = Outcome([])
    if area_hits is NOT_RESOLVED:
        area_hits = None
        if normalize(criteria.area):
            gazetteer = _gazetteer(places)
            known = {t for s in services for t in _terms(s)} | set(gazetteer)
            known |= {parent for parents in gazetteer.values() for parent in parents}
            area_hits = _resolve(normalize(criteria.area), known, gazetteer)
    if normalize(criteria.area):
        outcome.unknown_area = area_hits is None
    wanted = _wanted_languages(criteria.language, locale)
    for service in services:
        if service.status != "active":
            continue
        fit = _fit(service, criteria, area_hits)
        if fit is None:
            continue
        speaks = bool(wanted) and _speaks(service, wanted, locale)
        if speaks:
            fit += 2
        elif wanted and service.interpretation:
            fit += 1
        state = openings(capacities.get(service.id, ()), now, stale_hours)
        km = _nearest_km(service, criteria.near) if criteria.near is not None else None
        outcome.matches.append(Match(service, fit, state, speaks, km))
    outcome.matches.sort(key=rank)
    return outcome


def rank(m: Match) -> tuple[bool, float, int, int, str, str]:
    """The order of results (lower first): near a shared location, openings, fit, name."""
    return (m.km is None, m.km or 0.0, _TIER[m.openings.kind], -m.fit,
            m.service.name.casefold(), m.service.id)


EARTH_RADIUS_KM = 6371.0088


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _nearest_km(service: Service, near: tuple[float, float]) -> float | None:
    points = [(loc.latitude, loc.longitude) for loc in service.locations
              if not loc.confidential and loc.latitude is not None
              and loc.longitude is not None]
    return min((distance_km(near, p) for p in points), default=None)


_TIER = {"open": 0, "unknown": 1, "stale": 1, "full": 2}


def _fit(service: Service, c: Criteria, area_hits: dict[str, int] | None) -> int | None:
    fit = 0
    needs = set(service.needs)
    if c.needs and not set(c.needs) <= {"other"}:
        if not needs & set(c.needs):
            return None
    elif "other" in c.needs and "other" in needs:
        fit += 1
    if area_hits is not None:
        near = max((area_hits.get(t, 0) for t in _terms(service)), default=0)
        if near == 0 and not _anywhere(service):
            return None
        fit += near or 1
    if c.age_group == "under_18":
        if service.min_age is not None and service.min_age >= 18:
            return None
        if service.max_age is not None and service.max_age < 26:
            fit += 1
    elif c.age_group == "18_plus":
        if service.max_age is not None and service.max_age < 18:
            return None
        if service.min_age is not None and service.min_age >= 18:
            fit += 1
    if c.gender and service.genders:
        if c.gender not in service.genders:
            return None
        fit += 1
    if c.cost == "free":
        fit += 1 if service.free else -1 if service.free is False else 0
    if c.documents == "none" and service.documents:
        fit -= 1
    return fit


# ------------------------------------------------------------------ places


@lru_cache(maxsize=1 << 16)
@lru_cache(maxsize=1 << 16)
def _place(text: str) -> str:
    """``normalize`` of a place name (the same few thousand names, again and again: each
    service's towns and postcodes, at every lookup and import)."""
    return normalize(text)


def _terms(service: Service) -> set[str]:
    """The places a service serves: its areas, and the towns and postcodes it is in (not
    the region of its address: a town's service does not serve the whole region)."""
    terms = {_place(a) for a in service.areas if _place(a) != "anywhere"}
    for loc in service.locations:
        terms.update(_place(p) for p in (loc.city, loc.postcode) if p)
    terms.discard("")
    return terms


def _anywhere(service: Service) -> bool:
    return any(_place(a) == "anywhere" for a in service.areas) or not _terms(service)


def _gazetteer(places: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for place, parents in places.items():
        out.setdefault(normalize(place), set()).update(normalize(p) for p in parents)
    return out


def _mentions(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def _named(typed: str, term: str) -> bool:
    """Does the typed area name this place of the directory?"""
    return (_mentions(typed, term) or (len(typed) >= 3 and _mentions(term, typed))
            or (any(ch.isdigit() for ch in term)
                and typed.replace(" ", "") == term.replace(" ", "")))


def _inside(gazetteer: Mapping[str, set[str]]) -> dict[str, set[str]]:
    inside: dict[str, set[str]] = {}
    for place, parents in gazetteer.items():
        for parent in parents:
            inside.setdefault(parent, set()).add(place)
    return inside


def _resolve(typed: str, known: Iterable[str], gazetteer: Mapping[str, set[str]],
             inside: Mapping[str, set[str]] | None = None) -> dict[str, int] | None:
    """Places of the directory the typed text names (3), the larger areas they lie in and
    the smaller places inside them (2); None when it names none."""
    hits = {term: 3 for term in known if _named(typed, term)}
    if not hits:
        return None
    if inside is None:
        inside = _inside(gazetteer)
    return _expand(hits, gazetteer, inside)


def _expand(hits: dict[str, int], gazetteer: Mapping[str, set[str]],
            inside: Mapping[str, set[str]]) -> dict[str, int]:
    """Add the larger areas the named places lie in, and the places inside them (2)."""
    for links in (gazetteer, inside):  # up from what was named, then down from it
        frontier = [term for term, score in hits.items() if score == 3]
        while frontier:
            for other in links.get(frontier.pop(), ()):
                if other not in hits:
                    hits[other] = 2
                    frontier.append(other)
    return hits


# ------------------------------------------------------------------ languages


@lru_cache(maxsize=64)
def _language_table(locale: str) -> dict[str, str]:
    """Normalized language name -> code, in ``locale`` (and in English)."""
    table: dict[str, str] = {}
    for where in ("en", locale):
        found = babel_locale(where)
        if found is not None:
            for code, name in found.languages.items():
                if "_" not in code:
                    table.setdefault(normalize(name), code)
    return table


@lru_cache(maxsize=512)
def _names_of(code: str, locale: str) -> frozenset[str]:
    names = {normalize(code)}
    for where in ("en", code, locale):
        found = babel_locale(where)
        if found is not None and code in found.languages:
            names.add(normalize(found.languages[code]))
    return frozenset(names)


def _wanted_languages(typed: str, locale: str) -> set[str]:
    text = normalize(typed)
    if not text:
        return set()
    table = _language_table(locale)
    codes = {code for name, code in table.items() if _mentions(text, name)}
    if text in table.values():
        codes.add(text)
    return codes or ({text} if len(text) >= 3 else set())


def _tag_code(tag: LanguageTag, locale: str) -> str:
    if tag.code:
        return tag.code.split("-")[0].lower()
    return _language_table(locale).get(normalize(tag.name or ""), normalize(tag.name or ""))


def _speaks(service: Service, wanted: set[str], locale: str) -> bool:
    for tag in service.languages:
        code = _tag_code(tag, locale)
        if code in wanted or _names_of(code, locale) & wanted:
            return True
    return False
