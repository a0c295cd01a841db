"""``end``: end this flow (a last line, or quietly); a calling flow goes on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import Field

from helpline.events import Message
from helpline.flow.base import Strict
from helpline.flow.steps import Path, StepKind, Then, nothing, register

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class EndStep(Strict):
    end: str | bool = Field(description="A last line to send, or true to end quietly.")
    note: str | None = None


def run(engine: Engine, result: Result, step: EndStep) -> Then:
    if isinstance(step.end, str):
        result.messages.append(Message(engine.fmt(result.state, step.end)))
    engine.leave_flow(result)
    return Then.RUN_ON


def texts(step: EndStep) -> Iterable[tuple[Path, str]]:
    if isinstance(step.end, str):
        yield ("end",), step.end


KIND = register(StepKind(
    "end", EndStep, run, lambda s: f"end: {s.end}" if isinstance(s.end, str) else "end",
    targets=nothing, texts=texts, shape=("([", "])"), needs_target=False))
