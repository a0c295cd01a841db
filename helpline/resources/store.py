"""The directory tables (migration 2): services, openings, places, and saved services.

Directory rows are public data about services and are stored plainly. Saved services are
the only rows tied to a person: keyed by the pseudonym, with the service id encrypted, so
the file alone does not say what anyone looked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from helpline.collector import settle_long_lived
from helpline.flow.engine import normalize
from helpline.resources import ranking
from helpline.resources.matching import Criteria, Outcome, _terms
from helpline.resources.model import Capacity, DirectoryData, Service
from helpline.resources.ranking import RankIndex
from helpline.resources.search import (
    RESULTS,
    ParsedCache,
    Places,
    index_row,
    match_data,
    rank_in_slices,
)
from helpline.store.postgres import PgAsync
from helpline.store.sql import AsyncConn

if TYPE_CHECKING:  # helpline.store's migrations import this package's schema
    from helpline.resources.spill import Kept
    from helpline.store import Store

DEFAULT_UNIT = "place"


class OpeningsError(ValueError):
    """``set_openings`` could not apply the update; the message says why and what to do."""


@dataclass(frozen=True)
class SourceInfo:
    source: str
    format: str
    imported_at: float
    services: int
    fictional: bool


@dataclass(frozen=True)
class Snapshot:
    """The whole directory as a lookup matches against it, and the version it was read at."""

    version: int
    services: list[Service]
    capacities: dict[str, list[Capacity]]
    places: dict[str, list[str]]


# A service's openings counts as one JSON list, in order of unit.
SQLITE_COUNTS = ("(SELECT json_group_array(json_array(unit, available, maximum, description, "
                 "updated_at)) FROM (SELECT * FROM service_capacity c WHERE c.service_id = "
                 "s.id ORDER BY c.unit))")
PG_COUNTS = ("(SELECT json_agg(json_build_array(unit, available, maximum, description, "
             "updated_at) ORDER BY unit) FROM service_capacity c WHERE c.service_id = s.id)")


class Directory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        # Parsed services by their stored JSON: when the directory changed, every row is
        # read again, but only new or changed ones are parsed.
        self._parsed: dict[str, Service] = {}
        self._snapshot: Snapshot | None = None
        self._places: tuple[int, Places] | None = None
        self._cache = ParsedCache()
        self._index: RankIndex | None = None
        self._building = asyncio.Lock()

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncConn]:
        return self.store.transaction()

    # ------------------------------------------------------------- lookups

    async def _versions(self) -> tuple[int, int, bool]:
        """(directory_version, directory_shape, some services not indexed): every change,
        and changes to services and places only (not openings)."""
        rows = list(await self.db.execute_fetchall(
            "SELECT (SELECT version FROM directory_version), "
            "(SELECT version FROM directory_shape), "
            "EXISTS (SELECT 1 FROM services WHERE indexed = 0)"))
        if not rows:
            return -1, -1, False
        version, shape, unindexed = rows[0]
        return ((-1 if version is None else int(version)),
                (-1 if shape is None else int(shape)), bool(unindexed))

    async def any(self) -> bool:
        rows = await self.db.execute_fetchall("SELECT 1 FROM services LIMIT 1")
        return bool(list(rows))

    async def lookup(self, criteria: Criteria, now: float, stale_hours: float = 72.0,
                     locale: str = "en", limit: int = RESULTS) -> Outcome:
        """The first ``limit`` services that fit, best first (see matching.py): the same
        as ``matching.match`` over the whole directory, cut at ``limit``. The ranking index
        (ranking.py) says which services can be among them; only those are read, parsed
        and put in order by ``matching.match``."""
        version, shape, unindexed = await self._versions()
        if unindexed:
            await self._index_missing()
            version, shape, _ = await self._versions()
        hits: dict[str, int] | None = None
        read_as = ""
        suggestions: tuple[str, ...] = ()
        places = await self._places_now(shape)  # built with the index, once per change
        if normalize(criteria.area):
            resolved = places.resolve(criteria.area)
            hits, read_as, suggestions = resolved.hits, resolved.read_as, resolved.suggestions
        index = await self._ranking(version, shape)
        rowids = index.choose(criteria, hits, now, stale_hours, locale, limit)
        await asyncio.sleep(0)
        rows, capacities = await self._data(rowids.tolist())
        services = await self._cache.parse(rows)
        outcome = await rank_in_slices(services, capacities, criteria, now, stale_hours,
                                       locale, hits)
        del outcome.matches[limit:]
        outcome.area_read_as = read_as
        outcome.area_suggestions = suggestions
        return outcome

    async def prepare(self) -> None:
        """Have the ranking index and the places ready for the directory as it is now, so
        that no lookup waits for them: run at start and every few seconds (a timed job),
        it builds them again only after a change, e.g. an import by ``helpline resources
        import`` in another process. (At 300,000 services a build takes most of a minute,
        the event loop running meanwhile: without this the first person to look up after
        an import waited for it.)"""
        version, shape, unindexed = await self._versions()
        if unindexed:
            await self._index_missing()
            version, shape, _ = await self._versions()
        await self._places_now(shape)
        await self._ranking(version, shape)

    async def _ranking(self, version: int, shape: int) -> RankIndex:
        """The ranking index as of ``shape``, with the openings as of ``version``. One
        build at a time: lookups that come meanwhile wait for it."""
        async with self._building:
            index = self._index
            if index is None or index.shape != shape:
                index = self._index = None
                index = await ranking.build(self.db, shape)
                self._index = index
                settle_long_lived()
            if index.openings is None or index.openings.version != version:
                index.openings = await ranking.read_openings(self.db, index, version)
            return index

    async def _places_now(self, shape: int) -> Places:
        if self._places is not None and self._places[0] == shape:
            return self._places[1]
        terms = [str(r[0]) for r in await self.db.execute_fetchall(
            "SELECT DISTINCT term FROM directory_terms")]
        pairs = [(str(r[0]), str(r[1])) for r in await self.db.execute_fetchall(
            "SELECT place, within FROM directory_places")]
        built = await Places.build(terms, pairs)
        self._places = (shape, built)
        settle_long_lived()
        return built

    async def _data(self, rowids: Sequence[int]
                    ) -> tuple[list[tuple[str, str]], dict[str, list[Capacity]]]:
        """(id, what matching reads) of these services (``match_data``, or all of it),
        and their openings counts, in one trip to the database per 900."""
        out: list[tuple[str, str]] = []
        capacities: dict[str, list[Capacity]] = {}
        for start in range(0, len(rowids), 900):
            chunk = rowids[start:start + 900]
            marks = ",".join("?" * len(chunk))
            counted = (PG_COUNTS if isinstance(self.db, PgAsync) else SQLITE_COUNTS)
            for ident, data, counts in await self.db.execute_fetchall(
                    f"SELECT s.id, COALESCE(s.match_data, s.data), {counted} FROM services s "
                    f"WHERE s.rowid IN ({marks})", chunk):
                out.append((str(ident), str(data)))
                if counts and counts != "[]":  # counts checked when they were written
                    capacities[str(ident)] = [Capacity.model_construct(
                        service_id=str(ident), unit=unit, available=available,
                        maximum=maximum, description=description, updated=float(updated))
                        for unit, available, maximum, description, updated
                        in json.loads(counts)]
        return out, capacities

    async def _index_missing(self) -> None:
        """Services written before the search indexes existed (or by an older helpline)
        are indexed at the first lookup that finds them, a batch at a time."""
        while True:
            rows = [(str(r[0]), str(r[1])) for r in await self.db.execute_fetchall(
                "SELECT id, data FROM services WHERE indexed = 0 LIMIT 200")]
            if not rows:
                return
            services = await self._cache.parse(rows)
            await asyncio.sleep(0)
            async with self._transaction() as db:
                await _write_index(db, services)

    async def snapshot(self) -> Snapshot:
        """What a lookup needs, read again only when the directory changed. Triggers move
        ``directory_version`` with every change to services, openings and places, from this
        process or another (`helpline resources import`, `openings`): a lookup costs one
        small query instead of reading every row (3,000 services: 25 ms)."""
        rows = list(await self.db.execute_fetchall("SELECT version FROM directory_version"))
        version = int(rows[0][0]) if rows else -1
        kept = self._snapshot
        if kept is not None and kept.version == version:
            return kept
        # Read after the version: a change landing meanwhile is in the rows already, and
        # moves the version, so the next lookup reads again.
        self._snapshot = Snapshot(version, await self.services(), await self.capacities(),
                                  await self.places())
        return self._snapshot

    def _parse(self, rows: Iterable[tuple[str]], keep_only_these: bool = False
               ) -> list[Service]:
        parsed = self._parsed
        out = []
        for (data,) in rows:
            service = parsed.get(data)
            if service is None:
                service = parsed[data] = Service.model_validate_json(data)
            out.append(service)
        if keep_only_these and len(parsed) > len(out):  # forget services no longer listed
            listed = {id(service) for service in out}
            self._parsed = {data: svc for data, svc in parsed.items() if id(svc) in listed}
        return out

    # ------------------------------------------------------------- reading

    async def count(self) -> int:
        async with self.db.execute("SELECT COUNT(*) FROM services") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def services(self) -> list[Service]:
        rows = await self.db.execute_fetchall("SELECT data FROM services ORDER BY name, id")
        return self._parse([(str(r[0]),) for r in rows], keep_only_these=True)

    async def by_ids(self, ids: Sequence[str]) -> dict[str, Service]:
        out: dict[str, Service] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            rows = await self.db.execute_fetchall(
                f"SELECT data FROM services WHERE id IN ({marks})", chunk)
            for service in self._parse((str(r[0]),) for r in rows):
                out[service.id] = service
        return out

    async def capacities(self, ids: Sequence[str] | None = None) -> dict[str, list[Capacity]]:
        query = ("SELECT service_id, unit, available, maximum, description, updated_at "
                 "FROM service_capacity")
        rows: list[tuple[object, ...]] = []
        if ids is None:
            rows = [tuple(r) for r in await self.db.execute_fetchall(
                query + " ORDER BY service_id, unit")]
        else:
            for chunk in _chunks(list(dict.fromkeys(ids)), 500):
                marks = ",".join("?" * len(chunk))
                async with self.db.execute(f"{query} WHERE service_id IN ({marks}) "
                                           "ORDER BY service_id, unit", chunk) as cursor:
                    rows.extend(tuple(r) for r in await cursor.fetchall())
        out: dict[str, list[Capacity]] = {}
        for sid, unit, available, maximum, description, updated in rows:
            out.setdefault(str(sid), []).append(Capacity(
                service_id=str(sid), unit=str(unit), available=int(str(available)),
                maximum=None if maximum is None else int(str(maximum)),
                description=None if description is None else str(description),
                updated=float(str(updated))))
        return out

    async def places(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for place, within in await self.db.execute_fetchall(
                "SELECT place, within FROM directory_places"):
            out.setdefault(place, []).append(within)
        return out

    async def sources(self) -> list[SourceInfo]:
        rows = await self.store.database.rows(
            "SELECT source, format, imported_at, services, fictional FROM directory_sources "
            "ORDER BY source")
        return [SourceInfo(r["source"], r["format"], r["imported_at"], r["services"],
                           bool(r["fictional"])) for r in rows]

    async def owners(self, ids: Iterable[str]) -> dict[str, str]:
        """Which source each of these service ids already comes from."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            async with self.db.execute(f"SELECT id, source FROM services WHERE id IN ({marks})",
                                       chunk) as cursor:
                out.update({r[0]: r[1] for r in await cursor.fetchall()})
        return out

    # ------------------------------------------------------------- writing

    async def replace_source(self, source: str, data: DirectoryData, now: float) -> int:
        """Replace everything from ``source`` with ``data`` in one transaction; returns how
        many services the source had before. Openings counted after the file's own (set with
        ``set_openings``) are kept for services that are still listed."""
        return await self.replace_source_rows(
            source, data.format, data.fictional, now, [service_rows(source, data.services)],
            [capacity_row(c) for c in data.capacities], data.places)

    async def replace_source_rows(
            self, source: str, format: str, fictional: bool, now: float,
            chunks: Iterable[tuple[list[tuple[object, ...]], list[tuple[object, ...]],
                                   list[tuple[object, ...]]]],
            capacities: Iterable[tuple[object, ...]], places: dict[str, list[str]]) -> int:
        """As ``replace_source``, from rows made ready (``service_rows``, ``capacity_row``),
        written a chunk at a time."""
        marks = ",".join("?" * len(SERVICE_COLUMNS))

        async def write(db: AsyncConn) -> None:
            for services, needs, terms in chunks:
                await db.executemany(f"INSERT INTO services ({', '.join(SERVICE_COLUMNS)}) "
                                     f"VALUES ({marks})", services)
                await db.executemany("INSERT OR IGNORE INTO directory_needs (need, anywhere, "
                                     "service_id) VALUES (?, ?, ?)", needs)
                await db.executemany("INSERT OR IGNORE INTO directory_terms (term, "
                                     "service_id) VALUES (?, ?)", terms)

        return await self._replace(source, format, fictional, now, write, capacities, places)

    async def replace_source_kept(self, source: str, format: str, now: float, kept: Kept,
                                  places: dict[str, list[str]]) -> int:
        """As ``replace_source``, from the rows an import of a datapackage built and kept
        in its scratch file (spill.Kept): an import of a national directory builds its
        rows first, a slice at a time, and holds the database only to copy them in, in
        SQL (300,000 services: about 7 s less than passing each row through Python)."""
        attached: list[str] = []
        try:
            if isinstance(self.db, PgAsync):  # (no file to attach: the rows go through here)
                raise sqlite3.OperationalError("not SQLite")
            for at, path in enumerate(kept.files):  # its own file, then the worker's
                await self.db.execute(f"ATTACH DATABASE ? AS kept{at or ''}", (str(path),))
                attached.append(f"kept{at or ''}")
        except sqlite3.OperationalError:  # a transaction under way on this connection
            for schema in attached:
                await self.db.execute(f"DETACH DATABASE {schema}")
            return await self.replace_source_rows(source, format, False, now, kept.slices(),
                                                  kept.capacities(), places)
        columns = ", ".join(SERVICE_COLUMNS)
        picked = ", ".join(f"c{i}" for i in range(len(SERVICE_COLUMNS)))
        given = "NOT IN (SELECT id FROM kept.left_out)"

        def runs(table: str, at: int, columns: str) -> list[tuple[str, tuple[int, int]]]:
            """SELECTs of ``table``'s rows, a run of slices in one file at a time, in the
            order of the slices (each slice's rows are a run of rowids: spill.Kept)."""
            return [(f"SELECT {columns} FROM {attached[file]}.{table} WHERE rowid BETWEEN "
                     f"? AND ? AND c{at} {given} ORDER BY rowid", (first, last))
                    for file, first, last in kept.runs(table)]

        async def write(db: AsyncConn) -> None:
            rows = list(await db.execute_fetchall("SELECT COUNT(*) FROM services"))
            coming, others = kept.count("out_services"), int(rows[0][0])
            # Most of a national import's writing went into keeping indexes up to date
            # a row at a time, in no order (the name order's, and the needs' and places'
            # by service): made again once the rows are in, when they are most of the
            # table (300,000 services: 9.5 s of CPU to 6.6 s).
            remade = (await _pause_indexes(db, BULK_INDEXES)
                      if coming >= max(BULK_SERVICES, others) else [])
            for select, span in runs("out_services", 0, picked):
                await db.execute(f"INSERT INTO services ({columns}) {select}", span)
            for select, span in runs("out_needs", 2, "c0, c1, c2"):
                await db.execute("INSERT OR IGNORE INTO directory_needs (need, anywhere, "
                                 f"service_id) {select}", span)
            # The places served in their table's order (its key: term, service): in the
            # order of the services, each row went into another part of the table
            # (300,000 services: 4.1 s to 3.0 s of CPU, and less to commit).
            files = sorted({file for file, _, _ in kept.runs("out_terms")})
            if files:  # (every row of these files is one of a slice imported)
                await db.execute(
                    "INSERT OR IGNORE INTO directory_terms (term, service_id) SELECT c0, c1 "
                    "FROM (" + " UNION ALL ".join(
                        f"SELECT c0, c1 FROM {attached[file]}.out_terms WHERE c1 {given}"
                        for file in files) + ") ORDER BY c0, c1")
            for sql in remade:
                await db.execute(sql)

        try:
            return await self._replace(source, format, False, now, write, kept.capacities(),
                                       places)
        finally:  # (a transaction begun meanwhile on this connection: left attached)
            for schema in attached:
                with contextlib.suppress(sqlite3.OperationalError):
                    await self.db.execute(f"DETACH DATABASE {schema}")

    async def _replace(self, source: str, format: str, fictional: bool, now: float,
                       write: Callable[[AsyncConn], Awaitable[None]],
                       capacities: Iterable[tuple[object, ...]],
                       places: dict[str, list[str]]) -> int:
        """Replace everything from ``source``, the services written by ``write``, in one
        transaction; returns how many services the source had before."""
        async with self._transaction() as db:
            paused = await _pause_counters(db)
            kept = {(r[0], r[1]): tuple(r) for r in await db.execute_fetchall(
                "SELECT c.service_id, c.unit, c.available, c.maximum, c.description, "
                "c.updated_at FROM service_capacity c JOIN services s ON s.id = c.service_id "
                "WHERE s.source = ?", (source,))}
            rows = list(await db.execute_fetchall(
                "SELECT COUNT(*) FROM services WHERE source = ?", (source,)))
            before = int(rows[0][0]) if rows else 0
            await db.execute("DELETE FROM directory_sources WHERE source = ?", (source,))
            await db.execute(
                "INSERT INTO directory_sources (source, format, imported_at, services, "
                "fictional) VALUES (?, ?, ?, ?, ?)", (source, format, now, 0, int(fictional)))
            await write(db)
            listed = {str(r[0]) for r in await db.execute_fetchall(
                "SELECT id FROM services WHERE source = ?", (source,))}
            fresh: dict[tuple[str, str], tuple[object, ...]] = {}
            for c in capacities:
                if str(c[0]) in listed:
                    fresh[(str(c[0]), str(c[1]))] = c
            for key, old in kept.items():
                newer = key not in fresh or float(str(old[5])) > float(str(fresh[key][5]))
                if key[0] in listed and newer:
                    fresh[key] = old
            await db.executemany(
                "INSERT INTO service_capacity (service_id, unit, available, maximum, "
                "description, updated_at) VALUES (?, ?, ?, ?, ?, ?)", list(fresh.values()))
            await db.executemany(
                "INSERT INTO directory_places (source, place, within) VALUES (?, ?, ?)",
                [(source, place, within) for place, parents in places.items()
                 for within in parents])
            await db.execute("UPDATE directory_sources SET services = ? WHERE source = ?",
                             (len(listed), source))
            await _resume_counters(db, paused)
        return before

    async def set_openings(self, service_id: str, available: int, now: float,
                           unit: str | None = None) -> Capacity:
        if isinstance(available, bool) or not isinstance(available, int) or available < 0:
            raise OpeningsError(f"openings must be a whole number 0 or above, not {available!r}")
        async with self._transaction() as db:
            async with db.execute("SELECT 1 FROM services WHERE id = ?", (service_id,)) as cur:
                if await cur.fetchone() is None:
                    raise OpeningsError(f"no service with id '{service_id}'; "
                                        "see the ids with: helpline resources list")
            async with db.execute("SELECT unit, maximum, description FROM service_capacity "
                                  "WHERE service_id = ? ORDER BY unit", (service_id,)) as cur:
                units = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
            if unit is None:
                if len(units) > 1:
                    raise OpeningsError(f"service '{service_id}' counts several things ("
                                        + ", ".join(units) + "); say which with --unit")
                unit = next(iter(units), DEFAULT_UNIT)
            maximum, description = units.get(unit, (None, None))
            if maximum is not None and available > maximum:
                raise OpeningsError(f"{available} is more than the maximum ({maximum}) of "
                                    f"'{unit}' for this service; check the number, or change "
                                    "the maximum in the directory and import it again")
            await db.execute(
                "INSERT INTO service_capacity (service_id, unit, available, maximum, "
                "description, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(service_id, "
                "unit) DO UPDATE SET available = excluded.available, "
                "updated_at = excluded.updated_at",
                (service_id, unit, available, maximum, description, now))
        return Capacity(service_id=service_id, unit=unit, available=available, maximum=maximum,
                        description=description, updated=now)

    # ------------------------------------------------------------- saved services

    async def saved(self, pid: str) -> list[str]:
        """The service ids this person saved, oldest first."""
        return [sid for _, sid in await self._saved_rows(pid)]

    async def _saved_rows(self, pid: str) -> list[tuple[int, str]]:
        rows = await self.store.database.rows(
            "SELECT id, service FROM saved_services WHERE pid = ? ORDER BY id", (pid,))
        return [(int(r["id"]), self.store.vault.decrypt_text(r["service"])) for r in rows]

    async def save(self, pid: str, service_id: str) -> bool:
        """Save a service for later; False when it was saved already."""
        if service_id in await self.saved(pid):
            return False
        async with self._transaction() as db:
            await db.execute("INSERT INTO saved_services (pid, service) VALUES (?, ?)",
                             (pid, self.store.vault.encrypt_text(service_id)))
        return True

    async def unsave(self, pid: str, service_id: str) -> None:
        doomed = [(rowid,) for rowid, sid in await self._saved_rows(pid) if sid == service_id]
        async with self._transaction() as db:
            await db.executemany("DELETE FROM saved_services WHERE id = ?", doomed)


