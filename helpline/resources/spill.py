"""A national HSDS datapackage, read without holding it in memory.

``read_csv_package(folder, spill)`` writes every row of the large tables into a scratch
SQLite file (in a private temporary folder, removed afterwards) instead of lists in
memory; the small tables the whole package refers to (organizations, units, taxonomy
terms) stay in memory. ``batches`` then hands the builder one slice of services at a time
with exactly the rows that hang on them: their service-at-location rows, locations and
addresses, phones, schedules, areas, languages, documents, costs, attributes,
eligibility and openings. Rows that hang on no service (a phone for a service id that is
not there, a location no service is at) come last, in slices of their own, with the rows
they refer to, so every problem the whole package has is still found and named; problems
found twice (a location shared by services of two slices) are said once.

At 300,000 services the import held 4.4 GB when it read every table into memory; with the
scratch file, what is in memory at once is a few slices of services and what hangs on them
(263 MB at the peak in one process; 441 MB for the importing process and the worker that
reads and builds beside it, slices.py; bench/README.md). The rows built for the database
are kept in a file of their own (``Kept``), as columns, and copied into the database in SQL.

A CSV row of a table that keeps its rows (``Spill.writer``) is kept as its fields, with the
key columns the slices are found by beside it, and made a row only when a slice reads it:
making a dict and a row of every row as it was read cost more than reading it.
"""

from __future__ import annotations

import heapq
import json
import marshal  # rows this import wrote itself, in its own private folder
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, cast

from helpline.resources.hsds_read import FOLDED, Row, Tables, fold

# Services a slice holds. At 300,000 services, 2,000 rather than 4,000 took the import's
# peak from 494 to 450 MB (both processes) at the same speed (bench/README.md).
SERVICES_PER_BATCH = 2000
ORPHANS_PER_BATCH = 20_000
SEP, PAIR = "\x1f", "\x1e"
# Tables every slice needs whole (small: the package's organizations, units and terms).
IN_MEMORY = ("organization", "unit", "taxonomy_term")
# Tables whose rows hang on a service, a service-at-location or a location.
CHILDREN = ("phone", "schedule", "service_area", "language", "required_document",
            "cost_option", "eligibility", "service_capacity")
# Tables whose ids other rows refer to: a repeated id is found across the whole package.
INDEXED = ("service", "location", "service_at_location")
# The columns the scratch file keeps apart, beside each row (r.id, sid, lid, sal, link, org).
KEYS = ("id", "service_id", "location_id", "service_at_location_id", "link_id",
        "organization_id")
KEY_COLUMNS = ("id", "sid", "lid", "sal", "link", "org")  # r's column for each
# How the fields of a CSV file's rows are read back (``Spill.writer``): its header, and the
# older columns standing for newer ones (hsds_read.COLUMN_ALIASES), by file number.
Formats = dict[int, tuple[list[str], list[tuple[str, str]]]]


def _encode(data: dict[str, str]) -> str:
    text = PAIR.join(map(SEP.join, data.items()))
    if text.count(SEP) != len(data) or text.count(PAIR) != max(len(data) - 1, 0):
        return "J" + json.dumps(data)  # a separator inside a field: rare, kept exactly
    return "S" + text


def _decode(text: str, formats: Formats | None = None, file: int = 0) -> dict[str, str]:
    """A row as ``_encode`` or ``Spill.writer`` kept it: its non-empty fields (those of a
    CSV row still to be put as one of a table read in memory would be: ``_fields``)."""
    kind = text[0]
    if kind == "P" or kind == "Q":
        assert formats is not None
        header, aliases = formats[file]
        if kind == "P":
            row = {k: v for k, v in zip(header, text[1:].split(SEP), strict=True)
                   if v and not v.isspace()}
        else:
            row = json.loads(text[1:])
        for new, old in aliases:
            if old in row:
                row.setdefault(new, row[old])
        return row
    if kind == "J":
        loaded: dict[str, str] = json.loads(text[1:])
        return loaded
    if len(text) == 1:
        return {}
    parts = iter(text[1:].replace(PAIR, SEP).split(SEP))
    return dict(zip(parts, parts, strict=True))


