"""``choose``: a question with options (buttons, or a numbered list)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import Field

from helpline.flow.base import VAR_PATTERN, Option, StepBase, Target
from helpline.flow.steps import Path, StepKind, Then, register

if TYPE_CHECKING:
    from helpline.events import Inbound
    from helpline.flow.engine import Engine, Result


class ChooseStep(StepBase):
    choose: str = Field(description="The question shown above the options.")
    options: list[Option] = Field(min_length=1, max_length=12)
    save: str | None = Field(None, pattern=VAR_PATTERN, description="Variable for the value.")
    retry: str | None = Field(None, description="Gentle re-prompt after an answer that fits none.")

    @property
    def conditional(self) -> bool:
        """Whether some option is shown only when its ``if:`` holds."""
        return any(option.when is not None for option in self.options)


def run(engine: Engine, result: Result, step: ChooseStep) -> Then:
    result.state.turn += 1
    result.messages.append(engine.render_choose(result.state, step, facts=result.facts))
    return Then.WAIT


def answer(engine: Engine, result: Result, step: ChooseStep, inbound: Inbound, said: str,
           payload: str) -> None:
    engine.answer_choice(result, step, said, payload)


def targets(step: ChooseStep) -> list[tuple[Path, Target]]:
    found: list[tuple[Path, Target]] = [((), step)] if step.has_target else []
    return found + [(("options", i), option) for i, option in enumerate(step.options)]


def texts(step: ChooseStep) -> Iterable[tuple[Path, str]]:
    yield ("choose",), step.choose
    for i, option in enumerate(step.options):
        yield ("options", i, "label"), option.label
    if step.retry:
        yield ("retry",), step.retry


def words(step: ChooseStep) -> Iterable[tuple[Path, list[str], str]]:
    for i, option in enumerate(step.options):
        yield ("options", i, "keywords"), option.keywords, f'picks the option "{option.label}"'


KIND = register(StepKind(
    "choose", ChooseStep, run, lambda s: f"choose: {s.choose}", answer=answer,
    targets=targets, texts=texts, words=words, saves=lambda s: [s.save] if s.save else [],
    asks=True, needs_target=False))
