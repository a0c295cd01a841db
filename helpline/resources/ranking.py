"""Ranking a national directory without reading it: a compact index of what matching weighs.

``matching.match`` is the rule: which services pass, and in what order. Applied to every
candidate of a broad lookup at 300,000 services it parsed and weighed tens of thousands of
services (seconds a lookup). This module keeps, for every active service, only the facts
the rule reads (needs, places served, ages, genders, languages, cost, documents,
interpretation, points, openings), as arrays in memory (about 60 bytes a service), and
computes the rule's own sort key for all of them at once with numpy:

    (tier of openings, -fit, name casefolded, id)

or, near a shared location, the distance first. It returns the few services that can be
among the first ``limit``; only those are read, parsed and ranked by ``matching.match``
itself, which makes the final order (so the order is the rule's, not a copy of it).

The facts are written beside each service when it is indexed (``facts``), and read back
a slice at a time when the directory's shape changed (services or places: the
``directory_shape`` counter); openings are read again alone when only they changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from helpline.flow.engine import normalize
from helpline.resources import matching
from helpline.resources.matching import Criteria
from helpline.resources.model import LanguageTag, Service

SEP = "\x1f"  # between the needs, terms or genders of one service (none contains it)
PAGE = 4000  # services read and indexed before the event loop gets a turn
NEAR_SLACK = 1e-9  # km: distances numpy and math compute alike to well within this

IntArray = npt.NDArray[np.int64]
Index32 = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

# The columns ``facts`` fills (migration: schema.RANKING_SQL).
FACT_COLUMNS = ("sort_name", "f_needs", "f_terms", "f_genders", "f_languages", "f_points",
                "min_age", "max_age", "f_flags")
FREE, NOT_FREE, DOCUMENTS, INTERPRETATION = 1, 2, 4, 8


def _joined(values: Sequence[str]) -> str | None:
    return SEP.join(v.replace(SEP, "") for v in values) or None


def language_key(tag: LanguageTag) -> str:
    """As ``matching._tag_code`` sees a tag, before the locale: its code, or its name."""
    if tag.code:
        return "c" + tag.code.split("-")[0].lower()
    return "n" + normalize(tag.name or "")


def facts(service: Service) -> tuple[object, ...]:
    """The values of FACT_COLUMNS for one service: what ``matching._fit``, ``rank`` and
    ``_nearest_km`` read of it, and nothing else."""
    points = [(loc.latitude, loc.longitude) for loc in service.locations
              if not loc.confidential and loc.latitude is not None
              and loc.longitude is not None]
    languages = list(dict.fromkeys(language_key(t) for t in service.languages))
    flags = ((FREE if service.free is True else NOT_FREE if service.free is False else 0)
             | (DOCUMENTS if service.documents else 0)
             | (INTERPRETATION if service.interpretation else 0))
    return (service.name.casefold(), _joined(sorted(set(service.needs))),
            _joined(sorted(matching._terms(service))), _joined(sorted(set(service.genders))),
            json.dumps(languages) if languages else None,
            json.dumps(points) if points else None, service.min_age, service.max_age, flags)


def _empty() -> Index32:
    return np.zeros(0, dtype=np.int32)


def _postings(lists: dict[str, list[int]]) -> dict[str, Index32]:
    return {key: np.asarray(items, dtype=np.int32) for key, items in lists.items()}


@dataclass
class Openings:
    """The openings counts of indexed services, read at one directory version."""

    version: int
    service: Index32 = field(default_factory=_empty)  # index of the service
    available: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    updated: FloatArray = field(default_factory=lambda: np.zeros(0))


@dataclass
class RankIndex:
    """The facts of every active service, in the order of (name casefolded, id): a
    service's position in these arrays is its place in that order."""

    shape: int
    rowids: IntArray
    anywhere: BoolArray
    min_age: FloatArray  # NaN: not said
    max_age: FloatArray
    flags: npt.NDArray[np.int8]
    needs: dict[str, BoolArray]  # need -> which services have it
    terms: dict[str, Index32]  # normalised place -> the services that serve it
    genders: dict[str, BoolArray]  # gender -> which services are for it (among others)
    limited: BoolArray  # only for some genders
    languages: dict[str, Index32]  # language_key -> the services that speak it
    lat: FloatArray  # a service's first public place (NaN: none)
    lon: FloatArray
    more_of: Index32  # its other public places: the service of each
    more_lat: FloatArray
    more_lon: FloatArray
    openings: Openings | None = None
    everywhere: Index32 = field(default_factory=_empty)  # the services that work anywhere

    def __post_init__(self) -> None:
        self.everywhere = np.flatnonzero(self.anywhere).astype(np.int32)

    @property
    def size(self) -> int:
        return len(self.rowids)

    def position(self, rowids: IntArray) -> Index32:
        """The index of each of these rowids (-1 where not indexed)."""
        if not self.size:
            return np.full(len(rowids), -1, dtype=np.int32)
        order = np.argsort(self.rowids)
        ranked = self.rowids[order]
        at = np.minimum(np.searchsorted(ranked, rowids), self.size - 1)
        return np.where(ranked[at] == rowids, order[at], -1).astype(np.int32)

    # ------------------------------------------------------------- choosing

    def choose(self, criteria: Criteria, hits: dict[str, int] | None, now: float,
               stale_hours: float, locale: str, limit: int) -> IntArray:
        """The rowids of the services that can be among the first ``limit`` of
        ``matching.match`` (all of them, and a few more only where distances tie).

        Each test of ``matching._fit`` is made here over the candidates at once: the
        services of the places named (and those that work anywhere), or of the need, or
        all; the work grows with the candidates, not the directory."""
        n = self.size
        if limit <= 0 or n == 0:
            return np.zeros(0, dtype=np.int64)
        cand: Index32 | None = None
        fit: npt.NDArray[np.int64] | None = None
        if hits is not None:
            area = np.zeros(n, dtype=np.int8)
            named = [self.everywhere]
            for term, score in sorted(hits.items(), key=lambda item: item[1]):
                at = self.terms.get(term)
                if at is not None and score > 0:
                    area[at] = np.maximum(area[at], score)
                    named.append(at)
            cand = np.unique(np.concatenate(named))
            near_score = area[cand].astype(np.int64)
            fit = np.where(near_score > 0, near_score, 1)  # only anywhere has 0 here
        needs = set(criteria.needs)
        if criteria.needs and not needs <= {"other"}:
            wanted = np.zeros(n, dtype=np.bool_)
            for need in needs:
                mask = self.needs.get(need)
                if mask is not None:
                    wanted |= mask
            if cand is None:
                cand = np.flatnonzero(wanted).astype(np.int32)
            else:
                chosen = wanted[cand]
                cand, fit = cand[chosen], None if fit is None else fit[chosen]
        if cand is None:
            cand = np.arange(n, dtype=np.int32)
        if fit is None:
            fit = np.zeros(len(cand), dtype=np.int64)
        if "other" in needs and not (criteria.needs and not needs <= {"other"}):
            other = self.needs.get("other")
            if other is not None:
                fit += other[cand]
        keep = np.ones(len(cand), dtype=np.bool_)
        if criteria.age_group == "under_18":
            keep &= ~(self.min_age[cand] >= 18)
            fit += self.max_age[cand] < 26
        elif criteria.age_group == "18_plus":
            keep &= ~(self.max_age[cand] < 18)
            fit += self.min_age[cand] >= 18
        if criteria.gender:
            limited = self.limited[cand]
            serves = self.genders.get(criteria.gender)
            for_them = serves[cand] if serves is not None else np.zeros(len(cand), np.bool_)
            keep &= ~limited | for_them
            fit += limited & for_them
        flags = self.flags[cand]
        if criteria.cost == "free":
            fit += (flags & FREE) > 0
            fit -= (flags & NOT_FREE) > 0
        if criteria.documents == "none":
            fit -= (flags & DOCUMENTS) > 0
        wanted_languages = matching._wanted_languages(criteria.language, locale)
        if wanted_languages:
            speaks = np.zeros(n, dtype=np.bool_)
            table = matching._language_table(locale) if any(
                k.startswith("n") for k in self.languages) else {}
            for language, at in self.languages.items():
                code = (language[1:] if language.startswith("c")
                        else table.get(language[1:], language[1:]))
                if code in wanted_languages or (
                        matching._names_of(code, locale) & wanted_languages):
                    speaks[at] = True
            fit += np.where(speaks[cand], 2, np.where((flags & INTERPRETATION) > 0, 1, 0))
        cand, fit = cand[keep], fit[keep]
        tier = np.ones(len(cand), dtype=np.int64)
        held = self.openings
        if held is not None and len(held.service):
            fresh = (now - held.updated) <= stale_hours * 3600
            state = np.ones(n, dtype=np.int8)
            state[held.service] = 2
            state[held.service[~fresh]] = 1
            state[held.service[fresh & held.available]] = 0
            tier = state[cand].astype(np.int64)
        # The order of matching.rank after the distance: tier, -fit, then name and id,
        # which is the position itself. fit is a small number: 64 - fit fits 8 bits.
        key = (tier << 48) | ((64 - fit) << 32) | cand.astype(np.int64)
        if criteria.near is None:
            return self.rowids[cand[_first(key, limit)]]
        return self.rowids[cand[self._nearest(criteria.near, cand, key, limit)]]

    def _nearest(self, near: tuple[float, float], cand: Index32, key: IntArray,
                 limit: int) -> IntArray:
        """Positions in ``cand``: the nearest first (as ``matching._nearest_km``: the
        service's nearest public place), then those with no place, in the order of
        ``key``."""
        km = _distance_km(near, self.lat[cand], self.lon[cand])
        if len(self.more_of):
            local = np.full(self.size, -1, dtype=np.int64)
            local[cand] = np.arange(len(cand))
            mine = local[self.more_of]
            taken = mine >= 0
            np.minimum.at(km, mine[taken], _distance_km(near, self.more_lat[taken],
                                                         self.more_lon[taken]))
        placed = np.flatnonzero(np.isfinite(km))
        if len(placed) >= limit:
            far = np.partition(km[placed], limit - 1)[limit - 1]
            close: IntArray = placed[km[placed] <= far * (1 + NEAR_SLACK) + NEAR_SLACK]
            return close
        unplaced = np.flatnonzero(~np.isfinite(km))
        out: IntArray = np.concatenate(
            [placed, unplaced[_first(key[unplaced], limit - len(placed))]])
        return out


