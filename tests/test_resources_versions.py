"""Every HSDS version in use: 3.x (the other tests), 2.0 and 1.1, tabular; the version is
found and said, datapackage.json paths into data/ are followed, and what each version calls
addresses, schedules, taxonomy links, eligibility and languages is read."""

from __future__ import annotations

import csv
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.privacy import Vault
from helpline.resources import Directory, import_directory
from helpline.resources.matching import Criteria, match
from helpline.store import Store
from tests.conftest import SECRET

DATA = Path(__file__).parent / "data"
NOW = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    yield opened
    await opened.close()


async def test_hsds_1_1_export_with_datapackage_paths_into_data(store: Store) -> None:
    result = await import_directory(store, DATA / "hsds-1.1", NOW)
    assert result.problems == [] and result.applied
    assert result.format == "hsds 1.1" and result.services == 7
    services = {s.id: s for s in await Directory(store).services()}
    harbour, lodge, hub, legal, line, youth, pantry = (services[f"s{i}"] for i in range(1, 8))
    # taxonomy links (service_taxonomy + taxonomy, an AIRS code as the id)
    assert harbour.needs == ("shelter",) and lodge.needs == ("shelter",)
    assert hub.needs == ("other",) and line.needs == ("other",)  # volunteering, disaster
    assert legal.needs == ("immigration", "legal") and youth.needs == ("counselling",)
    assert pantry.needs == ("food",) and pantry.status == "inactive"
    # eligibility and target populations
    assert harbour.genders == ("women",) and harbour.max_age is None  # "Families": adults
    assert lodge.genders == ("men",) and youth.max_age == 17 and youth.genders == ()
    # ages said in an eligibility row's words ("Ages 18 and older"); a priority limits no one
    assert (legal.min_age, legal.max_age) == (18, None)
    assert (line.min_age, line.max_age) == (None, None)
    # physical_address, regular_schedule (weekday names and numbers), languages, areas
    [place] = harbour.locations
    assert (place.address, place.city, place.region, place.postcode) == (
        "1 Quay Street", "Saint Albury", "Larkshire", "LK1 2AB")
    assert [(h.days, h.opens, h.closes) for h in legal.hours] == [
        (("MO",), "09:00", "17:00"), (("TU",), "09:00", "17:00")]
    assert [h.days for h in youth.hours] == [("WE",)]
    assert [(g.code, g.name) for g in legal.languages] == [(None, "Spanish"), ("fr", None)]
    assert legal.areas == ("Larkshire",) and legal.interpretation == "Interpreters on request"
    assert legal.fees == "Free"  # 1.1 'fees'
    assert [p.number for p in lodge.phones] == ["555-0102"]
    assert [p.number for p in line.phones] == ["555-0199"]  # the organization's line
    # what matching does with it: a woman asking for a safe place is not sent to the lodge
    found = match(list(services.values()), {}, {}, Criteria(needs=("shelter",),
                                                            gender="women"), NOW)
    assert [m.service.id for m in found.matches] == ["s1"]
    found = match(list(services.values()), {}, {}, Criteria(needs=("shelter",)), NOW)
    assert {m.service.id for m in found.matches} == {"s1", "s2"}
    # and a 16-year-old asking for legal help is not sent to a service for adults
    found = match(list(services.values()), {}, {}, Criteria(needs=("legal",),
                                                            age_group="under_18"), NOW)
    assert found.matches == []
    found = match(list(services.values()), {}, {}, Criteria(needs=("legal",)), NOW)
    assert [m.service.id for m in found.matches] == ["s4"]


async def test_hsds_2_0_tables(store: Store) -> None:
    result = await import_directory(store, DATA / "hsds-2.0", NOW)
    assert result.problems == [] and result.applied and result.format == "hsds 2.0"
    services = {s.id: s for s in await Directory(store).services()}
    refuge, law, teens = services["v1"], services["v2"], services["v3"]
    assert refuge.needs == ("shelter",) and refuge.genders == ("women",)
    assert law.needs == ("legal",) and teens.needs == ("counselling",)
    assert (teens.min_age, teens.max_age) == (13, 19)  # eligibility ages
    assert law.locations[0].city == "Northgate"
    assert [(h.days, h.opens) for h in law.hours] == [(("MO", "WE"), "10:00")]


def test_the_summary_says_the_version_and_what_matching_will_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "v.db")
    assert main(["resources", "--db", db, "import", "--create", str(DATA / "hsds-1.1")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("imported 7 service(s) and 0 opening count(s) from ")
    assert out[0].endswith("(hsds 1.1), replacing 0")
    assert out[1:] == [
        "needs: shelter 2, legal 1, counselling 1, immigration 1, food 1, other 2 (other: "
        "no need found in the data)",
        "limited to: age 18+ 2, age up to 17 1, men 1, women 1; open to any age and gender: 3"]


async def test_a_3x_list_of_taxonomies_is_not_read_as_terms(store: Store,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "services.csv").write_text("id,name,status\ns1,Harbour House,active\n")
    (folder / "attributes.csv").write_text("id,link_id,link_entity,taxonomy_term_id\n"
                                           "a1,s1,service,tx1\n")
    (folder / "taxonomies.csv").write_text("id,name\ntx1,Shelter\n")
    (folder / "datapackage.json").write_text(
        '{"resources": [{"name": "services", "path": "services.csv"}, '
        '{"name": "attribute", "path": "attributes.csv"}, '
        '{"name": "taxonomy", "path": "taxonomies.csv"}]}')
    result = await import_directory(store, folder, NOW, skip_bad=True)
    assert [str(p).rsplit("/", 1)[-1] for p in result.problems] == [
        "attributes.csv:2: taxonomy_term_id 'tx1' is not in taxonomy_terms.csv; fix the id, "
        "or add that row to taxonomy_terms.csv"]
    assert [s.needs for s in await Directory(store).services()] == [("other",)]


def test_the_summary_names_other_only_when_some_service_has_no_need() -> None:
    from helpline.resources.importer import ImportResult
    result = ImportResult("x", services=3, needs={"shelter": 2, "legal": 1}, unlimited=3)
    assert result.counts()[0] == "needs: shelter 2, legal 1"
    result.needs["other"] = 1
    assert result.counts()[0] == "needs: shelter 2, legal 1, other 1 (other: no need found " \
        "in the data)"


async def test_a_3x_services_eligibility_description_gives_its_ages_in_words(
        store: Store, tmp_path: Path) -> None:
    """HSDS 3.x ``eligibility_description``: its ages said in words limit the service when
    ``minimum_age``/``maximum_age`` are empty, and never over them."""
    folder = tmp_path / "hsds"
    shutil.copytree(DATA / "hsds", folder)
    path = folder / "services.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    said = {"5e7f0000-0000-4000-8000-000000000006": "Ages 18 and older; photo ID",
            "ac148810-d857-441c-9679-408f346de14b": "Under 18 only"}  # its columns win
    for row in rows:
        row["eligibility_description"] = said.get(row["id"], row["eligibility_description"])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert (await import_directory(store, folder, NOW, skip_bad=True)).applied
    services = {s.id: s for s in await Directory(store).services()}
    assert (services["5e7f0000-0000-4000-8000-000000000006"].min_age,
            services["5e7f0000-0000-4000-8000-000000000006"].max_age) == (18, None)
    assert (services["ac148810-d857-441c-9679-408f346de14b"].min_age,
            services["ac148810-d857-441c-9679-408f346de14b"].max_age) == (12, 100)
