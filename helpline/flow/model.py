"""The flow language: pydantic v2 models for one flow file.

A flow is a mapping of step ids to steps. Each step is a mapping that holds exactly one
*kind key* (``say``, ``choose``, ``ask``, ``set``, ``branch``, ``call``, ``lookup``,
``handoff``, ``schedule``, ``disappearing`` or ``end``); the kind key decides which model
validates it. The kinds are modules of ``helpline.flow.steps``, each registered there; the
model of a flow file is built from that registry (again, when a kind is added). Unknown keys
are refused everywhere so that a typo never silently changes a flow.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Annotated, Any

from pydantic import BaseModel, Discriminator, Field, Tag, create_model

from helpline.flow import steps as _registry
from helpline.flow.base import (
    FACTS,
    ID_PATTERN,
    MAX_DEPTH,
    VAR_PATTERN,
    BranchCase,
    Condition,
    Option,
    Scalar,
    StepBase,
    Strict,
    Target,
    Validation,
)

# The built-in kinds, registered in this order (the order error messages list them in).
from helpline.flow.steps.say import SayStep  # isort: skip
from helpline.flow.steps.choose import ChooseStep  # isort: skip
from helpline.flow.steps.ask import AskStep  # isort: skip
from helpline.flow.steps.assign import SetStep  # isort: skip
from helpline.flow.steps.branch import BranchStep  # isort: skip
from helpline.flow.steps.call import CallStep  # isort: skip
from helpline.flow.steps.lookup import LookupSpec, LookupStep  # isort: skip
from helpline.flow.steps.handoff import HandoffSpec, HandoffStep  # isort: skip
from helpline.flow.steps.schedule import ScheduleSpec, ScheduleStep  # isort: skip
from helpline.flow.steps.disappearing import DisappearingStep  # isort: skip
from helpline.flow.steps.end import EndStep  # isort: skip

# Any parsed step: the built-in kinds by name, for the code that treats one of them
# specially; a kind registered later is a BaseModel of its own.
AnyStep = (SayStep | ChooseStep | AskStep | SetStep | BranchStep | CallStep | LookupStep
           | HandoffStep | ScheduleStep | DisappearingStep | EndStep)


def step_kind(value: Any) -> str | None:
    """The kind key of a raw or parsed step, or None when there is not exactly one."""
    if isinstance(value, BaseModel):
        kind = _registry._BY_MODEL.get(type(value))
        return None if kind is None else kind.key
    if not isinstance(value, dict):
        return None
    kinds = [k for k in _registry.KINDS if k in value]
    return kinds[0] if len(kinds) == 1 else None


def step_kinds() -> tuple[str, ...]:
    return tuple(_registry.KINDS)


def _step_union() -> Any:
    tagged = [Annotated[kind.model, Tag(kind.key)] for kind in _registry.KINDS.values()]
    return Annotated[
        reduce(or_, tagged),
        Discriminator(step_kind, custom_error_type="step_kind",
                      custom_error_message="a step needs exactly one of: "
                      + ", ".join(_registry.KINDS)),
    ]


class Flow(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Unique id; the file name without .yaml.")
    title: str = Field(description="A short name for admins (and for menus).")
    description: str | None = None
    start: str = Field(description="Id of the first step.")
    steps: dict[Annotated[str, Field(pattern=ID_PATTERN)], Any] = Field(min_length=1)

    def step(self, step_id: str) -> AnyStep:
        step: AnyStep = self.steps[step_id]
        return step


_built: dict[int, type[Flow]] = {}


def flow_model() -> type[Flow]:
    """The model of a flow file with every kind registered now."""
    version = _registry.version[0]
    model = _built.get(version)
    if model is None:
        steps: Any = dict[Annotated[str, Field(pattern=ID_PATTERN)], _step_union()]  # type: ignore[misc]
        model = create_model("Flow", __base__=Flow, __module__=__name__,
                             steps=(steps, Field(min_length=1)))
        _built.clear()
        _built[version] = model
    return model


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one flow file, for editors that autocomplete YAML.

    Beyond what pydantic derives: step ids (the keys of ``steps``) and every place that
    names a step (``start``, ``next``) carry the id pattern, so an editor marks a bad id
    as it is typed; ``available:`` lists what the app can answer."""
    schema = flow_model().model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "helpline flow"
    steps = schema["properties"]["steps"]
    steps["propertyNames"] = {"pattern": ID_PATTERN}
    steps["additionalProperties"] = False
    schema["properties"]["start"]["pattern"] = ID_PATTERN
    for definition in schema["$defs"].values():
        props = definition.get("properties", {})
        for key in ("next", "flow", "call"):
            if key in props:
                _add_pattern(props[key])
        for key in ("available", "unavailable"):
            if key in props:
                props[key] = {**props[key], "anyOf": [{"enum": list(FACTS)}, {"type": "null"}]}
    return schema


def _add_pattern(prop: dict[str, Any]) -> None:
    """``{"anyOf": [{"type": "string"}, {"type": "null"}]}`` or ``{"type": "string"}``."""
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "string":
            option["pattern"] = ID_PATTERN


__all__ = ["FACTS", "ID_PATTERN", "MAX_DEPTH", "VAR_PATTERN", "AnyStep", "AskStep",
           "BranchCase", "BranchStep", "CallStep", "ChooseStep", "Condition",
           "DisappearingStep", "EndStep", "Flow", "HandoffSpec", "HandoffStep", "LookupSpec",
           "LookupStep", "Option", "SayStep", "Scalar", "ScheduleSpec", "ScheduleStep",
           "SetStep", "StepBase", "Target", "Validation", "flow_model", "json_schema",
           "step_kind", "step_kinds"]
