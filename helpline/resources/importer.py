"""``helpline resources import``: read a directory file, check every row, and replace the
previous directory from the same source in one transaction (all good rows or nothing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from helpline import bundled
from helpline.resources.hsds_build import build
from helpline.resources.hsds_read import read_csv_package, read_json
from helpline.resources.model import NEEDS, DirectoryData, Problem, Service
from helpline.resources.slices import WORKER_KEPT, Workers, collector_at_rest, limits
from helpline.resources.spill import Spill
from helpline.resources.store import Directory
from helpline.resources.taxonomy import TaxonomyMap
from helpline.resources.yaml_import import read_yaml

if TYPE_CHECKING:  # helpline.store's migrations import this package's schema
    from helpline.store import Store

log = logging.getLogger("helpline.resources")

SAMPLE_DIRECTORY = bundled.DATA / "sample-directory.yaml"


@dataclass
class ImportResult:
    source: str
    format: str = ""
    services: int = 0  # imported
    openings: int = 0
    replaced: int = 0  # services the source had before
    bad_rows: int = 0
    applied: bool = False
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    needs: dict[str, int] = field(default_factory=dict)  # need -> services that have it
    limits: dict[str, int] = field(default_factory=dict)  # restriction -> services
    unlimited: int = 0  # services open to any age and gender

    def counts(self) -> list[str]:
        """What matching will do with what was imported: services per need, per age or
        gender restriction, and those with none."""
        if not self.services:
            return []
        needs = ", ".join(f"{n} {self.needs[n]}" for n in NEEDS if self.needs.get(n))
        limits = ", ".join(f"{k} {v}" for k, v in sorted(self.limits.items()))
        if self.needs.get("other"):
            needs += " (other: no need found in the data)"
        return [f"needs: {needs}",
                f"limited to: {limits or 'nobody in particular'}; open to any age and "
                f"gender: {self.unlimited}"]

    def summary(self) -> str:
        if not self.applied:
            if not self.problems:
                return f"nothing imported from {self.source}: it lists no services"
            return (f"nothing imported: {len(self.problems)} problem(s) in {self.bad_rows} "
                    f"row(s); fix them, or import the good rows with --skip-bad")
        skipped = f"; skipped {self.bad_rows} bad row(s)" if self.bad_rows else ""
        return (f"imported {self.services} service(s) and {self.openings} opening count(s) "
                f"from {self.source} ({self.format}), replacing {self.replaced}{skipped}")


def _tally(result: ImportResult, services: list[Service]) -> None:
    _count(result, [(s.id, s.needs, limits(s)) for s in services])


def _count(result: ImportResult,
           tally: list[tuple[str, tuple[str, ...], tuple[str, ...]]]) -> None:
    for _, needs, restrictions in tally:
        for need in needs:
            result.needs[need] = result.needs.get(need, 0) + 1
        for limit in restrictions:
            result.limits[limit] = result.limits.get(limit, 0) + 1
        result.unlimited += not restrictions


def read_directory(path: Path, now: float, taxonomy: TaxonomyMap | None = None
                   ) -> DirectoryData:
    """Any supported form, chosen by what ``path`` is."""
    if not path.exists():
        return DirectoryData([], [], {}, [Problem(str(path), 1, "not found",
                                                  "check the path")], "?")
    suffix = path.suffix.lower()
    if path.is_dir() or path.name == "datapackage.json" or suffix == ".csv":
        return build(read_csv_package(path if path.is_dir() else path.parent), now, taxonomy)
    if suffix == ".json":
        data = build(read_json(path), now, taxonomy)
        data.format = "hsds-json"
        return data
    if suffix in (".yaml", ".yml"):
        return read_yaml(path, now)
    return DirectoryData([], [], {}, [Problem(
        str(path), 1, f"unknown kind of file '{path.name}'", "give an HSDS datapackage folder "
        "(or its datapackage.json), an HSDS .json file, or a .yaml directory")], "?")


def default_source(path: Path) -> str:
    return str(path.resolve())


def _package(path: Path) -> Path | None:
    """The folder of an HSDS CSV datapackage, when ``path`` names one."""
    if path.exists() and (path.is_dir() or path.name == "datapackage.json"
                          or path.suffix.lower() == ".csv"):
        return path if path.is_dir() else path.parent
    return None


async def import_directory(store: Store, path: Path, now: float, *, skip_bad: bool = False,
                           source: str | None = None, maps: tuple[Path, ...] = ()
                           ) -> ImportResult:
    source = source or default_source(path)
    taxonomy, map_problems = TaxonomyMap.load(maps)
    if map_problems:
        return ImportResult(source, problems=map_problems, bad_rows=len(map_problems))
    folder = _package(path)
    if folder is not None:
        return await _import_package(store, folder, now, skip_bad, source, taxonomy)
    data = read_directory(path, now, taxonomy)
    result = ImportResult(source, data.format, problems=data.problems, bad_rows=data.bad_rows,
                          notes=data.notes)
    directory = Directory(store)
    taken = {sid: owner for sid, owner in (await directory.owners(
        s.id for s in data.services)).items() if owner != source}
    if taken:
        for sid, owner in taken.items():
            file, line = data.origins.get(sid, (str(path), 1))
            result.problems.append(Problem(file, line, f"service id '{sid}' already comes "
                                           f"from another source ({owner})", "give it another "
                                           "id, or import with --source set to that source to "
                                           "replace it"))
        result.bad_rows += len(taken)
        data.services = [s for s in data.services if s.id not in taken]
        data.capacities = [c for c in data.capacities if c.service_id not in taken]
    result.problems.sort()
    if (result.problems and not skip_bad) or not data.services:
        return result
    result.replaced = await directory.replace_source(source, data, now)
    result.services = len(data.services)
    _tally(result, data.services)
    result.openings = len(data.capacities)
    result.applied = True
    return result


async def _import_package(store: Store, folder: Path, now: float, skip_bad: bool,
                          source: str, taxonomy: TaxonomyMap) -> ImportResult:
    """An HSDS CSV datapackage, however large, in bounded memory (spill.py): its rows go
    into a scratch file, services are built and checked a slice at a time and their rows
    kept there too; only when the whole package is known good enough (no problem, or
    --skip-bad) are they written, in one transaction."""
    directory = Directory(store)
    with collector_at_rest(), Spill() as spill, Workers.open(folder) as workers:
        tables = read_csv_package(folder, spill, workers.elsewhere(spill))
        result = ImportResult(source, f"hsds {tables.version}" if tables.version else "hsds",
                              notes=list(tables.notes))
        problems: dict[Problem, None] = dict.fromkeys(tables.problems)
        bad = set()  # rows with a problem (file, line): each counts once however often found
        bad_read = len(tables.problems)
        places: dict[str, list[str]] = {}
        left_out: set[str] = set()  # services whose ids another source has
        elsewhere: dict[int, dict[str, tuple[int, int]]] = {}  # slices the worker kept
        async for built in workers.built(spill, tables, now, taxonomy, source):
            for problem in built.problems:
                if problem not in problems:
                    problems[problem] = None
                    bad.add((problem.path, problem.line))
            owners = await directory.owners(ident for ident, _, _ in built.tally)
            taken = {sid: owner for sid, owner in owners.items() if owner != source}
            for sid, owner in taken.items():
                file, line = built.origins.get(sid, (str(folder), 1))
                problems[Problem(file, line, f"service id '{sid}' already comes from another "
                                 f"source ({owner})", "give it another id, or import with "
                                 "--source set to that source to replace it")] = None
                bad_read += 1
            built.without(set(taken))
            left_out.update(taken)
            for place, within in built.places.items():
                known = places.setdefault(place, [])
                known.extend(w for w in within if w not in known)
            if built.tally:
                if built.elsewhere:
                    elsewhere[built.index] = built.spans
                elif not built.kept:
                    spill.keep_built(built.index, built.services, built.needs, built.terms,
                                     built.capacities)
                result.services += len(built.tally)
                result.openings += len(built.capacity_ids)
                _count(result, built.tally)
        result.problems = sorted(problems)
        result.bad_rows = bad_read + len(bad)
        if (result.problems and not skip_bad) or not result.services:
            result.services = result.openings = 0
            result.needs, result.limits, result.unlimited = {}, {}, 0
            return result
        kept = spill.kept()
        if elsewhere:
            kept.join(spill.path.with_name(WORKER_KEPT), elsewhere)
        kept.leave_out(left_out)
        kept.ready()
        result.replaced = await directory.replace_source_kept(
            source, result.format, now, kept, places)
    result.applied = True
    return result


async def seed_if_empty(store: Store, seed: str, now: float) -> ImportResult | None:
    """Import ``seed`` when the directory is empty (a config key; see helpline.example.toml).
    Problems are logged (directory data only, never anything about a person)."""
    if not seed or seed == "none" or await Directory(store).count():
        return None
    result = await import_directory(store, Path(seed), now)
    for problem in result.problems:
        log.error("resources.seed: %s", problem)
    log.info("resources.seed: %s", result.summary())
    return result
