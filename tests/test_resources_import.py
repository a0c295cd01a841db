"""Importing the directory: HSDS CSV datapackage and JSON, the YAML form, bad rows reported
as file:line, all or nothing (or --skip-bad), re-imports, openings, the command line and
the start-up seed."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.privacy import Vault
from helpline.resources import (
    SAMPLE_DIRECTORY,
    Directory,
    OpeningsError,
    import_directory,
    read_directory,
    seed_if_empty,
    set_openings,
    spill,
)
from helpline.runtime import open_app
from helpline.store import Store
from tests.conftest import SECRET, make_settings

DATA = Path(__file__).parent / "data"
HSDS = DATA / "hsds"
NOW = 1_800_000_000.0
HARBOUR = "5e7f0000-0000-4000-8000-000000000002"
BAYSIDE = "5e7f0000-0000-4000-8000-000000000006"
EXAMPLE = "ac148810-d857-441c-9679-408f346de14b"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    yield opened
    await opened.close()


def raw_bytes(db: Path) -> bytes:
    return b"".join(Path(f"{db}{s}").read_bytes() for s in ("", "-wal")
                    if Path(f"{db}{s}").exists())


EXPECTED_HSDS_PROBLEMS = [
    "attributes.csv:8: taxonomy_term_id '7e000000-0000-4000-8000-00000000f00d' is not in "
    "taxonomy_terms.csv; fix the id, or add that row to taxonomy_terms.csv",
    "locations.csv:5: location_type 'hidden' is not physical, postal or virtual; use "
    "physical, postal or virtual (mark confidential places with a 'confidential' "
    "attribute, not here)",
    "phones.csv:5: service_id '5e7f0000-0000-4000-8000-00000000beef' is not in services.csv; "
    "fix the id, or add that row to services.csv",
    "phones.csv:6: number is missing; give the phone number",
    "schedules.csv:4: opens_at '9 o.clock' is not a time of day; write opens_at as HH:MM, like "
    "09:30 (or 9:30 AM)",
    "service_at_location.csv:5: location_id '10c00000-0000-4000-8000-00000000dead' is not "
    "in locations.csv; fix the id, or add that row to locations.csv",
    # the HSDS example's own capacity row is bad three ways
    "service_capacity.csv:2: available (12) is more than maximum (10); correct available "
    "or maximum",
    "service_capacity.csv:2: service_id 'f75b808e-7bdb-11ef-afaa-ab00a77dc5c4' is not in "
    "services.csv; fix the id, or add that row to services.csv",
    "service_capacity.csv:2: unit_id '187a37a2-7b40-11ef-9790-dbf7623d4407' is not in "
    "units.csv; fix the id, or add that row to units.csv",
    "service_capacity.csv:4: updated 'yesterday' is not a date and time; write updated as "
    "ISO 8601, like 2025-03-01T14:30:00Z",
    "services.csv:4: name is missing; give the service its public name",
    "services.csv:5: status 'open' is not an HSDS status; use one of: active, inactive, "
    "defunct, temporarily closed",
    "services.csv:6: minimum_age 'twelve' is not a number; write minimum_age in digits, "
    "like 18",
]


def shown(problems: Sequence[object]) -> list[str]:
    return sorted(str(p).split("/")[-1] for p in problems)


async def test_hsds_datapackage_with_bad_rows_is_refused_whole(store: Store) -> None:
    result = await import_directory(store, HSDS, NOW)
    assert not result.applied
    assert shown(result.problems) == sorted(EXPECTED_HSDS_PROBLEMS)
    assert all(str(p).startswith(str(HSDS)) for p in result.problems)
    assert "fix them, or import the good rows with --skip-bad" in result.summary()
    assert await Directory(store).count() == 0


async def test_skip_bad_imports_the_good_rows(store: Store, tmp_path: Path) -> None:
    result = await import_directory(store, HSDS / "datapackage.json", NOW, skip_bad=True)
    assert result.applied and result.services == 3 and result.openings == 1
    assert len(result.problems) == len(EXPECTED_HSDS_PROBLEMS)
    directory = Directory(store)
    services = {s.id: s for s in await directory.services()}
    assert set(services) == {EXAMPLE, HARBOUR, BAYSIDE}
    harbour, bayside = services[HARBOUR], services[BAYSIDE]
    assert harbour.needs == ("shelter",) and harbour.genders == ("women",)
    assert harbour.min_age == 18 and harbour.areas == ("Bayshire",)
    [place] = harbour.locations
    assert place.confidential and place.address is None and place.postcode is None
    assert place.city == "Harborville"
    assert [p.number for p in harbour.phones] == ["555-0150"]
    assert bayside.needs == ("legal",) and bayside.free is True
    assert bayside.documents == ("Photo ID, if you have one",)
    assert [(lang.code, lang.name) for lang in bayside.languages] == [("es", "Spanish")]
    assert [(h.days, h.opens, h.closes) for h in bayside.hours] == [
        (("MO", "TU", "WE", "TH", "FR"), "09:00", "17:00")]
    assert bayside.locations[0].address == "1 Court Street"
    example = services[EXAMPLE]
    assert example.phones[0].number == "+44 1234 234567 ext. 100"  # stray quotes gone
    [capacity] = (await directory.capacities())[HARBOUR]
    assert (capacity.unit, capacity.available, capacity.maximum) == ("Bed", 3, 10)
    # the confidential address is never stored: not in the file at all
    data = raw_bytes(tmp_path / "helpline.db")
    for secret in (b"7 Secret Lane", b"HV1 2XY"):
        assert secret not in data
    assert b"1 Court Street" in data


async def test_hsds_json_forms(store: Store) -> None:
    full = DATA / "hsds-json" / "service_full.json"
    refused = await import_directory(store, full, NOW)
    assert not refused.applied
    lines = full.read_text().splitlines()
    capacity_line = next(i for i, line in enumerate(lines, 1) if '"capacities"' in line) + 1
    assert [str(p) for p in refused.problems] == [
        f"{full}:{capacity_line}: available (12) is more than maximum (10); correct "
        "available or maximum"]
    partial = await import_directory(store, full, NOW, skip_bad=True)
    assert partial.applied and partial.services == 1 and partial.openings == 0
    [service] = await Directory(store).services()
    assert service.languages[0].code == "ur" and service.locations[0].city == "MyCity"
    # the same id from another source is a problem of its own...
    listing = DATA / "hsds-json" / "service_list.json"
    clash = await import_directory(store, listing, NOW)
    assert not clash.applied
    assert [str(p) for p in clash.problems] == [
        f"{listing}:10: service id '{EXAMPLE}' already comes from another source ({full}); "
        "give it another id, or import with --source set to that source to replace it"]
    # ...and naming that source replaces it (the list form has no locations)
    listed = await import_directory(store, listing, NOW, source=str(full))
    assert listed.applied and listed.services == 1 and listed.replaced == 1
    [service] = await Directory(store).services()
    assert service.locations == ()


async def test_json_syntax_error_names_the_line(store: Store, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"id": "a",\n   "name": "x",,\n]\n')
    result = await import_directory(store, broken, NOW, skip_bad=True)
    assert not result.applied
    assert str(result.problems[0]).startswith(f"{broken}:3: not valid JSON")


async def test_yaml_form_problems_name_file_and_line(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "services:\n"
        "  - id: good\n"
        "    name: Good Place\n"
        "    needs: [food]\n"
        "  - id: typo\n"
        "    name: Typo\n"
        "    neds: [food]\n"
        "  - id: unknown-need\n"
        "    name: Unknown Need\n"
        "    needs: [housing]\n"
        "  - id: good\n"
        "    name: Twice\n"
        "    needs: [food]\n"
        "  - id: too-many\n"
        "    name: Too Many\n"
        "    needs: [shelter]\n"
        "    openings: {unit: bed, available: 5, maximum: 2, hours_ago: 1}\n"
        "  - id: bad-hours\n"
        "    name: Bad Hours\n"
        "    needs: [food]\n"
        "    hours: [{days: [MON], opens: '9:00', closes: '17:00'}]\n"
    )
    result = await import_directory(store, bad, NOW)
    assert not result.applied
    assert [str(p).removeprefix(f"{bad}:") for p in result.problems] == [
        "5: 'needs' is missing; add needs:",
        "7: unknown key 'neds'; did you mean 'needs'?",
        "10: unknown need 'housing'; use one of: shelter, legal, medical, counselling, "
        "immigration, substance_use, food, documents, other",
        "11: id 'good' is used twice (also at line 2); give each service its own id",
        "17: available (5) is more than maximum (2); correct available or maximum",
        "21: days 'MON' is not a day; use MO, TU, WE, TH, FR, SA, SU (comma-separated)",
    ]
    skipped = await import_directory(store, bad, NOW, skip_bad=True)
    assert skipped.applied and skipped.services == 1 and skipped.bad_rows == 5


async def test_yaml_fixture_and_sample_import_cleanly(store: Store) -> None:
    result = await import_directory(store, DATA / "directory.yaml", NOW)
    assert result.applied and result.problems == [] and result.services == 10
    sample = await import_directory(store, Path("data/sample-directory.yaml").resolve(), NOW)
    assert sample.applied and sample.problems == [] and sample.services >= 30
    sources = {s.source: s for s in await Directory(store).sources()}
    assert all(s.fictional for s in sources.values())


async def test_reimport_replaces_the_same_source_and_keeps_newer_openings(
    store: Store, tmp_path: Path
) -> None:
    copy = tmp_path / "dir.yaml"
    shutil.copy(DATA / "directory.yaml", copy)
    await import_directory(store, copy, NOW)
    directory = Directory(store)
    await set_openings(store, "youth-shelter", 1, NOW + 60)
    # the file changes: one service goes, the rest stay
    copy.write_text(copy.read_text().replace("  - id: east-shelter", "  - id: east-shelter-2"))
    result = await import_directory(store, copy, NOW + 120)
    assert result.applied and result.replaced == 10 and result.services == 10
    ids = {s.id for s in await directory.services()}
    assert "east-shelter" not in ids and "east-shelter-2" in ids
    caps = await directory.capacities()
    assert caps["youth-shelter"][0].available == 1  # counted after the file: kept
    assert caps["w-shelter"][0].updated == pytest.approx(NOW + 120 - 3600)  # the file's
    # a failed re-import changes nothing
    copy.write_text("services: [{id: x}]\n")
    assert not (await import_directory(store, copy, NOW + 180)).applied
    assert len(await directory.services()) == 10


async def test_set_openings(store: Store) -> None:
    await import_directory(store, DATA / "directory.yaml", NOW)
    capacity = await set_openings(store, "m-shelter", 4, NOW + 5)
    assert (capacity.unit, capacity.available, capacity.updated) == ("bed", 4, NOW + 5)
    new = await set_openings(store, "legal-en", 2, NOW, unit="appointment")
    assert new.unit == "appointment"
    with pytest.raises(OpeningsError, match="no service with id 'nope'"):
        await set_openings(store, "nope", 1, NOW)
    with pytest.raises(OpeningsError, match="whole number"):
        await set_openings(store, "m-shelter", -1, NOW)
    with pytest.raises(OpeningsError, match="more than the maximum"):
        await set_openings(store, "m-shelter", 11, NOW)
    await set_openings(store, "legal-en", 1, NOW, unit="room")
    with pytest.raises(OpeningsError, match="--unit"):
        await set_openings(store, "legal-en", 1, NOW)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    for command in (["list"], ["openings", HARBOUR, "5"], ["import", str(HSDS)]):
        assert main(["resources", "--db", db, *command]) == 1  # no database there yet
        assert f"no database at {db}" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())  # and none was created
    assert main(["resources", "--db", db, "import", str(HSDS), "--create"]) == 1
    err = capsys.readouterr().err
    assert f"{HSDS / 'services.csv'}:4: name is missing" in err
    assert main(["resources", "--db", db, "import", str(HSDS), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "imported 3 service(s) and 0 opening count(s)" in out and "(hsds 3.1)" in out
    # the fixture's count is stamped 2027-01-15, later than the clock of this run
    assert ("service_capacity.csv:3: updated '2027-01-15T06:00:00Z' is in the future; give "
            "the date and time the count was made") in out
    # the example service says what it is only in its name, "Community Counselling"
    assert "needs: shelter 1, legal 1, counselling 1" in out
    assert "limited to: age 12+ 1, age 18+ 1, age up to 100 1, women 1; open to any age" in out
    assert main(["resources", "--db", db, "openings", HARBOUR, "5"]) == 0
    assert main(["resources", "--db", db, "openings", "nope", "5"]) == 1
    assert "no service with id 'nope'" in capsys.readouterr().err
    assert main(["resources", "--db", db, "list"]) == 0
    out = capsys.readouterr().out
    assert f"{HARBOUR}  Harbour Refuge  (shelter)  [open: 5 place, 0 h ago]" in out


async def test_seed_only_when_empty_and_only_when_configured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.resources.seed == ""
    async with open_app(settings, SECRET) as app:  # `helpline run`: no silent seed
        assert await Directory(app.store).count() == 0
    seeded = settings.model_copy(update={"resources": settings.resources.model_copy(
        update={"seed": str(DATA / "directory.yaml")})})
    async with open_app(seeded, SECRET) as app:
        assert await Directory(app.store).count() == 10
        assert await seed_if_empty(app.store, str(HSDS), NOW) is None  # not empty: no import


async def test_a_directory_read_sees_changes_made_by_another_process(
        store: Store, tmp_path: Path) -> None:
    """Lookups keep parsed services in memory; a change written by another connection
    (``helpline resources import`` while the bot runs) is still seen at once."""
    result = await import_directory(store, SAMPLE_DIRECTORY, NOW)
    assert result.applied
    directory = Directory(store)
    before = {s.id: s for s in await directory.services()}
    assert [s.id for s in (await directory.snapshot()).services] == list(before)
    some_id = next(iter(before))
    other = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        renamed = before[some_id].model_copy(update={"name": "Renamed Elsewhere"})
        await other.db.execute("UPDATE services SET data = ? WHERE id = ?",
                               (renamed.model_dump_json(), some_id))
        await other.db.execute("DELETE FROM services WHERE id != ?", (some_id,))
    finally:
        await other.close()
    after = await directory.services()
    assert [(s.id, s.name) for s in after] == [(some_id, "Renamed Elsewhere")]
    assert (await directory.by_ids([some_id]))[some_id].name == "Renamed Elsewhere"
    snapshot = await directory.snapshot()
    assert [(s.id, s.name) for s in snapshot.services] == [(some_id, "Renamed Elsewhere")]


async def test_lookups_read_the_directory_again_only_when_it_changed(
        store: Store, tmp_path: Path) -> None:
    await import_directory(store, SAMPLE_DIRECTORY, NOW)
    directory = Directory(store)
    first = await directory.snapshot()
    assert first.services and first.capacities and first.places
    assert await directory.snapshot() is first  # unchanged: one small query, nothing read
    sid, [capacity] = next((k, v) for k, v in first.capacities.items() if len(v) == 1)
    await set_openings(store, sid, capacity.available + 1, NOW + 60)  # this process
    second = await directory.snapshot()
    assert second is not first and second.version > first.version
    assert second.capacities[sid][0].available == capacity.available + 1
    assert await directory.snapshot() is second
    with sqlite3.connect(tmp_path / "helpline.db") as other:  # another process, plain SQL
        other.execute("UPDATE service_capacity SET available = 0 WHERE service_id = ?",
                      (sid,))
        other.execute("DELETE FROM directory_places")
    third = await directory.snapshot()
    assert third.capacities[sid][0].available == 0 and third.places == {}


TANGLED = {  # ids repeated far apart, a location shared, rows that hang on nothing
    "services.csv": "id,name,status\ns1,One,active\ns2,Two,active\ns3,Three,active\n"
                    "s1,One again,active\ns4,Four,open\ns5,Five,active\n",
    "locations.csv": "id,location_type,name\nL1,physical,Shared\nL2,physical,No one\n"
                     "L3,hidden,Odd\nL4,physical,Four\nL4,physical,Four again\n",
    "service_at_location.csv": "id,service_id,location_id\na1,s1,L1\na2,s2,L1\n"
                               "a3,s3,L4\na1,s3,L1\na4,zz,L1\na5,s5,L3\n",
    "addresses.csv": "id,location_id,city,state_province,postal_code\n"
                     "ad1,L1,Eastmoor,Moorshire,EM1 1AA\nad4,L4,Westby,Moorshire,WB2 2BB\n",
    "phones.csv": "id,service_id,location_id,service_at_location_id,number\n"
                  "p1,s1,,,555-0001\np2,,L2,,555-0002\np3,,L1,,555-0003\n"
                  "p4,,,a4,555-0004\np5,zz,,,555-0005\np6,,nowhere,,555-0006\n"
                  "p7,,,a2,555-0007\np8,,,nosuch,555-0008\n",
    "taxonomy_terms.csv": "id,code,name\nt1,confidential,Confidential\nt2,shelter,Shelter\n",
    "attributes.csv": "id,link_id,link_entity,taxonomy_term_id\nat1,L1,location,t1\n"
                      "at2,s2,service,t2\nat3,L2,location,t2\nat4,s3,service,t9\n",
}


@pytest.mark.parametrize("batch", [1, 2, 4000])
@pytest.mark.parametrize("folder", [HSDS, DATA / "hsds-1.1", DATA / "hsds-2.0", "tangled"])
async def test_a_package_imported_a_slice_at_a_time_is_the_package_read_whole(
        store: Store, folder: Path | str, batch: int, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The import reads a datapackage into a scratch file and builds its services a slice
    at a time (bounded memory at national size): the same services, openings, places,
    problems and bad-row count as building it whole in memory, however it is sliced."""
    if folder == "tangled":
        folder = tmp_path / "tangled"
        folder.mkdir()
        for name, text in TANGLED.items():
            (folder / name).write_text(text)
    assert isinstance(folder, Path)
    monkeypatch.setattr(spill, "SERVICES_PER_BATCH", batch)
    monkeypatch.setattr(spill, "ORPHANS_PER_BATCH", max(batch, 3))
    whole = read_directory(folder, NOW)
    result = await import_directory(store, folder, NOW, skip_bad=True, source="s")
    assert shown(result.problems) == shown(whole.problems)
    assert result.bad_rows == whole.bad_rows
    assert result.format == whole.format
    directory = Directory(store)
    assert sorted(s.model_dump_json() for s in await directory.services()) == sorted(
        s.model_dump_json() for s in whole.services)
    assert sorted((c.service_id, c.unit, c.available, c.updated)
                  for cs in (await directory.capacities()).values() for c in cs) == sorted(
        (c.service_id, c.unit, c.available, c.updated) for c in whole.capacities)
    assert {p: sorted(w) for p, w in (await directory.places()).items()} == {
        p: sorted(w) for p, w in whole.places.items() if w}  # a place in no larger one: no row
    assert result.services == len(whole.services) > 0