def _first(keys: IntArray, limit: int) -> IntArray:
    """The positions of the ``limit`` lowest keys (keys are unique)."""
    if len(keys) <= limit:
        return np.arange(len(keys))
    out: IntArray = np.argpartition(keys, limit - 1)[:limit]
    return out


def _distance_km(a: tuple[float, float], lat: FloatArray, lon: FloatArray) -> FloatArray:
    """``matching.distance_km`` over arrays of points."""
    lat1, lon1 = np.radians(a[0]), np.radians(a[1])
    lat2, lon2 = np.radians(lat), np.radians(lon)
    h = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    out: FloatArray = 2 * matching.EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return np.where(np.isnan(out), np.inf, out)  # no place: never near


# ------------------------------------------------------------------ building


ROWS_SQL = ("SELECT rowid, anywhere, min_age, max_age, f_flags, f_needs, f_terms, f_genders, "
            "f_languages, f_points, sort_name, id FROM services "
            "WHERE active = 1 AND sort_name IS NOT NULL")
FIRST_PAGE_SQL = f"{ROWS_SQL} ORDER BY sort_name, id LIMIT ?"
NEXT_PAGE_SQL = f"{ROWS_SQL} AND (sort_name, id) > (?, ?) ORDER BY sort_name, id LIMIT ?"
OPENINGS_SQL = "SELECT s.rowid, c.available, c.updated_at FROM service_capacity c " \
               "JOIN services s ON s.id = c.service_id WHERE s.active = 1"


