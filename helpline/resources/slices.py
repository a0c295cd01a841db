"""A large datapackage read and built by two processes at once.

A national package's import is mostly Python working row by row, so on a machine of two
cores or more a second process (WORKERS) takes about half of it:

* **reading**: the CSV files are shared out by their rows (hsds_read.Part.rows); the
  worker reads its tables into a scratch file of its own and indexes it (spill.py
  numbers each table's rows from a range of its own, so the order is the one a single
  process gives), and this process attaches that file beside its own and puts together
  what each table found, in table order;
* **building**: once every row is in, each slice of services is read, checked and built
  (hsds_build.py) and turned into the rows it will be written as (store.py's
  ``service_rows``) on its own: what a slice gives depends on its rows and the package's
  small tables only. The worker first finds the rows that hang on no service, then
  reads its slices from the scratch files itself; this process builds the slice nobody
  has taken while it waits, and takes every slice in order and checks the ids against
  the database. Each process keeps the rows it built in a file of its own.

Both build with ``build_slice``, so what is imported is what one process would import.
A package under PARALLEL_BYTES is read and built here alone, as starting a process costs
about a second. The peak memory of an import is every process's: one worker, which holds
the small tables and a few slices.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpline.resources.hsds_build import build
from helpline.resources.hsds_read import Elsewhere, Part, Tables, Waiting, read_part
from helpline.resources.model import Problem, Service
from helpline.resources.spill import IN_MEMORY, Formats, Job, Kept, Reader, Spill
from helpline.resources.store import capacity_row, service_rows
from helpline.resources.taxonomy import TaxonomyMap

# Processes that build slices beside the importing process, which builds some too: one
# on a machine of two cores or more (the peak memory of an import is every process's).
# One at most: the slices' setup (_start) is given once and reaches the one worker.
WORKERS = min(1, len(os.sched_getaffinity(0)) - 1 if hasattr(os, "sched_getaffinity")
              else (os.cpu_count() or 1) - 1)
AHEAD = 3  # slices given to the worker and not yet taken back, at most
# Slices built here waiting for one of the worker's, at most: their rows are kept in the
# scratch file at once, so each holds only its problems and counts in memory.
AHEAD_HERE = 8
WORKER_KEPT = "built-worker.db"  # the rows the worker built, beside the scratch file
# A package with fewer bytes of CSV (about 20,000 services) is read and built in the
# importing process alone: starting a process takes about a second.
PARALLEL_BYTES = 10 * 2**20

# The cyclic garbage collector's thresholds while a package is imported (in the importing
# process, and in the worker from its start). An import makes and drops millions of rows,
# dicts and records, none in a reference cycle, while it holds hundreds of thousands
# (the small tables, their indexes): with CPython's defaults (700, 10, 10) the collector
# walked those again and again, 1.7 s of 9.4 s of CPU at 30,000 services; with these,
# 0.3 s (bench/README.md). Cycles are still collected, later.
IMPORT_GC = (50_000, 50, 50)
_resting = [0]  # imports under way in this process (the outermost sets and restores)

Rows = list[tuple[object, ...]]


@contextmanager
def collector_at_rest() -> Iterator[None]:
    """The collector's thresholds raised to IMPORT_GC (none lowered; a collector turned
    off stays off) for the import, and put back as they were after it."""
    before = gc.get_threshold()
    if not _resting[0] and before[0] > 0:
        gc.set_threshold(*(max(b, i) for b, i in zip(before, IMPORT_GC, strict=True)))
    _resting[0] += 1
    try:
        yield
    finally:
        _resting[0] -= 1
        if not _resting[0]:
            gc.set_threshold(*before)


def _worker_start() -> None:
    """In the worker, as it starts: the collector's thresholds of an import."""
    gc.set_threshold(*IMPORT_GC)


