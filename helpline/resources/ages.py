"""The ages an eligibility text states: "Ages 18 and older", "21 or over", "18+", "ages
16-24", "under 18", "children 21 and younger", "minimum age: 60", "Pre-K - 5th grade".

Most 211 data (HSDS 1.1, and iCarol exports converted to it) gives a service's ages only in
words, in its eligibility text; without reading them an adults' shelter is offered to a
16-year-old. Only statements about who is served count. A clause about the household, a
person's children, a priority, a preference or an exception ("a child under 19 in the
household", "priority to seniors 60 and older", "also accepts youth 16 and 17") limits no
one, nor do ages in hours, days, weeks or months, nor a clause of more than 100 characters (a
definition, not a limit). A text that serves others too ("ages 18 and older, families
with children", "all others must have a disability", "women and children") limits no
one. Several statements give their union ("ages 18 to 24; ages 60 and older" is 18 and
over); a statement without a bound in one direction leaves that direction open. What is
not understood limits no one: a person is then offered the service, as before."""

from __future__ import annotations

import re

# Clauses about someone else, or that do not bar anyone.
_NOT_A_LIMIT = re.compile(
    r"\b(?:household|priority|prioriti[sz]ed?|prefer\w*|preference|accepts?|also|except\w*|"
    r"parents?|caregivers?|grand\w*|guardians?|famil(?:y|ies) with|with (?:a |an |one |two |"
    r"their |at least |dependent )?\w*\s*(?:child|children|kids?|youths?|dependents?|"
    r"sons?|daughters?)|(?:child|children|kids?) (?:under|ages?|aged|between)\b.*\b"
    r"(?:in|of) (?:the )?(?:home|family)|hours?|days?|weeks?|months?|mos?\.?|"
    r"allowed|may|unless|if)\b")
# A text that also serves others (families with their children, "all others") limits no
# one's age, whatever a clause of it says.
_OTHERS_TOO = re.compile(
    r"\b(?:famil(?:y|ies) with|with (?:their |her |his )?(?:child|children|kids)|"
    r"children (?:are )?welcome|(?:and|or) (?:their )?children|all others|"
    r"others (?:must|may|are|who|with)|accompanied|defined|definition|"
    r"or (?:a |any )?(?:person|persons|people|individual)s?)\b")
_YEARS = r"\s*(?:years?|yrs?\.?)?(?:\s*of\s*age|\s*old)?"
_AND_OR = r"\s*(?:and|or|&)\s*"
_LOW = (
    re.compile(r"\b(\d{1,2})" + _YEARS + _AND_OR + r"(?:older|over|above|up)\b"),
    re.compile(r"(?<![$\d])\b(\d{1,2})\s*\+"),
    re.compile(r"\bat least (\d{1,2})\s*(?:years?|yrs?\.?)(?:\s*of\s*age|\s*old)?"),
    re.compile(r"\bminimum age(?: is)?:?\s*(\d{1,2})\b"),
    re.compile(r"\b(?:ages?|aged|adults?|seniors?|persons?|people|individuals?) (?:over|above)"
               r" (?:the age of )?(\d{1,2})\b"),
    re.compile(r"\bover (?:the )?age (?:of )?(\d{1,2})\b"),
)
_HIGH = (  # (pattern, what to take off the number: "under 18" is 17 at most)
    (re.compile(r"\b(\d{1,2})" + _YEARS + _AND_OR + r"(?:under|younger|below)\b"), 0),
    (re.compile(r"\b(?:under|younger than|below) (?:the age of |age )?(\d{1,2})\b"), 1),
    (re.compile(r"\bmaximum age(?: is)?:?\s*(\d{1,2})\b"), 0),
)
_RANGE = re.compile(
    r"\b(?:ages?|aged|between(?: the ages?(?: of)?)?)\s*(\d{1,2})" + _YEARS
    + r"\s*(?:-|–|—|to|through|thru|and)\s*(\d{1,2})\b")
_RANGE_YEARS = re.compile(
    r"\b(\d{1,2})\s*(?:-|–|—|to|through)\s*(\d{1,2})\s*(?:years?|yrs?\.?)(?:\s*of\s*age|\s*old)")
# School grades ("Pre-K - 5th grade", "grades 8-12"): the age at the start of the highest
# grade is the highest age (a 12th grader is 17 when the year begins).
_GRADES = re.compile(
    r"\b(?:grades?\s*)?(?:pre-?k|ps|k|\d{1,2}(?:st|nd|rd|th)?)\s*(?:-|–|—|to|through)\s*"
    r"(\d{1,2})(?:st|nd|rd|th)?\s*grades?\b|\bgrades?\s*(?:\d{1,2}|k)\s*(?:-|–|—|to|through)\s*"
    r"(\d{1,2})\b")
GRADE_AGE = 5  # the age at the start of a grade, less the grade
_CLAUSES = re.compile(r"[.;\n]|\\n|,(?!\d)")  # (some exports write a new line as "\\n")
LONGEST_CLAUSE = 100  # characters: a longer clause defines, it does not limit
Ages = tuple[float | None, float | None]


def stated_ages(text: str | None) -> Ages | None:
    """The (lowest, highest) age ``text`` limits a service to, either bound None when open;
    None when it states no limit on the person's age."""
    if not text or _OTHERS_TOO.search(text.lower()):
        return None
    found: list[Ages] = []
    for clause in _CLAUSES.split(text.lower().replace("&", " and ")):
        if not re.search(r"\d", clause) or len(clause) > LONGEST_CLAUSE \
                or _NOT_A_LIMIT.search(clause):
            continue
        ages = _clause_ages(clause)
        if ages is not None:
            found.append(ages)
    if not found:
        return None
    lows, highs = [low for low, _ in found], [high for _, high in found]
    low = None if None in lows else min(x for x in lows if x is not None)
    high = None if None in highs else max(x for x in highs if x is not None)
    return None if low is None and high is None else (low, high)


def _clause_ages(clause: str) -> Ages | None:
    if (m := _GRADES.search(clause)) is not None:
        grade = int(m.group(1) or m.group(2))
        return (None, float(grade + GRADE_AGE)) if grade <= 12 else None
    for pattern in (_RANGE, _RANGE_YEARS):
        if (m := pattern.search(clause)) is not None:
            first, last = float(m.group(1)), float(m.group(2))
            return (first, last) if first < last else None
    low = next((float(m.group(1)) for p in _LOW if (m := p.search(clause))), None)
    high = next((float(m.group(1)) - less for p, less in _HIGH if (m := p.search(clause))),
                None)
    if low is not None and high is not None and low > high:
        return None  # two statements that cannot both hold: read neither
    if low is None and high is None:
        return None
    return low, high
