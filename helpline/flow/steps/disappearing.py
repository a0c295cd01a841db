"""``disappearing``: set the disappearing-messages timer of the chat."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from helpline.events import SetDisappearing
from helpline.flow.base import StepBase
from helpline.flow.steps import StepKind, Then, number_of, register

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class DisappearingStep(StepBase):
    disappearing: str | int = Field(
        description="Seconds after which new messages in this chat disappear (0 = off), or "
        "the name of a variable holding them. Channels that cannot do it ignore it."
    )


def run(engine: Engine, result: Result, step: DisappearingStep) -> Then:
    seconds = number_of(step.disappearing, result.state.vars)
    if seconds is not None and 0 <= seconds <= 365 * 86400:
        result.add_effect(SetDisappearing(int(seconds)))
    return Then.FOLLOW


KIND = register(StepKind("disappearing", DisappearingStep, run,
                         lambda s: f"disappearing after {s.disappearing} s"))
