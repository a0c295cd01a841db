"""Small parsers shared by the importers. Each raises ``Bad(message, fix)``."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime

from helpline.flow.engine import normalize
from helpline.resources.model import DAYS, GENDERS, NEEDS


class Bad(ValueError):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def code(text: str) -> str:
    """'Substance use' / 'substance-use' -> 'substance_use'."""
    return normalize(text).replace(" ", "_").replace("-", "_")


def need(text: str) -> str:
    value = code(text)
    if value in ("counseling", "counselling_services"):
        value = "counselling"
    if value not in NEEDS:
        raise Bad(f"unknown need '{text}'", f"use one of: {', '.join(NEEDS)}")
    return value


def gender(text: str) -> str:
    value = code(text)
    value = {"woman": "women", "female": "women", "man": "men", "male": "men",
             "non_binary": "nonbinary"}.get(value, value)
    if value not in GENDERS:
        raise Bad(f"unknown gender '{text}'", f"use one of: {', '.join(GENDERS)}")
    return value


def number(field: str, text: str, *, whole: bool = False) -> float | None:
    """An optional number ('' means not given)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Bad(f"{field} '{text}' is not a number", f"write {field} in digits, like 18"
                  ) from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise Bad(f"{field} '{text}' is not a usable number", "use a number 0 or above")
    if whole and not value.is_integer():
        raise Bad(f"{field} '{text}' is not a whole number", "use a whole number, like 3")
    return value


def clock(field: str, text: str) -> str | None:
    """'9:00', '09:00:00', '09:00+01:00' -> '09:00'; the 12-hour forms directories publish
    too: '9am', '9:30 PM', '12 p.m.' (noon), '12:15 AM' -> '00:15'; '' -> None."""
    text = text.strip()
    if not text:
        return None
    match = _CLOCK.fullmatch(text)
    if match is None:
        twelve = _TWELVE_HOUR.fullmatch(text)
        if twelve is not None and 1 <= int(twelve.group(1)) <= 12 \
                and int(twelve.group(2) or 0) <= 59:
            hour = int(twelve.group(1)) % 12 + (12 if twelve.group(3).lower() == "p" else 0)
            return f"{hour:02d}:{twelve.group(2) or '00'}"
    if not match or int(match.group(1)) > 24 or int(match.group(2)) > 59 or (
            int(match.group(1)) == 24 and int(match.group(2)) != 0):
        raise Bad(f"{field} '{text}' is not a time of day",
                  f"write {field} as HH:MM, like 09:30 (or 9:30 AM)")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
# 9am, 9 AM, 9:30pm, 9:30 p.m., 12:00 P.M., 9:30a (211 exports write all of these)
_TWELVE_HOUR = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*([ap])\.?(?:\s*m\.?)?", re.IGNORECASE)


def days(field: str, text: str) -> tuple[str, ...]:
    """'MO,TU' (RFC 5545 BYDAY, as HSDS uses it) -> ('MO', 'TU'); '' -> every day."""
    out: list[str] = []
    for part in re.split(r"[,\s]+", text.strip().upper()):
        if not part:
            continue
        if part not in DAYS:
            raise Bad(f"{field} '{part}' is not a day", f"use {', '.join(DAYS)} (comma-separated)")
        out.append(part)
    return tuple(out)


def day(field: str, text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise Bad(f"{field} '{text}' is not a date", f"write {field} as YYYY-MM-DD") from None


def moment(field: str, text: str) -> float:
    """An ISO 8601 date-time -> unix time (no offset means UTC)."""
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Bad(f"{field} '{text}' is not a date and time",
                  f"write {field} as ISO 8601, like 2025-03-01T14:30:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def timezone(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Bad(f"timezone '{text}' is not known",
                  "use an IANA name, like Europe/London or America/Chicago") from None
    return text


def phone_number(text: str) -> str:
    """Strip the stray quotes some exports leave around numbers."""
    return text.strip().strip('"').strip("'").strip()