@dataclass
class Built:
    """One slice, built: its problems and what it will be written as."""

    problems: list[Problem]
    origins: dict[str, tuple[str, int]]  # service id -> file, line
    # Per service: (id, needs, restrictions), for the import summary.
    tally: list[tuple[str, tuple[str, ...], tuple[str, ...]]]
    services: Rows  # store.service_rows: services, needs, terms
    needs: Rows
    terms: Rows
    capacities: Rows  # store.capacity_row
    capacity_ids: list[str]  # the service of each
    places: dict[str, list[str]]
    index: int = 0  # of the slice, in the order of Spill.plan
    # The worker kept the rows in its own file (WORKER_KEPT beside the scratch file)
    # instead of sending them: the lists above are empty, but for capacity_ids.
    elsewhere: bool = False
    # This process kept them in the scratch file's (Spill.keep_built) as it built them.
    kept: bool = False
    # Where the worker kept them: table -> its first and last rowid (spill.Kept.keep).
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def without(self, taken: set[str]) -> None:
        """Leave out the services whose ids are ``taken`` (another source has them)."""
        if taken:
            self.tally = [t for t in self.tally if t[0] not in taken]
            self.services = [r for r in self.services if r[0] not in taken]
            self.needs = [r for r in self.needs if r[2] not in taken]
            self.terms = [r for r in self.terms if r[1] not in taken]
            self.capacities = [r for r in self.capacities if r[0] not in taken]
            self.capacity_ids = [c for c in self.capacity_ids if c not in taken]


def limits(service: Service) -> tuple[str, ...]:
    """The age and gender restrictions of a service, as the import summary names them."""
    out = [*service.genders]
    if service.min_age is not None:
        out.append(f"age {service.min_age:g}+")
    if service.max_age is not None:
        out.append(f"age up to {service.max_age:g}")
    return tuple(out)


def build_slice(part: Tables, now: float, taxonomy: TaxonomyMap, shared: dict[str, Any],
                source: str, index: int) -> Built:
    data = build(part, now, taxonomy, shared)
    services, needs, terms = service_rows(source, data.services)
    return Built(data.problems, data.origins,
                 [(s.id, s.needs, limits(s)) for s in data.services], services, needs, terms,
                 [capacity_row(c) for c in data.capacities],
                 [c.service_id for c in data.capacities], data.places, index)


def small_tables(tables: Tables) -> Tables:
    """What every slice needs of the package besides its own rows."""
    return Tables(rows={t: rows for t, rows in tables.rows.items() if t in IN_MEMORY},
                  files=dict(tables.files), version=tables.version,
                  columns=dict(tables.columns), firsts=tables.firsts)