async def set_openings(store: Store, service_id: str, available: int, now: float,
                       unit: str | None = None) -> Capacity:
    """Record how many ``unit`` (beds, places...) a service has free now, stamped ``now``.
    Raises OpeningsError with a message for the admin (or advocate) when it cannot."""
    return await Directory(store).set_openings(service_id, available, now, unit)


# What is written of a service: its record, and what the search and ranking indexes read.
SERVICE_COLUMNS = ("id", "source", "name", "data", "indexed", "active", "anywhere",
                   "latitude", "longitude", "match_data", *ranking.FACT_COLUMNS)


def service_rows(source: str, services: Iterable[Service]
                 ) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]],
                            list[tuple[object, ...]]]:
    """The rows of ``services`` (SERVICE_COLUMNS), of their needs and of their places."""
    rows: list[tuple[object, ...]] = []
    needs: list[tuple[object, ...]] = []
    terms: list[tuple[object, ...]] = []
    for s in services:
        places = _terms(s)  # (worked out once for both)
        r = index_row(s, places)
        rows.append((s.id, source, s.name, s.model_dump_json(exclude_defaults=True), 1,
                     int(r.active), int(r.anywhere), r.latitude, r.longitude, match_data(s),
                     *ranking.facts(s, places)))
        needs.extend((n, int(r.anywhere), s.id) for n in r.needs)
        terms.extend((t, s.id) for t in r.terms)
    return rows, needs, terms


