"""The simple YAML directory for small organisations (see data/sample-directory.yaml).

Top level: ``services`` (a list), and optionally ``timezone`` (IANA name for the hours),
``places`` (which larger areas a town or postcode lies in, for matching) and ``fictional``
(true for sample data: the bot then says so). Each service is checked on its own and
reported as ``file:line: what is wrong; how to fix``.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from helpline.flow.yamlsource import Located, YamlSyntaxError, load_located
from helpline.resources import values
from helpline.resources.model import (
    Capacity,
    DirectoryData,
    Hours,
    LanguageTag,
    Location,
    Phone,
    Problem,
    Service,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class YPhone(_In):
    number: str = Field(min_length=1)
    description: str | None = None


class YHours(_In):
    days: list[str] = Field(default_factory=list, description="MO..SU; empty = every day")
    opens: str | None = None
    closes: str | None = None
    note: str | None = None


class YLocation(_In):
    name: str | None = None
    confidential: bool = False
    address: str | None = None
    city: str | None = None
    region: str | None = None
    postcode: str | None = None
    url: str | None = None
    transport: str | None = None
    latitude: float | None = Field(None, ge=-90, le=90, description="never for a "
                                   "confidential location (it is dropped)")
    longitude: float | None = Field(None, ge=-180, le=180)


class YOpenings(_In):
    unit: str = Field("place", min_length=1)
    available: int = Field(ge=0)
    maximum: int | None = Field(None, ge=0)
    description: str | None = None
    updated: datetime | None = None
    hours_ago: float | None = Field(None, ge=0, description="for demos: updated this long "
                                    "before the import")


class YService(_In):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    status: str = "active"
    organization: str | None = None
    description: str | None = None
    needs: list[str] = Field(min_length=1)
    areas: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    interpretation: str | None = None
    min_age: float | None = Field(None, ge=0)
    max_age: float | None = Field(None, ge=0)
    genders: list[str] = Field(default_factory=list)
    free: bool | None = None
    fees: str | None = None
    documents: list[str] = Field(default_factory=list)
    phones: list[YPhone | str] = Field(default_factory=list)
    url: str | None = None
    email: str | None = None
    hours: list[YHours] = Field(default_factory=list)
    locations: list[YLocation] = Field(default_factory=list)
    openings: YOpenings | None = None
    how_to_start: str | None = None
    eligibility: str | None = None
    alert: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in ("active", "inactive", "defunct", "temporarily closed"):
            raise ValueError("use active, inactive, defunct or temporarily closed")
        return value


TOP_KEYS = ("services", "timezone", "places", "fictional", "title", "note")


def read_yaml(path: Path, now: float) -> DirectoryData:
    name = str(path)
    data = DirectoryData([], [], {}, [], "yaml")
    try:
        located = load_located(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        data.problems.append(Problem(name, 1, "not UTF-8 text", "save the file as UTF-8"))
        return data
    except YamlSyntaxError as exc:
        data.problems.append(Problem(name, exc.position.line, exc.message,
                                     "check indentation, colons and quotes here"))
        return data
    top = located.data
    if not isinstance(top, dict) or not isinstance(top.get("services"), list):
        data.problems.append(Problem(name, 1, "no 'services:' list",
                                     "start the file with services: and a list of services"))
        return data
    reader = _Reader(name, located, data, now)
    reader.header(top)
    seen: dict[str, int] = {}
    for i, raw in enumerate(top["services"]):
        reader.service(i, raw, seen)
    return data


class _Reader:
    def __init__(self, name: str, located: Located, data: DirectoryData, now: float) -> None:
        self.name = name
        self.located = located
        self.data = data
        self.now = now
        self.timezone: str | None = None

    def problem(self, where: tuple[str | int, ...], message: str, fix: str) -> None:
        self.data.problems.append(Problem(self.name, self.located.position(where).line,
                                          message, fix))

    def header(self, top: dict[str, Any]) -> None:
        for dup, pos in self.located.duplicates:
            self.data.problems.append(Problem(self.name, pos.line, f"'{dup[-1]}' is given "
                                              "twice here", "keep one of them"))
        for key in top:
            if key not in TOP_KEYS:
                self.problem((str(key),), f"unknown key '{key}'", _did_you_mean(key, TOP_KEYS))
        self.data.fictional = top.get("fictional") is True
        try:
            self.timezone = values.timezone(str(top.get("timezone") or ""))
        except values.Bad as bad:
            self.problem(("timezone",), bad.message, bad.fix)
        places = top.get("places") or {}
        if not isinstance(places, dict):
            self.problem(("places",), "places must be a mapping",
                         "write each place as 'Town: [Larger area, ...]'")
            return
        for place, within in places.items():
            parents = within if isinstance(within, list) else [within]
            self.data.places[str(place)] = [str(p) for p in parents if p]

    def service(self, i: int, raw: Any, seen: dict[str, int]) -> None:
        where: tuple[str | int, ...] = ("services", i)
        before = len(self.data.problems)
        try:
            item = YService.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(p for p in error["loc"] if p not in ("YPhone", "str"))
                self.problem((*where, *loc), *_explain(error, loc))
            self.data.bad_rows += 1
            return
        record, capacity = self._convert(item, where)
        if item.id in seen:
            self.problem((*where, "id"), f"id '{item.id}' is used twice (also at line "
                         f"{seen[item.id]})", "give each service its own id")
        else:
            seen[item.id] = self.located.position((*where, "id")).line
        if len(self.data.problems) > before or record is None:
            self.data.bad_rows += 1
            return
        self.data.services.append(record)
        self.data.origins[record.id] = (self.name, self.located.position(where).line)
        if capacity is not None:
            self.data.capacities.append(capacity)

    def _convert(self, item: YService, where: tuple[str | int, ...]
                 ) -> tuple[Service | None, Capacity | None]:
        def attempt(key: tuple[str | int, ...], parse: Any, *args: Any) -> Any:
            try:
                return parse(*args)
            except values.Bad as bad:
                self.problem((*where, *key), bad.message, bad.fix)
                return None

        needs = [attempt(("needs", n), values.need, v) for n, v in enumerate(item.needs)]
        genders = [attempt(("genders", n), values.gender, v) for n, v in enumerate(item.genders)]
        hours = [self._hours(h, (*where, "hours", n)) for n, h in enumerate(item.hours)]
        if item.min_age is not None and item.max_age is not None and item.min_age > item.max_age:
            self.problem((*where, "min_age"), f"min_age ({item.min_age:g}) is above max_age "
                         f"({item.max_age:g})", "swap them or correct one")
        capacity = self._openings(item, where)
        if None in needs or None in genders or None in hours:
            return None, None
        record = Service(
            id=item.id, name=item.name, status=item.status, organization=item.organization,
            description=item.description, needs=tuple(dict.fromkeys(n for n in needs if n)),
            areas=tuple(item.areas), languages=tuple(_language(v) for v in item.languages),
            interpretation=item.interpretation, min_age=item.min_age, max_age=item.max_age,
            genders=tuple(g for g in genders if g), free=item.free, fees=item.fees,
            documents=tuple(item.documents),
            phones=tuple(Phone(number=p) if isinstance(p, str) else Phone(
                number=p.number, description=p.description) for p in item.phones),
            url=item.url, email=item.email, hours=tuple(h for h in hours if h),
            timezone=self.timezone, locations=tuple(_location(loc) for loc in item.locations),
            how_to_start=item.how_to_start, eligibility=item.eligibility, alert=item.alert,
        )
        return record, capacity

    def _hours(self, h: YHours, where: tuple[str | int, ...]) -> Hours | None:
        try:
            return Hours(days=values.days("days", ",".join(h.days)),
                         opens=values.clock("opens", h.opens or ""),
                         closes=values.clock("closes", h.closes or ""), note=h.note)
        except values.Bad as bad:
            self.problem(where, bad.message, bad.fix)
            return None

    def _openings(self, item: YService, where: tuple[str | int, ...]) -> Capacity | None:
        o = item.openings
        if o is None:
            return None
        at = (*where, "openings")
        if o.maximum is not None and o.available > o.maximum:
            self.problem(at, f"available ({o.available}) is more than maximum ({o.maximum})",
                         "correct available or maximum")
            return None
        if o.updated is None and o.hours_ago is None:
            self.problem(at, "openings need 'updated'", "add updated: with the date and time "
                         "of the count, like 2025-03-01T14:30:00Z")
            return None
        if o.updated is not None:
            stamp = values.moment("updated", o.updated.isoformat())
            if stamp > self.now + 600:
                self.problem(at, f"openings updated {o.updated.isoformat()} is in the future",
                             "give the date and time the count was made, with its offset "
                             "(like +01:00) or in UTC (ending in Z)")
                return None
        else:
            stamp = self.now - float(o.hours_ago or 0) * 3600
        return Capacity(service_id=item.id, unit=o.unit, available=o.available,
                        maximum=o.maximum, description=o.description, updated=stamp)


def _language(value: str) -> LanguageTag:
    text = value.strip()
    if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]+)?", text) and text.lower() == text:
        return LanguageTag(code=text)
    return LanguageTag(name=text)


def _location(loc: YLocation) -> Location:
    hidden = loc.confidential
    return Location(name=loc.name, confidential=hidden, address=None if hidden else loc.address,
                    city=loc.city, region=loc.region, postcode=None if hidden else loc.postcode,
                    url=loc.url, transport=None if hidden else loc.transport,
                    latitude=None if hidden or loc.longitude is None else loc.latitude,
                    longitude=None if hidden or loc.latitude is None else loc.longitude)


def _did_you_mean(word: object, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(word), list(known), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "remove it, or use one of: " + ", ".join(known)


def _explain(error: Any, loc: tuple[Any, ...]) -> tuple[str, str]:
    field = ".".join(str(p) for p in loc) or "the service"
    kind = error["type"]
    if kind == "missing":
        return f"'{field}' is missing", f"add {loc[-1]}:"
    if kind == "extra_forbidden":
        model: type[BaseModel] = YService
        for part in loc[:-1]:
            if part == "openings":
                model = YOpenings
            elif part == "locations":
                model = YLocation
            elif part == "hours":
                model = YHours
            elif part == "phones":
                model = YPhone
        return f"unknown key '{field}'", _did_you_mean(loc[-1], list(model.model_fields))
    if kind == "string_pattern_mismatch":
        return (f"'{field}' has characters that cannot be used in an id",
                "use letters, digits, -, _, . or :")
    if kind in ("model_type", "dict_type") and not loc:
        return "a service must be a mapping", "start each service with '- id: ...'"
    return f"'{field}': {error['msg']}", "correct the value here"
