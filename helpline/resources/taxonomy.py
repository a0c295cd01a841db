"""What taxonomy terms mean for matching: needs, and who a service is only for.

Rules come from ``data/taxonomy-map.csv`` (AIRS / 211 LA codes, words, and words that make
a term mean nothing, such as volunteering and donations), and from any file an admin adds
with ``helpline resources import --map FILE`` (its rules come first). See the notes at the
top of the bundled file for the columns.

A term is read like this: a term with a *never* word gives nothing; otherwise the longest
code rule that the term's code starts with decides its needs (``none``: no need), and when
no code rule applies, the *words* rules do; the words about who a service is for (gender,
age) count either way. Names are matched as whole words after splitting at "/", "-", ","
and "&", so "Transitional Housing/Shelter" is shelter and "Homeless Shelter Volunteer
Opportunities" is nothing.

The rows of kinds ``name``, ``text``, ``says``, ``unless``, ``not`` and ``who`` read a
service's own name and description; ``words.py`` applies them (its docstring gives the
order).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from helpline.bundled import DATA
from helpline.flow.engine import normalize
from helpline.resources.model import GENDERS, NEEDS, Problem

BUNDLED_MAP = DATA / "taxonomy-map.csv"
KINDS = ("code", "words", "never", "name", "text", "says", "unless", "not", "who")
# Rules for a service's own words (words.py).
OWN_WORDS = ("name", "text", "says", "unless", "not", "who")
_SPLIT = re.compile(r"[/\-,&;]+")
MAX_MAP_BYTES = 4 * 1024 * 1024
POPULATIONS = "Y"  # AIRS Target Populations: who a service is for, not what it does


@dataclass(frozen=True)
class Meaning:
    """What one term (or all the terms of a service, combined) says."""

    needs: frozenset[str] = frozenset()
    genders: frozenset[str] = frozenset()
    min_ages: frozenset[float] = frozenset()
    max_ages: frozenset[float] = frozenset()
    serves_adults: bool = False
    # A term's code row said the service gives no need ("none"): its own words then add
    # none (see words.py). Target populations (AIRS Y) say who a service is for, not what.
    settled: bool = False
    # Minors are served too (a min_age of another term does not apply: "Homeless Women"
    # with "Homeless Families" is not an adults' service).
    serves_minors: bool = False

    def __or__(self, other: Meaning) -> Meaning:
        if other is NOTHING or other is self:  # nothing to add (an import joins many)
            return self
        if self is NOTHING:
            return other
        return Meaning(self.needs | other.needs, self.genders | other.genders,
                       self.min_ages | other.min_ages, self.max_ages | other.max_ages,
                       self.serves_adults or other.serves_adults,
                       self.settled or other.settled,
                       self.serves_minors or other.serves_minors)

    def limits(self) -> tuple[tuple[str, ...], float | None, float | None]:
        """(genders, min_age, max_age) a service with these terms is limited to. Terms for
        both men and women limit nothing; nor do age terms that pull both ways."""
        genders = () if {"men", "women"} <= self.genders else tuple(sorted(self.genders))
        low = (min(self.min_ages) if self.min_ages and not self.max_ages
               and not self.serves_minors else None)
        high = (max(self.max_ages) if self.max_ages and not self.min_ages
                and not self.serves_adults else None)
        return genders, low, high


NOTHING = Meaning()
# A first word -> (the phrase's words, its kind, what it gives), longest phrases first.
Phrases = dict[str, list[tuple[tuple[str, ...], str, Meaning]]]


@dataclass
class _Gives:
    needs: set[str] = field(default_factory=set)
    no_need: bool = False
    genders: set[str] = field(default_factory=set)
    min_ages: set[float] = field(default_factory=set)
    max_ages: set[float] = field(default_factory=set)
    adults: bool = False
    minors: bool = False

    def meaning(self, with_needs: bool = True) -> Meaning:
        return Meaning(frozenset(self.needs) if with_needs else frozenset(),
                       frozenset(self.genders), frozenset(self.min_ages),
                       frozenset(self.max_ages), self.adults, serves_minors=self.minors)


def _parse_gives(text: str) -> _Gives:
    gives = _Gives()
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if part == "none":
            gives.no_need = True
            continue
        key, _, value = part.partition(":")
        value = value.strip()
        if key == "need" and value in NEEDS and value != "other":
            gives.needs.add(value)
        elif key == "gender" and value in GENDERS:
            gives.genders.add(value)
        elif key in ("min_age", "max_age") and re.fullmatch(r"\d{1,3}", value):
            (gives.min_ages if key == "min_age" else gives.max_ages).add(float(value))
        elif part == "serves:adults":
            gives.adults = True
        elif part == "serves:minors":
            gives.minors = True
        else:
            raise ValueError(part)
    return gives


class TaxonomyMap:
    def __init__(self) -> None:
        self.codes: dict[str, _Gives] = {}
        self.words: list[tuple[str, _Gives]] = []
        self.never: list[str] = []
        # A service's own words (see words.py): phrases of its name, of its description,
        # phrases that make a clause say nothing, and phrases that take a need away.
        self.own: dict[str, list[tuple[str, _Gives]]] = {k: [] for k in OWN_WORDS}
        self._cache: dict[tuple[str, str], Meaning] = {}
        self._phrases: Phrases | None = None  # built when first needed

    @classmethod
    def load(cls, extra: Iterable[Path] = ()) -> tuple[TaxonomyMap, list[Problem]]:
        """The bundled rules with ``extra`` files' rules first; bad rows are problems."""
        found = cls()
        problems: list[Problem] = []
        for path in (*extra, BUNDLED_MAP):
            found._read(path, problems)
        return found, problems

    def _read(self, path: Path, problems: list[Problem]) -> None:
        name = str(path)
        try:
            if path.stat().st_size > MAX_MAP_BYTES:
                problems.append(Problem(name, 1, f"larger than {MAX_MAP_BYTES // 2**20} MB, "
                                        "the limit for a mapping table", "keep it shorter"))
                return
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(name, 1, f"cannot read the mapping table "
                                    f"({type(exc).__name__})", "give a UTF-8 CSV file"))
            return
        rows = [(n, line) for n, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
        if not rows or [c.strip() for c in next(csv.reader([rows[0][1]]))][:3] != [
                "kind", "match", "gives"]:
            problems.append(Problem(name, rows[0][0] if rows else 1, "the header must be "
                                    "kind,match,gives,note", "start the table with that line"))
            return
        for n, line in rows[1:]:
            cells = [c.strip() for c in next(csv.reader([line]))] + ["", "", ""]
            kind, match, gives_text = cells[0].lower(), cells[1], cells[2]
            if kind not in KINDS:
                problems.append(Problem(name, n, f"kind '{kind}' is not one of "
                                        + ", ".join(KINDS), "use one of those"))
                continue
            if not match:
                problems.append(Problem(name, n, "match is empty", "give a code or words"))
                continue
            try:
                gives = _parse_gives(gives_text)
            except ValueError as exc:
                problems.append(Problem(name, n, f"'{exc}' is not something a term can give",
                                        "use need:NAME, gender:NAME, min_age:N, max_age:N, "
                                        "serves:adults, serves:minors or none"))
                continue
            if kind == "not" and (not gives.needs or gives.no_need or gives.genders
                                  or gives.min_ages or gives.max_ages or gives.adults
                                  or gives.minors):
                problems.append(Problem(name, n, "a not row takes needs away and gives "
                                        "nothing else", "give need:NAME (one or more)"))
                continue
            if kind == "code":
                self.codes.setdefault(match.upper(), gives)
            elif kind in OWN_WORDS:
                self.own[kind].append((own_form(match), gives))
                self._phrases = None
            elif kind == "never":
                self.never.append(normalize(match))
                self._phrases = None
            else:
                self.words.append((normalize(match), gives))
                self._phrases = None

    def _code_rule(self, code: str) -> _Gives | None:
        code = code.strip().upper()
        while code:
            rule = self.codes.get(code)
            if rule is not None:
                return rule
            cut = max(code.rfind("."), code.rfind("-"))
            code = code[:cut] if cut > 0 else (code[:-1] if len(code) > 1 else "")
        return None

    def _hits(self, parts: list[str]) -> list[tuple[str, _Gives]]:
        """The words rules each part matches; within a part, a rule whose words lie inside
        a longer rule's words gives way to it ("legal counseling" is legal only)."""
        out: list[tuple[str, _Gives]] = []
        for part in parts:
            hits = [(w, g) for w, g in self.words if f" {w} " in part]
            out.extend((w, g) for w, g in hits
                       if not any(o != w and f" {w} " in f" {o} " for o, _ in hits))
        return out

    def phrases(self) -> Phrases:
        """Every phrase that reads a service's own words, by its first word: the own-words
        kinds, the *never* words (which close a clause as ``unless`` phrases do, and alone
        close a ``says`` clause: kind ``never``) and the ``words`` rows about who a service
        is for (kind ``population``: gender and ages, no needs)."""
        if self._phrases is None:
            rows = [(kind, phrase, gives) for kind, found in self.own.items()
                    for phrase, gives in found]
            for word in self.never:
                rows += [("unless", own_form(word), _Gives()),
                         ("never", own_form(word), _Gives())]
            rows += [("population", own_form(w), _Gives(genders=g.genders, min_ages=g.min_ages,
                                                        max_ages=g.max_ages, adults=g.adults,
                                                        minors=g.minors))
                     for w, g in self.words
                     if g.genders or g.min_ages or g.max_ages or g.adults or g.minors]
            index: Phrases = {}
            for kind, phrase, gives in rows:
                words = tuple(phrase.split())
                if words:
                    index.setdefault(words[0], []).append((words, kind, gives.meaning()))
            for found in index.values():
                found.sort(key=lambda row: -len(row[0]))  # the longest first
            self._phrases = index
        return self._phrases

    def meaning(self, code: str, name: str) -> Meaning:
        key = (code, name)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._meaning(code, name)
        return found

    def _meaning(self, code: str, name: str) -> Meaning:
        parts = [f" {normalize(p)} " for p in _SPLIT.split(name)]
        parts = [p for p in parts if p.strip()]
        whole = f" {normalize(name)} "
        if any(f" {word} " in part for word in self.never for part in (*parts, whole)):
            return NOTHING
        gives = _Gives()
        rule = self._code_rule(code) if code else None
        for word, rule_gives in self._hits(parts):
            if word:
                gives.needs |= rule_gives.needs
                gives.genders |= rule_gives.genders
                gives.min_ages |= rule_gives.min_ages
                gives.max_ages |= rule_gives.max_ages
                gives.adults |= rule_gives.adults
                gives.minors |= rule_gives.minors
        settled = rule is not None and rule.no_need and not code.strip().upper().startswith(
            POPULATIONS)
        if rule is not None:
            gives.needs = set(rule.needs)
            gives.genders |= rule.genders
            gives.min_ages |= rule.min_ages
            gives.max_ages |= rule.max_ages
            gives.adults |= rule.adults
            gives.minors |= rule.minors
        found = gives.meaning()
        return Meaning(found.needs, found.genders, found.min_ages, found.max_ages,
                       found.serves_adults, settled, found.serves_minors) if settled else found


def own_form(text: str) -> str:
    """A service's words as the own-words rules match them: normalized, "/" a space."""
    return " ".join(normalize(text).replace("/", " ").split())


@lru_cache(maxsize=1)
def bundled() -> TaxonomyMap:
    return TaxonomyMap.load()[0]


def looks_like_code(text: str) -> bool:
    """An AIRS-style code: 'BH-1800.8500', 'YF-5000', 'L' (letters, then digits/dots)."""
    return bool(re.fullmatch(r"[A-Z]{1,2}(-\d{4}(\.\d{3,4})*(-\d{2,3}(\.\d{2,3})?)?)?",
                             text.strip().upper())) and text.strip()[:1].isupper()
