"""A national directory's import made quicker (helpline/resources/slices.py, spill.py,
words.py, store.py): what it imports is what it imported before.

* a package read and built by two processes at once gives the rows one process gives,
  problems and all, on the bundled packages, a tangled one and a generated directory;
* the change counters' triggers, dropped while an import writes, are back as they were,
  and both counters moved;
* the quick reading of a service's words is ``normalize`` split into words, for any text.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bench.directory_gen import generate
from helpline.flow.engine import normalize
from helpline.privacy import Vault
from helpline.resources import hsds_build, hsds_read, import_directory, slices, spill, words
from helpline.resources import store as resources_store
from helpline.resources.hsds_read import Tables, read_csv_package
from helpline.resources.importer import read_directory
from helpline.resources.store import Directory
from helpline.resources.taxonomy import Meaning
from helpline.store import Store
from tests.conftest import SECRET
from tests.test_resources_import import HSDS, TANGLED, shown

T = TypeVar("T")
NOW = 1_800_000_000.0
TABLES = ("SELECT * FROM services ORDER BY id",
          "SELECT * FROM directory_needs ORDER BY need, anywhere, service_id",
          "SELECT * FROM directory_terms ORDER BY term, service_id",
          "SELECT * FROM service_capacity ORDER BY service_id, unit",
          "SELECT source, place, within FROM directory_places ORDER BY place, within",
          "SELECT source, format, services FROM directory_sources")
TRIGGERS = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    one = await Store.open(tmp_path / "one.db", Vault(SECRET))
    two = await Store.open(tmp_path / "two.db", Vault(SECRET))
    yield one, two
    await one.close()
    await two.close()


def rows(db: Path) -> list[list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return [conn.execute(query).fetchall() for query in TABLES]


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    folder = tmp_path / "generated"
    generate(folder, 400, seed=3)
    return folder


@pytest.mark.parametrize("which", ["hsds", "tangled", "generated"])
async def test_a_package_read_and_built_by_two_processes_is_what_one_process_imports(
        stores: tuple[Store, Store], tmp_path: Path, generated: Path, which: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = {"hsds": HSDS, "generated": generated}.get(which, tmp_path / "tangled")
    if which == "tangled":
        folder.mkdir()
        for name, text in TANGLED.items():
            (folder / name).write_text(text)
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", 2 if which != "generated" else 60)
    monkeypatch.setattr(spill, "ORPHANS_PER_BATCH", 3)
    alone, both = stores
    monkeypatch.setattr(slices, "PARALLEL_BYTES", 10**12)
    one = await import_directory(alone, folder, NOW, skip_bad=True, source="s")
    monkeypatch.setattr(slices, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(slices, "WORKERS", 1)
    monkeypatch.setattr(hsds_read, "WORKER_START_ROWS", 0)  # (a small package: all here)
    given_out: list[str] = []

    class Pool(ProcessPoolExecutor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            given_out.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(slices, "ProcessPoolExecutor", Pool)
    two = await import_directory(both, folder, NOW, skip_bad=True, source="s")
    # the worker read, found the rows that hang on no service, and built
    assert {"_read", "_start", "_orphans", "_build"} <= set(given_out)
    assert one.services > 0 and one.applied and two.applied
    assert (two.services, two.openings, two.bad_rows, two.needs, two.limits, two.unlimited,
            two.format, two.notes) == (one.services, one.openings, one.bad_rows, one.needs,
                                       one.limits, one.unlimited, one.format, one.notes)
    assert shown(two.problems) == shown(one.problems)
    assert rows(tmp_path / "two.db") == rows(tmp_path / "one.db")


async def test_meanings_joined_once_give_what_joining_them_each_time_gives(
        stores: tuple[Store, Store], tmp_path: Path, generated: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two terms' meanings are joined once per pair in an import (hsds_build.Builder._joined),
    the pairs kept let go when there are JOINS_KEPT of them."""
    alone, kept = stores
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", 60)
    joins: list[int] = []
    joined = hsds_build.Builder._joined

    def counted(self: hsds_build.Builder, first: Meaning, then: Meaning) -> Meaning:
        joins.append(len(self._joins))
        return joined(self, first, then)

    monkeypatch.setattr(hsds_build.Builder, "_joined", counted)
    monkeypatch.setattr(hsds_build, "JOINS_KEPT", 1)  # each pair joined again
    await import_directory(alone, generated, NOW, source="s")
    assert joins and max(joins) <= 1
    monkeypatch.setattr(hsds_build, "JOINS_KEPT", 2048)
    joins.clear()
    await import_directory(kept, generated, NOW, source="s")
    assert max(joins) > 1
    assert rows(tmp_path / "two.db") == rows(tmp_path / "one.db")


