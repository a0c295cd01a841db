"""``call``: run another flow, then go on here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from helpline.flow.base import MAX_DEPTH, StepBase
from helpline.flow.steps import StepKind, Then, register
from helpline.state import Frame

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class CallStep(StepBase):
    call: str = Field(description="Flow to run; this flow continues at 'next' when it ends.")


def run(engine: Engine, result: Result, step: CallStep) -> Then:
    stack = result.state.stack
    if len(stack) >= MAX_DEPTH:
        engine.recover(result)
        return Then.WAIT
    stack.append(Frame(flow=step.call, step=engine.flows[step.call].start))
    return Then.RUN_ON


KIND = register(StepKind("call", CallStep, run, lambda s: f"call {s.call}",
                         calls=lambda s: [s.call]))
