"""The labelled sample of real 211 data (tests/data/quality/) and the benchmark that reads it
(bench/directory_quality.py): the labels are well formed, and on a small fictional export in
the Miami form the benchmark draws, imports, looks up and reports what it should."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.dc211 import read_dc211
from bench.directory_quality import (
    DC2_PER_STRATUM,
    DC_MORE_PER_STRATUM,
    DC_PER_STRATUM,
    FIFTH_MORE_STRATA,
    FIFTH_STRATA,
    FRESH_PER_STRATUM,
    FRESH_STRATA,
    HOLDOUT_PER_STRATUM,
    LABEL_FILES,
    LABELS,
    PER_STRATUM,
    STRATA,
    TARGETS,
    Label,
    draw,
    groups,
    measure,
    read_export,
    read_labels,
    report,
)
from helpline.resources.model import GENDERS, NEEDS
from helpline.resources.search import RESULTS


def test_the_shipped_labels_are_a_sample_of_at_least_150_in_the_bots_words() -> None:
    labels = read_labels(LABELS)
    assert len(labels) >= 150
    assert len({label.service_id for label in labels}) == len(labels)
    strata = [label.stratum for label in labels]
    assert {s: strata.count(s) for s in STRATA} == {s: PER_STRATUM for s in STRATA}
    for sample in ("holdout-", "second-"):
        assert {s: strata.count(f"{sample}{s}") for s in STRATA} == {
            s: HOLDOUT_PER_STRATUM for s in STRATA}
        assert strata.count(f"{sample}uniform") >= 40
    assert strata.count("uniform") >= 150
    # the fresh held-out sample: at least 150, with 25 or more services a caseworker gives
    # each need with a target
    fresh = [label for label in labels if label.stratum.startswith("fresh-")]
    assert len(fresh) >= 150
    assert {label.stratum for label in fresh} == {"fresh-uniform"} | {
        f"fresh-{s}" for s in FRESH_STRATA}
    assert {s: strata.count(f"fresh-{s}") for s in FRESH_STRATA} == {
        s: FRESH_PER_STRATUM[s] for s in FRESH_STRATA}
    assert strata.count("fresh-uniform") >= 40
    for need in TARGETS:
        assert sum(need in label.needs for label in fresh) >= 25, need
    # the fifth, held out from all four above: at least 150, and 25 or more services a
    # caseworker gives legal, medical and counselling (every service with a shelter code or
    # word was already in a sample: see tests/data/quality/README.md)
    fifth = [label for label in labels if label.stratum.startswith("fifth-")]
    assert len(fifth) >= 150
    assert {label.stratum for label in fifth} == {"fifth-uniform"} | {
        f"fifth-{s}" for s in (*FIFTH_STRATA, *FIFTH_MORE_STRATA)}
    for need in ("legal", "medical", "counselling"):
        assert sum(need in label.needs for label in fifth) >= 25, need
    for label in labels:
        assert label.needs <= set(NEEDS) - {"other"}, label
        assert label.gender in ("", *GENDERS), label
        if label.min_age is not None and label.max_age is not None:
            assert label.min_age <= label.max_age, label
    labelled = {n: sum(n in label.needs for label in labels) for n in NEEDS}
    assert min(labelled[n] for n in ("shelter", "legal", "medical", "counselling")) >= 10


def test_age_groups_are_read_as_matching_filters_them() -> None:
    assert groups(None, None) == "under_18 and 18_plus"
    assert groups(None, 17) == "under_18"
    assert groups(None, 24) == "under_18 and 18_plus"
    assert groups(18, None) == "18_plus"
    assert groups(60, None) == "18_plus"


def _write(folder: Path, name: str, header: str, *rows: str) -> None:
    (folder / f"{name}.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def _export(folder: Path) -> None:
    """Four fictional services as the Miami export writes them: no status, 12-hour times,
    AIRS codes as term ids, eligibility rows that name no service."""
    folder.mkdir()
    _write(folder, "organizations", "id,name", "1,Harbour Trust", "2,Eastmoor Aid")
    _write(folder, "services",
           "id,organization_id,name,description,status,application_process,fees",
           "10,1,Harbour House,Beds for the night,,Call,",
           "11,1,Harbour Lodge,Beds and a hot drink,,Call,",
           "12,2,Eastmoor Law Clinic,Free legal advice,,Call,",
           "13,2,Tenancy Office,Complaints about landlords,,Call,",
           "14,9,Orphan,Its organisation is missing,,Call,")
    _write(folder, "taxonomy", "id,name,parent_id,parent_name,vocabulary",
           "BH-1800.8500,Homeless Shelter,B,Basic Needs,AIRS",
           "FT-3200,General Legal Aid,F,Legal,AIRS",
           "FT-1000.8900,Unemployment Insurance Benefits Assistance,F,Legal,AIRS",
           "YV-3000.7500,Homeless Women,Y,Target Populations,AIRS")
    _write(folder, "services_taxonomy", "id,service_id,taxonomy_id,taxonomy_detail",
           "1,10,BH-1800.8500,", "2,10,YV-3000.7500,", "3,11,BH-1800.8500,",
           "4,12,FT-3200,", "5,13,FT-1000.8900,")
    _write(folder, "regular_schedules", "id,service_id,location_id,weekday,opens_at,closes_at",
           ",10,,Monday,9:00am,5:00pm")
    _write(folder, "eligibility", "id,service_id,eligibility", ",,Adult men only")


async def test_the_benchmark_measures_needs_and_a_gender_limit_the_data_misses(
        tmp_path: Path) -> None:
    _export(tmp_path / "export")
    tables = read_export(tmp_path / "export")
    sample = dict(draw(tables))
    assert set(sample) <= {"10", "11", "12", "13"}  # never the orphan, which cannot import
    assert {i for i, s in sample.items() if s == "shelter"} <= {"10", "11"}
    assert {i for i, s in sample.items() if s == "legal"} <= {"12", "13"}  # FT or "legal"
    labels = [
        Label("10", "uniform", frozenset({"shelter"}), "women", None, None),
        Label("11", "uniform", frozenset({"shelter"}), "men", 18, None),  # nothing says so
        Label("12", "uniform", frozenset({"legal"}), "", None, None),
        Label("13", "second-uniform", frozenset({"legal"}), "", None, None),  # benefits
    ]
    figures = await measure(tables, labels, tmp_path / "work")
    assert figures.imported == 4
    assert figures.per_need["shelter"] == {"labelled": 2, "offered": 2, "right": 2,
                                           "precision": 1.0, "recall": 1.0}
    assert figures.per_need["legal"]["recall"] == 0.5
    assert figures.per_need["legal"]["precision"] == 1.0
    assert figures.misses["legal"] == ["missed 13"]
    # each sample is reported on its own too
    assert figures.sampled == {"": 3, "second-": 1}
    assert figures.sample_need["second-"]["legal"]["recall"] == 0.0
    assert figures.sample_need[""]["legal"]["recall"] == 1.0
    # neither the lodge's terms nor its words say it is for men: a woman and a non-binary
    # person are offered it
    assert figures.wrong_gender == ["11 (shelter): for men only, offered to nonbinary",
                                    "11 (shelter): for men only, offered to women"]
    assert figures.wrong_age == ["11 (shelter): offered to under_18"]
    assert figures.gender == {"agree": ["10", "12", "13"],
                              "labelled men, given anyone": ["11"]}
    assert any("'active' written" in note for note in figures.notes)
    assert any("eligibility: left out" in note for note in figures.notes)
    # The export writes hours as "9:00am": read as 09:00, not a problem (it was one before).
    assert not any(key.startswith("regular_schedules.csv") for key in figures.problems)
    text = report(figures, verbose=True)
    shelter = next(line.split() for line in text.splitlines() if line.startswith("shelter"))
    assert shelter[:6] == ["shelter", "2", "2", "2", "1.000", "1.000"]
    assert "NOT met" in " ".join(next(line.split() for line in text.splitlines()
                                      if line.startswith("legal")))
    assert "services limited to one gender, offered to another: 1 (in 2 lookups)" in text
    assert ("over the 1 services of the second held-out sample (labelled after the rules "
            "about a service's own words) alone:") in text
    # the package written for the import holds only the sampled services
    with (tmp_path / "work" / "package" / "services.csv").open(encoding="utf-8") as f:
        assert sorted(r["id"] for r in csv.DictReader(f)) == ["10", "11", "12", "13"]


async def test_the_benchmark_counts_every_service_offered_not_the_first_page(
        tmp_path: Path) -> None:
    """A person is shown the first RESULTS services; the benchmark counts all that fit, so
    a sample with more services of one need than that is measured whole."""
    count = RESULTS + 20
    folder = tmp_path / "export"
    folder.mkdir()
    _write(folder, "organizations", "id,name", "1,Harbour Trust")
    _write(folder, "services", "id,organization_id,name,description,status",
           *(f"{n},1,Harbour House {n},Beds for the night," for n in range(1, count + 1)))
    _write(folder, "taxonomy", "id,name,parent_id,parent_name,vocabulary",
           "BH-1800.8500,Homeless Shelter,B,Basic Needs,AIRS")
    _write(folder, "services_taxonomy", "id,service_id,taxonomy_id",
           *(f"{n},{n},BH-1800.8500" for n in range(1, count + 1)))
    labels = [Label(str(n), "uniform", frozenset({"shelter"}), "", None, None)
              for n in range(1, count + 1)]
    figures = await measure(read_export(folder), labels, tmp_path / "work")
    assert figures.imported == count
    assert figures.per_need["shelter"]["offered"] == count
    assert figures.per_need["shelter"]["recall"] == 1.0


# ------------------------------------------------------------------ the DC 211 export

DC_HEADER = ("ResourceAgencyNum,PublicName,AlternateName,TaxonomyLevelName,ParentAgency,"
             "ParentAgencyNum,AgencyStatus,AgencyDescription,Eligibility,ApplicationProcess,"
             "FeeStructureSource,EmailAddressMain,WebsiteAddress,PhysicalAddress1,"
             "PhysicalAddress2,PhysicalCity,PhysicalStateProvince,PhysicalPostalCode,"
             "Latitude,Longitude,TaxonomyTerm,TaxonomyTerms,TaxonomyCodes")


def _dc_export(path: Path) -> None:
    """Fictional records in the DC 211 (iCarol) form: an agency, its programs (one
    inactive, one "do not refer"), terms as codes with ``*`` between a linked term's."""
    rows = [
        "1,Harbour Trust,,Agency,Harbour Trust,0,Active,An agency,,,,,,,,,,,,,,,",
        '10,Harbour Trust - Night Shelter,,Program,Harbour Trust,1,Active,'
        '"Beds for the night<br />for women",Adult women only,Walk-In,No fee,,,'
        '1 Quay Street,,Washington,DC,20001,38.9,-77.0,'
        '"Homeless Shelter; Homeless Women; ",'
        '"Basic Needs - Homeless Shelter; Target Populations - Homeless Women * Homeless People",'
        '"BH-1800.8500; YV-3000.7500 * YV-3000"',
        '11,Harbour Trust - Law Clinic,,Program,Harbour Trust,1,Active,Free legal advice,'
        'None,Telephone,,,,,,,,,,,"General Legal Aid; ","Legal - General Legal Aid","FT-3200"',
        "12,Harbour Trust - Old Desk,,Program,Harbour Trust,1,Inactive,Closed,,,,,,,,,,,,,,,",
        '13,Harbour Trust - Referral Desk,,Program,Harbour Trust,1,"Active, but do not refer",'
        "Closed,,,,,,,,,,,,,,,",
        "14,Orphan Program,,Program,Nobody,99,Active,Its agency is missing,,,,,,,,,,,,,,,",
    ]
    path.write_text("\n".join([DC_HEADER, *rows]) + "\n", encoding="utf-8")