async def test_a_package_from_another_source_is_refused_row_by_row(store: Store) -> None:
    folder = DATA / "hsds-2.0"
    first = await import_directory(store, folder, NOW, source="first")
    assert first.applied and first.services
    again = await import_directory(store, folder, NOW, source="second")
    assert not again.applied and again.bad_rows == first.services
    with (folder / "services.csv").open(newline="") as rows:
        ids = [row["id"] for row in csv.DictReader(rows)]
    assert sorted(str(p).split("/")[-1] for p in again.problems) == sorted(
        f"services.csv:{n}: service id '{ident}' already comes from another source (first); "
        "give it another id, or import with --source set to that source to replace it"
        for n, ident in enumerate(ids, 2))
    assert (await import_directory(store, folder, NOW, source="first")).replaced == len(ids)


@pytest.mark.parametrize("row", [{}, {"id": "s1", "name": "A"}, {"name": "a\x1fb"},
                                 {"x\x1e": "y"}, {"": ""}, {"a": "\x1e\x1f"}])
def test_rows_come_back_from_the_scratch_file_as_they_went_in(row: dict[str, str]) -> None:
    assert spill._decode(spill._encode(row)) == row


@pytest.mark.parametrize(("text", "expected"), [
    ("9am", "09:00"), ("9 AM", "09:00"), ("9:30 pm", "21:30"), ("9:30 p.m.", "21:30"),
    ("12 PM", "12:00"), ("12:15 a.m.", "00:15"), ("12:00 AM", "00:00"), ("11:59PM", "23:59"),
    ("9:30a", "09:30"), ("5:00 p", "17:00"), (" 9:00 am ", "09:00"),
    ("09:00", "09:00"), ("9:00:00", "09:00"), ("24:00", "24:00"), ("", None),
])
def test_times_of_day_in_the_forms_directories_publish(text: str, expected: str | None
                                                       ) -> None:
    from helpline.resources.values import clock
    assert clock("opens_at", text) == expected


@pytest.mark.parametrize("text", ["13pm", "0am", "9:60 am", "25:00", "9 o'clock", "noon",
                                  "9:9am", "930am", "9:300pm", "9:30m"])
def test_what_is_no_time_of_day_is_said_so(text: str) -> None:
    from helpline.resources.values import Bad, clock
    with pytest.raises(Bad, match="is not a time of day"):
        clock("opens_at", text)
