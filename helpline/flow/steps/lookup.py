"""``lookup``: look up services that fit what the person said (the app answers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from helpline.events import SHARED_LOCATION, Lookup
from helpline.flow.base import StepBase, Strict
from helpline.flow.steps import StepKind, Then, register, settled_by_app

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result

CRITERIA = ("needs", "area", "language", "age_group", "gender", "cost", "documents")


class LookupSpec(Strict):
    needs: str | None = Field(None, description="Variable holding the needs chosen.")
    area: str | None = Field(None, description="Variable holding the area.")
    language: str | None = None
    age_group: str | None = None
    gender: str | None = None
    cost: str | None = Field(None, description="Variable holding 'free' if only free fits.")
    documents: str | None = Field(
        None, description="Variable holding 'none' if the person has no ID documents."
    )
    limit: int = Field(3, ge=1, le=10, description="Results per page.")


class LookupStep(StepBase):
    lookup: LookupSpec


def run(engine: Engine, result: Result, step: LookupStep) -> Then:
    state, spec = result.state, step.lookup
    criteria = {key: state.vars.get(name) for key in CRITERIA
                if (name := getattr(spec, key)) is not None}
    state.overlay = None
    near = (result.near if spec.area is not None
            and state.vars.get(spec.area) == SHARED_LOCATION else None)
    result.near = None
    result.add_effect(Lookup(criteria=criteria, limit=spec.limit, near=near))
    return Then.WAIT  # the app shows results (an overlay) or calls advance()


KIND = register(StepKind("lookup", LookupStep, run, lambda s: "look up services",
                         answer=settled_by_app, asks=True, settled_by_app=True))
