"""Read Open Referral HSDS (3.x, 2.0 and 1.1) into plain tables of rows, each row knowing its
``file:line``.

Two forms: the tabular datapackage (a folder of CSV files, optionally described by
``datapackage.json``) and the JSON form (one service as in ``service_full.json``, a list of
services, a paged list with ``contents``, or an organization with ``services``). The JSON
form is flattened into the same tables, so both are checked by one builder.

Older versions name tables and fields differently (``physical_addresses``,
``regular_schedules``, ``services_taxonomy`` and ``taxonomy``, ``eligibility``...): their rows
are read into the 3.x tables here, so the builder sees one shape, and the version found is
reported.

Nothing here trusts the files: each file is capped in size, rows and field length (the
limit is named in the message), a file that is a link to somewhere outside the folder is
refused, and so is every ``datapackage.json`` path that leads out of it, each by name.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpline.flow.yamlsource import Located, YamlSyntaxError, load_located
from helpline.resources.model import Problem

if TYPE_CHECKING:
    from helpline.resources.spill import Formats, Spill

# Limits of what an import reads (see README, "Resource directory"); each is named in the
# message that refuses it.
MAX_FILE_BYTES = 512 * 1024 * 1024  # one CSV file
MAX_JSON_BYTES = 64 * 1024 * 1024  # one JSON file (it is read whole)
MAX_ROWS = 1_500_000  # rows in one table
MAX_SERVICES = 300_000  # services in one import (a national 211 directory)
MAX_FIELD = 65_536  # characters in one field

# Table (the HSDS 3.x object) -> the file it lives in when datapackage.json does not say.
TABLE_FILES: dict[str, str] = {
    "organization": "organizations.csv",
    "service": "services.csv",
    "location": "locations.csv",
    "service_at_location": "service_at_location.csv",
    "address": "addresses.csv",
    "phone": "phones.csv",
    "schedule": "schedules.csv",
    "service_area": "service_areas.csv",
    "language": "languages.csv",
    "required_document": "required_documents.csv",
    "cost_option": "cost_options.csv",
    "service_capacity": "service_capacity.csv",
    "unit": "units.csv",
    "attribute": "attributes.csv",
    "taxonomy_term": "taxonomy_terms.csv",
    "eligibility": "eligibility.csv",
}
# What older versions (and common exports) call the same tables: file stems and
# datapackage resource names. 1.1: physical_address, postal_address, regular_schedule,
# services_at_location, service_taxonomy + taxonomy; 2.0: service_attribute,
# other_attribute / link_taxonomy, taxonomy_term with 'term'.
OLDER_NAMES: dict[str, str] = {
    "organizations": "organization", "services": "service", "locations": "location",
    "services_at_location": "service_at_location", "service_at_locations": "service_at_location",
    "services_at_locations": "service_at_location",
    "addresses": "address", "physical_address": "address", "physical_addresses": "address",
    "postal_address": "postal_address", "postal_addresses": "postal_address",
    "phones": "phone", "schedules": "schedule", "regular_schedule": "schedule",
    "regular_schedules": "schedule", "service_areas": "service_area",
    "languages": "language", "required_documents": "required_document",
    "cost_options": "cost_option", "units": "unit", "attributes": "attribute",
    "taxonomy_terms": "taxonomy_term", "taxonomy": "taxonomy_term",
    "eligibilities": "eligibility",
    "service_taxonomy": "service_taxonomy", "services_taxonomy": "service_taxonomy",
    "service_taxonomies": "service_taxonomy", "service_attribute": "service_taxonomy",
    "service_attributes": "service_taxonomy",
    "link_taxonomy": "link_taxonomy", "link_taxonomies": "link_taxonomy",
    "other_attribute": "link_taxonomy", "other_attributes": "link_taxonomy",
    "location_attribute": "location_taxonomy", "location_attributes": "location_taxonomy",
}  # fmt: skip
READ_TABLES = (*TABLE_FILES, "postal_address", "service_taxonomy", "link_taxonomy",
               "location_taxonomy")

# Columns a table cannot do without: a missing one is reported once, at the header, and
# the table is not read (each row would otherwise say the same).
REQUIRED: dict[str, tuple[str, ...]] = {
    "service": ("id", "name", "status"),
    "location": ("id",),
    "organization": ("id",),
    "service_at_location": ("id", "service_id", "location_id"),
    "address": ("id", "location_id"),
    "postal_address": ("id", "location_id"),
    "phone": ("id", "number"),
    "service_capacity": ("id", "service_id", "unit_id", "available", "updated"),
    "unit": ("id", "name"),
    "attribute": ("id", "link_id", "taxonomy_term_id"),
    "taxonomy_term": ("id",),
    "service_taxonomy": ("service_id",),
    "link_taxonomy": ("link_id",),
    "location_taxonomy": ("location_id",),
}
# The first of these a header has stands for the column on the left (older names).
COLUMN_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "service": {"fees_description": ("fees",)},
    "taxonomy_term": {"name": ("term",)},
    "service_area": {"name": ("service_area",)},
    "language": {"name": ("language",)},
    "service_taxonomy": {"taxonomy_term_id": ("taxonomy_id",)},
    "link_taxonomy": {"taxonomy_term_id": ("taxonomy_id",)},
    "location_taxonomy": {"taxonomy_term_id": ("taxonomy_id",)},
    "service_capacity": {"updated": ("updated_at", "last_updated")},
}
DELIMITERS = (",", ";", "\t", "|")
# How a package read by two processes is shared out: by the rows of each table, estimated
# from its first SAMPLE_BYTES; the other process, started as the reading starts, counts
# as having WORKER_START_ROWS already (about a second of reading).
SAMPLE_BYTES = 65_536
WORKER_START_ROWS = 120_000
# Tables every slice of a spilled package needs whole (small: organizations, units, terms).
IN_MEMORY = ("organization", "unit", "taxonomy_term")
WEEKDAYS = {"1": "MO", "2": "TU", "3": "WE", "4": "TH", "5": "FR", "6": "SA", "7": "SU",
            "mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA",
            "sun": "SU"}


@dataclass(slots=True)
class Row:
    file: str
    line: int
    data: dict[str, str]  # the non-empty fields only (a national export is mostly empty)

    def get(self, key: str) -> str:
        value = self.data.get(key)
        return value.strip() if value else ""


@dataclass
class Tables:
    rows: dict[str, list[Row]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # table -> display name of its file
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was found, said once
    version: str = ""  # the HSDS version, as found
    columns: dict[str, list[str]] = field(default_factory=dict)  # table -> its header
    # (table, id) -> (file, line) of the first row with an id used more than once, when
    # the rows are built a slice at a time (spill.py): a repeat in another slice is known.
    firsts: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)

    def __getitem__(self, table: str) -> list[Row]:
        return self.rows.get(table, [])

    def file(self, table: str) -> str:
        return self.files.get(table, TABLE_FILES.get(table, f"{table}.csv"))

    def add(self, table: str, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)


def _table_of(name: str) -> str | None:
    stem = name.strip().lower().removesuffix(".csv").replace("-", "_").replace(" ", "_")
    if stem in TABLE_FILES or stem in READ_TABLES:
        return stem
    return OLDER_NAMES.get(stem)


# ------------------------------------------------------------------ CSV datapackage


def read_csv_package(path: Path, spill: Spill | None = None,
                     elsewhere: Elsewhere | None = None) -> Tables:
    """The tables of a datapackage folder; with ``spill``, the rows of the large tables
    go into its scratch file instead of memory (see spill.py), and with ``elsewhere``,
    some tables are read by another process meanwhile (slices.py)."""
    folder = path.parent if path.is_file() else path
    tables = Tables()
    files: dict[str, list[Path]] = {}
    package = folder / "datapackage.json"
    meta: dict[str, Any] = {}
    if package.exists():
        meta = _package_paths(folder, package, tables, files)
    named = set(files)
    for csv_path in sorted(folder.glob("*.csv")):  # the tables datapackage.json leaves out
        table = _table_of(csv_path.name)
        if table is not None and table not in named:
            files.setdefault(table, []).append(csv_path)
    if "service" not in files:
        tables.problems.append(Problem(str(folder / "services.csv"), 1,
                                       "no services table in this datapackage",
                                       "an HSDS datapackage needs at least services.csv (or a "
                                       "datapackage.json resource named services)"))
        return tables
    jobs: dict[str, list[Path]] = {}
    for table in READ_TABLES:
        for csv_path in files.get(table, []):
            if _inside(folder, csv_path, tables):
                tables.files.setdefault(table, str(csv_path))
                if spill is None or elsewhere is None:
                    _read_csv(table, csv_path, tables, spill)
                else:
                    jobs.setdefault(table, []).append(csv_path)
    if spill is not None and elsewhere is not None and jobs:
        _read_in_parts(jobs, tables, spill, elsewhere)
    tables.version = _version(meta, tables, files)
    if spill is not None:
        spill.finish()
        tables.firsts = spill.firsts()
    return tables


@dataclass
class Part:
    """The files of one table, read into a scratch file, their rows numbered from
    ``first`` on (each table has a range of its own, in the order of the tables)."""

    table: str
    paths: list[Path]
    first: int

    @property
    def rows(self) -> int:
        """About how many rows its files have (by the length of their first lines): what
        reading a table costs goes with its rows more than its bytes (a service's row
        is long, an attribute's short, and each costs about as much)."""
        total = 0
        for path in self.paths:
            try:
                with path.open("rb") as handle:
                    head = handle.read(SAMPLE_BYTES)
            except OSError:
                continue
            lines = max(head.count(b"\n"), 1)
            total += path.stat().st_size * lines // max(len(head), 1)
        return total


# Reads parts of a package into a scratch file of its own (the numbers of ``files`` as
# given), in another process; returns what waits for them: what each part found, the
# ranges of rows of each table, and the scratch file.
Waiting = Callable[[], tuple[list["Tables"], dict[str, list[tuple[int, int]]], "Formats",
                             Path]]
Elsewhere = Callable[[list[Part], list[str]], Waiting]


def read_part(part: Part, spill: Spill) -> Tables:
    """One table's files into ``spill``: what they found (problems, notes, header, and
    the rows of a table kept in memory) in a Tables of their own."""
    found = Tables()
    spill.start(part.first)
    for csv_path in part.paths:
        found.files.setdefault(part.table, str(csv_path))
        _read_csv(part.table, csv_path, found, spill)
    return found


def _read_in_parts(jobs: dict[str, list[Path]], tables: Tables, spill: Spill,
                   elsewhere: Elsewhere) -> None:
    """The tables of ``jobs`` read by this process and another at once, about half of
    the bytes each, then put together as one process would have read them in order."""
    names = [str(p) for paths in jobs.values() for p in paths]
    spill.known(names)
    parts = [Part(table, paths, (k + 1) << 40) for k, (table, paths) in enumerate(jobs.items())]
    mine: list[Part] = []
    theirs: list[Part] = []
    load = [0, WORKER_START_ROWS]  # rows: here, there (the other process starts later)
    for part in sorted(parts, key=lambda p: -p.rows):
        here = part.table in IN_MEMORY or load[0] <= load[1]
        (mine if here else theirs).append(part)
        load[0 if here else 1] += part.rows
    waiting = elsewhere(sorted(theirs, key=lambda p: p.first), names) if theirs else None
    found = {part.first: read_part(part, spill) for part in sorted(mine, key=lambda p: p.first)}
    spill.finish()  # this process's rows indexed while the other indexes its own
    if waiting is not None:
        their_found, ranges, formats, scratch = waiting()
        spill.attach(scratch, ranges, formats)
        found |= {part.first: f for part, f in zip(sorted(theirs, key=lambda p: p.first),
                                                   their_found, strict=True)}
    for part in parts:  # in the order of the tables, as read by one process
        got = found[part.first]
        tables.problems += got.problems
        tables.notes += got.notes
        for table, header in got.columns.items():
            tables.columns.setdefault(table, header)
        for table, name in got.files.items():
            tables.files.setdefault(table, name)
        for table, rows in got.rows.items():
            tables.rows.setdefault(table, []).extend(rows)


def _inside(folder: Path, path: Path, tables: Tables) -> bool:
    """False (and said) when ``path`` is, or leads through a link to, a file outside."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        tables.problems.append(Problem(str(path), 1, "cannot be opened (a broken link, or "
                                       "not there)", "put the file itself in the folder"))
        return False
    if not resolved.is_relative_to(folder.resolve()):
        tables.problems.append(Problem(str(path), 1, "is a link to a file outside the "
                                       "datapackage folder; refused", "copy the file itself "
                                       "into the folder"))
        return False
    if not resolved.is_file():
        tables.problems.append(Problem(str(path), 1, "is not a file", "give a CSV file"))
        return False
    return True


def _package_paths(folder: Path, package: Path, tables: Tables,
                   files: dict[str, list[Path]]) -> dict[str, Any]:
    try:
        if package.stat().st_size > MAX_JSON_BYTES:
            raise ValueError("too big")
        data = json.loads(package.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        tables.problems.append(Problem(str(package), line, f"cannot read datapackage.json "
                                       f"({type(exc).__name__})", "fix it, or remove it to use "
                                       "the standard HSDS file names"))
        return {}
    if not isinstance(data, dict):
        return {}
    resources = data.get("resources")
    for i, resource in enumerate(resources if isinstance(resources, list) else []):
        if not isinstance(resource, dict):
            continue
        name, where = resource.get("name"), resource.get("path")
        wheres = where if isinstance(where, list) else [where]
        # The file's own name first: "taxonomy" names 1.1's terms (taxonomy.csv) but 3.x's
        # list of taxonomies (taxonomies.csv), which holds no terms.
        table = (_table_of(Path(wheres[0]).name) if wheres and isinstance(wheres[0], str)
                 else None)
        if table is None and isinstance(name, str) and name.lower() != "taxonomy":
            table = _table_of(name)
        for item in wheres:
            if not isinstance(item, str) or table is None:
                continue
            shown = f"resource {i + 1} ('{name}') path '{item}'"
            if "://" in item or item.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", item):
                tables.problems.append(Problem(str(package), 1, f"{shown} is not inside the "
                                               "datapackage folder; refused", "give a path "
                                               "relative to the folder, and put the file there"))
                continue
            target = folder / item
            if not target.resolve().is_relative_to(folder.resolve()):
                tables.problems.append(Problem(str(package), 1, f"{shown} leads outside the "
                                               "datapackage folder; refused", "give a path "
                                               "inside the folder, and put the file there"))
                continue
            if not target.exists():
                tables.problems.append(Problem(str(package), 1, f"{shown}: no such file",
                                               "fix the path, or add the file"))
                continue
            files.setdefault(table, []).append(target)
    return data


class _Sink:
    """Where the rows of one file go: the tables in memory, or the scratch file. A file
    found unreadable part way is forgotten whole."""

    def __init__(self, tables: Tables, spill: Spill | None) -> None:
        self.tables = tables
        self.spill = spill
        self.kept: list[tuple[str, Row]] = []
        self.count = 0
        self.first = spill.count + 1 if spill is not None else 0

    def add(self, table: str, row: Row) -> None:
        self.count += 1
        table = fold(table, row, self.tables)
        if self.spill is not None and table not in IN_MEMORY:
            self.spill.add(table, row)
        else:
            self.kept.append((table, row))

    def discard(self) -> None:
        self.kept = []
        self.count = 0
        if self.spill is not None:
            self.spill.discard(self.first)

    def keep(self) -> None:
        for table, row in self.kept:
            self.tables.add(table, row)


def _read_csv(table: str, csv_path: Path, tables: Tables, spill: Spill | None = None
              ) -> None:
    name = str(csv_path)
    try:
        size = csv_path.stat().st_size
    except OSError as exc:
        tables.problems.append(Problem(name, 1, f"cannot be read ({type(exc).__name__})",
                                       "check the file and its permissions"))
        return
    if size > MAX_FILE_BYTES:
        tables.problems.append(Problem(name, 1, f"is larger than the limit of "
                                       f"{MAX_FILE_BYTES // 2**20:,} MB for one file",
                                       "split the directory into several sources and import "
                                       "each with --source"))
        return
    with csv_path.open("rb") as raw:
        sample = raw.read(65536)
    encoding = "utf-8-sig"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the end of the sample
            encoding = _other_encoding(sample)
    sink = _Sink(tables, spill)
    read = _csv_rows(table, csv_path, encoding, tables, sink)
    if not read and encoding == "utf-8-sig":  # a byte further on was not UTF-8
        sink.discard()
        with csv_path.open("rb") as raw:
            encoding = _other_encoding(raw.read())
        read = _csv_rows(table, csv_path, encoding, tables, sink)
    if read and encoding != "utf-8-sig":
        tables.notes.append(f"{name}: not UTF-8; read as {encoding} (save it as UTF-8 "
                            "to be sure of accented letters)")
    sink.keep()


def _other_encoding(data: bytes) -> str:
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _sniff(header_line: str) -> str:
    """The delimiter: whichever of , ; tab | the header line has most of, outside quotes."""
    bare = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(table: str, csv_path: Path, encoding: str, tables: Tables, sink: _Sink
              ) -> bool:
    """The rows of one file, into ``sink``; False when it is not ``encoding`` after all
    (UTF-8 only). A file refused part way leaves nothing in the sink."""
    name = str(csv_path)
    start = 1
    spilled = sink.spill is not None and table not in IN_MEMORY  # no need to intern ids
    add: Callable[[int, list[str]], None] | None = None
    csv.field_size_limit(MAX_FIELD)
    try:
        with csv_path.open(encoding=encoding, newline="") as handle:
            first = handle.readline()
            delimiter = _sniff(first)
            handle.seek(0)
            if delimiter != ",":
                shown = "tab" if delimiter == "\t" else f"'{delimiter}'"
                tables.notes.append(f"{name}: fields are separated by {shown}")
            reader = csv.reader(handle, delimiter=delimiter)
            header = [h.strip().lower() for h in next(reader, None) or []]
            if not _header_ok(table, header, name, tables):
                return True
            aliases = [(new, old) for new, olds in COLUMN_ALIASES.get(table, {}).items()
                       if new not in header for old in olds if old in header][:8]
            start = 2
            width = len(header)
            if spilled and table not in RETABLED:
                assert sink.spill is not None
                # kept as they are, made rows (and folded) when a slice is read
                add = sink.spill.writer(table, name, header, aliases)
            for fields in reader:
                line_num = reader.line_num  # as csv.DictReader counts (blank lines skipped)
                if not fields:
                    fields = next((f for f in reader if f), [])
                    if not fields:
                        break
                if len(fields) != width:
                    tables.problems.append(Problem(
                        name, start, f"this row has a different number of fields than the "
                        f"header ({len(header)})", "check for a missing or extra "
                        f"{'comma' if delimiter == ',' else 'separator'}, or an unclosed quote"))
                else:
                    if add is not None:
                        sink.count += 1
                        add(start, fields)
                    else:
                        row = ({k: v for k, v in zip(header, fields, strict=True)
                                if v and not v.isspace()} if spilled else
                               {k: _intern(k, v) for k, v in zip(header, fields, strict=True)
                                if v and not v.isspace()})
                        for new, old in aliases:
                            if old in row:
                                row.setdefault(new, row[old])
                        sink.add(table, Row(name, start, row))
                    if sink.count > MAX_ROWS or (table == "service"
                                                 and sink.count > MAX_SERVICES):
                        limit = (f"{MAX_SERVICES:,} services, the limit for one import"
                                 if sink.count > MAX_SERVICES and table == "service"
                                 else f"{MAX_ROWS:,} rows, the limit for one table")
                        tables.problems.append(Problem(
                            name, start, f"more than {limit}", "split the directory into "
                            "several sources and import each with --source"))
                        sink.discard()
                        return True
                start = line_num + 1
    except UnicodeDecodeError:
        if encoding == "utf-8-sig":
            return False
        sink.discard()
        tables.problems.append(Problem(name, 1, "not readable text", "save it as UTF-8 CSV"))
    except csv.Error as exc:
        line = start
        if "field larger than field limit" in str(exc):
            tables.problems.append(Problem(name, line, f"a field is longer than {MAX_FIELD:,} "
                                           "characters, the limit", "shorten it, or check "
                                           "for an unclosed quote before it"))
        else:
            tables.problems.append(Problem(name, line, f"not readable as CSV ({exc})",
                                           "save the file as CSV with a header row"))
        sink.discard()
        return True
    return True


def _intern(column: str, value: str) -> str:
    """Ids are repeated in every table that links to them: one copy of each."""
    return sys.intern(value) if column == "id" or column.endswith("_id") else value


def _header_ok(table: str, header: list[str], name: str, tables: Tables) -> bool:
    tables.columns.setdefault(table, header)
    aliases = COLUMN_ALIASES.get(table, {})
    missing = [c for c in REQUIRED.get(table, ())
               if c not in header and not any(a in header for a in aliases.get(c, ()))]
    for column in missing:
        close = difflib.get_close_matches(column, header, n=1)
        fix = (f"is '{close[0]}' meant? rename it to '{column}'" if close else
               f"add a '{column}' column (HSDS needs it in this table)")
        tables.problems.append(Problem(name, 1, f"the header has no '{column}' column; "
                                       "no row of this file was read", fix))
    return not missing


def fold(table: str, row: Row, tables: Tables) -> str:
    """A row of an older HSDS table as a row of the 3.x table the builder reads; returns
    that table."""
    data = row.data
    if table == "address":
        data.setdefault("address_type", "physical")
    elif table == "postal_address":
        data.setdefault("address_type", "postal")
        return "address"
    elif table in FOLDED_LINKS:
        entity, link = FOLDED_LINKS[table]
        folded = dict(data)
        folded["link_id"] = row.get(link)
        folded["link_entity"] = entity or row.get("link_type").lower()
        folded.setdefault("id", f"{table}:{row.line}")
        if not folded.get("id"):
            folded["id"] = f"{table}:{row.line}"
        row.data = folded
        tables.files.setdefault("attribute", row.file)
        return "attribute"
    elif table == "schedule":
        weekday = row.get("weekday").lower()[:3]
        if weekday and not row.get("byday"):
            data["byday"] = WEEKDAYS.get(weekday, row.get("weekday"))
            data.setdefault("freq", "WEEKLY")
    elif table == "location":
        if "location_type" not in tables.columns.get("location", ["location_type"]):
            data["location_type"] = "physical"  # before 3.0 there is no location_type
    elif table == "language":
        name = row.get("name")
        if not row.get("code") and re.fullmatch(r"[a-z]{2,3}", name):
            data["code"], data["name"] = name, ""
    return table


# Older tables linking taxonomy terms: (the entity they link, the column of its id).
FOLDED_LINKS = {"service_taxonomy": ("service", "service_id"),
                "location_taxonomy": ("location", "location_id"),
                "link_taxonomy": ("", "link_id")}
# Tables whose rows ``fold`` makes rows of another table (the rest keep their table, so
# their rows can be kept in a scratch file as they are, and folded when read back).
RETABLED = ("postal_address", *FOLDED_LINKS)
# The tables whose rows ``fold`` may change at all.
FOLDED = ("address", "schedule", "location", "language", *RETABLED)


def _version(meta: dict[str, Any], tables: Tables, files: dict[str, list[Path]]) -> str:
    declared = str(meta.get("version") or "")
    if re.fullmatch(r"[123](\.\d+){0,2}", declared) and "hsds" in json.dumps(
            meta.get("name", "")).lower() + json.dumps(meta.get("profile", "")).lower():
        return ".".join(declared.split(".")[:2])
    stems = {p.name.lower().removesuffix(".csv") for paths in files.values() for p in paths}
    if stems & {"service_attribute", "service_attributes", "other_attribute",
                "other_attributes", "link_taxonomy"} or "term" in tables.columns.get(
            "taxonomy_term", []) or "minimum_age" in tables.columns.get("eligibility", []):
        return "2.0"
    if stems & {"physical_address", "physical_addresses", "regular_schedule",
                "regular_schedules", "services_at_location", "service_taxonomy",
                "services_taxonomy", "taxonomy"}:
        return "1.1"
    if "service_capacity" in files or "unit" in files:
        return "3.1"
    return "3.0"


# ------------------------------------------------------------------ JSON


def read_json(path: Path) -> Tables:
    tables = Tables()
    name = str(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        tables.problems.append(Problem(name, 1, f"is larger than the limit of "
                                       f"{MAX_JSON_BYTES // 2**20:,} MB for a JSON file",
                                       "give the directory as an HSDS CSV datapackage instead"))
        return tables
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text)
    except UnicodeDecodeError:
        tables.problems.append(Problem(name, 1, "not UTF-8 text", "save the file as UTF-8"))
        return tables
    except json.JSONDecodeError as exc:
        tables.problems.append(Problem(name, exc.lineno, f"not valid JSON ({exc.msg})",
                                       "fix the syntax near this line"))
        return tables
    try:
        located = load_located(text)
    except YamlSyntaxError:  # valid JSON that YAML reads differently: lines unknown
        located = Located(data)
    flat = _Flattener(tables, name, located)
    services = list(_services_in(data))
    if not services:
        tables.problems.append(Problem(name, 1, "no services found", "give one service object, "
                                       "a list of them, or an object with 'contents' or "
                                       "'services'"))
    for where, service, org in services:
        flat.service(service, where, org)
    for table in TABLE_FILES:
        tables.files[table] = name
    return tables


JsonPath = tuple[str | int, ...]


def _services_in(data: Any) -> Iterator[tuple[JsonPath, dict[str, Any], dict[str, Any] | None]]:
    if isinstance(data, list):
        for i, item in enumerate(data):
            if isinstance(item, dict):
                yield (i,), item, None
    elif isinstance(data, dict):
        for key in ("contents", "services"):
            if isinstance(data.get(key), list):
                org = data if key == "services" else None
                for i, item in enumerate(data[key]):
                    if isinstance(item, dict):
                        yield (key, i), item, org
                return
        if "id" in data and "name" in data:
            yield (), data, None


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Flattener:
    def __init__(self, tables: Tables, name: str, located: Located) -> None:
        self.tables = tables
        self.name = name
        self.located = located
        self.seen: set[tuple[str, str]] = set()

    def add(self, table: str, obj: Any, where: JsonPath, **links: str) -> str:
        """One object as a row of ``table``; returns its id. Repeats (the JSON form nests the
        same phone or location in several places) keep the first."""
        if not isinstance(obj, dict):
            return ""
        data = {k: _text(v) for k, v in obj.items()}
        data.update({k: v for k, v in links.items() if v})
        ident = data.get("id", "")
        if table != "service" and ident:
            if (table, ident) in self.seen:
                return ident
            self.seen.add((table, ident))
        self.tables.add(table, Row(self.name, self.located.position(where).line, data))
        return ident

    def each(self, obj: dict[str, Any], key: str, where: JsonPath
             ) -> Iterator[tuple[dict[str, Any], JsonPath]]:
        items = obj.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield item, (*where, key, i)

    def service(self, obj: dict[str, Any], where: JsonPath, org: dict[str, Any] | None) -> None:
        org = obj.get("organization") if isinstance(obj.get("organization"), dict) else org
        org_id = ""
        if org is not None:
            org_id = self.add("organization", {"id": org.get("id"), "name": org.get("name")},
                              where if org is not obj.get("organization")
                              else (*where, "organization"))
            for phone, at in self.each(org, "phones", ()):
                self.add("phone", phone, at, organization_id=org_id)
        sid = self.add("service", obj, where, organization_id=org_id)
        for table, key in (("phone", "phones"), ("schedule", "schedules"),
                           ("service_area", "service_areas"), ("language", "languages"),
                           ("required_document", "required_documents"),
                           ("cost_option", "cost_options")):
            for item, at in self.each(obj, key, where):
                self.add(table, item, at, service_id=sid)
        for item, at in self.each(obj, "capacities", where):
            unit = item.get("unit")
            unit_id = self.add("unit", unit, (*at, "unit")) if isinstance(unit, dict) else ""
            self.add("service_capacity", item, at, service_id=sid, unit_id=unit_id)
        for item, at in self.each(obj, "attributes", where):
            self.attribute(item, at, sid, "service")
        for sal, at in self.each(obj, "service_at_locations", where):
            location = sal.get("location")
            loc_id = self.location(location, (*at, "location")) if isinstance(
                location, dict) else ""
            sal_id = self.add("service_at_location", sal, at, service_id=sid, location_id=loc_id)
            for table, key in (("phone", "phones"), ("schedule", "schedules"),
                               ("service_area", "service_areas")):
                for item, item_at in self.each(sal, key, at):
                    self.add(table, item, item_at, service_id=sid, service_at_location_id=sal_id)

    def location(self, obj: dict[str, Any], where: JsonPath) -> str:
        loc_id = self.add("location", obj, where)
        for table, key in (("address", "addresses"), ("phone", "phones"),
                           ("schedule", "schedules"), ("language", "languages")):
            for item, at in self.each(obj, key, where):
                self.add(table, item, at, location_id=loc_id)
        for item, at in self.each(obj, "attributes", where):
            self.attribute(item, at, loc_id, "location")
        return loc_id

    def attribute(self, obj: dict[str, Any], where: JsonPath, link_id: str, entity: str) -> None:
        term = obj.get("taxonomy_term")
        term_id = self.add("taxonomy_term", term, (*where, "taxonomy_term")) if isinstance(
            term, dict) else ""
        self.add("attribute", obj, where, link_id=link_id, link_entity=entity,
                 taxonomy_term_id=term_id)
