"""``say``: send a text and go on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from helpline.events import Message
from helpline.flow.base import StepBase
from helpline.flow.steps import Path, StepKind, Then, register

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class SayStep(StepBase):
    say: str = Field(description="Text to send.")


def run(engine: Engine, result: Result, step: SayStep) -> Then:
    result.messages.append(Message(engine.fmt(result.state, step.say)))
    return Then.FOLLOW


def texts(step: SayStep) -> list[tuple[Path, str]]:
    return [(("say",), step.say)]


KIND = register(StepKind("say", SayStep, run, lambda s: f"say: {s.say}", texts=texts))