async def test_an_import_puts_the_change_counters_back_and_moves_them(
        stores: tuple[Store, Store], tmp_path: Path) -> None:
    store, _ = stores
    db = tmp_path / "one.db"
    with sqlite3.connect(db) as conn:
        triggers = conn.execute(TRIGGERS).fetchall()
        assert len(triggers) >= 15
    versions = []
    for _ in range(2):  # a first import, then one that replaces it
        result = await import_directory(store, HSDS, NOW, skip_bad=True, source="s")
        assert result.applied
        with sqlite3.connect(db) as conn:
            assert conn.execute(TRIGGERS).fetchall() == triggers
            versions.append(conn.execute("SELECT (SELECT version FROM directory_version), "
                                         "(SELECT version FROM directory_shape)").fetchone())
    assert min(versions[0]) > 0 and versions[0][0] < versions[1][0]
    assert versions[0][1] < versions[1][1]
    with sqlite3.connect(db) as conn:  # and the triggers still count other writes
        conn.execute("UPDATE services SET name = name || ' ' WHERE rowid = 1")
        after = conn.execute("SELECT (SELECT version FROM directory_version), "
                             "(SELECT version FROM directory_shape)").fetchone()
    assert after == (versions[1][0] + 1, versions[1][1] + 1)


@given(st.text(max_size=60) | st.text(alphabet="aB/ -_.@,é1\n", max_size=30))
@example("/exit@HelpBot now")  # a command's bot name goes, as normalize drops it
@example("Ｌｅｇａｌ Aid / Café")
def test_a_services_words_are_normalized_words(text: str) -> None:
    assert words._words(text) == normalize(text).replace("/", " ").split()


@given(st.lists(st.text(alphabet=" \t\u00a0\x1caé,", max_size=4) | st.text(max_size=8),
                min_size=1, max_size=8))
@example(["", " ", "x", "\t\u00a0", " y "])
def test_a_row_kept_as_its_fields_comes_back_with_its_non_blank_fields(
        fields: list[str]) -> None:
    fields = [f.replace(spill.SEP, "").replace(spill.PAIR, "") for f in fields]
    header = [f"c{i}" for i in range(len(fields))]
    kept = spill._decode("P" + spill.SEP.join(fields), {0: (header, [])}, 0)
    assert kept == {k: v for k, v in zip(header, fields, strict=True)
                    if v and not v.isspace()}


