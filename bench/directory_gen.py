"""A generated national directory as an HSDS 3.1 tabular datapackage (fictional throughout).

``python -m bench.directory_gen FOLDER [--services N] [--seed S]``

A realistic spread: 50 regions of 80 towns each (a third of the towns with two postcodes),
services clustered in the big towns, one location (address, coordinates) per service, a
phone, weekday hours, one to three taxonomy terms from AIRS-style codes and names (shelter,
legal, counselling, medical, food... and volunteering, which gives no need), target
populations for some (women, men, youth, older adults), languages, and an openings count
for one shelter in three. 2% of services work anywhere, 15% serve their whole region.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

REGIONS = 50
TOWNS_PER_REGION = 80
TERMS: list[tuple[str, str, str, float]] = [  # id, code, name, weight
    ("t-es", "BH-1800.8500", "Homeless Shelter", 6),
    ("t-dv", "BH-1800.1500", "Domestic Violence Shelters", 3),
    ("t-th", "BH-8600", "Transitional Housing/Shelter", 3),
    ("t-hs", "BH-3000.3550", "Housing Search Assistance", 4),
    ("t-lg", "FT-3000", "Legal Representation", 5),
    ("t-im", "FT-3600", "Immigration/Naturalization Legal Services", 2),
    ("t-mh", "RP-1400", "Outpatient Mental Health Facilities", 6),
    ("t-sg", "PN-8100", "Support Groups", 3),
    ("t-sa", "RX-8450", "Substance Use Disorder Treatment Programs", 4),
    ("t-md", "LN-1500", "Community Clinics", 7),
    ("t-fd", "BD-1800.2000", "Food Pantries", 10),
    ("t-ml", "BD-5000", "Meals", 5),
    ("t-id", "", "Birth Certificates", 1),
    ("t-em", "ND-6500", "Training and Employment Programs", 12),
    ("t-tx", "DT-8000", "Tax Preparation Assistance", 6),
    ("t-vo", "PX-8000.3000", "Homeless Shelter Volunteer Opportunities", 3),
    ("t-ds", "TH-2600", "Disaster Related Shelter Services", 1),
    ("t-ins", "LH-3000", "Health Insurance/Dental Coverage", 5),
]
POPULATIONS = [("p-w", "", "Women", 5), ("p-m", "", "Homeless Men", 3),
               ("p-y", "", "Youth", 4), ("p-o", "", "Older Adults", 4)]
LANGUAGES = [("es", "Spanish", 30), ("fr", "French", 5), ("ru", "Russian", 4),
             ("uk", "Ukrainian", 3), ("ar", "Arabic", 4), ("vi", "Vietnamese", 3),
             ("zh", "Chinese", 4)]
SYLLABLES = ["ash", "brook", "dale", "elm", "fen", "glen", "holm", "ley", "mere", "ness",
             "oak", "port", "ridge", "stow", "thorn", "wick", "worth", "bury", "field", "ford"]


def town_names(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """(town, region, postcodes)."""
    out = []
    used: set[str] = set()
    for r in range(REGIONS):
        region = f"{rng.choice(SYLLABLES).title()}{rng.choice(SYLLABLES)}shire {r}"
        for t in range(TOWNS_PER_REGION):
            name = ""
            while not name or name in used:  # 20 x 20 x 7 names; 4,000 are needed
                name = (rng.choice(["", "", "", "Saint ", "North ", "Upper ", "East "])
                        + f"{rng.choice(SYLLABLES).title()}{rng.choice(SYLLABLES)}"
                        + rng.choice(["", "", "", " Green", " Cross", " Bridge", " Vale"]))
            used.add(name)
            codes = [f"Z{r:02d} {t:02d}{c}" for c in ("A", "B")[:1 + (t % 3 == 0)]]
            out.append((name, region, codes))
    return out


def generate(folder: Path, services: int, seed: int = 17) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    towns = town_names(rng)
    weights = [1 / (1 + i % TOWNS_PER_REGION) for i in range(len(towns))]  # big towns first
    files = {name: (folder / f"{name}.csv").open("w", newline="", encoding="utf-8")
             for name in ("organizations", "services", "locations", "service_at_location",
                          "addresses", "phones", "schedules", "service_areas", "languages",
                          "attributes", "taxonomy_terms", "units", "service_capacity")}
    w = {name: csv.writer(handle) for name, handle in files.items()}
    w["organizations"].writerow(["id", "name"])
    w["services"].writerow(["id", "organization_id", "name", "description", "status",
                            "minimum_age", "maximum_age", "url", "email"])
    w["locations"].writerow(["id", "location_type", "name", "latitude", "longitude"])
    w["service_at_location"].writerow(["id", "service_id", "location_id"])
    w["addresses"].writerow(["id", "location_id", "address_1", "city", "region",
                             "state_province", "postal_code", "country", "address_type"])
    w["phones"].writerow(["id", "service_id", "number"])
    w["schedules"].writerow(["id", "service_id", "freq", "byday", "opens_at", "closes_at"])
    w["service_areas"].writerow(["id", "service_id", "name"])
    w["languages"].writerow(["id", "service_id", "code", "name"])
    w["attributes"].writerow(["id", "link_id", "link_entity", "taxonomy_term_id", "value"])
    w["taxonomy_terms"].writerow(["id", "code", "name"])
    w["units"].writerow(["id", "name"])
    w["service_capacity"].writerow(["id", "service_id", "unit_id", "available", "maximum",
                                    "updated"])
    w["units"].writerow(["u-bed", "Bed"])
    for ident, code, name, _ in TERMS + POPULATIONS:
        w["taxonomy_terms"].writerow([ident, code, name])
    term_weights = [t[3] for t in TERMS]
    for n in range(services):
        sid = f"svc-{n:06d}"
        org = f"org-{n // 3:06d}"
        if n % 3 == 0:
            w["organizations"].writerow([org, f"Organisation {n // 3}"])
        town, region, codes = rng.choices(towns, weights)[0]
        terms = rng.choices(TERMS, term_weights, k=rng.choice((1, 1, 2, 3)))
        low = high = ""
        if rng.random() < 0.08:
            low = "18"
        elif rng.random() < 0.05:
            high = "17"
        w["services"].writerow([sid, org, f"{town} {terms[0][2]} {n}", "A generated "
                                "service (fictional).", "active" if rng.random() < 0.97
                                else "inactive", low, high, f"https://svc{n}.example.org", ""])
        loc = f"loc-{n:06d}"
        lat, lon = 50 + rng.random() * 8, -5 + rng.random() * 7
        w["locations"].writerow([loc, "physical", town, f"{lat:.5f}", f"{lon:.5f}"])
        w["service_at_location"].writerow([f"sal-{n:06d}", sid, loc])
        w["addresses"].writerow([f"adr-{n:06d}", loc, f"{n % 200 + 1} High Street", town,
                                 "", region, rng.choice(codes), "GB", "physical"])
        w["phones"].writerow([f"ph-{n:06d}", sid, f"555-{n % 10000:04d}"])
        w["schedules"].writerow([f"sch-{n:06d}", sid, "WEEKLY", "MO,TU,WE,TH,FR", "09:00",
                                 "17:00"])
        roll = rng.random()
        if roll < 0.02:
            w["service_areas"].writerow([f"sa-{n:06d}", sid, "anywhere"])
        elif roll < 0.17:
            w["service_areas"].writerow([f"sa-{n:06d}", sid, region])
        for k, term in enumerate(dict.fromkeys(terms)):
            w["attributes"].writerow([f"at-{n:06d}-{k}", sid, "service", term[0], ""])
        if rng.random() < 0.12:
            pop = rng.choices(POPULATIONS, [p[3] for p in POPULATIONS])[0]
            w["attributes"].writerow([f"at-{n:06d}-p", sid, "service", pop[0], ""])
        for k, (code, name, weight) in enumerate(LANGUAGES):
            if rng.random() < weight / 100:
                w["languages"].writerow([f"lg-{n:06d}-{k}", sid, code, name])
        if terms[0][1].startswith("BH-1800") and rng.random() < 0.33:
            maximum = rng.randint(4, 40)
            hours = rng.random() * 120
            w["service_capacity"].writerow([
                f"cap-{n:06d}", sid, "u-bed", rng.randint(0, maximum), maximum,
                f"2027-01-{14 - int(hours // 24):02d}T{int(23 - hours % 24):02d}:00:00Z"])
    for handle in files.values():
        handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--services", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    generate(args.folder, args.services, args.seed)


if __name__ == "__main__":
    main()
