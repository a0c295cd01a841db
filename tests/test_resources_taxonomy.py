"""The taxonomy mapping table (data/taxonomy-map.csv): AIRS / 211 codes, whole words after
splitting at / - , &, target populations, and terms that never give a need; an admin's own
table comes first; a bad row is reported at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline.privacy import Vault
from helpline.resources import Directory, import_directory
from helpline.resources.taxonomy import BUNDLED_MAP, TaxonomyMap
from helpline.store import Store
from tests.conftest import SECRET

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def bundled() -> TaxonomyMap:
    found, problems = TaxonomyMap.load()
    assert problems == []
    return found


@pytest.mark.parametrize(("code", "name", "needs"), [
    # terms joined by "/" that were missed
    ("", "Transitional Housing/Shelter", {"shelter"}),
    ("", "Immigration/Naturalization Legal Services", {"immigration", "legal"}),
    ("", "Mental Health Information/Counseling", {"counselling"}),
    ("", "Food Stamps/SNAP Applications", {"food"}),
    ("", "Alcohol-Drug Abuse Counseling & Detox", {"substance_use", "counselling"}),
    ("", "Legal Counseling", {"legal"}),  # the longer words win inside one part
    ("", "Emergency Shelter", {"shelter"}),
    # whole words only
    ("", "Sheltered Employment", set()),
    ("", "Foodservice Worker Training", set()),
    ("", "Paralegal Programs", set()),
    # never: volunteering, donations, services to providers, disaster operations
    ("", "Homeless Shelter Volunteer Opportunities", set()),
    ("", "Disaster Related Shelter Services", set()),
    ("", "Food Donations", set()),
    ("", "Legal Aid Donor Programs", set()),
    # codes: the longest rule the code starts with; it overrides the words
    ("BH-1800.8500", "Homeless Shelter", {"shelter"}),
    ("BH-1800.1500", "Domestic Violence Shelters", {"shelter"}),
    ("BH-3000.3550", "Landlord/Tenant Shelter Listings", set()),  # a search service
    ("LH-3000", "Health Insurance/Dental Coverage", set()),
    ("LT-1750", "Clinic Of Some Kind", {"medical"}),
    ("RD-6500", "Some Substance Use Programme", {"substance_use"}),
    ("RP-1400", "Outpatient Mental Health Facilities", {"counselling"}),
    ("FT-3200", "Immigration Services", {"immigration"}),
    ("TI-1800", "Shelter Provider Associations", set()),
    ("YK-8000.2500", "Homeless Shelter Residents", set()),  # a target population
])
def test_needs(bundled: TaxonomyMap, code: str, name: str, needs: set[str]) -> None:
    assert set(bundled.meaning(code, name).needs) == needs


@pytest.mark.parametrize(("names", "limits"), [
    (["Homeless Men"], (("men",), None, None)),
    (["Men's Health"], (("men",), None, None)),
    (["Women"], (("women",), None, None)),
    (["Homeless Men", "Homeless Women"], ((), None, None)),  # both: not limited
    (["Mental Health Services"], ((), None, None)),  # "men" only as a whole word
    (["Youth"], ((), None, 24.0)),
    (["Older Adults"], ((), 60.0, None)),  # not the 18 of "Adults" inside it
    (["Children"], ((), None, 17.0)),
    (["Women", "Children"], (("women",), None, None)),  # a women's service with children
    (["Domestic Violence Shelters for Women and Children"], (("women",), None, None)),
    (["Adolescents", "Adults"], ((), None, None)),
])
def test_who_a_service_is_for(bundled: TaxonomyMap, names: list[str],
                              limits: tuple[object, ...]) -> None:
    meaning = bundled.meaning("", names[0])
    for name in names[1:]:
        meaning |= bundled.meaning("", name)
    assert meaning.limits() == limits


def test_every_bundled_row_is_used_as_written() -> None:
    rows = [line for line in BUNDLED_MAP.read_text().splitlines()
            if line.strip() and not line.startswith("#")][1:]
    found, _ = TaxonomyMap.load()
    assert len(found.codes) + len(found.words) + len(found.never) == len(rows)


async def test_an_admin_table_comes_first_and_bad_rows_are_named(tmp_path: Path) -> None:
    extra = tmp_path / "ours.csv"
    extra.write_text("kind,match,gives,note\n"
                     "# our own terms\n"
                     "words,safe house programme,need:shelter;gender:women,\n"
                     "code,BH-3000,need:shelter,we list only places to stay under BH-3000\n"
                     "never,training,,\n")
    ours, problems = TaxonomyMap.load([extra])
    assert problems == []
    assert ours.meaning("", "Safe House Programme").limits()[0] == ("women",)
    assert set(ours.meaning("BH-3000.3550", "Listings").needs) == {"shelter"}
    assert set(ours.meaning("", "Shelter Staff Training").needs) == set()
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,match,gives\nword,x,need:shelter\nwords,,need:food\n"
                   "words,y,need:housing\n")
    _, problems = TaxonomyMap.load([bad])
    assert [str(p) for p in problems] == [
        f"{bad}:2: kind 'word' is not code, words or never; use one of those",
        f"{bad}:3: match is empty; give a code or words",
        f"{bad}:4: 'need:housing' is not something a term can give; use need:NAME, "
        "gender:NAME, min_age:N, max_age:N, serves:adults or none"]
    # the import refuses a bad table before it reads anything
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        refused = await import_directory(store, Path(__file__).parent / "data" / "hsds-1.1",
                                         NOW, maps=(bad,))
        assert not refused.applied and len(refused.problems) == 3
        applied = await import_directory(store, Path(__file__).parent / "data" / "hsds-1.1",
                                         NOW, maps=(extra,))
        assert applied.applied
        hub = (await Directory(store).by_ids(["s3"]))["s3"]
        assert hub.needs == ("other",)
    finally:
        await store.close()
