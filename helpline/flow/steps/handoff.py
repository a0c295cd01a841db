"""``handoff``: ask for an advocate (the app answers: the desk, or its question)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from helpline.events import Handoff
from helpline.flow.base import StepBase, Strict
from helpline.flow.steps import StepKind, Then, register, settled_by_app

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class HandoffSpec(Strict):
    share: list[str] = Field(
        default_factory=list, description="Variables the person agreed to share with an advocate."
    )
    topic: str | None = None
    for_next_shift: bool = Field(
        False, description="The flow asked already: off shift, the person chose to leave a "
        "message for the next shift (otherwise, off shift, the app asks them, in place of "
        "the flow's next question)."
    )


class HandoffStep(StepBase):
    handoff: HandoffSpec


def handoff_of(step: HandoffStep, variables: dict[str, Any]) -> Handoff:
    """The case a handoff step asks for: only the shared variables that hold something."""
    spec = step.handoff
    summary = {name: variables.get(name) for name in spec.share
               if variables.get(name) not in (None, "", [])}
    return Handoff(summary=summary, topic=spec.topic, for_next_shift=spec.for_next_shift)


def run(engine: Engine, result: Result, step: HandoffStep) -> Then:
    result.state.overlay = None
    result.add_effect(handoff_of(step, result.state.vars))
    # Waits: the app answers, then calls advance(); or, when no one can be reached now,
    # asks its own question (an overlay) in place of the next one.
    return Then.WAIT


def label(step: HandoffStep) -> str:
    shared = ", ".join(step.handoff.share)
    return f"hand off to an advocate ({shared})" if shared else "hand off to an advocate"


KIND = register(StepKind("handoff", HandoffStep, run, label, answer=settled_by_app,
                         settled_by_app=True))
