"""``schedule``: book (or cancel) a check-in: a flow that starts later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from helpline.events import CancelSchedules, Schedule
from helpline.flow.base import StepBase, Strict
from helpline.flow.steps import StepKind, Then, number_of, register

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class ScheduleSpec(Strict):
    kind: Literal["checkin"] = "checkin"
    after_hours: str | float | None = Field(
        None, description="Hours from now, or the name of a variable holding them."
    )
    flow: str | None = Field(None, description="Flow to run when it is due.")
    cancel: bool = Field(False, description="Cancel the check-in booked before, if any.")

    @model_validator(mode="after")
    def _book_or_cancel(self) -> ScheduleSpec:
        if self.cancel and (self.after_hours is not None or self.flow is not None):
            raise ValueError("'cancel: true' takes no 'after_hours' or 'flow'")
        if not self.cancel and (self.after_hours is None or self.flow is None):
            raise ValueError("give 'after_hours' and 'flow' (or 'cancel: true')")
        return self


class ScheduleStep(StepBase):
    schedule: ScheduleSpec


def run(engine: Engine, result: Result, step: ScheduleStep) -> Then:
    plan = step.schedule
    # What is shown later in this turn already counts the change (the app carries the
    # effect out before anything is sent).
    if plan.cancel:
        result.add_effect(CancelSchedules())
        result.facts = None if result.facts is None else result.facts - {"checkin"}
    elif plan.after_hours is not None and plan.flow is not None:
        hours = number_of(plan.after_hours, result.state.vars)
        if hours is not None and 0 < hours <= 366 * 24:
            result.add_effect(Schedule(plan.kind, hours, plan.flow))
            if result.facts is not None:
                result.facts = result.facts | {"checkin"}
    return Then.FOLLOW


def label(step: ScheduleStep) -> str:
    spec = step.schedule
    return "cancel check-ins" if spec.cancel else (
        f"schedule {spec.flow} after {spec.after_hours} h")


KIND = register(StepKind(
    "schedule", ScheduleStep, run, label, call_kind="later",
    calls=lambda s: [s.schedule.flow] if s.schedule.flow is not None else []))
