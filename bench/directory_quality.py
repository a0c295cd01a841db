"""The directory's quality on real 211 data: needs and restrictions against a caseworker's labels.

``python -m bench.directory_quality --export PATH [--source miami|dc] [--labels FILE]``

``PATH`` is the Miami Open211 HSDS 1.1 export (the datapackage zip, or the folder it unzips
to), or with ``--source dc`` the DC 211 export (``211.csv``, read by ``bench/dc211.py``);
``bench/README.md`` says where to get them. Their rows are not shipped with the project
(no licence is given for them); the labels are (``tests/data/quality/miami-labels.csv`` and
``dc-labels.csv``, written by a developer reading each sampled record).

What it does:

* **the sample**: ``draw`` picks the labelled services from the export the same way every
  time: from DC, one held-out sample (seed 22); from Miami, five samples with their own
  seeds: the first four, which the rules were
  written from (the development set), and a fifth one held out from all of them (see
  ``tests/data/quality/README.md``); ``--draw`` prints them,
  ``--records`` prints each sampled record as a labeller reads it (name, description,
  taxonomy terms), ``--sample PREFIX`` only one sample's;
* **import**: the sampled services, with every row that hangs on them, are written to a
  temporary HSDS 1.1 package and imported through ``import_directory`` (what ``helpline
  resources import --skip-bad`` runs) into a fresh database. The export gives no service
  ``status``; it lists the services 211 Miami refers people to, so ``active`` is written;
* **lookups**: for each need, ``Directory.lookup`` (``helpline/resources/search.py``) with
  that need only, and with each gender and each age group: what a person would be offered;
* **figures**: precision and recall per need, over all, per sample, over the development
  set and over the fresh and fifth samples' services not read before they were drawn (a
  service is *given* a need when the lookup for that need offers it, counting every
  service that fits, not only the first page a person is shown), gender and age restrictions
  against the labels, and every service limited to one gender that a person of another
  gender is offered.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, SECRET, emit

NOW = 1_800_000_000.0
LABELS = ROOT / "tests" / "data" / "quality" / "miami-labels.csv"
SEED = 17
UNIFORM_STEP = 24  # every 24th service (in id order, from a seeded offset)
PER_STRATUM = 25  # services drawn at random from each focused stratum
# Focused strata, so shelter and legal have enough services to measure: a service is in
# one when a term of its taxonomy starts with one of the codes, or its name or description
# has one of the words (both, so that what the taxonomy misses is drawn too). BH-8400 is
# Supportive Housing in AIRS (the table once took it for transitional shelter, BH-8600); it
# stays, so the draw still picks the labelled services.
STRATA = {
    "shelter": (("BH-1800", "BH-8400"), ("shelter", "shelters")),
    "legal": (("FT",), ("legal", "attorney", "attorneys", "lawyer", "lawyers")),
}
# A second sample, labelled after the mapping table's rules were written from the first: the
# figures on it show whether the rules hold beyond the services they were written from.
HOLDOUT_STEP = 72
HOLDOUT_PER_STRATUM = 10
# A third sample, drawn the same way with its own seed and labelled after the rules for a
# service's own words (name and description) were written from the first.
SECOND_SEED = SEED + 2
# A fourth, fresh sample, drawn after the third round's rules were written from all three
# samples above, and labelled from the records before the importer was run on it: every
# FRESH_STEP-th service, then a focused stratum for each of the four needs with a target, so
# that each has at least 25 services a caseworker gives it. Codes and words as above (the
# words are single words of the name or description); the shelter stratum is the whole of
# what is left of its pool (about 50 services), with the AIRS codes of shelter (BH-1800
# Emergency Shelter, BH-1850 shelter clearinghouses, BH-8600 Transitional Housing/Shelter).
FRESH_SEED = SEED + 3
FRESH_STEP = 72
FRESH_STRATA = {
    "shelter": (("BH-1800", "BH-1850", "BH-8600"),
                ("shelter", "shelters", "overnight", "motel", "refuge")),
    "legal": (("FT-2", "FT-3000", "FT-3200", "FT-3600", "FT-4800", "FP-4000", "FP-4500",
               "FJ-6700.6500"), ("legal", "attorney", "attorneys", "lawyer", "lawyers")),
    "counselling": (("RD", "RF", "RM", "RP-1400", "RP-1500", "PN-8100.5000", "PN-8100.0200"),
                    ("counseling", "counselling", "psychotherapy", "therapist",
                     "therapists")),
    "medical": (("LN", "LV", "LT", "LF"), ("clinic", "clinics", "hospital")),
}
FRESH_PER_STRATUM = {"shelter": 50, "legal": 45, "counselling": 25, "medical": 25}
# A fifth sample, drawn after the fourth round's rules were written from all four samples
# above (528 services) and labelled from the records before the importer was run on it: the
# same machinery with seed 21. Every service with a shelter code or word of FRESH_STRATA is
# in an earlier sample, so the shelter stratum is drawn on who a service is for as well
# (homeless people, shelter residents: AIRS YV-3000 and YM) and the words homeless and
# runaway(s); the legal stratum on every FT code, legal counseling and representation, the
# public defender, and the words law, paralegal and injunction(s) too.
FIFTH_SEED = SEED + 4
FIFTH_STRATA = {
    "shelter": (("BH-1800", "BH-1850", "BH-8600", "YV-3000", "YM"),
                ("shelter", "shelters", "overnight", "motel", "refuge", "homeless", "runaway",
                 "runaways")),
    "legal": (("FT", "FP-4000", "FP-4500", "FJ-6700.6500"),
              ("legal", "attorney", "attorneys", "lawyer", "lawyers", "law", "paralegal",
               "injunction", "injunctions")),
    "counselling": FRESH_STRATA["counselling"],
    "medical": FRESH_STRATA["medical"],
}
FIFTH_PER_STRATUM = {"shelter": 40, "legal": 45, "counselling": 20, "medical": 20}
# Labelled, those 168 gave shelter 1, legal 8, medical 19 and counselling 39 services, so a
# second draw with the same seed followed, before the importer was run on any of them: the
# whole of what was left of the third round's narrower legal pool, and 20 more from its
# medical pool (no uniform part). No shelter is left to draw: every service with a shelter
# code or word is in a sample.
FIFTH_MORE_STRATA = {"legal-more": FRESH_STRATA["legal"],
                     "medical-more": FRESH_STRATA["medical"]}
FIFTH_MORE_PER_STRATUM = {"legal-more": 41, "medical-more": 20}
# The DC 211 export (``bench/dc211.py``), the fifth round's held-out figure: a sample drawn
# with its own seed before the importer was run on any of its records, labelled from the
# records alone, and not read while the fifth round's rules were written (they were written
# from the Miami development set). Every DC_STEP-th active program, then the fifth sample's
# strata (codes and words as there).
DC_SEED = SEED + 5
DC_STEP = 20
DC_PER_STRATUM = {"shelter": 25, "legal": 25, "counselling": 20, "medical": 20}
# Labelled, those 157 gave shelter 12 and legal 14 services, so a second draw with the same
# seed followed, before the importer was run on any of them: 25 more from the third round's
# narrower shelter pool and 20 more from its legal pool (no uniform part).
DC_MORE_STRATA = {"shelter-more": FRESH_STRATA["shelter"],
                  "legal-more": FRESH_STRATA["legal"]}
DC_MORE_PER_STRATUM = {"shelter-more": 25, "legal-more": 20}
# A second DC sample, held out from the round that read the first one's misses (ages in
# words, 2026-12-02): drawn from the programs outside the first with its own seed, before
# the importer was run on any of them, and labelled from the records alone.
DC2_SEED = DC_SEED + 1
DC2_PER_STRATUM = {"shelter": 30, "legal": 30, "counselling": 20, "medical": 20}
# The samples, by the prefix of their strata, as the report names them.
SAMPLES = {"": "first sample (the rules were written from it)",
           "holdout-": "held-out sample (labelled after the rules about terms)",
           "second-": "second held-out sample (labelled after the rules about a service's "
                      "own words)",
           "fresh-": "fresh held-out sample (drawn and labelled after the third round's "
                     "rules, which were written from the three samples above)",
           "fifth-": "fifth sample, held out (drawn and labelled after the fourth round's "
                     "rules, which were written from the four samples above)",
           "dc-": "DC 211 sample, held out (another export; drawn and labelled before the "
                  "fifth round's rules were run on it)",
           "dc2-": "second DC 211 sample, held out (drawn and labelled after the first DC "
                   "sample's misses were read)"}
# The development set: the samples the fourth round's rules were written from.
DEVELOPMENT = ("", "holdout-", "second-", "fresh-")
# Fresh services whose record, and what the importer gave it, were read before the fresh
# sample was drawn (in the third round's checks of its rules against the whole export, which
# list every service whose needs or ages a rule changes): the fresh figures are also given
# without them.
SEEN_BEFORE_DRAW = frozenset({
    "104", "185", "789", "1319", "1437", "1543", "1605", "1606", "1681", "1842", "1852",
    "2145", "2335", "2523", "2897", "3092", "3288", "3536", "3546", "5002", "5663", "5885",
    "6229", "6452", "7073", "7278", "7352", "8008"})
# Services of the fifth sample's second draw whose name and import (and for a few, the
# record) were listed in the fourth round's checks of its rules against the rest of the
# export, before that draw (the first draw of 168 was left out of those checks): the fifth
# figures are also given without them.
SEEN_BEFORE_FIFTH = frozenset({
    "35", "225", "441", "449", "472", "743", "1658", "2329", "4109", "4999", "5319", "6041",
    "6521", "7072", "7106", "7109", "7117", "7766", "7772", "7827", "8868"})
VIEWS = {"development": "the development set (the first four samples: the fourth round's "
                        "rules were written from them)",
         "fresh-unseen": "the fresh sample whose records were not read before it was drawn",
         "fifth-unseen": "the fifth sample without the services listed in the fourth "
                         "round's checks before its second draw"}
TARGETS = ("shelter", "legal", "counselling", "medical")
MIN_PRECISION, MIN_RECALL = 0.95, 0.9
EXPORTS = ("miami", "dc")
LABEL_FILES = {"miami": LABELS,
               "dc": ROOT / "tests" / "data" / "quality" / "dc-labels.csv"}
GENDERS = ("women", "men", "nonbinary")
AGE_GROUPS = ("under_18", "18_plus")


def _prefix(stratum: str) -> str:
    """The prefix of SAMPLES a stratum belongs to."""
    return max((p for p in SAMPLES if stratum.startswith(p)), key=len)


# ------------------------------------------------------------------ the export


def _csv_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def read_export(path: Path) -> dict[str, list[dict[str, str]]]:
    """Every CSV table of the export by its file name (``services``, ``taxonomy``...): from
    the zip, or from the folder it unzips to (CSVs in it or in its ``data/``)."""
    files: dict[str, str] = {}
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".csv"):
                    files[Path(name).stem] = _csv_text(archive.read(name))
    else:
        folder = path if path.is_dir() else path.parent
        for found in (*folder.glob("*.csv"), *folder.glob("data/*.csv")):
            files.setdefault(found.stem, _csv_text(found.read_bytes()))
    if "services" not in files:
        raise SystemExit(f"{path}: no services.csv found (give the export's zip or folder)")
    return {name: list(csv.DictReader(io.StringIO(text))) for name, text in files.items()}


def _whole(tables: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """The services whose organisation the export lists (the others cannot be imported:
    their rows are not whole), in id order."""
    orgs = {r["id"] for r in tables.get("organizations", [])}
    return sorted((s for s in tables["services"] if s["organization_id"] in orgs),
                  key=lambda s: int(s["id"]) if s["id"].isdigit() else 0)


def _codes(tables: dict[str, list[dict[str, str]]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in tables.get("services_taxonomy", []):
        out.setdefault(row["service_id"], []).append(row["taxonomy_id"])
    return out


def _words(text: str) -> set[str]:
    return set("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


def draw(tables: dict[str, list[dict[str, str]]], export: str = "miami"
         ) -> list[tuple[str, str]]:
    """(service id, stratum): for the DC export, its one sample (DC_STEP, FIFTH_STRATA);
    for Miami, every UNIFORM_STEP-th whole service from a seeded offset
    ("uniform"), then PER_STRATUM more drawn at random from each focused stratum; then the
    held-out samples, each drawn the same way with its own seed from the rest: the two of
    HOLDOUT_STEP, the fresh one with its own strata (FRESH_STRATA) and the fifth
    (FIFTH_STRATA)."""
    if export == "dc":
        chosen = _draw(tables, DC_SEED, DC_STEP, DC_PER_STRATUM, set(), "dc-", FIFTH_STRATA)
        chosen += _draw(tables, DC_SEED, 0, DC_MORE_PER_STRATUM,
                        {ident for ident, _ in chosen}, "dc-", DC_MORE_STRATA)
        return chosen + _draw(tables, DC2_SEED, DC_STEP, DC2_PER_STRATUM,
                              {ident for ident, _ in chosen}, "dc2-", FIFTH_STRATA)
    chosen = _draw(tables, SEED, UNIFORM_STEP, PER_STRATUM, set(), "")
    chosen += _draw(tables, SEED + 1, HOLDOUT_STEP, HOLDOUT_PER_STRATUM,
                    {ident for ident, _ in chosen}, "holdout-")
    chosen += _draw(tables, SECOND_SEED, HOLDOUT_STEP, HOLDOUT_PER_STRATUM,
                    {ident for ident, _ in chosen}, "second-")
    chosen += _draw(tables, FRESH_SEED, FRESH_STEP, FRESH_PER_STRATUM,
                    {ident for ident, _ in chosen}, "fresh-", FRESH_STRATA)
    chosen += _draw(tables, FIFTH_SEED, FRESH_STEP, FIFTH_PER_STRATUM,
                    {ident for ident, _ in chosen}, "fifth-", FIFTH_STRATA)
    return chosen + _draw(tables, FIFTH_SEED, 0, FIFTH_MORE_PER_STRATUM,
                          {ident for ident, _ in chosen}, "fifth-", FIFTH_MORE_STRATA)


Strata = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def _draw(tables: dict[str, list[dict[str, str]]], seed: int, step: int,
          per_stratum: int | dict[str, int], taken: set[str], prefix: str,
          strata: Strata = STRATA) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    services = [s for s in _whole(tables) if s["id"] not in taken]
    chosen = []
    if step:  # no uniform part with step 0
        start = rng.randrange(step)
        chosen = [(s["id"], f"{prefix}uniform") for s in services[start::step]]
    taken = taken | {ident for ident, _ in chosen}
    codes = _codes(tables)
    for stratum, (prefixes, words) in strata.items():
        pool = [s["id"] for s in services if s["id"] not in taken and (
            any(c.startswith(prefixes) for c in codes.get(s["id"], ()))
            or _words(s["name"] + " " + s["description"]) & set(words))]
        size = per_stratum if isinstance(per_stratum, int) else per_stratum[stratum]
        for ident in rng.sample(pool, min(size, len(pool))):
            chosen.append((ident, f"{prefix}{stratum}"))
            taken.add(ident)
    return chosen


def records(tables: dict[str, list[dict[str, str]]], ids: Iterable[str]) -> Iterable[str]:
    """Each service as a labeller reads it: name, description, how to apply, fees, who it
    is for (eligibility rows that name it) and its taxonomy terms (code and name)."""
    by_id = {s["id"]: s for s in tables["services"]}
    eligible: dict[str, list[str]] = {}
    for row in tables.get("eligibility", []):
        if row.get("service_id"):
            eligible.setdefault(row["service_id"], []).append(row["eligibility"])
    terms = {t["id"]: t["name"] for t in tables.get("taxonomy", [])}
    codes = _codes(tables)
    for ident in ids:
        s = by_id[ident]
        text = " ".join(s["description"].replace("\\n", " ").split())
        yield "\n".join([
            f"== {ident}: {s['name']}",
            f"   {text}",
            f"   apply: {s['application_process']} | fees: {s['fees']}",
            *([f"   for: {' / '.join(eligible[ident])}"] if ident in eligible else []),
            "   terms: " + "; ".join(f"{c} {terms.get(c, '?')}" for c in codes.get(ident, ())),
        ])


def write_package(tables: dict[str, list[dict[str, str]]], ids: set[str], folder: Path
                  ) -> list[str]:
    """The sampled services and every row that hangs on them, as an HSDS 1.1 package of
    CSVs (no datapackage.json: the export's names its files without their data/ folder).
    Returns notes on what was changed or left out."""
    notes = []
    services = [dict(s) for s in tables["services"] if s["id"] in ids]
    if any(not s["status"] for s in services):
        notes.append("status: the export gives none; 'active' written for every service")
    for s in services:
        s["status"] = s["status"] or "active"
    sal = [r for r in tables.get("services_at_location", []) if r["service_id"] in ids]
    locations = {r["location_id"] for r in sal}
    orgs = {s["organization_id"] for s in services}

    def keep(row: dict[str, str]) -> bool:
        if row.get("service_id"):
            return row["service_id"] in ids
        if row.get("location_id"):
            return row["location_id"] in locations
        return bool(row.get("organization_id")) and row["organization_id"] in orgs

    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        if name == "services":
            kept = services
        elif name == "organizations":
            kept = [r for r in rows if r["id"] in orgs]
        elif name == "locations":
            kept = [r for r in rows if r["id"] in locations]
        elif name == "taxonomy":
            kept = rows
        elif name == "eligibility" and not any(r.get("service_id") for r in rows):
            notes.append(f"eligibility: left out; none of its {len(rows)} rows names a "
                         "service")
            continue
        else:
            kept = [r for r in rows if keep(r)]
        if not rows:
            continue
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(kept)
    return notes


# ------------------------------------------------------------------ labels


@dataclass(frozen=True)
class Label:
    service_id: str
    stratum: str
    needs: frozenset[str]
    gender: str  # women | men | "" (anyone)
    min_age: float | None
    max_age: float | None


def read_labels(path: Path = LABELS) -> list[Label]:
    rows = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    out = []
    for row in csv.DictReader(rows):
        out.append(Label(
            row["service_id"], row["stratum"],
            frozenset(n for n in row["needs"].split(";") if n), row["gender"],
            float(row["min_age"]) if row["min_age"] else None,
            float(row["max_age"]) if row["max_age"] else None))
    return out


# ------------------------------------------------------------------ measuring


@dataclass
class Figures:
    services: int = 0
    imported: int = 0
    untagged: int = 0  # sampled services the export gives no taxonomy term
    problems: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    per_need: dict[str, dict[str, float]] = field(default_factory=dict)
    tagged_need: dict[str, dict[str, float]] = field(default_factory=dict)  # with a term
    # per sample (its strata's prefix, see SAMPLES): how many services, and the figures
    sampled: dict[str, int] = field(default_factory=dict)
    sample_need: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # the development set, and the fresh sample without SEEN_BEFORE_DRAW: as for samples
    views: dict[str, int] = field(default_factory=dict)
    view_need: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    gender: dict[str, list[str]] = field(default_factory=dict)  # agreement -> ids
    ages: dict[str, list[str]] = field(default_factory=dict)
    wrong_gender: list[str] = field(default_factory=list)  # "id: limited to X, offered to Y"
    wrong_age: list[str] = field(default_factory=list)
    misses: dict[str, list[str]] = field(default_factory=dict)  # need -> "missed id" ...


def groups(min_age: float | None, max_age: float | None) -> str:
    """The age groups of the bundled flow a service with these limits is offered to (as
    matching filters: under 18 unless min_age >= 18, 18 and over unless max_age < 18)."""
    served = [g for g, ok in (("under_18", min_age is None or min_age < 18),
                              ("18_plus", max_age is None or max_age >= 18)) if ok]
    return " and ".join(served) or "nobody"


def _scores(offered: set[str], wanted: set[str]) -> dict[str, float]:
    hits = offered & wanted
    return {"labelled": len(wanted), "offered": len(offered), "right": len(hits),
            "precision": _ratio(len(hits), len(offered)),
            "recall": _ratio(len(hits), len(wanted))}


def _sample(label: Label) -> str:
    """The prefix of SAMPLES a label's stratum belongs to."""
    return _prefix(label.stratum)


def _ratio(a: int, b: int) -> float:
    return round(a / b, 3) if b else float("nan")


async def measure(tables: dict[str, list[dict[str, str]]], labels: Sequence[Label],
                  work: Path) -> Figures:
    from helpline.privacy import Vault
    from helpline.resources import Directory, import_directory
    from helpline.resources.matching import Criteria
    from helpline.resources.model import NEEDS
    from helpline.store import Store

    ids = {label.service_id for label in labels}
    figures = Figures(services=len(ids))
    figures.notes = write_package(tables, ids, work / "package")
    store = await Store.open(work / "helpline.db", Vault(SECRET))
    try:
        result = await import_directory(store, work / "package", NOW, skip_bad=True)
        figures.imported = result.services
        for problem in result.problems:
            key = f"{Path(problem.path).name}: {problem.message.split(chr(39))[0].strip()}"
            figures.problems[key] = figures.problems.get(key, 0) + 1
        directory = Directory(store)
        stored = {s.id: s for s in await directory.services()}
        by_id = {label.service_id: label for label in labels}
        needs = [n for n in NEEDS if n != "other"]
        codes = _codes(tables)
        tagged = {i for i in by_id if codes.get(i)}
        figures.untagged = len(by_id) - len(tagged)
        samples = {prefix: {i for i, label in by_id.items() if _sample(label) == prefix}
                   for prefix in SAMPLES}
        figures.sampled = {k: len(v) for k, v in samples.items() if v}
        views = {"development": set().union(*(samples[p] for p in DEVELOPMENT)),
                 "fresh-unseen": samples["fresh-"] - SEEN_BEFORE_DRAW,
                 "fifth-unseen": samples["fifth-"] - SEEN_BEFORE_FIFTH}
        figures.views = {k: len(v) for k, v in views.items() if v}
        # every service that fits, not the first RESULTS a person is shown
        every = len(ids) + 1
        for need in needs:
            offered = {m.service.id for m in (await directory.lookup(
                Criteria(needs=(need,)), NOW, limit=every)).matches}
            wanted = {i for i, label in by_id.items() if need in label.needs}
            figures.per_need[need] = _scores(offered, wanted)
            figures.tagged_need[need] = _scores(offered & tagged, wanted & tagged)
            for prefix, members in samples.items():
                if members:
                    figures.sample_need.setdefault(prefix, {})[need] = _scores(
                        offered & members, wanted & members)
            for view, members in views.items():
                if members:
                    figures.view_need.setdefault(view, {})[need] = _scores(
                        offered & members, wanted & members)
            figures.misses[need] = (
                [f"missed {i}{'' if i in tagged else ' (no term)'}"
                 for i in sorted(wanted - offered)]
                + [f"wrongly {i}" for i in sorted(offered - wanted)])
            for gender in GENDERS:
                found = (await directory.lookup(Criteria(needs=(need,), gender=gender),
                                                NOW, limit=every)).matches
                for match in found:
                    label = by_id.get(match.service.id)
                    if label and label.gender and label.gender != gender:
                        figures.wrong_gender.append(
                            f"{label.service_id} ({need}): for {label.gender} only, "
                            f"offered to {gender}")
            for group in AGE_GROUPS:
                found = (await directory.lookup(Criteria(needs=(need,), age_group=group),
                                                NOW, limit=every)).matches
                for match in found:
                    label = by_id.get(match.service.id)
                    if label is None:
                        continue
                    if (group == "under_18" and label.min_age is not None
                            and label.min_age >= 18) or (
                            group == "18_plus" and label.max_age is not None
                            and label.max_age < 18):
                        figures.wrong_age.append(f"{label.service_id} ({need}): "
                                                 f"offered to {group}")
        for label in labels:
            service = stored.get(label.service_id)
            if service is None:
                continue
            given = service.genders[0] if len(service.genders) == 1 else ""
            key = ("agree" if given == label.gender else
                   f"labelled {label.gender or 'anyone'}, given {given or 'anyone'}")
            figures.gender.setdefault(key, []).append(label.service_id)
            want = groups(label.min_age, label.max_age)
            got = groups(service.min_age, service.max_age)
            key = "agree" if want == got else f"labelled {want}, given {got}"
            figures.ages.setdefault(key, []).append(label.service_id)
    finally:
        await store.close()
    figures.wrong_gender = sorted(set(figures.wrong_gender))
    figures.wrong_age = sorted(set(figures.wrong_age))
    return figures


def _age(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _table(rows: dict[str, dict[str, float]]) -> list[str]:
    lines = [f"{'need':<14}{'labelled':>9}{'offered':>9}{'right':>7}{'precision':>11}"
             f"{'recall':>8}  target"]
    for need, f in rows.items():
        target = ""
        if need in TARGETS:
            met = f["precision"] >= MIN_PRECISION and f["recall"] >= MIN_RECALL
            target = f">= {MIN_PRECISION} / >= {MIN_RECALL}: {'met' if met else 'NOT met'}"
        lines.append(f"{need:<14}{f['labelled']:>9.0f}{f['offered']:>9.0f}{f['right']:>7.0f}"
                     f"{f['precision']:>11.3f}{f['recall']:>8.3f}  {target}")
    return lines


def _agreement(found: dict[str, list[str]], verbose: bool) -> str:
    parts = []
    for key, ids in sorted(found.items(), key=lambda kv: (kv[0] != "agree", kv[0])):
        shown = f" ({', '.join(ids)})" if verbose and key != "agree" else ""
        parts.append(f"{key} {len(ids)}{shown}")
    return "; ".join(parts)


def report(figures: Figures, verbose: bool) -> str:
    lines = [f"labelled services: {figures.services}; imported: {figures.imported}; "
             f"with no taxonomy term in the export: {figures.untagged}"]
    lines += [f"  note: {n}" for n in figures.notes]
    lines += [f"  import problem: {k} ({v})" for k, v in sorted(figures.problems.items())]
    lines += ["", "needs (a service is given a need when the lookup for it offers the "
              "service):", *_table(figures.per_need)]
    lines += ["", f"the same, over the {figures.services - figures.untagged} services the "
              "export gives at least one taxonomy term:", *_table(figures.tagged_need)]
    for prefix, count in figures.sampled.items():
        lines += ["", f"the same, over the {count} services of the {SAMPLES[prefix]} alone:",
                  *_table(figures.sample_need[prefix])]
    for view, count in figures.views.items():
        lines += ["", f"the same, over the {count} services of {VIEWS[view]}:",
                  *_table(figures.view_need[view])]
    lines.append("")
    lines.append("gender: " + _agreement(figures.gender, verbose))
    lines.append("age groups: " + _agreement(figures.ages, verbose))
    wrong = {w.split()[0] for w in figures.wrong_gender}
    lines.append(f"services limited to one gender, offered to another: {len(wrong)} "
                 f"(in {len(figures.wrong_gender)} lookups)")
    lines += [f"  {w}" for w in figures.wrong_gender]
    lines.append(f"services limited by age, offered to the other age group: "
                 f"{len({w.split()[0] for w in figures.wrong_age})} "
                 f"(in {len(figures.wrong_age)} lookups)")
    lines += [f"  {w}" for w in figures.wrong_age]
    if verbose:
        for need, misses in figures.misses.items():
            if misses:
                lines.append(f"{need}: " + ", ".join(misses))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True,
                        help="the export: the Miami Open211 HSDS 1.1 zip or folder, or with "
                             "--source dc the DC 211 CSV (211.csv)")
    parser.add_argument("--source", choices=EXPORTS, default="miami",
                        help="which export --export is (default: miami)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="the labels (default: the source's file in tests/data/quality/)")
    parser.add_argument("--draw", action="store_true", help="print the sample's ids")
    parser.add_argument("--records", action="store_true",
                        help="print each sampled record as a labeller reads it")
    parser.add_argument("--sample", default=None, metavar="PREFIX",
                        help="with --draw or --records: only the sample whose strata start "
                             "with PREFIX (fifth-, fresh-...)")
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    if args.source == "dc":
        from bench.dc211 import read_dc211
        tables = read_dc211(args.export)
    else:
        tables = read_export(args.export)
    if args.draw or args.records:
        sample = [(ident, stratum) for ident, stratum in draw(tables, args.source)
                  if args.sample is None or stratum.startswith(args.sample)]
        if args.draw:
            for ident, stratum in sample:
                print(f"{ident},{stratum}")
        else:
            for text in records(tables, [ident for ident, _ in sample]):
                print(text)
        return
    labels = read_labels(args.labels or LABEL_FILES[args.source])
    drawn = dict(draw(tables, args.source))
    # (a sample drawn and not labelled yet is left out: the samples before it still count)
    labelled = {_prefix(label.stratum) for label in labels}
    drawn = {ident: stratum for ident, stratum in drawn.items() if _prefix(stratum) in labelled}
    if {label.service_id: label.stratum for label in labels} != drawn:
        sys.exit("the labels are not for the services the draw picks from this export "
                 "(another export, or the draw changed)")
    with tempfile.TemporaryDirectory(prefix="helpline-quality-") as tmp:
        figures = asyncio.run(measure(tables, labels, Path(tmp)))
    print(report(figures, args.verbose))
    emit({"bench": "directory_quality", "export": args.source,
          "services": figures.services,
          "imported": figures.imported,
          **{f"{n}_{k}": v[k] for n, v in figures.per_need.items()
             for k in ("precision", "recall")},
          **{f"fresh_{n}_{k}": v[k] for n, v in figures.sample_need.get("fresh-", {}).items()
             if n in TARGETS for k in ("precision", "recall")},
          **{f"fifth_{n}_{k}": v[k] for n, v in figures.sample_need.get("fifth-", {}).items()
             if n in TARGETS for k in ("precision", "recall")},
          "wrong_gender": len(figures.wrong_gender), "wrong_age": len(figures.wrong_age)})


if __name__ == "__main__":
    main()
