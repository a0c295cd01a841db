"""``branch``: go where the first condition that holds says."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field

from helpline.flow.base import BranchCase, StepBase, Target
from helpline.flow.conditions import branch_target
from helpline.flow.steps import Path, StepKind, Then, register

if TYPE_CHECKING:
    from helpline.flow.engine import Engine, Result


class BranchStep(StepBase):
    branch: list[BranchCase] = Field(min_length=1)
    else_: Target | None = Field(None, alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def run(engine: Engine, result: Result, step: BranchStep) -> Then:
    engine.follow(result, branch_target(step.branch, step.else_, result.state.vars,
                                        result.facts))
    return Then.RUN_ON


def targets(step: BranchStep) -> list[tuple[Path, Target]]:
    found: list[tuple[Path, Target]] = [((), step)] if step.has_target else []
    found += [(("branch", i), case) for i, case in enumerate(step.branch)]
    if step.else_ is not None:
        found.append((("else",), step.else_))
    return found


KIND = register(StepKind("branch", BranchStep, run, lambda s: "branch", targets=targets,
                         shape=("{{", "}}"), needs_target=False))