def capacity_row(c: Capacity) -> tuple[object, ...]:
    return (c.service_id, c.unit, c.available, c.maximum, c.description, c.updated)


async def _write_index(db: AsyncConn, services: Sequence[Service]) -> None:
    """The index and facts of services written without them (by an older helpline)."""
    rows = [(s.id, index_row(s), match_data(s)) for s in services]
    await db.executemany("DELETE FROM directory_needs WHERE service_id = ?",
                         [(sid,) for sid, _, _ in rows])
    await db.executemany("DELETE FROM directory_terms WHERE service_id = ?",
                         [(sid,) for sid, _, _ in rows])
    await db.executemany("INSERT OR IGNORE INTO directory_needs (need, anywhere, service_id) "
                         "VALUES (?, ?, ?)", [(n, int(r.anywhere), sid) for sid, r, _ in rows
                                              for n in r.needs])
    await db.executemany("INSERT OR IGNORE INTO directory_terms (term, service_id) "
                         "VALUES (?, ?)", [(t, sid) for sid, r, _ in rows for t in r.terms])
    sets = ", ".join(f"{column} = ?" for column in ranking.FACT_COLUMNS)
    await db.executemany(
        "UPDATE services SET indexed = 1, active = ?, anywhere = ?, latitude = ?, "
        f"longitude = ?, match_data = ?, {sets} WHERE id = ?",
        [(int(r.active), int(r.anywhere), r.latitude, r.longitude, slim, *ranking.facts(s),
          sid) for s, (sid, r, slim) in zip(services, rows, strict=True)])


