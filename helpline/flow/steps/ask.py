"""``ask``: a question answered in words of the person's own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field

from helpline.events import Message
from helpline.flow.base import VAR_PATTERN, StepBase, Validation
from helpline.flow.steps import Path, StepKind, Then, register

if TYPE_CHECKING:
    from helpline.events import Inbound
    from helpline.flow.engine import Engine, Result


class AskStep(StepBase):
    ask: str = Field(description="The question.")
    save: str = Field(pattern=VAR_PATTERN, description="Variable that keeps the answer.")
    validate_: Validation | None = Field(None, alias="validate")
    retry: str | None = Field(None, description="Gentle re-prompt after a bad answer.")
    skip: list[str] = Field(
        default_factory=list, description="Words that skip the question, leaving it unanswered."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def run(engine: Engine, result: Result, step: AskStep) -> Then:
    result.state.turn += 1
    result.messages.append(Message(engine.fmt(result.state, step.ask)))
    return Then.WAIT


def answer(engine: Engine, result: Result, step: AskStep, inbound: Inbound, said: str,
           payload: str) -> None:
    engine.answer_ask(result, step, inbound, payload)


def texts(step: AskStep) -> Iterable[tuple[Path, str]]:
    yield ("ask",), step.ask
    if step.retry:
        yield ("retry",), step.retry


KIND = register(StepKind(
    "ask", AskStep, run, lambda s: f"ask: {s.ask} → {s.save}", answer=answer, texts=texts,
    words=lambda s: [(("skip",), s.skip, "skips the question")],
    saves=lambda s: [s.save], asks=True))
