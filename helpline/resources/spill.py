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
scratch file, what is in memory at once is one slice of services and what hangs on them
(263 MB at the peak, bench/README.md).
"""

from __future__ import annotations

import json
import pickle  # rows this import wrote itself, in its own private folder
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpline.resources.hsds_read import Row, Tables

SERVICES_PER_BATCH = 4000
ORPHANS_PER_BATCH = 20_000
SEP, PAIR = "\x1f", "\x1e"
# Tables every slice needs whole (small: the package's organizations, units and terms).
IN_MEMORY = ("organization", "unit", "taxonomy_term")
# Tables whose rows hang on a service, a service-at-location or a location.
CHILDREN = ("phone", "schedule", "service_area", "language", "required_document",
            "cost_option", "eligibility", "service_capacity")
# Tables whose ids other rows refer to: a repeated id is found across the whole package.
INDEXED = ("service", "location", "service_at_location")


def _encode(data: dict[str, str]) -> str:
    text = PAIR.join(map(SEP.join, data.items()))
    if text.count(SEP) != len(data) or text.count(PAIR) != max(len(data) - 1, 0):
        return "J" + json.dumps(data)  # a separator inside a field: rare, kept exactly
    return "S" + text


def _decode(text: str) -> dict[str, str]:
    if text[0] == "J":
        loaded: dict[str, str] = json.loads(text[1:])
        return loaded
    if len(text) == 1:
        return {}
    parts = iter(text[1:].replace(PAIR, SEP).split(SEP))
    return dict(zip(parts, parts, strict=True))


@dataclass
class Spill:
    """The scratch file: rows by number, with the ids they have and refer to."""

    folder: tempfile.TemporaryDirectory[str] = field(
        default_factory=lambda: tempfile.TemporaryDirectory(prefix="helpline-import-"))
    files: list[str] = field(default_factory=list)
    count: int = 0
    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.db = sqlite3.connect(Path(self.folder.name) / "rows.db")
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
        self._file: dict[str, int] = {}
        self._built = 0
        self._table = ""

    # ------------------------------------------------------------- what was built

    def keep_built(self, services: Sequence[tuple[object, ...]],
                   needs: Sequence[tuple[object, ...]], terms: Sequence[tuple[object, ...]],
                   capacities: Sequence[tuple[object, ...]]) -> None:
        """The rows one slice of services will be written as (store.service_rows), kept
        here until the whole package is known to be good enough to import."""
        if not self._built:
            self.db.executescript("""
                CREATE TABLE out_services (batch INTEGER NOT NULL, row BLOB NOT NULL);
                CREATE TABLE out_needs (batch INTEGER NOT NULL, row BLOB NOT NULL);
                CREATE TABLE out_terms (batch INTEGER NOT NULL, row BLOB NOT NULL);
                CREATE TABLE out_capacity (row BLOB NOT NULL);
            """)
        self._built += 1
        for table, rows in (("out_services", services), ("out_needs", needs),
                            ("out_terms", terms)):
            self.db.executemany(f"INSERT INTO {table} VALUES (?, ?)",
                                [(self._built, pickle.dumps(r)) for r in rows])
        self.db.executemany("INSERT INTO out_capacity VALUES (?)",
                            [(pickle.dumps(r),) for r in capacities])

    def built(self) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]],
                                      list[tuple[object, ...]]]]:
        """What ``keep_built`` kept, a slice at a time."""
        if self._built:
            self.db.executescript("""
                CREATE INDEX IF NOT EXISTS out_services_batch ON out_services(batch);
                CREATE INDEX IF NOT EXISTS out_needs_batch ON out_needs(batch);
                CREATE INDEX IF NOT EXISTS out_terms_batch ON out_terms(batch);
            """)
        for batch in range(1, self._built + 1):
            yield tuple(  # type: ignore[misc]
                [pickle.loads(r) for (r,) in self.db.execute(
                    f"SELECT row FROM {table} WHERE batch = ? ORDER BY rowid", (batch,))]
                for table in ("out_services", "out_needs", "out_terms"))

    def built_capacities(self) -> Iterator[tuple[object, ...]]:
        if self._built:
            for (r,) in self.db.execute("SELECT row FROM out_capacity ORDER BY rowid"):
                yield pickle.loads(r)

    def close(self) -> None:
        self.db.close()
        self.folder.cleanup()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------- writing

    def add(self, table: str, row: Row) -> int:
        """Keep one row; returns its number."""
        file = self._file.get(row.file)
        if file is None:
            file = self._file[row.file] = len(self.files)
            self.files.append(row.file)
        self.count += 1
        data = row.data
        get = data.get
        self._pending.append((
            self.count, table, file, row.line, _encode(data), (get("id") or "").strip() or None,
            (get("service_id") or "").strip() or None, (get("location_id") or "").strip() or None,
            (get("service_at_location_id") or "").strip() or None,
            (get("link_id") or "").strip() or None,
            (get("organization_id") or "").strip() or None))
        if table != self._table:  # a new run of rows of one table
            self._table = table
            self.ranges.setdefault(table, []).append((self.count, self.count))
        spans = self.ranges[table]
        spans[-1] = (spans[-1][0], self.count)
        if len(self._pending) >= 5000:
            self._flush()
        return self.count

    def discard(self, first: int) -> None:
        """Forget the rows from number ``first`` on (a file that turned out unreadable)."""
        self._flush()
        self.db.execute("DELETE FROM r WHERE n >= ?", (first,))
        for table, spans in self.ranges.items():
            self.ranges[table] = [(a, min(b, first - 1)) for a, b in spans if a < first]
        self.count = first - 1
        self._table = ""

    def _flush(self) -> None:
        if self._pending:
            self.db.executemany("INSERT INTO r VALUES (?,?,?,?,?,?,?,?,?,?,?)", self._pending)
            self._pending = []

    def finish(self) -> None:
        """Every row is in: index what the slices are found by."""
        self._flush()
        marks = ",".join(f"'{t}'" for t in INDEXED)
        self.db.executescript(f"""
            CREATE INDEX r_id ON r(tbl, id) WHERE tbl IN ({marks});
            CREATE INDEX r_sid ON r(sid) WHERE sid IS NOT NULL;
            CREATE INDEX r_sal ON r(sal) WHERE sal IS NOT NULL AND sid IS NULL;
            CREATE INDEX r_lid ON r(lid) WHERE lid IS NOT NULL;
            CREATE INDEX r_link ON r(link) WHERE link IS NOT NULL;
            CREATE INDEX r_org ON r(org) WHERE tbl = 'phone' AND sid IS NULL
                AND sal IS NULL AND lid IS NULL AND org IS NOT NULL;
        """)

    # ------------------------------------------------------------- reading

    def firsts(self) -> dict[tuple[str, str], tuple[str, int]]:
        """(table, id) -> (file, line) of its first row, for the ids used more than once."""
        out: dict[tuple[str, str], tuple[str, int]] = {}
        marks = ",".join(f"'{t}'" for t in INDEXED)
        for table, ident, first in self.db.execute(
                f"SELECT tbl, id, MIN(n) FROM r WHERE tbl IN ({marks}) AND id IS NOT NULL "
                "GROUP BY tbl, id HAVING COUNT(*) > 1"):
            file, line = self.db.execute("SELECT file, line FROM r WHERE n = ?",
                                         (first,)).fetchone()
            out[(str(table), str(ident))] = (self.files[file], int(line))
        return out

    def _rows(self, where: str, args: Sequence[object]) -> list[tuple[int, str, Row]]:
        return [(int(n), str(tbl), Row(self.files[file], int(line), _decode(data)))
                for n, tbl, file, line, data in self.db.execute(
                    f"SELECT n, tbl, file, line, data FROM r WHERE {where}", args)]

    def batches(self, base: Tables) -> Iterator[Tables]:
        """Slices of the package: services and what hangs on them, then the rest.

        Which rows go with which slice is worked out by SQLite in a few joins (``m``: the
        slice and the number of each row it needs; a location shared by services of two
        slices is in both), so a slice is one read of its rows."""
        self._members()
        for (batch,) in list(self.db.execute("SELECT DISTINCT batch FROM m ORDER BY batch")):
            out = self._tables(base, {})
            files = self.files
            add = out.add
            for tbl, file, line, data in self.db.execute(
                    "SELECT r.tbl, r.file, r.line, r.data FROM m JOIN r ON r.n = m.n "
                    "WHERE m.batch = ? ORDER BY m.n", (batch,)):
                add(tbl, Row(files[file], line, _decode(data)))
            yield out
        left = [int(n) for (n,) in self.db.execute(
            "SELECT n FROM r WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.n = r.n) ORDER BY n")]
        for at in range(0, len(left), ORPHANS_PER_BATCH):
            numbers = left[at:at + ORPHANS_PER_BATCH]
            rows = self._rows("n IN (SELECT value FROM json_each(?))", (json.dumps(numbers),))
            yield self._orphans(base, rows)

    def _members(self) -> None:
        """``m``: for each slice of SERVICES_PER_BATCH services (by the order of their
        first row), the numbers of the rows it needs."""
        batch_of: dict[str, int] = {}
        alone: list[tuple[int, int]] = []  # service rows with no id: a slice by position
        for a, b in self.ranges.get("service", []):
            for n, ident in self.db.execute(
                    "SELECT n, id FROM r WHERE n BETWEEN ? AND ? ORDER BY n", (a, b)):
                if ident is None:
                    alone.append((len(batch_of) // SERVICES_PER_BATCH, int(n)))
                elif ident not in batch_of:
                    batch_of[str(ident)] = len(batch_of) // SERVICES_PER_BATCH
        children = ",".join(f"'{t}'" for t in CHILDREN)
        self.db.executescript("""
            DROP TABLE IF EXISTS sb; DROP TABLE IF EXISTS m; DROP TABLE IF EXISTS bl;
            DROP TABLE IF EXISTS bs; DROP TABLE IF EXISTS bo;
            CREATE TABLE sb (id TEXT PRIMARY KEY, batch INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE m (batch INTEGER NOT NULL, n INTEGER NOT NULL,
                            PRIMARY KEY (batch, n)) WITHOUT ROWID;
        """)
        self.db.executemany("INSERT INTO sb VALUES (?, ?)", batch_of.items())
        del batch_of
        self.db.executemany("INSERT OR IGNORE INTO m VALUES (?, ?)", alone)
        self.db.executescript(f"""
            INSERT OR IGNORE INTO m SELECT sb.batch, r.n FROM sb
                JOIN r ON r.tbl = 'service' AND r.id = sb.id;
            INSERT OR IGNORE INTO m SELECT sb.batch, r.n FROM sb
                JOIN r ON r.sid = sb.id AND r.tbl IN ('service_at_location', {children});
            CREATE TABLE bs AS SELECT DISTINCT m.batch AS batch, r.id AS sal, r.lid AS lid
                FROM m JOIN r ON r.n = m.n WHERE r.tbl = 'service_at_location';
            CREATE TABLE bl AS SELECT DISTINCT batch, lid FROM bs WHERE lid IS NOT NULL;
            CREATE TABLE bo AS SELECT DISTINCT m.batch AS batch, r.org AS org
                FROM m JOIN r ON r.n = m.n WHERE r.tbl = 'service' AND r.org IS NOT NULL;
            INSERT OR IGNORE INTO m SELECT bl.batch, r.n FROM bl
                JOIN r ON r.tbl = 'location' AND r.id = bl.lid;
            INSERT OR IGNORE INTO m SELECT bl.batch, r.n FROM bl
                JOIN r ON r.lid = bl.lid AND r.tbl = 'address';
            INSERT OR IGNORE INTO m SELECT bs.batch, r.n FROM bs
                JOIN r ON r.sal = bs.sal AND r.sid IS NULL AND r.tbl IN ({children})
                WHERE bs.sal IS NOT NULL;
            INSERT OR IGNORE INTO m SELECT bl.batch, r.n FROM bl
                JOIN r ON r.lid = bl.lid AND r.sid IS NULL AND r.sal IS NULL
                AND r.tbl IN ({children});
            INSERT OR IGNORE INTO m SELECT bo.batch, r.n FROM bo
                JOIN r ON r.org = bo.org AND r.tbl = 'phone' AND r.sid IS NULL
                AND r.sal IS NULL AND r.lid IS NULL;
            INSERT OR IGNORE INTO m SELECT sb.batch, r.n FROM sb
                JOIN r ON r.link = sb.id AND r.tbl = 'attribute';
            INSERT OR IGNORE INTO m SELECT bl.batch, r.n FROM bl
                JOIN r ON r.link = bl.lid AND r.tbl = 'attribute';
            CREATE INDEX m_n ON m(n);
        """)

    def _tables(self, base: Tables, got: dict[int, tuple[str, Row]]) -> Tables:
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
                    (table, json.dumps(sorted(set(ids) - {""})))):
                got.setdefault(n, (tbl, row))

        take("service_at_location", [row.get("service_at_location_id")
                                     for _, row in got.values()])
        take("location", [row.get(column) for _, row in got.values()
                          for column in ("location_id", "link_id")])
        return self._tables(base, got)
