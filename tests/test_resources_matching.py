"""Matching is pure: which services fit the criteria, and in which order."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline.resources import read_directory
from helpline.resources.matching import Criteria, match, openings
from helpline.resources.model import Capacity, DirectoryData

NOW = 1_800_000_000.0
DIRECTORY = Path(__file__).parent / "data" / "directory.yaml"


@pytest.fixture(scope="module")
def data() -> DirectoryData:
    read = read_directory(DIRECTORY, NOW)
    assert read.problems == []
    return read


def ids(data: DirectoryData, **criteria: object) -> list[str]:
    caps: dict[str, list[Capacity]] = {}
    for capacity in data.capacities:
        caps.setdefault(capacity.service_id, []).append(capacity)
    outcome = match(data.services, caps, data.places, Criteria.from_lookup(criteria), NOW)
    return [m.service.id for m in outcome.matches]


def test_needs_filter_and_closed_services_are_left_out(data: DirectoryData) -> None:
    assert set(ids(data, needs="legal")) == {"legal-es", "legal-en", "legal-paid"}
    shelters = ids(data, needs="shelter")
    assert "legal-en" not in shelters and "national-line" in shelters
    # "something else" shows everything that is open, the services tagged other first
    everything = ids(data, needs="other")
    assert everything[0] == "w-shelter"  # confirmed openings still come first
    assert len(everything) == 9 and "legal-closed" not in everything


def test_confirmed_openings_first_then_fit_and_full_last(data: DirectoryData) -> None:
    order = ids(data, needs="shelter", area="Northtown")
    assert order[0] == "w-shelter"  # 2 beds counted an hour ago
    assert order[-1] == "m-shelter"  # full at the last count
    # stale openings (100 hours) count as unknown: ranked by fit, shown "call to confirm"
    assert order.index("youth-shelter") < order.index("national-line")


@pytest.mark.parametrize("typed", ["Northtown", "NORTHTÖWN", "  northtown ", "in Northtown please",
                                   "NT1", "nt1 4ab"])
def test_area_by_town_or_postcode_any_case_or_accent(data: DirectoryData, typed: str) -> None:
    found = ids(data, needs="shelter", area=typed)
    assert {"w-shelter", "m-shelter", "youth-shelter", "national-line"} <= set(found)
    assert "south-shelter" not in found and "east-shelter" not in found


def test_area_by_region_includes_its_towns(data: DirectoryData) -> None:
    found = set(ids(data, needs="shelter", area="westshire"))
    assert {"w-shelter", "south-shelter", "youth-shelter", "national-line"} <= found
    assert "east-shelter" not in found


def test_an_unknown_place_uses_every_area_and_says_so(data: DirectoryData) -> None:
    outcome = match(data.services, {}, data.places,
                    Criteria.from_lookup({"needs": "shelter", "area": "Atlantis"}), NOW)
    assert outcome.unknown_area
    assert {m.service.id for m in outcome.matches} >= {"east-shelter", "south-shelter"}


def test_age_group(data: DirectoryData) -> None:
    minors = ids(data, needs="shelter", age_group="under_18")
    assert "youth-shelter" in minors
    assert "w-shelter" not in minors and "m-shelter" not in minors
    adults = ids(data, needs="shelter", age_group="18_plus")
    assert "youth-shelter" not in adults and "w-shelter" in adults
    assert "youth-shelter" in ids(data, needs="shelter", age_group="not_said")


def test_gender_specific_services(data: DirectoryData) -> None:
    women = ids(data, needs="shelter", gender="women")
    assert "w-shelter" in women and "m-shelter" not in women
    men = ids(data, needs="shelter", gender="men")
    assert "m-shelter" in men and "w-shelter" not in men
    nonbinary = ids(data, needs="shelter", gender="nonbinary")
    assert "m-shelter" not in nonbinary and "w-shelter" not in nonbinary
    unsaid = ids(data, needs="shelter", gender="not_said")
    assert {"w-shelter", "m-shelter"} <= set(unsaid)


@pytest.mark.parametrize("typed", ["Spanish", "español", "ES", "I speak spanish"])
def test_language_ranks_services_that_speak_it_first(data: DirectoryData, typed: str) -> None:
    assert ids(data, needs="legal", language=typed)[0] == "legal-es"


def test_cost_and_documents_rank(data: DirectoryData) -> None:
    assert ids(data, needs="legal", cost="free")[0] == "legal-en"
    order = ids(data, needs="legal", documents="none")
    assert order.index("legal-es") > order.index("legal-en")  # asks for a passport


def test_no_match_is_an_empty_list(data: DirectoryData) -> None:
    assert ids(data, needs="food", area="Easton") == []
    assert ids(data, needs="legal", area="Easton") == []


def test_openings_states() -> None:
    def cap(available: int, hours_ago: float) -> Capacity:
        return Capacity(service_id="s", unit="bed", available=available,
                        updated=NOW - hours_ago * 3600)

    assert openings([], NOW, 72).kind == "unknown"
    assert openings([cap(2, 1)], NOW, 72).kind == "open"
    assert openings([cap(0, 1)], NOW, 72).kind == "full"
    assert openings([cap(2, 73)], NOW, 72).kind == "stale"
    assert openings([cap(0, 1), cap(3, 80)], NOW, 72).kind == "stale"
    assert openings([cap(2, 1)], NOW + 72 * 3600, 72).kind == "stale"
