"""Ranking a national directory without reading it: a compact index of what matching weighs.

``matching.match`` is the rule: which services pass, and in what order. Applied to every
candidate of a broad lookup at 300,000 services it parsed and weighed tens of thousands of
services (seconds a lookup). This module keeps, for every active service, only the facts
the rule reads (needs, places served, ages, genders, languages, cost, documents,
interpretation, points, openings), as arrays in memory (about 80 bytes a service), and
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
import math
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
# Services read and indexed before the event loop gets a turn: 3-4 ms of the loop's
# thread a page (1,000 held it 7-10 ms a page at 300,000 services, on a shared machine).
PAGE = 500
# Openings counts (or positions looked up) turned into arrays before the loop gets a turn.
OPENINGS_PAGE = 2000
NEAR_SLACK = 1e-9  # km: distances numpy and math compute alike to well within this
TIER = 128  # the openings' tier (0 open, 1 not known, 2 full) before 64 - fit in a bucket
LEFT_OUT = 3 * TIER  # the bucket of services a lookup leaves out: past every tier
FIRST_RADIUS_KM = 16.0  # the first band of latitude around a shared location (widened x4)

IntArray = npt.NDArray[np.int64]
Small = npt.NDArray[np.int16]
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


def facts(service: Service, terms: set[str] | None = None) -> tuple[object, ...]:
    """The values of FACT_COLUMNS for one service: what ``matching._fit``, ``rank`` and
    ``_nearest_km`` read of it, and nothing else (``terms``: ``matching._terms(service)``,
    when worked out already)."""
    points = [(loc.latitude, loc.longitude) for loc in service.locations
              if not loc.confidential and loc.latitude is not None
              and loc.longitude is not None]
    languages = list(dict.fromkeys(language_key(t) for t in service.languages))
    flags = ((FREE if service.free is True else NOT_FREE if service.free is False else 0)
             | (DOCUMENTS if service.documents else 0)
             | (INTERPRETATION if service.interpretation else 0))
    return (service.name.casefold(), _joined(sorted(set(service.needs))),
            _joined(sorted(matching._terms(service) if terms is None else terms)),
            _joined(sorted(set(service.genders))),
            json.dumps(languages) if languages else None,
            json.dumps(points) if points else None, service.min_age, service.max_age, flags)


def _empty() -> Index32:
    return np.zeros(0, dtype=np.int32)


@dataclass
class Openings:
    """The openings counts of indexed services, read at one directory version."""

    version: int
    service: Index32 = field(default_factory=_empty)  # index of the service
    available: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    updated: FloatArray = field(default_factory=lambda: np.zeros(0))
    # The tier of openings of every service (0 open, 1 not known, 2 full), as of a stale
    # limit: (stale_hours, the oldest fresh count's time, the newest stale one's, tiers).
    _tiers: tuple[float, float | None, float | None, Small] | None = None

    def tiers(self, size: int, now: float, stale_hours: float) -> Small:
        """Each service's tier of openings at ``now``, worked out again only when a count
        has turned stale since (or ``now`` went back before one did): the oldest fresh
        count is the first to turn stale, the newest stale one the first to be fresh
        again (``now - updated`` grows with ``now``, rounded or not)."""
        limit = stale_hours * 3600
        kept = self._tiers
        if kept is not None and kept[0] == stale_hours and (
                kept[1] is None or now - kept[1] <= limit) and (
                kept[2] is None or now - kept[2] > limit):
            return kept[3]
        fresh = (now - self.updated) <= limit
        state = np.ones(size, dtype=np.int16)
        state[self.service] = 2
        state[self.service[~fresh]] = 1
        state[self.service[fresh & self.available]] = 0
        oldest = float(self.updated[fresh].min()) if fresh.any() else None
        newest = float(self.updated[~fresh].max()) if (~fresh).any() else None
        self._tiers = (stale_hours, oldest, newest, state)
        return state


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
    need_at: dict[str, Index32]  # need -> the services that have it (their positions)
    terms: dict[str, Index32]  # normalised place -> the services that serve it
    genders: dict[str, BoolArray]  # gender -> which services are for it (among others)
    limited: BoolArray  # only for some genders
    languages: dict[str, Index32]  # language_key -> the services that speak it
    placed: BoolArray  # has a public place with a point
    point_of: Index32  # every public place's point, by latitude: the service of each
    point_lat: FloatArray
    point_lon: FloatArray
    by_rowid: IntArray  # positions in the order of rowid
    openings: Openings | None = None
    ranked: IntArray | None = None  # rowids[by_rowid] (sorted), made once

    @property
    def sorted_rowids(self) -> IntArray:
        if self.ranked is None:
            self.ranked = self.rowids[self.by_rowid]
        return self.ranked

    @property
    def size(self) -> int:
        return len(self.rowids)

    def position(self, rowids: IntArray) -> Index32:
        """The index of each of these rowids (-1 where not indexed)."""
        if not self.size:
            return np.full(len(rowids), -1, dtype=np.int32)
        order = self.by_rowid
        ranked = self.sorted_rowids
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
        cand: Index32 | None = None  # None: every service (the arrays are used as they are)
        fit: Small | None = None
        if hits is not None:
            area = np.zeros(n, dtype=np.int8)
            for term, score in sorted(hits.items(), key=lambda item: item[1]):
                at = self.terms.get(term)
                if at is not None and score > 0:
                    area[at] = np.maximum(area[at], score)
            cand = np.flatnonzero((area > 0) | self.anywhere).astype(np.int32)
            near_score = area[cand].astype(np.int16)
            fit = np.where(near_score > 0, near_score, 1).astype(np.int16)  # 0: anywhere
        needs = set(criteria.needs)
        by_need = bool(criteria.needs) and not needs <= {"other"}
        if by_need and cand is None and len(needs) == 1:  # one need: its services, in order
            cand = self.need_at.get(next(iter(needs)), _empty())
        elif by_need:
            masks = [m for need in sorted(needs) if (m := self.needs.get(need)) is not None]
            wanted = (masks[0] if len(masks) == 1 else np.logical_or.reduce(masks) if masks
                      else np.zeros(n, dtype=np.bool_))
            if cand is None:
                cand = np.flatnonzero(wanted).astype(np.int32)
            else:
                chosen = wanted[cand]
                cand, fit = cand[chosen], None if fit is None else fit[chosen]
        count = n if cand is None else len(cand)
        picked = cand

        def pick(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return values if picked is None else values[picked]

        if fit is None:
            fit = np.zeros(count, dtype=np.int16)
        if "other" in needs and not by_need:
            other = self.needs.get("other")
            if other is not None:
                fit += pick(other)
        keep: BoolArray | None = None
        if criteria.age_group == "under_18":
            keep = ~(pick(self.min_age) >= 18)
            fit += pick(self.max_age) < 26
        elif criteria.age_group == "18_plus":
            keep = ~(pick(self.max_age) < 18)
            fit += pick(self.min_age) >= 18
        if criteria.gender:
            limited = pick(self.limited)
            serves = self.genders.get(criteria.gender)
            for_them = pick(serves) if serves is not None else np.zeros(count, np.bool_)
            fits_them = ~limited | for_them
            keep = fits_them if keep is None else keep & fits_them
            fit += limited & for_them
        flags = pick(self.flags)
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
            fit += np.where(pick(speaks), 2, np.where((flags & INTERPRETATION) > 0, 1, 0)
                            ).astype(np.int16)
        # The order of matching.rank after the distance: tier of openings, -fit, then name
        # and id, which is the position itself: a small bucket per candidate, positions
        # in order within it.
        bucket = (64 - fit).astype(np.int16)
        held = self.openings
        if held is not None and len(held.service):
            bucket += pick(held.tiers(n, now, stale_hours)) * TIER
        else:
            bucket += TIER
        if criteria.near is None:
            # Those left out go to a bucket past every other, instead of copying what is
            # kept: over the whole directory (no area, no need) the copies cost more than
            # the choice itself.
            if keep is None:
                chosen = _first(bucket, limit)
            elif int(np.count_nonzero(keep)) <= limit:
                chosen = np.flatnonzero(keep)
            else:
                bucket[~keep] = LEFT_OUT
                chosen = _first(bucket, limit)
            return self.rowids[chosen if cand is None else cand[chosen]]
        positions = np.arange(n, dtype=np.int32) if cand is None else cand
        if keep is not None:
            positions, bucket = positions[keep], bucket[keep]
        return self.rowids[self._nearest(criteria.near, positions, bucket, limit)]

    def _nearest(self, near: tuple[float, float], cand: Index32, key: Small,
                 limit: int) -> Index32:
        """The nearest candidates first (as ``matching._nearest_km``: the service's nearest
        public place), then those with no place, in the order of ``key``.

        Distances are worked out only in a band of latitude around the point, widened
        until it holds ``limit`` candidates within its half-width (a place farther in
        latitude is farther away), so a lookup weighs the places near it, not all."""
        if not (math.isfinite(near[0]) and math.isfinite(near[1])):
            return cand  # not a point: matching weighs them all
        inside = np.zeros(self.size, dtype=np.bool_)
        inside[cand] = True
        radius = FIRST_RADIUS_KM
        while True:
            half = math.degrees(radius / matching.EARTH_RADIUS_KM)
            lo = int(np.searchsorted(self.point_lat, near[0] - half, side="left"))
            hi = int(np.searchsorted(self.point_lat, near[0] + half, side="right"))
            owners = self.point_of[lo:hi]
            mine = inside[owners]
            owners = owners[mine]
            km = _distance_km(near, self.point_lat[lo:hi][mine], self.point_lon[lo:hi][mine])
            services, at = np.unique(owners, return_inverse=True)
            best = np.full(len(services), np.inf)
            np.minimum.at(best, at, km)
            everything = half >= 180
            close = best <= radius
            if int(close.sum()) >= limit or everything:
                break
            radius *= 4
        if int(close.sum()) >= limit:
            services, best = services[close], best[close]
            far = np.partition(best, limit - 1)[limit - 1]
            out: Index32 = services[best <= far * (1 + NEAR_SLACK) + NEAR_SLACK]
            return out
        unplaced = np.flatnonzero(~self.placed[cand])
        rest = cand[unplaced[_first(key[unplaced], limit - len(services))]]
        return np.concatenate([services, rest]).astype(np.int32)


def _first(buckets: Small, limit: int) -> IntArray:
    """The positions of the ``limit`` lowest (bucket, position)."""
    if len(buckets) <= limit:
        return np.arange(len(buckets))
    cumulative = np.cumsum(np.bincount(buckets))
    last = int(np.searchsorted(cumulative, limit))  # the bucket the limit falls in
    before: IntArray = np.flatnonzero(buckets < last)
    rest: IntArray = np.flatnonzero(buckets == last)[:limit - len(before)]
    out: IntArray = np.concatenate([before, rest])
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


class _Postings:
    """Lists of positions by key, made arrays a page at a time (so that no one conversion
    of a long list holds the event loop)."""

    def __init__(self) -> None:
        self.page: dict[str, list[int]] = {}
        self.done: dict[str, list[Index32]] = {}

    def add(self, key: str, at: int) -> None:
        items = self.page.get(key)
        if items is None:
            self.page[key] = [at]
        else:
            items.append(at)

    def end_page(self) -> None:
        for key, items in self.page.items():
            self.done.setdefault(key, []).append(np.asarray(items, dtype=np.int32))
        self.page = {}

    async def arrays(self) -> dict[str, Index32]:
        out: dict[str, Index32] = {}
        joined = 0
        for key in list(self.done):
            # (each page's part let go here, a turn at a time: hundreds of thousands of
            # small arrays freed at once, as the build returned, held the loop 11-14 ms)
            parts = self.done.pop(key)
            out[key] = parts[0] if len(parts) == 1 else np.concatenate(parts)
            joined += len(parts)
            if joined >= 2000:  # a busy town's services are in every page: 600 parts
                joined = 0
                await asyncio.sleep(0)
        return out


async def build(db: Any, shape: int) -> RankIndex:
    """Every active service's facts, a page at a time (the event loop gets a turn between
    pages: at 300,000 services, 300 pages of a few milliseconds each; the sorts at the end
    run in a thread, numpy giving the GIL back while it sorts)."""
    columns: list[list[Any]] = []  # per page: rowids, anywhere, min_age, max_age, flags, placed
    needs, terms, genders, languages = _Postings(), _Postings(), _Postings(), _Postings()
    points: list[tuple[Index32, FloatArray, FloatArray]] = []
    size = 0
    last: tuple[str, str] | None = None
    while True:
        if last is None:
            rows = await db.execute_fetchall(FIRST_PAGE_SQL, (PAGE,))
        else:
            rows = await db.execute_fetchall(NEXT_PAGE_SQL, (*last, PAGE))
        rows = list(rows)
        if not rows:
            break
        point_of: list[int] = []
        lat: list[float] = []
        lon: list[float] = []
        for i, (_, _, _, _, _, f_needs, f_terms, f_genders, f_languages, f_points, _, _) in (
                enumerate(rows, size)):
            if f_needs:
                for need in f_needs.split(SEP):
                    needs.add(need, i)
            if f_terms:
                for term in f_terms.split(SEP):
                    terms.add(term, i)
            if f_genders:
                for gender in f_genders.split(SEP):
                    genders.add(gender, i)
            if f_languages:
                for language in json.loads(f_languages):
                    languages.add(str(language), i)
            if f_points:
                for y, x in json.loads(f_points):
                    point_of.append(i)
                    lat.append(float(y))
                    lon.append(float(x))
        for postings in (needs, terms, genders, languages):
            postings.end_page()
        points.append((np.asarray(point_of, dtype=np.int32), np.asarray(lat, dtype=np.float64),
                       np.asarray(lon, dtype=np.float64)))
        count = len(rows)
        columns.append([
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=count),
            np.fromiter((bool(r[1]) for r in rows), dtype=np.bool_, count=count),
            np.fromiter((np.nan if r[2] is None else r[2] for r in rows), dtype=np.float64,
                        count=count),
            np.fromiter((np.nan if r[3] is None else r[3] for r in rows), dtype=np.float64,
                        count=count),
            np.fromiter((r[4] or 0 for r in rows), dtype=np.int8, count=count),
            np.fromiter((bool(r[9]) for r in rows), dtype=np.bool_, count=count)])
        size += count
        last = (str(rows[-1][10]), str(rows[-1][11]))
        await asyncio.sleep(0)
        if count < PAGE:
            break
    joined = []
    for k in range(6):
        joined.append(np.concatenate([page[k] for page in columns]) if columns
                      else np.zeros(0))
        await asyncio.sleep(0)
    rowids, anywhere, min_age, max_age, flags, placed = joined
    # (each a copy of hundreds of thousands of numbers: numpy gives the GIL back meanwhile)
    point_of_all, lat_all, lon_all = await asyncio.to_thread(_joined_points, points)
    by_lat = await asyncio.to_thread(np.argsort, lat_all, kind="stable")
    by_rowid = await asyncio.to_thread(np.argsort, rowids)
    limited = np.zeros(size, dtype=np.bool_)
    masks: dict[str, dict[str, BoolArray]] = {"needs": {}, "genders": {}}
    need_at = await needs.arrays()
    for kind, found in (("needs", need_at), ("genders", await genders.arrays())):
        for key, at in found.items():
            masks[kind][key] = _mask(size, at)
            await asyncio.sleep(0)  # a mask of 300,000 is a millisecond or two
    for mask in masks["genders"].values():
        limited |= mask
    await asyncio.sleep(0)
    located = await asyncio.to_thread(
        lambda: [column[by_lat] for column in (point_of_all, lat_all, lon_all)])
    ranked = await asyncio.to_thread(rowids.__getitem__, by_rowid)
    return RankIndex(
        shape=shape, rowids=rowids.astype(np.int64, copy=False),
        anywhere=anywhere.astype(np.bool_, copy=False),
        min_age=min_age.astype(np.float64, copy=False),
        max_age=max_age.astype(np.float64, copy=False),
        flags=flags.astype(np.int8, copy=False), needs=masks["needs"], need_at=need_at,
        terms=await terms.arrays(), genders=masks["genders"], limited=limited,
        languages=await languages.arrays(), placed=placed.astype(np.bool_, copy=False),
        point_of=located[0], point_lat=located[1], point_lon=located[2],
        by_rowid=by_rowid.astype(np.int64, copy=False), ranked=ranked.astype(np.int64, copy=False))


def _joined_points(points: list[tuple[Index32, FloatArray, FloatArray]]
                   ) -> tuple[Index32, FloatArray, FloatArray]:
    if not points:
        return _empty(), np.zeros(0), np.zeros(0)
    return (np.concatenate([p[0] for p in points]), np.concatenate([p[1] for p in points]),
            np.concatenate([p[2] for p in points]))


def _mask(size: int, at: Index32) -> BoolArray:
    mask = np.zeros(size, dtype=np.bool_)
    mask[at] = True
    return mask


async def read_openings(db: Any, index: RankIndex, version: int) -> Openings:
    """Every active service's openings counts, OPENINGS_PAGE of them before the event loop
    gets a turn (a national directory has tens of thousands)."""
    rows = list(await db.execute_fetchall(OPENINGS_SQL))
    if not rows:
        return Openings(version)
    parts: list[tuple[Index32, BoolArray, FloatArray]] = []
    for start in range(0, len(rows), OPENINGS_PAGE):
        page = rows[start:start + OPENINGS_PAGE]
        count = len(page)
        rowids = np.fromiter((r[0] for r in page), dtype=np.int64, count=count)
        available = np.fromiter((int(r[1]) > 0 for r in page), dtype=np.bool_, count=count)
        updated = np.fromiter((float(r[2]) for r in page), dtype=np.float64, count=count)
        at = index.position(rowids)
        known = at >= 0
        parts.append((at[known], available[known], updated[known]))
        await asyncio.sleep(0)
    if len(parts) == 1:
        return Openings(version, *parts[0])
    return Openings(version, np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]))