def test_the_dc_export_is_read_as_the_hsds_tables_of_its_active_programs(
        tmp_path: Path) -> None:
    _dc_export(tmp_path / "211.csv")
    tables = read_dc211(tmp_path / "211.csv")
    assert [s["id"] for s in tables["services"]] == ["10", "11"]
    assert [o["id"] for o in tables["organizations"]] == ["1"]
    shelter = tables["services"][0]
    assert shelter["description"] == "Beds for the night for women"
    assert shelter["status"] == "active" and shelter["organization_id"] == "1"
    assert [(t["service_id"], t["taxonomy_id"]) for t in tables["services_taxonomy"]] == [
        ("10", "BH-1800.8500"), ("10", "YV-3000.7500"), ("10", "YV-3000"), ("11", "FT-3200")]
    names = {t["id"]: t["name"] for t in tables["taxonomy"]}
    assert names["BH-1800.8500"] == "Homeless Shelter"
    assert names["YV-3000"] == "Homeless People"  # a linked term, named from TaxonomyTerms
    # "None" is no eligibility; the text is an HSDS 1.1 eligibility row of its service
    assert [(e["service_id"], e["eligibility"]) for e in tables["eligibility"]] == [
        ("10", "Adult women only")]
    assert [a["city"] for a in tables["physical_addresses"]] == ["Washington"]


