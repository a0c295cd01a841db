"""A service's own words (helpline/resources/words.py and the name, text, says, unless and
not rows of data/taxonomy-map.csv): needs and who a service is for, from its name and
description, with guards and a precedence a keeper can predict.

The phrases are real ones of the Miami Open211 export's first labelled sample (see
tests/data/quality/), each read wrongly before its rule, unless marked "stays"."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline.privacy import Vault
from helpline.resources import Directory, import_directory
from helpline.resources.matching import Criteria
from helpline.resources.taxonomy import Meaning, TaxonomyMap
from helpline.resources.words import clauses, first_sentence, read
from helpline.store import Store
from tests.conftest import SECRET

NOW = 1_800_000_000.0




def _terms(rules: TaxonomyMap, *terms: tuple[str, str]) -> Meaning:
    meaning = Meaning()
    for code, name in terms:
        meaning |= rules.meaning(code, name)
    return meaning


@pytest.mark.parametrize(("name", "description", "terms", "needs"), [
    # name: a record with no term says what it is in its name
    ("DADE LEGAL AID", "Dade Legal Aid provides free quality legal services", (), {"legal"}),
    ("LEGAL AID SERVICE OF COLLIER COUNTY, INC.", "", (), {"legal"}),
    ("MIAMI RESCUE MISSION, INC.", "", (), {"shelter"}),
    ("GAMBLERS ANONYMOUS INTERNATIONAL SERVICE OFFICE, INC.", "", (), {"counselling"}),
    ("MOVING BEYOND DEPRESSION", "", (("RX-8450.7900", "Smoking Cessation"),
                                      ("LJ-5000.6600", "Prenatal Care")),
     {"counselling", "medical"}),  # the name adds to the terms' needs
    # text: the description, when the terms and the name give no need
    ("MIAMI BRIDGE YOUTH AND FAMILY SERVICES, INC.",
     "Provides 24-hour emergency shelter for runaway, abused, and homeless youth.", (),
     {"shelter"}),
    ("CHILD OUTPATIENT SERVICES",
     "Provides comprehensive mental health services to children.", (), {"counselling"}),
    ("COMPREHENSIVE PSYCHIATRIC CENTER, INC.",
     "This outpatient drug treatment facility treats opiate addictions and provides "
     "methadone, methadone maintenance, detoxification, counseling and urinalysis.", (),
     {"substance_use"}),  # "counseling" alone, in a list, is no rule
    ("COMMUNITY RE-ENTRY", "For those participating in community re-entry, clothing for men "
     "and women coming from prison for job interviews, offer transitional housing, aftercare "
     "support groups, and adult mentoring program.",
     (("FF-1900", "Ex-Offender Reentry Programs"),), {"shelter", "counselling"}),
    ("MIAMI BEACH", "JCS' Behavioral Health Services has resources to support children, "
     "adolescents, adults and seniors", (), {"counselling"}),
    # text is not read when the terms give a need (stays): a list of what else an agency
    # does is no reason to offer it for food
    ("HIALEAH", "Free confidential HIV counseling and testing. Food vouchers.",
     (("LF-4900.2400", "HIV Testing"),), {"medical"}),
    # says: protection orders count whatever the terms say
    ("LAW ENFORCEMENT BASED VICTIM ADVOCATE", "criminal justice support for all stages, "
     "crimes compensation application assistance, legal advocacy: Injunction assistance",
     (("RP-1500.3300", "In Person Crisis Intervention"),), {"counselling", "legal"}),
    ("VICTIM WITNESS UNIT", "Assistance is provided with filing victim compensation claims, "
     "making shelter referrals, assisting with orders of protection, crisis intervention, "
     "and information and referral to other supportive agencies.",
     (("RP-1500.3300", "In Person Crisis Intervention"),), {"counselling", "legal"}),
    # not: what a record says it is not outweighs its terms
    ("M.U.J.E.R., INC.", "individual and family counseling, crisis intervention and victim "
     "advocacy. **Not a shelter**",
     (("BH-1800.1500-100", "Domestic Violence Shelters"), ("RF-3300", "Individual Counseling")),
     {"counselling"}),
    # unless: clauses about somewhere else, a requirement, or case management's links;
    # the reading of descriptions is new, so these were not wrong before it: each is wrong
    # without its unless row (or, below, without the term's code row saying "none")
    ("M.U.J.E.R., INC.", "Aid is also provided for food vouchers, referrals to emergency "
     "shelter, rental and utility assistance", (), set()),
    ("TARGETED CASE MANAGEMENT", "Staff help coordinate services such as: * Linking with "
     "Medical, psychiatric, and substance abuse services. * Advocating for immigration, legal "
     "services, financial services, transportation.", (("PH-1000", "Case/Care Management"),),
     set()),
    ("CHILDREN'S HOMELESS INTERVENTION PROJECT FOR STUDENTS", "even if they are missing "
     "records and documents normally required for enrollment, such as birth certificates",
     (), set()),
    ("PROJECT LIGHTHOUSE", "The staff help runaway, homeless and at-risk street youth, many of "
     "whom have traveled throughout the country, locate appropriate and available services "
     "such as food and medical care", (), set()),
    # a term's code row that says "no need" is not overruled by the words
    ("CANCER SUPPORT GROUP", "Support group for cancer survivors and their friends",
     (("PN-8100.3000", "Health/Disability Related Support Groups"),), set()),
    ("PERMANENT SUPPORTIVE HOUSING", "additional individualized support services such as case "
     "management, psychiatric treatment, and primary care services.",
     (("BH-8400.6000-840", "Supported Living Services for Adults With Disabilities"),), set()),
    # the longest phrase wins: a legal clinic is not a health clinic, nor a tax clinic
    ("Bayside Legal Clinic", "", (), {"legal"}),
    ("LOW INCOME TAXPAYERS CLINIC", "", (), set()),
    # found when the rules were run over the export's unlabelled records: animals, a court's
    # clinic, doctors' association, money "counseling", a degree, words used loosely
    ("COLLIER SPAY NEUTER CLINIC, INC.", "", (), set()),
    ("SMALL CLAIMS COURT CLINIC", "", (("FT-8100", "Small Claims Advisory Programs"),),
     {"legal"}),
    ("THE DADE COUNTY MEDICAL ASSOCIATION, INC.", "", (), set()),
    ("FINANCIAL COUNSELING ASSOCIATION OF AMERICA", "", (), set()),
    ("CARLOS ALBIZU UNIVERSITY (MIAMI CAMPUS)", "Master of Science degree in psychology with "
     "concentration in mental health counseling", (), set()),
    ("SUCCESS THROUGH ARTS READING AND SOCIALIZATION", "It also offers parent and children "
     "refuge from the troubles of out of school hours", (), set()),
    ("BUILDING BOOK NOOKS FOR KIDS", "preschool and after school programs, day care centers, "
     "shelters for abused children, youth organizations", (), set()),
    # whole words: "law" of "law enforcement", "lawyers" of a lawyers' programme (stays)
    ("FLORIDA LAWYERS ASSISTANCE, INC.", "", (("PH-2000", "Employee Assistance Programs"),),
     {"counselling"}),  # no legal; the counselling is the PH-2000 row of the third round
    # third round (from all 337 labelled services; phrases of our own, of the real shape):
    # a clause about changing laws is not legal help
    ("DADS TOGETHER", "Classes for new fathers. Legal advocacy is open to fathers who want to "
     "work on legislative issues about schools.", (("PH-6100.1800-650", "New Dad Classes"),),
     set()),
    # a mission to provide shelter is a shelter
    ("HARBOUR HOMELESS LEAGUE", "Our mission is to provide shelter and case management to "
     "homeless adults in the city.", (), {"shelter"}),
    ("HARBOUR HOMELESS LEAGUE", "We give referrals to agencies that provide shelter.", (),
     set()),  # stays
    # child protective services arrange a placement; they are not a shelter a person asks for
    ("CHILD PROTECTION UNIT", "Investigates reports of abuse. Temporary emergency shelter at a "
     "local shelter is arranged for children removed from home.",
     (("PH-6500.1500-140", "Child Abuse Reporting"),), set()),

    # fourth round (from all 528 labelled services; phrases of our own, of the real shape):
    # a need from the name does not keep the description out
    ("HARBOUR WOMEN'S SHELTER", "Provides emergency shelter, child counseling and legal "
     "services (court advocacy and immigration).", (), {"shelter", "counselling", "legal"}),
    ("LEGAL AID OF EASTMOOR", "Staff attorneys handle family law, housing law and "
     "immigration law.", (), {"legal", "immigration"}),
    ("EASTMOOR MENTAL HEALTH CENTER", "Offers adult mental health and substance abuse "
     "treatment, and individual therapy.", (), {"counselling", "substance_use"}),
    # the terms' needs still keep it out (stays)
    ("HARBOUR WOMEN'S SHELTER", "Also provides legal services.",
     (("BH-1800.1500-100", "Domestic Violence Shelters"),), {"shelter"}),
    # meals brought home or eaten together are food; hospitals' acute care is care
    ("EASTMOOR AGING NETWORK", "Offers congregate and home delivered meals, recreation and "
     "transportation for seniors.", (), {"food"}),
    ("EASTMOOR HEALTH", "A public health care system of three acute care hospitals.", (),
     {"medical"}),
    ("EASTMOOR CARE", "A non-profit healthcare provider for people of all ages.", (),
     {"medical"}),
    # counselling of a kind named in a description with no term
    ("EASTMOOR HOSPICE", "Nurses visit at home. Families are offered grief counseling.", (),
     {"counselling"}),
    ("EASTMOOR FAMILY AGENCY", "Offers adult and youth counseling in English and Spanish.",
     (), {"counselling"}),
    # being sent elsewhere or having care arranged is not the care itself; a pet's care is
    # for the pet (each wrong without its unless or never row)
    ("WAIVER CASE MANAGEMENT", "If eligible, clients may be referred for primary care, "
     "nursing care and hot meals.", (("PH-1000", "Case/Care Management"),), set()),
    ("LONG TERM CARE", "Arranges medical care and hot meals at home.",
     (("PH-1000.4500", "Long Term Case/Care Management"),), set()),
    ("PET CARE FUND", "Pays veterinarians for the emergency care of your pet.", (), set()),
    # a record filed under a shelter code that says it is a long stay or a rented home
    # (the DC sample; phrases of our own, of the real shape): not a place to stay tonight
    ("HARBOUR FAMILY HOUSING", "Operates a two-year transitional housing program for "
     "homeless families.", (("BH-8600", "Transitional Housing/Shelter"),), set()),
    ("EASTMOOR HOMES", "Families pay 30% of their income toward rent in an apartment.",
     (("BH-1800.8500", "Homeless Shelter"),), set()),
    ("HARBOUR HOUSE", "Women in recovery can rent a room for up to two years.",
     (("BH-8600", "Transitional Housing/Shelter"),), set()),
    ("HARBOUR FAMILY SHELTER", "Provides emergency shelter for homeless families for up to "
     "90 days.", (("BH-8600", "Transitional Housing/Shelter"),), {"shelter"}),  # stays
])
def test_needs_from_a_services_own_words(bundled: TaxonomyMap, name: str, description: str,
                                         terms: tuple[tuple[str, str], ...],
                                         needs: set[str]) -> None:
    assert set(read(bundled, name, description, _terms(bundled, *terms)).needs) == needs


@pytest.mark.parametrize(("name", "description", "terms", "limits"), [
    # the first sentence says whom the service is for, when the terms name no gender
    ("FAMILY WELLNESS PROGRAM", "Provides breast screenings and cervical cancer education and "
     "referrals to uninsured and under-insured women living in Miami Dade and South Broward "
     "counties. Also provides education on breast, cervical and colorectal cancer.",
     (("LF-4900.1500-650", "Pap Tests"),), (("women",), None, None)),
    # both named: no limit (stays)
    ("GAMBLERS ANONYMOUS INTERNATIONAL SERVICE OFFICE, INC.", "Gamblers Anonymous is a "
     "fellowship of men and women who share their experience", (), ((), None, None)),
    ("Boys and Girls Club of Eastmoor", "", (), ((), None, None)),
    # a later sentence about one part of the service does not limit the whole (stays)
    ("INDEPENDENCE CAY, INC.", "Independence Cay is an agency that serves the homeless in "
     "Marathon. The homeless are welcome for a hot lunch, showers, and laundry. Also operates "
     "a transitional housing for men.", (), ((), None, None)),
    # the terms' gender wins over the words (stays): a class for expectant fathers at a
    # hospital's centre for women and children
    ("DADDY DUTIES 101", "The Center for Women and Children at South Miami Hospital offers a "
     "variety of informative classes to expectant parents.",
     (("YK-6500.1800", "Expectant Fathers"),), (("men",), None, None)),
    # ages, when the terms give none
    ("MIAMI BRIDGE YOUTH AND FAMILY SERVICES, INC.",
     "Provides 24-hour emergency shelter for runaway, abused, and homeless youth.", (),
     ((), None, 17.0)),
    # who: parents and families are mothers and fathers; women's health care and WIC in a
    # list of services limit no one (records of the export outside the labelled samples,
    # found when the first-sentence rule was checked against the whole export)
    ("BABY SIGNS", "The Center for Women and Children at South Miami Hospital offers a "
     "variety of informative classes to expectant parents.", (), ((), None, None)),
    ("PARENTS, FAMILIES AND FRIENDS OF LESBIANS AND GAYS, INC.", "", (), ((), None, None)),
    ("MARATHON HEALTH CENTER", "This primary care center offers primary care, dental care, "
     "OB/GYN, women's services, pharmacy and pediatrics.", (), ((), None, None)),
    ("NEW LIFE MEDICAL INSTITUTE, INC.", "New Life Medical Institute offers well visits, well "
     "women exams, mental health services.", (), ((), None, None)),
    ("FLORIDA DEPARTMENT OF HEALTH IN COLLIER COUNTY", "Birth & Death Certificates Dental "
     "Clinic WIC (Women, Infant & Children) Nutrition Program.", (), ((), None, None)),
    ("PROJECT PHOENIX", "Residential treatment program for adult females (18 years old) who are "
     "victims of commercial sexual exploitation.", (), (("women",), None, None)),  # stays
    # a volunteers' clause says nothing of who is served
    ("MENTORING", "Mentoring Brothers: Recruiting for Black male volunteers.", (),
     ((), None, None)),
])
def test_who_a_service_is_for_from_its_own_words(
        bundled: TaxonomyMap, name: str, description: str,
        terms: tuple[tuple[str, str], ...], limits: tuple[object, ...]) -> None:
    assert read(bundled, name, description, _terms(bundled, *terms)).limits() == limits


def test_clauses_and_first_sentence() -> None:
    assert clauses("legal advocacy: Injunction assistance (by referral)\\nWalk-ins") == [
        "legal advocacy", "injunction assistance", "by referral", "walk ins"]
    assert clauses("Housing/Shelter") == ["housing shelter"]
    assert first_sentence("**Walk-ins** Provides meals. Also beds.") == [
        "walk ins", "provides meals"]
    assert first_sentence("Serves women 18+. Men: call us") == ["serves women 18"]
    assert first_sentence("Beds\\nMeals for all") == ["beds"]
    assert first_sentence(None) == []


def test_exactly_named_needs_keep_the_description_out(bundled: TaxonomyMap) -> None:
    # an HSDS attribute naming a need is the publisher's word: no text is read beside it
    assert read(bundled, "Drop-in", "hot meals and emergency shelter", Meaning(),
                named=True).needs == frozenset()
    assert read(bundled, "Drop-in", "hot meals and emergency shelter", Meaning()).needs == {
        "food", "shelter"}


def test_an_admin_adds_own_words_rows_and_bad_ones_are_named(tmp_path: Path) -> None:
    extra = tmp_path / "ours.csv"
    extra.write_text("kind,match,gives,note\n"
                     "name,casa,need:shelter,our shelters are called Casa\n"
                     "text,legal clinic,need:legal,\n"
                     "unless,waiting list,,\n"
                     "not,no walk ins,need:food,\n")
    ours, problems = TaxonomyMap.load([extra])
    assert problems == []
    assert read(ours, "Casa Esperanza", "", Meaning()).needs == {"shelter"}
    assert read(ours, "Eastmoor", "A weekly legal clinic", Meaning()).needs == {"legal"}
    assert read(ours, "Eastmoor", "A legal clinic with a waiting list", Meaning()
                ).needs == frozenset()
    assert read(ours, "Eastmoor Food Bank", "No walk-ins", Meaning()).needs == frozenset()
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,match,gives\nnot,not a clinic,gender:women\nnot,no beds,none\n")
    _, problems = TaxonomyMap.load([bad])
    assert [str(p) for p in problems] == [
        f"{bad}:2: a not row takes needs away and gives nothing else; give need:NAME (one "
        "or more)",
        f"{bad}:3: a not row takes needs away and gives nothing else; give need:NAME (one "
        "or more)"]


def _write(folder: Path, name: str, header: str, *rows: str) -> None:
    (folder / f"{name}.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


async def test_the_import_reads_a_services_own_words(tmp_path: Path) -> None:
    """Through the real importer and lookups: a legal aid society with no term is offered
    for legal; a women's screening programme whose terms say nothing of women is not offered
    to a man; a shelter that says it is not one is not offered for shelter."""
    package = tmp_path / "package"
    package.mkdir()
    _write(package, "organizations", "id,name", "1,Eastmoor Trust")
    _write(package, "services", "id,organization_id,name,description,status",
           "1,1,Eastmoor Legal Aid,Free legal representation in family law,active",
           "2,1,Wellness Programme,Provides breast screenings to uninsured women. "
           "Also education for families.,active",
           "3,1,Harbour Project,Individual counseling for survivors. **Not a shelter**,active",
           "4,1,Harbour Beds,Beds for the night,active")
    _write(package, "taxonomy", "id,name,parent_id,parent_name,vocabulary",
           "LF-4900.1500-650,Pap Tests,L,Health Care,AIRS",
           "BH-1800.1500-100,Domestic Violence Shelters,B,Basic Needs,AIRS",
           "BH-1800.8500,Homeless Shelter,B,Basic Needs,AIRS")
    _write(package, "services_taxonomy", "id,service_id,taxonomy_id",
           "1,2,LF-4900.1500-650", "2,3,BH-1800.1500-100", "3,4,BH-1800.8500")
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        result = await import_directory(store, package, NOW)
        assert result.applied and result.services == 4, result.problems
        directory = Directory(store)

        async def offered(need: str, gender: str = "") -> list[str]:
            found = await directory.lookup(Criteria(needs=(need,), gender=gender), NOW)
            return sorted(m.service.id for m in found.matches)

        assert await offered("legal") == ["1"]
        assert await offered("medical", "women") == ["2"]
        assert await offered("medical", "men") == []
        assert await offered("medical", "nonbinary") == []
        assert await offered("shelter") == ["4"]
        stored = {s.id: s for s in await directory.services()}
        assert stored["2"].genders == ("women",)
        assert stored["3"].needs == ("counselling",)
    finally:
        await store.close()
