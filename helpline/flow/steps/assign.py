"""``set``: give variables a value and go on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from helpline.flow.base import VAR_PATTERN, Scalar, StepBase
from helpline.flow.steps import StepKind, Then, register

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class SetStep(StepBase):
    set: dict[Annotated[str, Field(pattern=VAR_PATTERN)], Scalar | None]


def run(engine: Engine, result: Result, step: SetStep) -> Then:
    result.state.vars.update(step.set)
    return Then.FOLLOW


KIND = register(StepKind(
    "set", SetStep, run, lambda s: "set " + ", ".join(f"{k} = {v}" for k, v in s.set.items()),
    saves=lambda s: list(s.set)))