def _dump(row: tuple[object, ...]) -> bytes:
    """A built row (strings, numbers and None only) as bytes."""
    return marshal.dumps(cast(Any, row))


Rows = Sequence[tuple[object, ...]]
RowList = list[tuple[object, ...]]


class Kept:
    """Rows built to be written (store.service_rows, capacity_row), by slice, in a
    scratch file of their own, as columns c0, c1... of the tables ``TABLES`` (so the
    import copies them into the database in SQL, store.Directory.replace_source_kept).
    Each slice's rows of a table are a run of rowids, noted as they are kept
    (``spans``); the slices a worker built stay in its own file, which this one
    ``join``s: the write reads each slice's rows where they are, by rowid, in the order
    of the slices (no copy from one file into the other, no index to make)."""

    TABLES: ClassVar = ("out_services", "out_needs", "out_terms", "out_capacity")
    WIDTHS: ClassVar = {"out_needs": 3, "out_terms": 2, "out_capacity": 6}  # store.py's rows
    # The column of each table holding the service's id (for the services left out).
    ID_AT: ClassVar = {"out_services": 0, "out_needs": 2, "out_terms": 1, "out_capacity": 0}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path.as_uri(), uri=True)  # (join attaches one read-only)
        self.db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE IF NOT EXISTS left_out (id TEXT PRIMARY KEY);
        """)
        self.batches: set[int] = set()
        self.widths: dict[str, int] = {}
        # (slice, table) -> (file, first rowid, last rowid): file 0 is this one, then the
        # files joined (``files``).
        self.spans: dict[tuple[int, str], tuple[int, int, int]] = {}
        self.files: list[Path] = [path]
        self._last: dict[str, int] = {}  # the last rowid given in each table of this file

    def _table(self, table: str, width: int) -> None:
        if self.widths.get(table) is None:
            columns = "".join(f", c{i}" for i in range(width))
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {table} (batch INTEGER NOT NULL"
                            f"{columns})")
            self.widths[table] = width

    def keep(self, batch: int, services: Rows, needs: Rows, terms: Rows, capacities: Rows
             ) -> dict[str, tuple[int, int]]:
        """Returns the rowids the slice's rows of each table were given (first, last)."""
        self.batches.add(batch)
        given: dict[str, tuple[int, int]] = {}
        for table, rows in zip(self.TABLES, (services, needs, terms, capacities), strict=True):
            if rows:
                self._table(table, len(rows[0]))
                marks = ", ?" * len(rows[0])
                first = self._last.get(table, 0) + 1
                self.db.executemany(f"INSERT INTO {table} (rowid, batch"
                                    f"{''.join(f', c{i}' for i in range(len(rows[0])))}) "
                                    f"VALUES (?, ?{marks})",
                                    [(at, batch, *r) for at, r in enumerate(rows, first)])
                self._last[table] = last = first + len(rows) - 1
                given[table] = (first, last)
                self.spans[(batch, table)] = (0, first, last)
        self.db.commit()
        return given

    def join(self, other: Path, spans: dict[int, dict[str, tuple[int, int]]]) -> None:
        """The slices another process kept in ``other``: slice -> table -> the rowids
        its rows have there (as that process's ``keep`` returned them)."""
        self.db.commit()
        file = len(self.files)
        self.db.execute(f"ATTACH DATABASE ? AS other{file}", (f"{other.as_uri()}?mode=ro",))
        self.files.append(other)
        for batch, tables in spans.items():
            self.batches.add(batch)
            for table, (first, last) in tables.items():
                self.spans[(batch, table)] = (file, first, last)

    def leave_out(self, ids: Iterable[str]) -> None:
        """Services not to be written (their ids are another source's)."""
        self.db.executemany("INSERT OR IGNORE INTO left_out VALUES (?)", ((i,) for i in ids))
        self.db.commit()

    def ready(self) -> None:
        """Every slice is in."""
        self.db.commit()

    def count(self, table: str) -> int:
        """How many rows of ``table`` the slices kept (those left out too)."""
        return sum(last - first + 1 for (_, t), (_, first, last) in self.spans.items()
                   if t == table)

    def runs(self, table: str) -> list[tuple[int, int, int]]:
        """(file, first rowid, last rowid) of ``table``'s rows, in the order of the slices:
        the slices one after the other in a file, each run of them as one."""
        out: list[tuple[int, int, int]] = []
        for batch in sorted(self.batches):
            span = self.spans.get((batch, table))
            if span is None:
                continue
            if out and out[-1][0] == span[0] and out[-1][2] + 1 == span[1]:
                out[-1] = (span[0], out[-1][1], span[2])
            else:
                out.append(span)
        return out

    def _schema(self, file: int) -> str:
        return "main" if file == 0 else f"other{file}"

    def _rows(self, table: str, file: int, first: int, last: int) -> list[tuple[object, ...]]:
        return [tuple(row)[1:] for row in self.db.execute(
            f"SELECT * FROM {self._schema(file)}.{table} WHERE rowid BETWEEN ? AND ? AND "
            f"c{self.ID_AT[table]} NOT IN (SELECT id FROM main.left_out) ORDER BY rowid",
            (first, last))]

    def slices(self) -> Iterator[tuple[RowList, RowList, RowList]]:
        """The rows of each slice, without those of the services left out."""
        for batch in sorted(self.batches):
            yield tuple(  # type: ignore[misc]
                self._rows(table, *span) if (span := self.spans.get((batch, table)))
                else [] for table in self.TABLES[:3])

    def capacities(self) -> Iterator[tuple[object, ...]]:
        for run in self.runs("out_capacity"):
            yield from self._rows("out_capacity", *run)

    def close(self) -> None:
        self.db.close()