async def build(db: Any, shape: int) -> RankIndex:
    """Every active service's facts, a page at a time (the event loop gets a turn between
    pages: at 300,000 services, 75 pages of a few milliseconds each)."""
    rowids: list[int] = []
    anywhere: list[bool] = []
    min_age: list[float] = []
    max_age: list[float] = []
    flags: list[int] = []
    needs: dict[str, list[int]] = {}
    terms: dict[str, list[int]] = {}
    genders: dict[str, list[int]] = {}
    languages: dict[str, list[int]] = {}
    lat: list[float] = []
    lon: list[float] = []
    more_of: list[int] = []
    more_lat: list[float] = []
    more_lon: list[float] = []
    nan = float("nan")
    last: tuple[str, str] | None = None
    while True:
        if last is None:
            rows = await db.execute_fetchall(FIRST_PAGE_SQL, (PAGE,))
        else:
            rows = await db.execute_fetchall(NEXT_PAGE_SQL, (*last, PAGE))
        rows = list(rows)
        if not rows:
            break
        for (rowid, wide, low, high, flag, f_needs, f_terms, f_genders, f_languages,
             f_points, _, _) in rows:
            i = len(rowids)
            rowids.append(rowid)
            anywhere.append(bool(wide))
            min_age.append(nan if low is None else low)
            max_age.append(nan if high is None else high)
            flags.append(flag or 0)
            if f_needs:
                for need in f_needs.split(SEP):
                    needs.setdefault(need, []).append(i)
            if f_terms:
                for term in f_terms.split(SEP):
                    terms.setdefault(term, []).append(i)
            if f_genders:
                for gender in f_genders.split(SEP):
                    genders.setdefault(gender, []).append(i)
            if f_languages:
                for language in json.loads(f_languages):
                    languages.setdefault(str(language), []).append(i)
            points = json.loads(f_points) if f_points else [(nan, nan)]
            lat.append(float(points[0][0]))
            lon.append(float(points[0][1]))
            for y, x in points[1:]:
                more_of.append(i)
                more_lat.append(float(y))
                more_lon.append(float(x))
        last = (str(rows[-1][10]), str(rows[-1][11]))
        await asyncio.sleep(0)
        if len(rows) < PAGE:
            break
    size = len(rowids)
    limited = np.zeros(size, dtype=np.bool_)
    built_genders = {gender: _mask(size, items) for gender, items in genders.items()}
    for mask in built_genders.values():
        limited |= mask
    built_terms: dict[str, Index32] = {}
    for n, (term, items) in enumerate(terms.items()):
        built_terms[term] = np.asarray(items, dtype=np.int32)
        if n % 2000 == 1999:
            await asyncio.sleep(0)
    return RankIndex(
        shape=shape, rowids=np.asarray(rowids, dtype=np.int64),
        anywhere=np.asarray(anywhere, dtype=np.bool_),
        min_age=np.asarray(min_age, dtype=np.float64),
        max_age=np.asarray(max_age, dtype=np.float64),
        flags=np.asarray(flags, dtype=np.int8),
        needs={need: _mask(size, items) for need, items in needs.items()},
        terms=built_terms, genders=built_genders, limited=limited,
        languages=_postings(languages), lat=np.asarray(lat, dtype=np.float64),
        lon=np.asarray(lon, dtype=np.float64), more_of=np.asarray(more_of, dtype=np.int32),
        more_lat=np.asarray(more_lat, dtype=np.float64),
        more_lon=np.asarray(more_lon, dtype=np.float64))


def _mask(size: int, items: list[int]) -> BoolArray:
    mask = np.zeros(size, dtype=np.bool_)
    mask[np.asarray(items, dtype=np.int64)] = True
    return mask


async def read_openings(db: Any, index: RankIndex, version: int) -> Openings:
    rows = list(await db.execute_fetchall(OPENINGS_SQL))
    if not rows:
        return Openings(version)
    rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    available = np.fromiter((int(r[1]) > 0 for r in rows), dtype=np.bool_, count=len(rows))
    updated = np.fromiter((float(r[2]) for r in rows), dtype=np.float64, count=len(rows))
    at = index.position(rowids)
    known = at >= 0
    return Openings(version, at[known], available[known], updated[known])