class Workers:
    """The process that reads and builds parts of a large package beside the importing
    one (``open``: none for a small package, or when the machine has one core)."""

    def __init__(self, pool: ProcessPoolExecutor | None) -> None:
        self.pool = pool

    @classmethod
    @contextmanager
    def open(cls, folder: Path) -> Iterator[Workers]:
        size = sum(p.stat().st_size for p in folder.glob("*.csv") if p.is_file()) + sum(
            p.stat().st_size for p in folder.glob("data/*.csv") if p.is_file())
        if WORKERS < 1 or size < PARALLEL_BYTES:
            yield cls(None)
            return
        # spawn: no fork of a process that has threads (the database's)
        with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context(
                "spawn"), initializer=_worker_start) as pool:
            pool.submit(int)  # it starts while this process reads its first tables
            yield cls(pool)

    def elsewhere(self, spill: Spill) -> Elsewhere | None:
        """For ``read_csv_package``: parts of the package read by the worker, into a
        scratch file beside ``spill``'s."""
        pool = self.pool
        if pool is None:
            return None

        def read(parts: list[Part], names: list[str]) -> Waiting:
            scratch = spill.path.with_name("part.db")
            future = pool.submit(_read, parts, names, scratch)

            def wait() -> tuple[list[Tables], dict[str, list[tuple[int, int]]], Formats,
                                Path]:
                found, ranges, formats = future.result()
                return found, ranges, formats, scratch
            return wait
        return read

    async def built(self, spill: Spill, tables: Tables, now: float, taxonomy: TaxonomyMap,
                    source: str) -> AsyncIterator[Built]:
        """Every slice of the package, built, in order."""
        jobs = spill.plan(orphans=False)
        base = small_tables(tables)
        shared: dict[str, Any] = {}
        reader = spill.reader()
        pool = self.pool
        if pool is None or len(jobs) < 2:
            for at, job in enumerate(jobs + reader.orphans()):
                yield build_slice(reader.read(job, base), now, taxonomy, shared, source, at)
            return
        assert WORKERS == 1  # _start reaches every worker only when there is one
        pool.submit(_start, str(spill.path), spill.files, spill.parts, spill.formats, base,
                    now, taxonomy, source)
        # The worker first finds the rows that hang on no service (their slices come
        # after the services'), while this process builds the first slices.
        left: Future[list[Job]] | None = pool.submit(_orphans)
        # The worker has up to AHEAD slices given and not yet taken back; this process
        # builds the next slice nobody has while it waits for those, and hands them all
        # on in order.
        given: dict[int, Future[Built] | Built] = {}
        taken = 0  # jobs given to the worker or built here
        at = 0
        while True:
            if left is not None and (left.done() or taken >= len(jobs)):
                found: list[Job] = await asyncio.wrap_future(left)
                jobs += found
                left = None
            if at >= len(jobs):
                break
            while True:
                # (the worker's queue no longer than the slices nobody has taken: at the
                # end this process waits less for the worker's last ones)
                while taken < len(jobs) and (outstanding := sum(
                        isinstance(g, Future) for g in given.values())) < AHEAD * WORKERS \
                        and outstanding < len(jobs) - taken:
                    given[taken] = pool.submit(_build, jobs[taken], taken)
                    taken += 1
                item = given.get(at)
                ahead = sum(not isinstance(g, Future) for g in given.values())
                if item is not None and (not isinstance(item, Future) or item.done()
                                         or taken >= len(jobs) or ahead >= AHEAD_HERE):
                    break  # (no more than AHEAD_HERE slices built here wait)
                here = build_slice(reader.read(jobs[taken], base), now, taxonomy, shared,
                                   source, taken)
                if here.services:
                    spill.keep_built(taken, here.services, here.needs, here.terms,
                                     here.capacities)
                here.services, here.needs, here.terms, here.capacities = [], [], [], []
                here.kept = True
                given[taken] = here
                taken += 1
                await asyncio.sleep(0)
            item = given.pop(at)
            yield await asyncio.wrap_future(item) if isinstance(item, Future) else item
            at += 1


# ----------------------------------------------------------------- in the worker process

_worker: dict[str, Any] = {}


def _read(parts: list[Part], names: list[str], scratch: Path
          ) -> tuple[list[Tables], dict[str, list[tuple[int, int]]], Formats]:
    part = Spill(place=scratch)
    try:
        part.known(names)
        found = [read_part(p, part) for p in parts]
        part.finish()  # indexed here, beside the importing process indexing its own
        return found, part.ranges, part.formats
    finally:
        part.close()


def _start(path: str, files: list[str], parts: list[Path], formats: Formats, base: Tables,
           now: float, taxonomy: TaxonomyMap, source: str) -> None:
    scratch = Path(path)
    _worker.update(reader=Reader.open(scratch, files, parts, formats), base=base, now=now,
                   taxonomy=taxonomy, source=source, shared={},
                   kept=Kept(scratch.with_name(WORKER_KEPT)))


def _orphans() -> list[Job]:
    """The slices of the rows that hang on no service (spill.Reader.orphans)."""
    jobs: list[Job] = _worker["reader"].orphans()
    return jobs


def _build(job: Job, index: int) -> Built:
    """One slice, built; its rows kept in this process's file, not sent back."""
    w = _worker
    built = build_slice(w["reader"].read(job, w["base"]), w["now"], w["taxonomy"],
                        w["shared"], w["source"], index)
    if built.services:
        built.spans = w["kept"].keep(index, built.services, built.needs, built.terms,
                                     built.capacities)
    built.services, built.needs, built.terms, built.capacities = [], [], [], []
    built.elsewhere = True
    return built
