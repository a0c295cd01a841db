"""Check HSDS tables row by row and build service records from the good rows.

A row with a problem is reported as ``file:line: what is wrong; how to fix`` and left out,
with everything that hangs on it (a service's phones go with the service). Only problems
with a cause of their own are reported, so one bad service gives one line, not ten.

HSDS has no fields for some things the bot matches on; they come from ``attributes`` that
link a service (or location) to a taxonomy term whose ``code`` (or ``name``) is:

* a need: ``shelter``, ``legal``, ``medical``, ``counselling``, ``immigration``,
  ``substance_use``, ``food``, ``documents``, ``other``; a term of another taxonomy (AIRS /
  211 codes, or words in its name, like "Emergency Shelter" or "Homeless Men") means what
  ``data/taxonomy-map.csv`` says (see ``taxonomy.py``); a service with no need is listed
  under ``other``;
* ``gender``, with the attribute ``value`` listing who it serves: ``women``, ``men``,
  ``nonbinary`` (comma-separated);
* ``free``: the service costs nothing;
* ``confidential`` on a location: its address is never stored or shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from helpline.resources import values
from helpline.resources.ages import stated_ages
from helpline.resources.hsds_read import Row, Tables
from helpline.resources.model import (
    STATUSES,
    Capacity,
    DirectoryData,
    Hours,
    LanguageTag,
    Location,
    Phone,
    Problem,
    Service,
)
from helpline.resources.taxonomy import NOTHING, Meaning, TaxonomyMap, bundled, looks_like_code
from helpline.resources.words import read as own_words

Issues = list[tuple[str, str]]
T = TypeVar("T")
LOCATION_TYPES = ("physical", "postal", "virtual")


@dataclass
class _Index:
    good: dict[str, Row] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)

    def __contains__(self, ident: object) -> bool:
        return ident in self.good or ident in self.bad


@dataclass
class _Extras:
    """What attributes and child tables add to one service."""

    needs: set[str] = field(default_factory=set)
    genders: set[str] = field(default_factory=set)
    free: bool | None = None  # from a 'free' attribute
    amounts: list[float] = field(default_factory=list)  # from cost options
    fees: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    languages: list[LanguageTag] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)
    hours: list[Hours] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    meaning: Meaning = NOTHING  # what its taxonomy terms and eligibility say
    min_age: float | None = None  # from an eligibility row (HSDS 2.0)
    max_age: float | None = None
    stated: list[str] = field(default_factory=list)  # eligibility texts (HSDS 1.1 / 2.0)


_CHAINS = "chains of places"  # (not a table's name: the key of Builder._chains in shared)
_JOINS = "meanings joined"  # (the key of Builder._joins in shared)
JOINS_KEPT = 2048  # pairs of meanings joined kept at once, at most (a kilobyte or so each)
# A count stamped this far ahead of the import's clock is refused (clocks differ a little).
FUTURE_SLACK_SECONDS = 600


class Builder:
    def __init__(self, tables: Tables, now: float | None = None,
                 taxonomy: TaxonomyMap | None = None,
                 shared: dict[str, Any] | None = None) -> None:
        self.t = tables
        self.now = now
        self.taxonomy = taxonomy or bundled()
        # The small tables' indexes, checked once for every slice of a spilled package
        # (their problems are said by the first slice), and the chains of places noted
        # by the slices built before (in the order of the slices: what a later slice
        # would note of them is in the directory's places already).
        self.shared = shared
        self.problems: list[Problem] = list(tables.problems)
        self.bad_rows = len(tables.problems)
        self.places: dict[str, list[str]] = {}
        self._addresses: dict[str, list[Row]] | None = None
        self._chains: set[tuple[str, ...]] = (  # the chains of places noted already
            set() if shared is None else shared.setdefault(_CHAINS, set()))
        self._joins: dict[tuple[int, int], tuple[Meaning, Meaning, Meaning]] = (
            {} if shared is None else shared.setdefault(_JOINS, {}))

    # ------------------------------------------------------------- helpers

    def _report(self, row: Row, issues: Issues) -> bool:
        """Record the row's problems; True when it is good. An issue with no message marks a
        row that goes with a bad row reported elsewhere (it is left out, not reported)."""
        loud = [(message, fix) for message, fix in issues if message]
        for message, fix in loud:
            self.problems.append(Problem(row.file, row.line, message, fix))
        if loud:
            self.bad_rows += 1
        return not issues

    def _index(self, table: str, check: Callable[[Row, Issues], None] | None = None) -> _Index:
        index = _Index()
        first: dict[str, Row] = {}
        for row in self.t[table]:
            issues: Issues = []
            ident = row.get("id")
            if not ident:
                issues.append(("id is missing", "give every row a unique id"))
            elif ident in first:
                other = first[ident]
                issues.append((f"id '{ident}' is used twice (also at line {other.line})",
                               "give each row its own id, or remove the repeat"))
            elif (at := self.t.firsts.get((table, ident))) not in (None, (row.file, row.line)):
                assert at is not None  # its first row is in another slice
                issues.append((f"id '{ident}' is used twice (also at line {at[1]})",
                               "give each row its own id, or remove the repeat"))
            else:
                first[ident] = row
            if check is not None:
                check(row, issues)
            if self._report(row, issues):
                index.good[ident] = row
            elif ident and ident not in index.good:
                index.bad.add(ident)
        return index

    def _value(self, issues: Issues, parse: Callable[..., T], *args: Any) -> T | None:
        try:
            return parse(*args)
        except values.Bad as bad:
            issues.append((bad.message, bad.fix))
            return None

    def _ref(self, row: Row, column: str, table: str, index: _Index, issues: Issues
             ) -> Row | bool | None:
        """The referenced row; None if not given; False if it is bad (reported elsewhere,
        or here when it does not exist)."""
        ident = row.get(column)
        if not ident:
            return None
        if ident in index.good:
            return index.good[ident]
        if ident not in index.bad:
            issues.append((f"{column} '{ident}' is not in {_short(self.t.file(table))}",
                           f"fix the id, or add that row to {_short(self.t.file(table))}"))
        return False

    def _joined(self, first: Meaning, then: Meaning) -> Meaning:
        """``first | then``, worked out once for each pair: the taxonomy map gives one
        Meaning a term, so a national directory's services join the same few pairs
        again and again (each join a new Meaning of four sets)."""
        key = (id(first), id(then))
        known = self._joins.get(key)
        if known is None:  # (both kept with it: their ids stay theirs)
            if len(self._joins) >= JOINS_KEPT:  # (a national directory has 10,000 or so)
                self._joins.clear()
            known = self._joins[key] = (first, then, first | then)
        return known[2]

    # ------------------------------------------------------------- build

    def _once(self, table: str, check: Callable[[Row, Issues], None] | None = None
              ) -> _Index:
        if self.shared is not None and table in self.shared:
            known: _Index = self.shared[table]
            return known
        index = self._index(table, check)
        if self.shared is not None:
            self.shared[table] = index
        return index

    def build(self) -> DirectoryData:
        orgs = self._once("organization")
        units = self._once("unit", lambda r, i: None if r.get("name") else i.append(
            ("the unit has no name", "name it, like Bed or Appointment")))
        terms = self._once("taxonomy_term")
        locations = self._index("location", self._check_location)
        services = self._index("service", lambda r, i: self._check_service(r, i, orgs))
        extras = {ident: _Extras() for ident in services.good}
        sals = self._index("service_at_location",
                           lambda r, i: self._check_sal(r, i, services, locations))
        at_location: dict[str, list[str]] = {}
        for sal in sals.good.values():
            at_location.setdefault(sal.get("location_id"), []).append(sal.get("service_id"))
            extras[sal.get("service_id")].locations.append(sal.get("location_id"))
        confidential = self._attributes(terms, extras)
        self._eligibility(services, extras)
        links = _Links(self, services, sals, locations, at_location)
        self._children(links, extras, services)
        capacities = self._capacities(services, units)
        built = [self._service(row, extras[ident], orgs, locations, confidential)
                 for ident, row in services.good.items()]
        version = f"hsds {self.t.version}" if self.t.version else "hsds"
        return DirectoryData(built, capacities, self.places, self.problems, version,
                             bad_rows=self.bad_rows, notes=list(self.t.notes), origins={
                                 ident: (row.file, row.line)
                                 for ident, row in services.good.items()})

    # ------------------------------------------------------------- checks

    def _check_location(self, row: Row, issues: Issues) -> None:
        kind = row.get("location_type").lower()
        if kind not in LOCATION_TYPES:
            issues.append((f"location_type '{kind}' is not physical, postal or virtual"
                           if kind else "location_type is missing",
                           "use physical, postal or virtual (mark confidential places with a "
                           "'confidential' attribute, not here)"))

    def _check_service(self, row: Row, issues: Issues, orgs: _Index) -> None:
        if not row.get("name"):
            issues.append(("name is missing", "give the service its public name"))
        status = row.get("status").lower()
        if status not in STATUSES:
            issues.append((f"status '{status}' is not an HSDS status" if status
                           else "status is missing",
                           "use one of: " + ", ".join(STATUSES)))
        low = self._value(issues, values.number, "minimum_age", row.get("minimum_age"))
        high = self._value(issues, values.number, "maximum_age", row.get("maximum_age"))
        if low is not None and high is not None and low > high:
            issues.append((f"minimum_age ({row.get('minimum_age')}) is above maximum_age "
                           f"({row.get('maximum_age')})", "swap them or correct one"))
        if self.t["organization"]:
            self._ref(row, "organization_id", "organization", orgs, issues)

    def _check_sal(self, row: Row, issues: Issues, services: _Index, locations: _Index
                   ) -> None:
        service = self._ref(row, "service_id", "service", services, issues)
        location = self._ref(row, "location_id", "location", locations, issues)
        if service is None or location is None:
            issues.append(("service_id and location_id are both needed",
                           "link one service to one location in each row"))
        elif service is False or location is False:
            issues.append(("", ""))  # goes with its service or location; not reported

    # ------------------------------------------------------------- attributes

    def _attributes(self, terms: _Index, extras: dict[str, _Extras]) -> set[str]:
        confidential: set[str] = set()
        for row in self.t["attribute"]:
            issues: Issues = []
            term = self._ref(row, "taxonomy_term_id", "taxonomy_term", terms, issues)
            if not isinstance(term, Row):
                self._report(row, issues)
                continue
            code = term.get("code")
            if not code and looks_like_code(term.get("id")):  # HSDS 1.1: the id is the code
                code = term.get("id")
            meaning = values.code(code or term.get("name"))
            target = row.get("link_id")
            if meaning == "confidential":
                confidential.add(target)
                continue
            extra = extras.get(target)
            if extra is None:
                continue
            if meaning == "gender":
                for part in row.get("value").split(","):
                    if part.strip():
                        found = self._value(issues, values.gender, part)
                        if found:
                            extra.genders.add(found)
            elif meaning == "free":
                extra.free = True
            else:  # a need named exactly, or what the mapping table makes of the term
                try:
                    extra.needs.add(values.need(meaning))
                except values.Bad:
                    found_meaning = self.taxonomy.meaning(code, term.get("name"))
                    if extra.meaning is NOTHING:  # the first term: nothing to combine with
                        extra.meaning = found_meaning
                    elif found_meaning is not NOTHING:
                        extra.meaning = self._joined(extra.meaning, found_meaning)
            self._report(row, issues)
        return confidential

    def _eligibility(self, services: _Index, extras: dict[str, _Extras]) -> None:
        """HSDS 1.1 / 2.0 ``eligibility`` rows: who a service is for, as terms ("Homeless
        Men; Youth") and, in 2.0, ages."""
        for row in self.t["eligibility"]:
            issues: Issues = []
            service = self._ref(row, "service_id", "service", services, issues)
            low = self._value(issues, values.number, "minimum_age", row.get("minimum_age"))
            high = self._value(issues, values.number, "maximum_age", row.get("maximum_age"))
            if not self._report(row, issues) or not isinstance(service, Row):
                continue
            extra = extras[service.get("id")]
            extra.stated.append(row.get("eligibility"))
            for term in row.get("eligibility").replace(";", ",").split(","):
                if term.strip():
                    found = self.taxonomy.meaning("", term)
                    extra.meaning |= Meaning(genders=found.genders, min_ages=found.min_ages,
                                             max_ages=found.max_ages,
                                             serves_adults=found.serves_adults,
                                             serves_minors=found.serves_minors)
            extra.min_age = low if low is not None else extra.min_age
            extra.max_age = high if high is not None else extra.max_age

    # ------------------------------------------------------------- child tables

    def _children(self, links: _Links, extras: dict[str, _Extras], services: _Index) -> None:
        for table, parse in _CHILDREN.items():
            for row in self.t[table]:
                issues: Issues = []
                targets = links.targets(row, issues)
                item = None if issues else self._value(issues, parse, row)
                if not self._report(row, issues) or item is None:
                    continue
                for ident in targets:
                    _attach(extras[ident], table, item)
        of_org: dict[str, list[str]] | None = None
        for row in self.t["phone"]:  # organization phones: a way to reach its services
            if not (row.get("service_id") or row.get("location_id")
                    or row.get("service_at_location_id")) and row.get("number"):
                org = row.get("organization_id")
                if of_org is None:
                    of_org = {}
                    for ident in extras:
                        owner = services.good[ident].get("organization_id")
                        of_org.setdefault(owner, []).append(ident)
                for ident in of_org.get(org, []) if org else []:
                    if not extras[ident].phones:
                        extras[ident].phones.append(_phone(row))

    def _capacities(self, services: _Index, units: _Index) -> list[Capacity]:
        out: list[Capacity] = []
        for row in self.t["service_capacity"]:
            issues: Issues = []
            service = self._ref(row, "service_id", "service", services, issues)
            if service is None:
                issues.append(("service_id is missing", "give the id of the service"))
            unit = self._ref(row, "unit_id", "unit", units, issues)
            if unit is None:
                issues.append(("unit_id is missing", "give the id of a unit, like Bed"))
            available = self._value(issues, _whole, "available", row.get("available"))
            if available is None and not row.get("available"):
                issues.append(("available is missing", "give how many are free now"))
            maximum = self._value(issues, _whole, "maximum", row.get("maximum"))
            if available is not None and maximum is not None and available > maximum:
                issues.append((f"available ({row.get('available')}) is more than maximum "
                               f"({row.get('maximum')})", "correct available or maximum"))
            updated = self._value(issues, values.moment, "updated", row.get("updated"))
            if updated is not None and self.now is not None and (
                    updated > self.now + FUTURE_SLACK_SECONDS):
                issues.append((f"updated '{row.get('updated')}' is in the future",
                               "give the date and time the count was made, with its offset "
                               "(like +01:00) or in UTC (ending in Z)"))
            if service is False and not issues:
                continue  # goes with its service
            good = self._report(row, issues)
            if good and isinstance(unit, Row) and isinstance(service, Row) and (
                    available is not None and updated is not None):
                out.append(Capacity(service_id=service.get("id"), unit=unit.get("name"),
                                    available=int(available), maximum=None if maximum is None
                                    else int(maximum), updated=updated,
                                    description=row.get("description") or None))
        return out

    # ------------------------------------------------------------- records

    def _service(self, row: Row, extra: _Extras, orgs: _Index, locations: _Index,
                 confidential: set[str]) -> Service:
        org = orgs.good.get(row.get("organization_id"))
        places = [self._location(locations.good[i], i in confidential)
                  for i in dict.fromkeys(extra.locations) if i in locations.good]
        fees = row.get("fees_description") or "; ".join(extra.fees) or None
        free = extra.free
        extra.meaning = own_words(self.taxonomy, row.get("name"), row.get("description"),
                                  extra.meaning, named=bool(extra.needs))
        genders, low, high = extra.meaning.limits()
        own_low = values.number("minimum_age", row.get("minimum_age"))
        own_high = values.number("maximum_age", row.get("maximum_age"))
        if own_low is None and own_high is None:
            own_low, own_high = extra.min_age, extra.max_age
        if own_low is None and own_high is None:  # the ages its eligibility says in words
            own_low, own_high = stated_ages("; ".join(
                [*extra.stated, row.get("eligibility_description")])) or (None, None)
        if own_low is None and own_high is None:
            own_low, own_high = low, high
        if extra.amounts:
            free = not any(a > 0 for a in extra.amounts)
        return Service(
            id=row.get("id"), name=row.get("name"), status=row.get("status").lower(),
            organization=org.get("name") or None if org else None,
            description=row.get("description") or None,
            needs=tuple(sorted(extra.needs | extra.meaning.needs)) or ("other",),
            areas=_once(extra.areas),
            languages=_once(extra.languages),
            interpretation=row.get("interpretation_services") or None,
            min_age=own_low, max_age=own_high,
            genders=tuple(sorted(extra.genders)) or genders, free=free, fees=fees,
            documents=_once(extra.documents),
            phones=_once(extra.phones),
            url=row.get("url") or None, email=row.get("email") or None,
            hours=_once(extra.hours), locations=tuple(places),
            how_to_start=row.get("application_process") or None,
            eligibility=row.get("eligibility_description") or None,
            alert=row.get("alert") or None,
        )

    def _location(self, row: Row, confidential: bool) -> Location:
        ident = row.get("id")
        if self._addresses is None:
            self._addresses = {}
            for a in self.t["address"]:
                self._addresses.setdefault(a.get("location_id"), []).append(a)
        addresses = list(self._addresses.get(ident, []))
        addresses.sort(key=lambda a: a.get("address_type") != "physical")
        first = addresses[0] if addresses else None
        city = first.get("city") if first else ""
        region = first.get("region") or first.get("state_province") if first else ""
        postcode = first.get("postal_code") if first else ""
        for a in addresses:
            self._place(a.get("city"), a.get("region"), a.get("state_province"))
            if not confidential:
                self._place(a.get("postal_code"), a.get("city"))
        street = ", ".join(p for p in (first.get("address_1"), first.get("address_2"))
                           if p) if first else ""
        return Location(
            name=row.get("name") or None, confidential=confidential,
            address=None if confidential else street or None, city=city or None,
            region=region or None, postcode=None if confidential else postcode or None,
            url=row.get("url") or None if row.get("location_type") == "virtual" else None,
            transport=None if confidential else row.get("transportation") or None,
            **({} if confidential else _coordinates(row)),
        )

    def _place(self, *chain: str) -> None:
        """Each place lies in the larger ones after it (postcode, city, region, state)."""
        if chain in self._chains:  # most services share their town's chain
            return
        self._chains.add(chain)
        names = [c for c in chain if c]
        for i, name in enumerate(names):
            known = self.places.setdefault(name, [])
            known.extend(n for n in names[i + 1:] if n not in known and n != name)


class _Links:
    """Which good services a child row belongs to."""

    def __init__(self, builder: Builder, services: _Index, sals: _Index, locations: _Index,
                 at_location: dict[str, list[str]]) -> None:
        self.b = builder
        self.services = services
        self.sals = sals
        self.locations = locations
        self.at_location = at_location

    def targets(self, row: Row, issues: Issues) -> list[str]:
        service = self.b._ref(row, "service_id", "service", self.services, issues)
        if isinstance(service, Row):
            return [service.get("id")]
        if service is False:
            return []
        sal = self.b._ref(row, "service_at_location_id", "service_at_location", self.sals,
                          issues)
        if isinstance(sal, Row):
            return [sal.get("service_id")]
        if sal is False:
            return []
        location = self.b._ref(row, "location_id", "location", self.locations, issues)
        if isinstance(location, Row):
            return list(self.at_location.get(location.get("id"), []))
        return []


def _once(items: list[T]) -> tuple[T, ...]:
    """``items`` without repeats, in order (most lists here have one item: hashing a
    record to find none repeated cost more than making the tuple)."""
    return tuple(items) if len(items) < 2 else tuple(dict.fromkeys(items))


def _whole(field: str, text: str) -> float | None:
    return values.number(field, text, whole=True)


def _short(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _phone(row: Row) -> Phone:
    number = values.phone_number(row.get("number"))
    ext = row.get("extension")
    if ext:
        number = f"{number} ext. {ext}"
    return Phone(number=number, description=row.get("description") or None)


def _parse_phone(row: Row) -> Phone:
    if not values.phone_number(row.get("number")):
        raise values.Bad("number is missing", "give the phone number")
    return _phone(row)


def _parse_hours(row: Row) -> Hours:
    freq = row.get("freq").upper()
    if freq not in ("", "WEEKLY", "MONTHLY"):
        raise values.Bad(f"freq '{freq}' is not WEEKLY or MONTHLY", "use WEEKLY or MONTHLY")
    opens = values.clock("opens_at", row.get("opens_at"))
    closes = values.clock("closes_at", row.get("closes_at"))
    weekly = freq != "MONTHLY"  # monthly patterns are kept as their description only
    offset = values.number("timezone", row.get("timezone").lstrip("+-")) if row.get(
        "timezone") else None
    if offset is not None and row.get("timezone").startswith("-"):
        offset = -offset
    return Hours(
        days=values.days("byday", row.get("byday")) if weekly else (),
        opens=opens if weekly else None, closes=closes if weekly else None,
        note=row.get("description") or None,
        valid_from=values.day("valid_from", row.get("valid_from")),
        valid_to=values.day("valid_to", row.get("valid_to")), utc_offset=offset,
    )


def _parse_area(row: Row) -> str:
    name = row.get("name") or row.get("description")
    if not name:
        raise values.Bad("the service area has no name", "give the place name, like a town")
    return name


def _parse_language(row: Row) -> LanguageTag:
    if not (row.get("code") or row.get("name")):
        raise values.Bad("the language has no code or name", "give a code like es, or a name")
    return LanguageTag(code=row.get("code").lower() or None, name=row.get("name") or None)


def _parse_document(row: Row) -> str:
    if not row.get("document"):
        raise values.Bad("document is missing", "say which document is needed")
    return row.get("document")


def _parse_cost(row: Row) -> tuple[float | None, str]:
    amount = values.number("amount", row.get("amount"))
    if not amount:
        return amount, ""
    parts = (row.get("amount"), row.get("currency").upper(), row.get("amount_description"))
    text = " ".join(p for p in parts if p)
    if row.get("option"):
        text = f"{text} ({row.get('option')})"
    return amount, text


_CHILDREN: dict[str, Callable[[Row], Any]] = {
    "phone": _parse_phone,
    "schedule": _parse_hours,
    "service_area": _parse_area,
    "language": _parse_language,
    "required_document": _parse_document,
    "cost_option": _parse_cost,
}


def _attach(extra: _Extras, table: str, item: Any) -> None:
    if table == "phone":
        extra.phones.append(item)
    elif table == "schedule":
        extra.hours.append(item)
    elif table == "service_area":
        extra.areas.append(item)
    elif table == "language":
        extra.languages.append(item)
    elif table == "required_document":
        extra.documents.append(item)
    elif table == "cost_option":
        amount, text = item
        if amount is not None:
            extra.amounts.append(amount)
        if text:
            extra.fees.append(text)


def build(tables: Tables, now: float | None = None, taxonomy: TaxonomyMap | None = None,
          shared: dict[str, Any] | None = None) -> DirectoryData:
    return Builder(tables, now, taxonomy, shared).build()


def _coordinates(row: Row) -> dict[str, float]:
    """HSDS location latitude and longitude, when both are there and make sense."""
    point: dict[str, float] = {}
    for key, limit in (("latitude", 90.0), ("longitude", 180.0)):
        try:
            number = float(str(row.get(key) or "").strip())
        except ValueError:
            return {}
        if not math.isfinite(number) or abs(number) > limit:
            return {}
        point[key] = number
    return point
