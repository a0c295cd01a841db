"""Reading a campaign's numbers: a CSV file (or one number a line) read once, never
copied; each number validated and normalised to E.164 with ``phonenumbers``, numbers
written without ``+`` read in ``[outreach] default_region``; duplicates dropped. Every bad
line is reported at once as ``file:line: what is wrong; how to fix it``. A bad line is
never quoted back: it may be a real number."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

# Column names a number may be under (the first column otherwise).
NUMBER_COLUMNS = ("number", "phone", "phone_number", "mobile", "tel", "telephone", "msisdn")
MAX_BYTES = 16 * 1024 * 1024


@dataclass
class Numbers:
    numbers: list[str] = field(default_factory=list)  # E.164, in file order, no duplicates
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0


def normalise(text: str, region: str = "") -> str:
    """``text`` as E.164 (+4915112345678); ValueError saying what is wrong and how to fix."""
    raw = text.strip()
    if not raw:
        raise ValueError("no number; remove the empty line")
    if sum(ch.isdigit() for ch in raw) < 5:
        raise ValueError("not a phone number; write it like +4915112345678")
    if not raw.startswith("+") and not raw.startswith("00") and not region:
        raise ValueError("the number has no country code; write it with + and the country "
                         "code, or set [outreach] default_region")
    if raw.startswith("00"):  # the international prefix most of the world dials
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number; write it like +4915112345678") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid number for its country; check the digits and the "
                         "country code") from None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def read_numbers(path: Path, region: str = "") -> Numbers:
    """The numbers of ``path`` (see the module's note). A header row is recognised by a
    column named like ``number`` or ``phone``; without one, the first column is read."""
    found = Numbers()
    where = path.name
    try:
        if path.stat().st_size > MAX_BYTES:
            found.problems.append(f"{where}: larger than {MAX_BYTES >> 20} MB; split it into "
                                  "several campaigns")
            return found
        data = path.read_bytes()
    except OSError as exc:
        found.problems.append(f"{where}: cannot be read ({type(exc).__name__}); check the "
                              "path and its permissions")
        return found
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", "replace")
    rows = list(csv.reader(io.StringIO(text), _dialect(text)))
    column, start = 0, 0
    if rows and rows[0]:
        names = [c.strip().casefold() for c in rows[0]]
        known = [i for i, n in enumerate(names) if n in NUMBER_COLUMNS]
        if known:
            column, start = known[0], 1
        elif not any(ch.isdigit() for ch in rows[0][0]):
            found.problems.append(f"{where}:1: no column is named number or phone; name "
                                  "the numbers' column 'number'")
            return found
    seen: set[str] = set()
    for index, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(c.strip() for c in row):
            continue
        if column >= len(row):
            found.problems.append(f"{where}:{index}: the line has no number column; give "
                                  "every line a number")
            continue
        try:
            number = normalise(row[column], region)
        except ValueError as exc:
            found.problems.append(f"{where}:{index}: {exc}")
            continue
        if number in seen:
            found.duplicates += 1
            continue
        seen.add(number)
        found.numbers.append(number)
    if not found.numbers and not found.problems:
        found.problems.append(f"{where}: no numbers; put one number a line")
    return found


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


__all__ = ["NUMBER_COLUMNS", "Numbers", "normalise", "read_numbers"]