# The triggers that move a change counter (directory_version, directory_shape) on every
# row written: an import writes hundreds of thousands of rows in one transaction, and two
# such updates a row took half its time writing them (300,000 services: about 5 s).
_COUNTER = re.compile(r"CREATE TRIGGER (\w+) AFTER (?:INSERT|UPDATE|DELETE) ON "
                      r"(?:services|service_capacity|directory_places) BEGIN UPDATE "
                      r"(directory_version|directory_shape) SET version = version \+ 1; END",
                      re.IGNORECASE)


# An import of at least this many services, and no fewer than the directory has from other
# sources, makes BULK_INDEXES again after writing its rows instead of keeping them up to
# date row by row. (A larger page cache did as well, 1.3 s more, but the importing
# process's peak memory is near its limit: 32 MB more of it.)
BULK_SERVICES = 20_000
BULK_INDEXES = ("services_ranked", "directory_needs_service", "directory_terms_service")


async def _pause_indexes(db: AsyncConn, names: Sequence[str]) -> list[str]:
    """Drop these indexes for the rest of this transaction; returns the SQL that makes
    each again as it was (read from ``sqlite_master``), to be run in the same transaction,
    so no other connection ever sees the table without them."""
    marks = ",".join("?" * len(names))
    found = [(str(name), str(sql)) for name, sql in await db.execute_fetchall(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ({marks}) "
        "AND sql IS NOT NULL ORDER BY name", tuple(names))]
    for name, _ in found:
        await db.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


async def _pause_counters(db: AsyncConn) -> list[tuple[str, str, str]]:
    """Drop the counter triggers for the rest of this transaction: (name, SQL, counter) of
    each, for ``_resume_counters``, which moves each counter once and makes them again as
    they were. Both are in the import's transaction, so no other connection ever sees the
    tables without them."""
    paused: list[tuple[str, str, str]] = []
    if isinstance(db, PgAsync):
        return paused  # its triggers move the counters once a statement, not once a row
    for name, sql in await db.execute_fetchall(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
            "('services', 'service_capacity', 'directory_places')"):
        found = _COUNTER.fullmatch(" ".join(str(sql).split()))
        if found and found.group(1) == name:
            paused.append((str(name), str(sql), found.group(2).lower()))
    for name, _, _ in paused:
        await db.execute(f'DROP TRIGGER "{name}"')
    return paused


async def _resume_counters(db: AsyncConn, paused: list[tuple[str, str, str]]
                           ) -> None:
    for counter in sorted({counter for _, _, counter in paused}):
        await db.execute(f"UPDATE {counter} SET version = version + 1")
    for _, sql, _ in paused:
        await db.execute(sql)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
