"""Conditions of branches and options: a variable's value, or what the app has now."""

from __future__ import annotations

from helpline.flow.base import BranchCase, Condition, Target
from helpline.flow.words import normalize
from helpline.state import Value


def branch_target(cases: list[BranchCase], otherwise: Target | None,
                  variables: dict[str, Value], facts: frozenset[str] | None = None
                  ) -> Target:
    for case in cases:
        if all(holds(c, variables, facts) for c in case.conditions):
            return case
    return otherwise or Target()


def holds(cond: Condition, variables: dict[str, Value],
           facts: frozenset[str] | None = None) -> bool:
    if cond.var is None:  # available / unavailable: what the app told this turn
        has = facts is None or cond.fact in facts
        return has if cond.available is not None else not has
    value = variables.get(cond.var)
    if cond.is_set is not None and (value not in (None, "", [])) != cond.is_set:
        return False
    if cond.equals is not None and not same(value, cond.equals):
        return False
    if cond.not_equals is not None and same(value, cond.not_equals):
        return False
    if cond.in_ is not None and not any(same(value, v) for v in cond.in_):
        return False
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if cond.gt is not None and (number is None or not number > cond.gt):
        return False
    return not (cond.lt is not None and (number is None or not number < cond.lt))


def same(value: Value, wanted: object) -> bool:
    if isinstance(value, list):
        return any(same(v, wanted) for v in value)
    if isinstance(value, str) and isinstance(wanted, str):
        return normalize(value) == normalize(wanted)
    return value == wanted
