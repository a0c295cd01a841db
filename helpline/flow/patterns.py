"""Admins' answer patterns (``validate: pattern:``), compiled once at load by RE2.

RE2 matches in time linear in the answer, whatever the pattern: a pattern such as
``(a+)+$`` cannot stall the event loop on a crafted answer, as Python's backtracking ``re``
would. What RE2 refuses (backreferences, lookaround, possessive and atomic groups) is a
``flows check`` error at the pattern's line, with what to write instead.
"""

from __future__ import annotations

from typing import Any, Protocol

import re2  # google-re2


class CompiledPattern(Protocol):
    def fullmatch(self, text: str) -> Any: ...


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message says why and how to fix it."""


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print the pattern to stderr, outside our logging

# What RE2's errors mean for someone who writes a flow, and what to do instead.
_HINTS = (
    ("invalid escape sequence: \\1", "RE2 has no backreferences (\\1); "
     "match the text again explicitly, or validate with one_of"),
    ("invalid perl operator: (?=", "RE2 has no lookahead (?=...); rewrite the pattern "
     "without it, or split the question in two"),
    ("invalid perl operator: (?!", "RE2 has no negative lookahead (?!...); rewrite the "
     "pattern without it, or use one_of"),
    ("invalid perl operator: (?<", "RE2 has no lookbehind (?<=...) or (?<!...); rewrite the "
     "pattern without it (named groups are written (?P<name>...))"),
    ("invalid perl operator: (?>", "RE2 has no atomic groups (?>...); a plain group (...) "
     "is already safe here"),
    ("bad repetition operator", "RE2 has no possessive repeats (++, *+); a plain + or * "
     "is already safe here"),
    ("invalid repetition size", "RE2 counts repeats up to 1000 in all; use a smaller "
     "{n,m} or a plain + or *"),
    ("missing )", "a '(' is not closed; add the ')' or escape it as \\("),
    ("unexpected )", "a ')' has no '('; remove it or escape it as \\)"),
    ("missing ]", "a '[' is not closed; add the ']' or escape it as \\["),
    ("pattern too large", "the pattern is too large; make it shorter"),
)


def compile_pattern(pattern: str) -> CompiledPattern:
    """The RE2 form of ``pattern``, or PatternError naming the problem and a fix."""
    try:
        compiled: CompiledPattern = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        hint = next((h for key, h in _HINTS if key in reason),
                    "check the pattern's syntax (RE2, the syntax Python's re shares "
                    "without backreferences and lookaround)")
        raise PatternError(f"the pattern cannot be used ({reason}); {hint}") from None
    return compiled