async def test_when_the_scratch_file_cannot_be_attached_the_rows_go_through_python(
        stores: tuple[Store, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built rows are copied into the database in SQL from the scratch file, attached
    to the store's connection; when that connection cannot attach it (a transaction of
    another part of the bot under way on it), they are read and written row by row."""
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", 2)
    plain, refused = stores
    one = await import_directory(plain, HSDS, NOW, skip_bad=True, source="s")
    attached: list[str] = []
    execute = refused.db.execute

    def no_attach(sql: str, *args: Any) -> Any:
        if sql.startswith("ATTACH"):
            attached.append(sql)
            raise sqlite3.OperationalError("cannot ATTACH database within transaction")
        return execute(sql, *args)

    monkeypatch.setattr(refused.db, "execute", no_attach)
    two = await import_directory(refused, HSDS, NOW, skip_bad=True, source="s")
    assert attached and one.applied and two.applied and two.services == one.services
    assert rows(tmp_path / "two.db") == rows(tmp_path / "one.db")


async def test_a_large_import_makes_its_indexes_again_and_gives_the_same_rows(
        stores: tuple[Store, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import that is most of the directory drops the name order's index (and the
    needs' and places' by service) while its rows go in and makes them again in the same
    transaction: the same rows, and the same indexes after."""
    row_by_row, bulk = stores
    indexes = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", 2)
    monkeypatch.setattr(resources_store, "BULK_SERVICES", 10**9)
    one = await import_directory(row_by_row, HSDS, NOW, skip_bad=True, source="s")
    paused: list[tuple[str, ...]] = []
    pause = resources_store._pause_indexes

    async def recorded(db: Any, names: tuple[str, ...]) -> list[str]:
        made = await pause(db, names)
        paused.append(tuple(made))
        return made

    monkeypatch.setattr(resources_store, "BULK_SERVICES", 1)
    monkeypatch.setattr(resources_store, "_pause_indexes", recorded)
    for _ in range(2):  # a first import, then one that replaces it
        two = await import_directory(bulk, HSDS, NOW, skip_bad=True, source="s")
        assert two.applied and two.services == one.services
        assert rows(tmp_path / "two.db") == rows(tmp_path / "one.db")
    assert len(paused) == 2 and all(len(made) == 3 for made in paused)
    with sqlite3.connect(tmp_path / "one.db") as a, sqlite3.connect(tmp_path / "two.db") as b:
        assert b.execute(indexes).fetchall() == a.execute(indexes).fetchall()
        assert ("services_ranked",) in b.execute("SELECT name FROM sqlite_master").fetchall()
        plan = " ".join(str(r) for r in b.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM services WHERE active = 1 AND sort_name "
            "IS NOT NULL ORDER BY sort_name, id").fetchall())
        assert "services_ranked" in plan


