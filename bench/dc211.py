"""The DC 211 export (iCarol CSV) as the HSDS 1.1 tables ``bench.directory_quality`` reads.

The second public 211 export the directory's quality is measured on: the resource database
of the District of Columbia's 211 (record owner ``DCAP``; 2,132 records, 1,637 of them
programs, with AIRS taxonomy codes), as an iCarol "agency, site, program" CSV, published in
the public repository ``sfbrigade/sf-openreferral-data`` as ``211/211.csv`` (commit
``5eba8d5c2a6f3a1e9c37e1ac4807d540ca4aac6a``, 2016-06-15; the file, git blob
``8e5ee04c64e9647403292b93181b651dbe9712f3``, came in unchanged with commit ``77a89ee``
of 2014-03-30, "add 211 transformer", whose script speaks of it as "DC data"). It is not
HSDS, and ``import_directory`` does not read it: this module turns it into HSDS 1.1 tables
(services, organizations, taxonomy and services_taxonomy, eligibility, locations with
their physical addresses), so that the sample is imported through the same importer as the
Miami one:

* a **service** is a program record whose ``AgencyStatus`` is ``Active`` (1,325): the
  inactive ones and those marked "Active, but do not refer" are not offered to anyone;
  its organisation is the agency record it names (``ParentAgencyNum``);
* its **taxonomy terms** are its ``TaxonomyCodes`` (``;`` between terms, ``*`` between the
  codes of one linked term), each named from ``TaxonomyTerm`` where a term has one code;
* its ``Eligibility`` text is an HSDS 1.1 ``eligibility`` row (the table that holds who
  a service is for in 1.1); its physical address a location with a physical address.

The export cuts most descriptions at 255 characters (as the labeller read them too).

Nothing of the export is shipped (it states no licence); only the labels of the sample and
the service ids they belong to (``tests/data/quality/dc-labels.csv``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

SOURCE = "DC 211 - AIRS"


def _clean(text: str) -> str:
    return " ".join(text.replace("<br />", " ").replace("<br/>", " ").split())


def _terms(row: dict[str, str]) -> list[list[str]]:
    """The codes of each term of a record, in order (a linked term has several)."""
    return [[code.strip() for code in group.split("*") if code.strip()]
            for group in row.get("TaxonomyCodes", "").split(";") if group.strip()]


def read_dc211(path: Path) -> dict[str, list[dict[str, str]]]:
    """The export (the CSV file, or a folder holding ``211.csv``) as HSDS 1.1 tables."""
    file = path / "211.csv" if path.is_dir() else path
    text = file.read_bytes().decode("utf-8", errors="replace")
    csv.field_size_limit(1 << 24)
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "TaxonomyCodes" not in rows[0]:
        raise SystemExit(f"{path}: not the DC 211 export (no TaxonomyCodes column)")
    agencies = {r["ResourceAgencyNum"]: r for r in rows if r["TaxonomyLevelName"] == "Agency"}
    programs = [r for r in rows if r["TaxonomyLevelName"] == "Program"
                and r["AgencyStatus"] == "Active" and r["ParentAgencyNum"] in agencies]
    names: dict[str, str] = {}
    for row in rows:
        labels = [n.strip() for n in row.get("TaxonomyTerm", "").split(";") if n.strip()]
        groups = _terms(row)
        if len(labels) == len(groups):
            for codes, label in zip(groups, labels, strict=True):
                if len(codes) == 1:
                    names.setdefault(codes[0], label)
        # a linked term's codes are named in TaxonomyTerms ("Path - Name * Name"), a field
        # cut at 255 characters: only whole groups are read
        paths = [n for n in row.get("TaxonomyTerms", "").split(";") if n.strip()]
        if len(paths) == len(groups) and len(row.get("TaxonomyTerms", "")) < 255:
            for codes, named in zip(groups, paths, strict=True):
                parts = [n.split(" - ")[-1].strip() for n in named.split("*")]
                if len(parts) == len(codes):
                    for code, label in zip(codes, parts, strict=True):
                        names.setdefault(code, label)
    tables: dict[str, list[dict[str, str]]] = {
        name: [] for name in ("organizations", "services", "taxonomy", "services_taxonomy",
                              "locations", "services_at_location", "physical_addresses",
                              "eligibility")}
    used: set[str] = set()
    for ident in sorted({r["ParentAgencyNum"] for r in programs}, key=int):
        agency = agencies[ident]
        tables["organizations"].append({
            "id": ident, "name": agency["PublicName"] or agency["ParentAgency"],
            "alternate_name": agency["AlternateName"],
            "description": _clean(agency["AgencyDescription"]),
            "email": agency["EmailAddressMain"], "url": agency["WebsiteAddress"],
            "tax_status": "", "tax_id": "", "year_incorporated": "", "legal_status": ""})
    for row in programs:
        sid = row["ResourceAgencyNum"]
        tables["services"].append({
            "id": sid, "organization_id": row["ParentAgencyNum"], "program_id": "",
            "name": row["PublicName"], "alternate_name": row["AlternateName"],
            "description": _clean(row["AgencyDescription"]), "url": row["WebsiteAddress"],
            "email": row["EmailAddressMain"], "status": "active",
            "interpretation_services": "",
            "application_process": _clean(row["ApplicationProcess"]), "wait_time": "",
            "fees": _clean(row["FeeStructureSource"]), "accreditations": "", "licenses": ""})
        seen: set[str] = set()
        for codes in _terms(row):
            for code in codes:
                if code in seen:
                    continue
                seen.add(code)
                tables["services_taxonomy"].append({
                    "id": f"{sid}-{code}", "service_id": sid, "taxonomy_id": code,
                    "taxonomy_detail": ""})
                used.add(code)
        eligibility = _clean(row["Eligibility"])
        if eligibility and eligibility.lower() != "none":
            tables["eligibility"].append({"id": f"E{sid}", "service_id": sid,
                                          "eligibility": eligibility})
        if row["PhysicalCity"]:
            location = f"L{sid}"
            tables["locations"].append({
                "id": location, "organization_id": row["ParentAgencyNum"],
                "name": row["PublicName"], "alternate_name": "", "description": "",
                "transportation": "", "latitude": row["Latitude"],
                "longitude": row["Longitude"]})
            tables["services_at_location"].append({
                "id": f"SL{sid}", "service_id": sid, "location_id": location,
                "description": ""})
            tables["physical_addresses"].append({
                "id": f"A{sid}", "location_id": location, "organization_id": "",
                "attention": "", "address_1": row["PhysicalAddress1"],
                "address_2": row["PhysicalAddress2"], "city": row["PhysicalCity"],
                "region": "", "state_province": row["PhysicalStateProvince"],
                "postal_code": row["PhysicalPostalCode"], "country": "US"})
    tables["taxonomy"] = [{"id": code, "name": names.get(code, ""), "parent_id": "",
                           "parent_name": "", "vocabulary": SOURCE, "taxonomy_facet": ""}
                          for code in sorted(used)]
    return tables