async def test_the_benchmark_measures_the_dc_export_with_its_own_draw(tmp_path: Path) -> None:
    _dc_export(tmp_path / "211.csv")
    tables = read_dc211(tmp_path)
    sample = dict(draw(tables, "dc"))
    assert set(sample) == {"10", "11"} and all(s.startswith("dc-") for s in sample.values())
    labels = [Label("10", sample["10"], frozenset({"shelter"}), "women", 18, None),
              Label("11", sample["11"], frozenset({"legal"}), "", None, None)]
    figures = await measure(tables, labels, tmp_path / "work")
    assert figures.imported == 2
    assert figures.sampled == {"dc-": 2}
    assert figures.sample_need["dc-"]["shelter"]["recall"] == 1.0
    assert figures.sample_need["dc-"]["legal"]["precision"] == 1.0
    assert figures.wrong_gender == []  # Homeless Women: not offered to men
    assert not any("eligibility: left out" in note for note in figures.notes)
    assert "DC 211 sample" in report(figures, verbose=False)


def test_the_shipped_dc_labels_are_a_held_out_sample_of_at_least_150() -> None:
    labels = read_labels(LABEL_FILES["dc"])
    assert len(labels) >= 150
    assert len({label.service_id for label in labels}) == len(labels)
    strata = [label.stratum for label in labels]
    assert {s: strata.count(f"dc-{s}") for s in DC_PER_STRATUM} == DC_PER_STRATUM
    assert {s: strata.count(f"dc-{s}") for s in DC_MORE_PER_STRATUM} == DC_MORE_PER_STRATUM
    assert strata.count("dc-uniform") >= 60
    # the second sample, held out from the round that read the first one's misses
    assert {s: strata.count(f"dc2-{s}") for s in DC2_PER_STRATUM} == DC2_PER_STRATUM
    assert strata.count("dc2-uniform") >= 50
    for label in labels:
        assert label.needs <= set(NEEDS) - {"other"}, label
        assert label.gender in ("", *GENDERS), label
    for need in TARGETS:
        assert sum(need in label.needs for label in labels) >= 20, need