def test_the_rows_that_hang_on_no_service_are_found_by_the_slices_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each slice's reader finds its own rows; the rows no slice of services takes are
    exactly those that hang on no service (built last, for their problems)."""
    folder = tmp_path / "tangled"
    folder.mkdir()
    for name, text in TANGLED.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", 2)
    with spill.Spill() as scratch:
        read_csv_package(folder, scratch)
        jobs = scratch.plan(orphans=False)
        reader = scratch.reader()
        ids = {int(n): (str(tbl), str(ident)) for n, tbl, ident in scratch.db.execute(
            "SELECT n, tbl, id FROM r")}
        taken = [tuple(sorted(f"{t}:{row.get('id')}" for t, rows in reader.read(
            job, Tables()).rows.items() for row in rows)) for job in jobs]
        left = [ids[n] for job in reader.orphans() for n in job[1]]
    assert len(jobs) == 3  # s1 s2 (s1 again goes with the first) | s3 s4 | s5
    assert "service_at_location:a2" in taken[0] and "phone:p7" in taken[0]  # a2's phone
    assert "location:L1" in taken[0] and "location:L1" in taken[1]  # shared: in both
    assert left == [("location", "L2"), ("service_at_location", "a4"), ("phone", "p2"),
                    ("phone", "p4"), ("phone", "p5"), ("phone", "p6"), ("phone", "p8"),
                    ("attribute", "at3")]


# Rows a scratch file keeps as their fields (spill.Spill.writer) must come back as the rows
# read in memory: separators and whitespace inside fields, quoted newlines, older column
# names and rows that hsds_read.fold changes (a location with no location_type column,
# a language given by its code in the name, a weekday schedule), and a table whose rows
# become another's (postal addresses), with a bad row among them.
ODD = {
    "services.csv": 'id,name,status,fees,description\ns1,"One\x1fa",active,"2 \x1e GBP",'
                    '"Line one\nline two"\n s2 ,Two,active,,   \ns3,Three,active,free,'
                    '"a ""quoted"" word"\ns4,Four,active,x\n',
    "locations.csv": "id,name,latitude,longitude\nL1,Shared,51.5,-0.1\nL2,\x1f,,\n",
    "service_at_location.csv": "id,service_id,location_id\na1,s1,L1\na2, s2 ,L1\n"
                               "a3,s3,L2\n",
    "physical_addresses.csv": "id,location_id,address_1,city,postal_code\n"
                              "ad1,L1,1 High St,Eastmoor,EM1 1AA\n",
    "postal_addresses.csv": "id,location_id,address_1,city,postal_code\n"
                            "pa1,L2,PO Box 1,Westby,WB2 2BB\n",
    "languages.csv": "id,service_id,language\nl1,s1,es\nl2,s2,French\nl3,s3,\x1e\n",
    "regular_schedules.csv": "id,service_id,weekday,opens_at,closes_at\n"
                             "r1,s1,1,09:00,17:00\nr2,s3,sat,10:00,12:00\nr3,s2,9,x,y\n",
    "service_areas.csv": "id,service_id,service_area\nsa1,s1,Moorshire\nsa2,s3,\t\n",
    "phones.csv": "id,service_id,number\np1,s1,555-0001\np2,s2,\n",
}


@pytest.mark.parametrize("processes", [1, 2])
async def test_rows_kept_as_their_fields_come_back_as_the_rows_read_in_memory(
        stores: tuple[Store, Store], tmp_path: Path, processes: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    for name, text in ODD.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", 2)
    if processes == 2:
        monkeypatch.setattr(slices, "PARALLEL_BYTES", 0)
        monkeypatch.setattr(slices, "WORKERS", 1)
        monkeypatch.setattr(hsds_read, "WORKER_START_ROWS", 0)
    store, _ = stores
    whole = read_directory(folder, NOW)
    assert whole.services and whole.problems  # (some rows are bad)
    result = await import_directory(store, folder, NOW, skip_bad=True, source="s")
    assert shown(result.problems) == shown(whole.problems)
    assert (result.bad_rows, result.format) == (whole.bad_rows, whole.format)
    directory = Directory(store)
    assert sorted(s.model_dump_json() for s in await directory.services()) == sorted(
        s.model_dump_json() for s in whole.services)
    assert {p: sorted(w) for p, w in (await directory.places()).items()} == {
        p: sorted(w) for p, w in whole.places.items() if w}


@pytest.mark.parametrize(("before", "during"), [
    ((700, 10, 10), (50_000, 50, 50)),  # CPython's defaults
    ((60_000, 5, 80), (60_000, 50, 80)),  # none lowered
    ((0, 10, 10), (0, 10, 10)),  # turned off: stays off
])
async def test_an_import_raises_the_collectors_thresholds_and_puts_them_back(
        stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch,
        before: tuple[int, int, int], during: tuple[int, int, int]) -> None:
    """While a package is imported the cyclic collector runs less often, and as before
    once it is done."""
    seen: list[tuple[int, int, int]] = []
    build = slices.build_slice

    def recorded(*args: Any) -> Any:
        seen.append(gc.get_threshold())
        return build(*args)

    monkeypatch.setattr(slices, "build_slice", recorded)
    store, _ = stores
    saved = gc.get_threshold()
    try:
        gc.set_threshold(*before)
        result = await import_directory(store, HSDS, NOW, skip_bad=True, source="s")
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*saved)
    assert result.applied and set(seen) == {during} and after == before


def test_the_worker_collects_as_an_import_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slices, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(slices, "WORKERS", 1)
    with slices.Workers.open(HSDS) as workers:
        assert workers.pool is not None
        assert workers.pool.submit(gc.get_threshold).result() == slices.IMPORT_GC


async def test_places_go_with_their_services_when_a_source_is_imported_again(
        tmp_path: Path) -> None:
    """The places a service serves are deleted with it (a trigger, resources migration 6,
    where a foreign key was checked for every row an import wrote): an import that replaces
    a source leaves no place of a service it dropped, and neither does a service deleted."""
    store = await Store.open(tmp_path / "h.db", Vault(SECRET))
    big, small = tmp_path / "big", tmp_path / "small"
    generate(big, 300, seed=3)
    generate(small, 40, seed=4)
    stray = ("SELECT COUNT(*) FROM directory_terms WHERE service_id NOT IN "
             "(SELECT id FROM services)")

    async def count(sql: str) -> int:
        [(found,)] = await store.db.execute_fetchall(sql)
        return int(found)
    try:
        assert (await import_directory(store, big, NOW, source="one")).applied
        before = await count("SELECT COUNT(*) FROM directory_terms")
        assert before > 300
        assert (await import_directory(store, small, NOW, source="one")).applied
        assert await count(stray) == 0
        assert 0 < await count("SELECT COUNT(*) FROM directory_terms") < before
        async with store.transaction() as db:
            await db.execute("DELETE FROM services WHERE id IN (SELECT id FROM services "
                             "LIMIT 5)")
        assert await count(stray) == 0
    finally:
        await store.close()
