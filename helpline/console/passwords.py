"""What a console password must be: at least ``MIN_LENGTH`` characters, and not one of the
commonest passwords (``common-passwords.txt``: the top of the public lists of leaked
passwords), nor one of them with a few digits or signs around it, nor the user name, nor one
character or a short piece repeated."""

from __future__ import annotations

import itertools
import re
from functools import cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 256  # Argon2 takes any length; this keeps a pasted book out
COMMON = Path(__file__).resolve().parent / "common-passwords.txt"
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines
                     if line.strip() and not line.startswith("#"))


def _repeats(text: str) -> bool:
    """One short piece (up to 4 characters) over and over: 'aaaaaaaaaaaa', 'abcabcabcabc'."""
    return any(len(text) % n == 0 and text == text[:n] * (len(text) // n)
               for n in range(1, 5))


def _sequence(text: str) -> bool:
    """Keys in a row: '123456789012', 'abcdefghijkl', '987654321098'."""
    steps = {(ord(b) - ord(a)) % 10 if a.isdigit() and b.isdigit() else ord(b) - ord(a)
             for a, b in itertools.pairwise(text)}
    return steps in ({1}, {9}, {-1})


def _repeated_common(text: str) -> bool:
    """One of the common passwords said twice or more: 'letmeinletmein'."""
    return any(len(text) > len(word) and len(text) % len(word) == 0
               and text == word * (len(text) // len(word)) for word in common_passwords())


def password_problem(password: str, name: str = "") -> str | None:
    """Why ``password`` will not do, in words for the person choosing it; None: it will."""
    if len(password) < MIN_LENGTH:
        return f"Please use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Please use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    core = _EDGES.sub("", lowered)
    if (core in common_passwords() or lowered in common_passwords() or _repeats(lowered)
            or _sequence(lowered) or _repeated_common(core)):
        return ("That password is one of the most common ones, which are tried first. "
                "A few unrelated words together work well.")
    if len(name) >= 4 and name.lower() in lowered:
        return "Please choose a password that does not contain your user name."
    return None