@dataclass
class Spill:
    """The scratch file: rows by number, with the ids they have and refer to."""

    # Where the scratch file goes: by default a private temporary folder, removed at the
    # end; a part read by another process (slices.py) goes beside the main one.
    place: Path | None = None
    files: list[str] = field(default_factory=list)
    count: int = 0
    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder: tempfile.TemporaryDirectory[str] | None = None
        if self.place is None:
            self.folder = tempfile.TemporaryDirectory(prefix="helpline-import-")
            self.path = Path(self.folder.name) / "rows.db"
        else:
            self.path = self.place
        self.db = sqlite3.connect(self.path.as_uri(), uri=True)
        self.formats: Formats = {}  # the CSV files whose rows were kept as their fields
        self.parts: list[Path] = []  # other processes' scratch files, attached
        self.holds: dict[str, set[str]] = {}  # the tables each attached one holds
        self._own: set[str] = set()  # the tables this one holds
        self.db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = FILE;
            PRAGMA cache_size = -16000;
            CREATE TABLE r (n INTEGER PRIMARY KEY, tbl TEXT NOT NULL, file INTEGER NOT NULL,
                            line INTEGER NOT NULL, data TEXT NOT NULL, id TEXT, sid TEXT,
                            lid TEXT, sal TEXT, link TEXT, org TEXT);
        """)
        self._pending: list[tuple[object, ...]] = []
        self._written: list[tuple[object, ...]] = []  # a writer's rows, and their statement
        self._written_sql = ""
        self._file: dict[str, int] = {}
        self._kept: Kept | None = None
        self._table = ""  # the table of the run of rows being read, from row _run on
        self._run = 0

    # ------------------------------------------------------------- what was built

    def keep_built(self, batch: int, services: Rows, needs: Rows, terms: Rows,
                   capacities: Rows) -> None:
        """The rows slice ``batch`` of services will be written as (store.service_rows),
        kept here until the whole package is known to be good enough to import."""
        self.kept().keep(batch, services, needs, terms, capacities)

    def kept(self) -> Kept:
        if self._kept is None:
            # A file of their own: the slices' rows (rows.db) may be read meanwhile by
            # the process that builds them beside this one (slices.py).
            self._kept = Kept(self.path.with_name("built.db"))
        return self._kept

    def built(self) -> Iterator[tuple[RowList, RowList, RowList]]:
        """What was kept, a slice at a time."""
        if self._kept is not None:
            yield from self._kept.slices()

    def built_capacities(self) -> Iterator[tuple[object, ...]]:
        if self._kept is not None:
            yield from self._kept.capacities()

    def close(self) -> None:
        self.db.close()
        if self._kept is not None:
            self._kept.close()
        if self.folder is not None:
            self.folder.cleanup()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------- writing

    def _number(self, name: str) -> int:
        file = self._file.get(name)
        if file is None:
            file = self._file[name] = len(self.files)
            self.files.append(name)
        return file

    def _begin(self, table: str) -> None:
        """The rows that come next are of ``table``: a run of its own when the rows before
        were of another."""
        if table != self._table:
            self._end_run()
            self._table = table
            self._run = self.count + 1

    def writer(self, table: str, name: str, header: list[str],
               aliases: list[tuple[str, str]]) -> Callable[[int, list[str]], None]:
        """For the rows of one CSV file of ``table`` (a table whose rows stay rows of it:
        hsds_read.fold): ``add(line, fields)`` keeps a row as its fields, in the order of
        ``header`` (the reader of a slice makes a row of them, then folds it, as a table
        read in memory is), without making the row here."""
        self._flush()  # (the rows before, each with its statement)
        file = self._number(name)
        self.formats[file] = (header, aliases)
        self._begin(table)
        width = len(header)
        # Only the key columns the file has are given (a column not given is NULL, and
        # each value given costs: four NULLs a row doubled the time of writing it).
        given = [(column, header.index(key)) for column, key in zip(
            KEY_COLUMNS, KEYS, strict=True) if key in header]
        at = [i for _, i in given]
        self._written_sql = (
            f"INSERT INTO r (n, tbl, file, line, data{''.join(f', {c}' for c, _ in given)})"
            f" VALUES (?, ?, ?, ?, ?{', ?' * len(given)})")
        pending = self._written
        flush = self._flush

        def add(line: int, fields: list[str]) -> None:
            self.count += 1
            text = SEP.join(fields)
            if PAIR in text or text.count(SEP) != width - 1:  # rare: kept exactly
                text = json.dumps({k: v for k, v in zip(header, fields, strict=True)
                                   if v and not v.isspace()})
                data = "Q" + text
            else:
                data = "P" + text
            pending.append((self.count, table, file, line, data,
                            *[fields[i].strip() or None for i in at]))
            if len(pending) >= 5000:
                flush()
        return add

    def add(self, table: str, row: Row) -> int:
        """Keep one row; returns its number."""
        file = self._number(row.file)
        self._begin(table)
        self.count += 1
        data = row.data
        get = data.get
        self._pending.append((
            self.count, table, file, row.line, _encode(data),
            ((v := get("id")) and v.strip()) or None,
            ((v := get("service_id")) and v.strip()) or None,
            ((v := get("location_id")) and v.strip()) or None,
            ((v := get("service_at_location_id")) and v.strip()) or None,
            ((v := get("link_id")) and v.strip()) or None,
            ((v := get("organization_id")) and v.strip()) or None))
        if len(self._pending) >= 5000:
            self._flush()
        return self.count

    def _end_run(self) -> None:
        """Note the run of rows of one table read so far in ``ranges`` (it may go on)."""
        if self._table:
            self._own.add(self._table)
            spans = self.ranges.setdefault(self._table, [])
            if spans and spans[-1][0] == self._run:
                spans[-1] = (self._run, self.count)
            elif self.count >= self._run:
                spans.append((self._run, self.count))

    def known(self, files: list[str]) -> None:
        """Number these files as given (the parts of a package read by other processes
        number them alike)."""
        for name in files:
            self._number(name)

    def start(self, first: int) -> None:
        """Number the rows that come next from ``first`` on: each table of a package read
        by several processes has its own range, in the order of the tables."""
        self._flush()
        self.count = first - 1
        self._table = ""

    def attach(self, part: Path, ranges: dict[str, list[tuple[int, int]]],
               formats: Formats) -> None:
        """The rows another process wrote into ``part`` (a Spill of its own, indexed by
        that process and closed): read from there, never copied here. Each table is in
        the files that hold its ranges, so a query about a table asks only those."""
        self._flush()
        self.db.commit()
        schema = f"part{len(self.parts)}"
        self.db.execute(f"ATTACH DATABASE ? AS {schema}", (f"{part.as_uri()}?mode=ro",))
        self.parts.append(part)
        self.formats.update(formats)
        self.holds[schema] = set(ranges)
        for table, spans in ranges.items():
            self.ranges[table] = sorted([*self.ranges.get(table, []), *spans])

    def schemas(self, tables: Iterable[str] = ()) -> list[str]:
        """The files (this one, ``main``, and those attached) holding rows of any of
        ``tables`` (or every file)."""
        wanted = set(tables)
        held = {"main": self._own, **self.holds}
        return [schema for schema, has in held.items() if not wanted or has & wanted]

    def discard(self, first: int) -> None:
        """Forget the rows from number ``first`` on (a file that turned out unreadable)."""
        self._flush()
        self.db.execute("DELETE FROM r WHERE n >= ?", (first,))
        for table, spans in self.ranges.items():
            self.ranges[table] = [(a, min(b, first - 1)) for a, b in spans if a < first]
        self.count = first - 1
        self._table = ""

    def _flush(self) -> None:
        self._end_run()
        if self._pending:
            self.db.executemany("INSERT INTO r VALUES (?,?,?,?,?,?,?,?,?,?,?)", self._pending)
            self._pending = []
        if self._written:
            self.db.executemany(self._written_sql, self._written)
            self._written.clear()  # (the same list: a writer holds it)

    def finish(self) -> None:
        """Every row of this file is in: index what the slices are found by (each process
        indexes the file it wrote; once is enough)."""
        self._flush()
        marks = ",".join(f"'{t}'" for t in INDEXED)
        self.db.executescript(f"""
            CREATE INDEX IF NOT EXISTS r_id ON r(tbl, id) WHERE tbl IN ({marks});
            CREATE INDEX IF NOT EXISTS r_sid ON r(sid) WHERE sid IS NOT NULL;
            CREATE INDEX IF NOT EXISTS r_sal ON r(sal) WHERE sal IS NOT NULL AND sid IS NULL;
            CREATE INDEX IF NOT EXISTS r_lid ON r(lid) WHERE lid IS NOT NULL;
            CREATE INDEX IF NOT EXISTS r_link ON r(link) WHERE link IS NOT NULL;
            CREATE INDEX IF NOT EXISTS r_org ON r(org) WHERE tbl = 'phone' AND sid IS NULL
                AND sal IS NULL AND lid IS NULL AND org IS NOT NULL;
        """)

    # ------------------------------------------------------------- reading

    def firsts(self) -> dict[tuple[str, str], tuple[str, int]]:
        """(table, id) -> (file, line) of its first row, for the ids used more than once."""
        out: dict[tuple[str, str], tuple[str, int]] = {}
        marks = ",".join(f"'{t}'" for t in INDEXED)
        for schema in self.schemas(INDEXED):  # (a table's rows are all in one file)
            for table, ident, first in self.db.execute(
                    f"SELECT tbl, id, MIN(n) FROM {schema}.r WHERE tbl IN ({marks}) AND id "
                    "IS NOT NULL GROUP BY tbl, id HAVING COUNT(*) > 1").fetchall():
                file, line = self.db.execute(f"SELECT file, line FROM {schema}.r WHERE n = ?",
                                             (first,)).fetchone()
                out[(str(table), str(ident))] = (self.files[file], int(line))
        return out

    def batches(self, base: Tables) -> Iterator[Tables]:
        """Slices of the package: services and what hangs on them, then the rest."""
        reader = self.reader()
        for job in self.plan():
            yield reader.read(job, base)

    def plan(self, orphans: bool = True) -> list[Job]:
        """The slices, in order: each slice of services (``_links``: the services of each
        slice, and the service-at-location rows, locations and organizations they have;
        the reader of a slice finds its rows from these, so the slices' rows are worked
        out by whichever process builds them), then (``orphans``) the rows that hang on
        no service, ORPHANS_PER_BATCH at a time (``Reader.orphans``: another process may
        find them while the services are built). Every row is written by now, so the
        slices can be read by other processes."""
        batches = self._links()
        jobs: list[Job] = [(batch, ()) for batch in range(batches)]
        return jobs + self.reader().orphans() if orphans else jobs

    def rows(self, table: str) -> int:
        """How many rows of ``table`` were read."""
        return sum(b - a + 1 for a, b in self.ranges.get(table, []))

    def reader(self) -> Reader:
        return Reader(self.db, self.files, self.schemas(), self.formats)

    def _links(self) -> int:
        """For each slice of SERVICES_PER_BATCH services (by the order of their first
        row): its service ids (``sb``; ``sa``, the service rows with no id), and the
        service-at-location rows (``bs``), locations (``bl``) and organizations (``bo``)
        its services have; returns how many slices there are."""
        batch_of: dict[str, int] = {}
        alone: list[tuple[int, int]] = []  # service rows with no id: a slice by position
        for schema in self.schemas(["service"]):
            for a, b in self.ranges.get("service", []):
                for n, ident in self.db.execute(
                        f"SELECT n, id FROM {schema}.r WHERE n BETWEEN ? AND ? ORDER BY n",
                        (a, b)):
                    if ident is None:
                        alone.append((len(batch_of) // SERVICES_PER_BATCH, int(n)))
                    elif ident not in batch_of:
                        batch_of[str(ident)] = len(batch_of) // SERVICES_PER_BATCH
        batches = max([*(batch + 1 for batch, _ in alone),
                       -(-len(batch_of) // SERVICES_PER_BATCH)])
        self.db.executescript("""
            DROP TABLE IF EXISTS sb; DROP TABLE IF EXISTS sa; DROP TABLE IF EXISTS bs;
            DROP TABLE IF EXISTS bl; DROP TABLE IF EXISTS bo;
            CREATE TABLE sb (id TEXT PRIMARY KEY, batch INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE sa (batch INTEGER NOT NULL, n INTEGER NOT NULL);
            CREATE TABLE bs (batch INTEGER NOT NULL, sal TEXT, lid TEXT);
            CREATE TABLE bo (batch INTEGER NOT NULL, org TEXT NOT NULL);
        """)
        self.db.executemany("INSERT INTO sb VALUES (?, ?)", batch_of.items())
        del batch_of
        self.db.executemany("INSERT INTO sa VALUES (?, ?)", alone)
        for schema in self.schemas(["service_at_location"]):
            self.db.execute(f"INSERT INTO bs SELECT DISTINCT sb.batch, r.id, r.lid FROM sb "
                            f"JOIN {schema}.r AS r ON r.sid = sb.id "
                            "AND r.tbl = 'service_at_location'")
        for schema in self.schemas(["service"]):
            self.db.execute(f"INSERT INTO bo SELECT DISTINCT sb.batch, r.org FROM sb "
                            f"JOIN {schema}.r AS r ON r.tbl = 'service' AND r.id = sb.id "
                            "WHERE r.org IS NOT NULL")
            self.db.execute(f"INSERT INTO bo SELECT DISTINCT sa.batch, r.org FROM sa "
                            f"JOIN {schema}.r AS r ON r.n = sa.n WHERE r.org IS NOT NULL")
        self.db.executescript("""
            CREATE TABLE bl AS SELECT DISTINCT batch, lid FROM bs WHERE lid IS NOT NULL;
            CREATE INDEX sb_batch ON sb(batch);
            CREATE INDEX sa_batch ON sa(batch);
            CREATE INDEX bs_batch ON bs(batch);
            CREATE INDEX bs_sal ON bs(sal);
            CREATE INDEX bl_batch ON bl(batch);
            CREATE INDEX bl_lid ON bl(lid);
            CREATE INDEX bo_batch ON bo(batch);
            CREATE INDEX bo_org ON bo(org);
        """)
        return batches


_CHILDREN = ",".join(f"'{t}'" for t in CHILDREN)
_INDEXED = ",".join(f"'{t}'" for t in INDEXED)  # as Spill.finish's index r_id says it
# The rows of one slice (?1), from one file ({r}): the same rules as ``_ORPHAN``.
_SLICE_SQL = f"""
SELECT r.n, r.tbl, r.file, r.line, r.data FROM {{r}} AS r WHERE r.n IN (
    SELECT sa.n FROM sa WHERE sa.batch = ?1
    UNION SELECT r.n FROM sb CROSS JOIN {{r}} AS r ON r.tbl = 'service' AND r.id = sb.id
        AND r.tbl IN ({_INDEXED})
        WHERE sb.batch = ?1
    UNION SELECT r.n FROM sb CROSS JOIN {{r}} AS r ON r.sid = sb.id
        AND r.tbl IN ('service_at_location', {_CHILDREN}) WHERE sb.batch = ?1
    UNION SELECT r.n FROM bl CROSS JOIN {{r}} AS r ON r.tbl = 'location' AND r.id = bl.lid
        AND r.tbl IN ({_INDEXED})
        WHERE bl.batch = ?1
    UNION SELECT r.n FROM bl CROSS JOIN {{r}} AS r ON r.lid = bl.lid AND r.tbl = 'address'
        WHERE bl.batch = ?1
    UNION SELECT r.n FROM bs CROSS JOIN {{r}} AS r ON r.sal = bs.sal AND r.sid IS NULL
        AND r.tbl IN ({_CHILDREN}) WHERE bs.batch = ?1 AND bs.sal IS NOT NULL
    UNION SELECT r.n FROM bl CROSS JOIN {{r}} AS r ON r.lid = bl.lid AND r.sid IS NULL
        AND r.sal IS NULL AND r.tbl IN ({_CHILDREN}) WHERE bl.batch = ?1
    UNION SELECT r.n FROM bo CROSS JOIN {{r}} AS r ON r.org = bo.org AND r.tbl = 'phone'
        AND r.sid IS NULL AND r.sal IS NULL AND r.lid IS NULL WHERE bo.batch = ?1
    UNION SELECT r.n FROM sb CROSS JOIN {{r}} AS r ON r.link = sb.id AND r.tbl = 'attribute'
        WHERE sb.batch = ?1
    UNION SELECT r.n FROM bl CROSS JOIN {{r}} AS r ON r.link = bl.lid AND r.tbl = 'attribute'
        WHERE bl.batch = ?1
) ORDER BY r.n
"""
# Whether row r is in some slice of services: one rule for each of _SLICE_SQL's parts (a
# service row always is: by its id, or by its position when it has none).
_ORPHAN = f"""
SELECT r.n FROM {{r}} AS r WHERE (CASE
    WHEN r.tbl = 'service' THEN 1
    WHEN r.tbl = 'location' THEN EXISTS (SELECT 1 FROM bl WHERE bl.lid = r.id)
    WHEN r.tbl = 'address' THEN EXISTS (SELECT 1 FROM bl WHERE bl.lid = r.lid)
    WHEN r.tbl = 'attribute' THEN EXISTS (SELECT 1 FROM sb WHERE sb.id = r.link)
        OR EXISTS (SELECT 1 FROM bl WHERE bl.lid = r.link)
    WHEN r.tbl = 'service_at_location' THEN EXISTS (SELECT 1 FROM sb WHERE sb.id = r.sid)
    WHEN r.tbl NOT IN ({_CHILDREN}) THEN 0
    WHEN r.sid IS NOT NULL THEN EXISTS (SELECT 1 FROM sb WHERE sb.id = r.sid)
    WHEN r.sal IS NOT NULL THEN EXISTS (SELECT 1 FROM bs WHERE bs.sal = r.sal)
    WHEN r.lid IS NOT NULL THEN EXISTS (SELECT 1 FROM bl WHERE bl.lid = r.lid)
    WHEN r.tbl = 'phone' THEN EXISTS (SELECT 1 FROM bo WHERE bo.org = r.org)
    ELSE 0 END) IS NOT 1 ORDER BY r.n
"""


# A slice to read: (slice number, ()) for a slice of services, or (None, row numbers)
# for rows that hang on no service.
Job = tuple[int | None, tuple[int, ...]]


class Reader:
    """Reads the slices of a scratch file, given by ``Spill.plan``; in the process that
    wrote it, or in another (``open``)."""

    def __init__(self, db: sqlite3.Connection, files: list[str],
                 schemas: Sequence[str] = ("main",), formats: Formats | None = None) -> None:
        self.db = db
        self.files = files
        self.schemas = list(schemas)  # the files holding rows: main, part0...
        self.formats = formats or {}

    @classmethod
    def open(cls, path: Path, files: list[str], parts: Sequence[Path] = (),
             formats: Formats | None = None) -> Reader:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        for at, part in enumerate(parts):
            db.execute(f"ATTACH DATABASE ? AS part{at}", (f"{part.as_uri()}?mode=ro",))
        return cls(db, files, ["main", *(f"part{at}" for at in range(len(parts)))],
                   formats)

    def _row(self, table: str, file: int, line: int, data: str, into: Tables
             ) -> tuple[str, Row]:
        row = Row(self.files[file], line, _decode(data, self.formats, file))
        if table in FOLDED and data[0] in "PQ":  # kept as its fields: folded as when
            table = fold(table, row, into)  # read in memory
        return table, row

    def orphans(self) -> list[Job]:
        """The slices of the rows that hang on no service (in no slice of services)."""
        left = sorted(int(n) for schema in self.schemas for (n,) in self.db.execute(
            _ORPHAN.replace("{r}", f"{schema}.r")))
        return [(None, tuple(left[at:at + ORPHANS_PER_BATCH]))
                for at in range(0, len(left), ORPHANS_PER_BATCH)]

    def read(self, job: Job, base: Tables) -> Tables:
        batch, numbers = job
        if batch is None:
            rows = self._rows("n IN (SELECT value FROM json_each(?))", (json.dumps(numbers),),
                              base)
            return self._orphans(base, rows)
        out = self._tables(base, {})
        add = out.add
        make = self._row
        cursors = [self.db.execute(_SLICE_SQL.replace("{r}", f"{schema}.r"), (batch,))
                   for schema in self.schemas]
        # each file's rows in order of number; several merged as they are read
        found: Iterable[tuple[Any, ...]] = (
            heapq.merge(*cursors, key=itemgetter(0)) if len(cursors) > 1 else cursors[0])
        for _, tbl, file, line, data in found:
            add(*make(tbl, file, line, data, out))
        return out

    def _rows(self, where: str, args: Sequence[object], into: Tables
              ) -> list[tuple[int, str, Row]]:
        return [(int(n), *self._row(str(tbl), file, int(line), data, into))
                for schema in self.schemas for n, tbl, file, line, data in self.db.execute(
                    f"SELECT n, tbl, file, line, data FROM {schema}.r WHERE {where}", args)]

    @staticmethod
    def _tables(base: Tables, got: dict[int, tuple[str, Row]]) -> Tables:
        out = Tables(files=dict(base.files), version=base.version,
                     columns=dict(base.columns), firsts=base.firsts)
        for table in IN_MEMORY:
            if table in base.rows:
                out.rows[table] = base.rows[table]
        for _, (table, row) in sorted(got.items()):
            out.add(table, row)
        return out

    def _orphans(self, base: Tables, rows: list[tuple[int, str, Row]]) -> Tables:
        """A slice of rows that hang on no service, with the service-at-location rows and
        locations they refer to, so only the problems they really have are said."""
        got: dict[int, tuple[str, Row]] = {n: (tbl, row) for n, tbl, row in rows}

        def take(table: str, ids: Iterable[str]) -> None:
            for n, tbl, row in self._rows(
                    "tbl = ? AND id IN (SELECT value FROM json_each(?))",
                    (table, json.dumps(sorted(set(ids) - {""}))), base):
                got.setdefault(n, (tbl, row))

        take("service_at_location", [row.get("service_at_location_id")
                                     for _, row in got.values()])
        take("location", [row.get(column) for _, row in got.values()
                          for column in ("location_id", "link_id")])
        return Reader._tables(base, got)
