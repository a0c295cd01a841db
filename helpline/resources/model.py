"""The directory as the bot uses it: one normalised record per service, whatever the source.

Everything here is public directory data about services (never about a person), so it is
stored plainly. Addresses of confidential locations are dropped before a record is built:
what is never stored can never be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

# The kinds of help the bundled flow asks about; the flow's option values use these codes.
NEEDS: tuple[str, ...] = (
    "shelter", "legal", "medical", "counselling", "immigration", "substance_use", "food",
    "documents", "other",
)  # fmt: skip
GENDERS: tuple[str, ...] = ("women", "men", "nonbinary")
DAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
STATUSES: tuple[str, ...] = ("active", "inactive", "defunct", "temporarily closed")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phone(_Record):
    number: str
    description: str | None = None


class Hours(_Record):
    """Opening hours on some days of the week (all days when ``days`` is empty)."""

    days: tuple[str, ...] = ()
    opens: str | None = None  # "HH:MM"
    closes: str | None = None  # "HH:MM"; "24:00" is the end of the day
    note: str | None = None
    valid_from: str | None = None  # YYYY-MM-DD
    valid_to: str | None = None
    utc_offset: float | None = None  # HSDS schedule.timezone, in hours


class Location(_Record):
    name: str | None = None
    confidential: bool = False
    address: str | None = None  # always None for a confidential location
    city: str | None = None
    region: str | None = None
    postcode: str | None = None  # always None for a confidential location
    url: str | None = None  # a virtual location
    transport: str | None = None
    # Where it is, for distances to a location a person shares. Always None for a
    # confidential location: what is never stored can never be shown or worked out.
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class LanguageTag(_Record):
    code: str | None = None
    name: str | None = None


class Service(_Record):
    id: str
    name: str
    status: str = "active"
    organization: str | None = None
    description: str | None = None
    needs: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()  # place names; empty (or "anywhere") = not limited to an area
    languages: tuple[LanguageTag, ...] = ()
    interpretation: str | None = None
    min_age: float | None = None
    max_age: float | None = None
    genders: tuple[str, ...] = ()  # empty = anyone
    free: bool | None = None  # None = not known
    fees: str | None = None
    documents: tuple[str, ...] = ()
    phones: tuple[Phone, ...] = ()
    url: str | None = None
    email: str | None = None
    hours: tuple[Hours, ...] = ()
    timezone: str | None = None  # IANA name for ``hours`` without an offset
    locations: tuple[Location, ...] = ()
    how_to_start: str | None = None
    eligibility: str | None = None
    alert: str | None = None

    @property
    def anywhere(self) -> bool:
        return not self.areas or any(a.casefold() == "anywhere" for a in self.areas)


class Capacity(_Record):
    """HSDS 3.1 ``service_capacity``: how many ``unit`` are free, as of ``updated``."""

    service_id: str
    unit: str = Field(min_length=1)
    available: int = Field(ge=0)
    maximum: int | None = Field(None, ge=0)
    description: str | None = None
    updated: float  # unix time


@dataclass(frozen=True, order=True)
class Problem:
    """One bad row: ``file:line: what is wrong; how to fix``."""

    path: str
    line: int
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}; {self.fix}"


@dataclass
class DirectoryData:
    """What a reader made of one source: good records and every problem found."""

    services: list[Service]
    capacities: list[Capacity]
    places: dict[str, list[str]]  # place -> the larger areas it lies in
    problems: list[Problem]
    format: str
    fictional: bool = False
    bad_rows: int = 0  # rows (or records) left out because of a problem
    origins: dict[str, tuple[str, int]] = field(default_factory=dict)  # service id -> file:line
    notes: list[str] = field(default_factory=list)  # what the reader found, said once
