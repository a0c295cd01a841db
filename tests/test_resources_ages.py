"""Ages a service's eligibility text states (helpline/resources/ages.py), in the forms 211
exports write them, and the clauses that limit no one's age."""

from __future__ import annotations

import pytest

from helpline.resources.ages import stated_ages


@pytest.mark.parametrize(("text", "ages"), [
    ("Ages 18 and older", (18, None)),
    ("Adults 21 or over; photo ID", (21, None)),
    ("Single women 18 years of age and over, sober", (18, None)),
    ("Must be at least 25 years of age", (25, None)),
    ("Minimum age: 60 years", (60, None)),
    ("Seniors (60 or older) living in the county", (60, None)),
    ("An adult over 55", (55, None)),
    ("18+", (18, None)),
    ("Young people 17 & under", (None, 17)),
    ("Children 21 and younger", (None, 21)),
    ("Youth under 18", (None, 17)),
    ("Ages 16-24", (16, 24)),
    ("Between the ages of 18 and 24", (18, 24)),
    ("Girls aged 11 to 17", (11, 17)),
    ("Teens, 13 - 19 years old", (13, 19)),
    ("Pre-K - 5th grade", (None, 10)),
    ("Students in grades 9-12", (None, 17)),
    ("Ages 18 to 24; ages 60 and older", (18, None)),  # the union of what each says
])
def test_a_stated_limit_is_read(text: str, ages: tuple[float | None, float | None]) -> None:
    assert stated_ages(text) == ages


@pytest.mark.parametrize("text", [
    "", "Open to everyone", "Low income; DC residents",
    "Household must include a child under 19",
    "Parents with children between 1 and 17",
    "At least one child under 18 in the home",
    "Priority given to seniors 60 and older",
    "Also accepts youth 16 and 17",
    "Infants 6 weeks - 5 years",
    "At least 12 months sober",
    "Drug and alcohol free for at least 72 hours before intake",  # (not an age of 72)
    "At least 10 days in the county",
    "Ages 18 and older, families with children",  # the children are served too
    "Ages 55 or older with low vision. All others must have a disability",
    "Fee of $10+",
    # a long clause defines whom it covers rather than limiting them
    "Services go to a victim injured in the county during the crime and to a minor under 18 "
    "who saw or heard the crime happen at the scene",
    "Ages 30 to 20",  # a range that cannot be: read as nothing
])
def test_what_limits_no_ones_age(text: str) -> None:
    assert stated_ages(text) is None
