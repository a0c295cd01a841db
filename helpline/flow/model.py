"""The flow language: pydantic v2 models for one flow file.

A flow is a mapping of step ids to steps. Each step is a mapping that holds exactly one
*kind key* (``say``, ``choose``, ``ask``, ``set``, ``branch``, ``call``, ``lookup``,
``handoff``, ``schedule`` or ``end``); the kind key decides which model validates it.
Unknown keys are refused everywhere so that a typo never silently changes a flow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from helpline.flow.patterns import CompiledPattern, PatternError, compile_pattern

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
VAR_PATTERN = r"^[a-z][a-z0-9_]*$"
MAX_DEPTH = 8  # flows nested by calls, the first included; the engine gives up beyond
# What the app answers for ``available:`` / ``unavailable:`` conditions, at every turn:
# advocates on shift now (a desk set up, advocates listed, within office hours); a desk
# that takes messages for the next shift even when no one is on shift; a service
# directory with at least one service; a check-in this person has booked.
FACTS: tuple[str, ...] = ("advocates", "desk", "directory", "checkin")

Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """Where to go next: a step of this flow (``next``) or another flow (``flow``)."""

    next: str | None = Field(None, description="Id of a step in this flow.")
    flow: str | None = Field(None, description="Id of another flow to continue in.")

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if self.next is not None and self.flow is not None:
            raise ValueError("give either 'next' (a step) or 'flow' (another flow), not both")
        return self

    @property
    def has_target(self) -> bool:
        return self.next is not None or self.flow is not None


class _StepBase(Target):
    note: str | None = Field(None, description="A note for translators and other admins.")


class SayStep(_StepBase):
    say: str = Field(description="Text to send.")


class Condition(_Strict):
    """A test of a variable (``var`` with ``equals``, ``in``...), or of something only the
    app knows at this moment: ``available: advocates`` holds when advocates are on shift,
    ``unavailable: directory`` when the service directory is empty (see FACTS)."""

    var: str | None = Field(None, pattern=VAR_PATTERN)
    available: str | None = Field(None, description="Holds when the app has this: "
                                  + ", ".join(FACTS) + ".")
    unavailable: str | None = Field(None, description="Holds when the app lacks this.")
    equals: Scalar | None = None
    not_equals: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    is_set: bool | None = None
    gt: float | None = None
    lt: float | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_subject(self) -> Condition:
        given = [k for k in ("var", "available", "unavailable") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a condition tests one thing: give 'var' (a variable), "
                             "'available' or 'unavailable'")
        tests = (self.equals, self.not_equals, self.in_, self.is_set, self.gt, self.lt)
        if self.var is None and any(t is not None for t in tests):
            raise ValueError("'available' and 'unavailable' take no other test; "
                             "use 'var' to test a variable")
        return self

    @property
    def fact(self) -> str | None:
        return self.available if self.available is not None else self.unavailable


class Option(Target):
    label: str = Field(description="What the person sees on the button or in the list.")
    when: Condition | list[Condition] | None = Field(
        None, alias="if", description="Shown only when this holds (e.g. {available: advocates}),"
        " or all of a list of conditions."
    )
    value: Scalar | None = Field(None, description="Value saved to the step's 'save' variable.")
    keywords: list[str] = Field(default_factory=list, description="Other words that pick it.")
    note: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def conditions(self) -> list[Condition]:
        if self.when is None:
            return []
        return self.when if isinstance(self.when, list) else [self.when]

    @model_validator(mode="after")
    def _needs_target(self) -> Option:
        if not self.has_target:
            raise ValueError("an option needs 'next' (a step) or 'flow' (another flow)")
        return self


class ChooseStep(_StepBase):
    choose: str = Field(description="The question shown above the options.")
    options: list[Option] = Field(min_length=1, max_length=12)
    save: str | None = Field(None, pattern=VAR_PATTERN, description="Variable for the value.")
    retry: str | None = Field(None, description="Gentle re-prompt after an answer that fits none.")

    @property
    def conditional(self) -> bool:
        """Whether some option is shown only when its ``if:`` holds."""
        return any(option.when is not None for option in self.options)


class Validation(_Strict):
    pattern: str | None = Field(None, description="Regular expression the whole answer matches "
                                "(RE2 syntax: no backreferences or lookaround).")
    min: float | None = Field(None, description="Smallest number allowed (a number answer).")
    max: float | None = Field(None, description="Largest number allowed (a number answer).")
    one_of: list[str] | None = Field(None, description="Allowed answers (case-insensitive).")
    max_length: int = Field(500, ge=1, le=4000, description="Longest answer kept.")
    # The pattern compiled at load by RE2 (linear time in the answer); None without one.
    _compiled: CompiledPattern | None = PrivateAttr(None)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compile_pattern(pattern)
            except PatternError as exc:
                raise PydanticCustomError("regex_pattern", str(exc)) from None
        return pattern

    def model_post_init(self, context: Any, /) -> None:
        if self.pattern is not None:
            self._compiled = compile_pattern(self.pattern)

    @property
    def compiled(self) -> CompiledPattern | None:
        return self._compiled


class AskStep(_StepBase):
    ask: str = Field(description="The question.")
    save: str = Field(pattern=VAR_PATTERN, description="Variable that keeps the answer.")
    validate_: Validation | None = Field(None, alias="validate")
    retry: str | None = Field(None, description="Gentle re-prompt after a bad answer.")
    skip: list[str] = Field(
        default_factory=list, description="Words that skip the question, leaving it unanswered."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SetStep(_StepBase):
    set: dict[Annotated[str, Field(pattern=VAR_PATTERN)], Scalar | None]


class BranchCase(Target):
    when: Condition | list[Condition] = Field(alias="if")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def conditions(self) -> list[Condition]:
        return self.when if isinstance(self.when, list) else [self.when]


class BranchStep(_StepBase):
    branch: list[BranchCase] = Field(min_length=1)
    else_: Target | None = Field(None, alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CallStep(_StepBase):
    call: str = Field(description="Flow to run; this flow continues at 'next' when it ends.")


class LookupSpec(_Strict):
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


class LookupStep(_StepBase):
    lookup: LookupSpec


class HandoffSpec(_Strict):
    share: list[str] = Field(
        default_factory=list, description="Variables the person agreed to share with an advocate."
    )
    topic: str | None = None
    for_next_shift: bool = Field(
        False, description="The flow asked already: off shift, the person chose to leave a "
        "message for the next shift (otherwise the app asks them then)."
    )


class HandoffStep(_StepBase):
    handoff: HandoffSpec


class ScheduleSpec(_Strict):
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


class ScheduleStep(_StepBase):
    schedule: ScheduleSpec


class DisappearingStep(_StepBase):
    disappearing: str | int = Field(
        description="Seconds after which new messages in this chat disappear (0 = off), or "
        "the name of a variable holding them. Channels that cannot do it ignore it."
    )


class EndStep(_Strict):
    end: str | bool = Field(description="A last line to send, or true to end quietly.")
    note: str | None = None


Step = Annotated[
    Annotated[SayStep, Tag("say")]
    | Annotated[ChooseStep, Tag("choose")]
    | Annotated[AskStep, Tag("ask")]
    | Annotated[SetStep, Tag("set")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[CallStep, Tag("call")]
    | Annotated[LookupStep, Tag("lookup")]
    | Annotated[HandoffStep, Tag("handoff")]
    | Annotated[ScheduleStep, Tag("schedule")]
    | Annotated[DisappearingStep, Tag("disappearing")]
    | Annotated[EndStep, Tag("end")],
    Discriminator(
        lambda v: step_kind(v),
        custom_error_type="step_kind",
        custom_error_message=(
            "a step needs exactly one of: say, choose, ask, set, branch, call, lookup, "
            "handoff, schedule, disappearing, end"
        ),
    ),
]

STEP_KINDS: tuple[str, ...] = (
    "say", "choose", "ask", "set", "branch", "call", "lookup", "handoff", "schedule",
    "disappearing", "end",
)  # fmt: skip

STEP_MODELS: dict[str, type[BaseModel]] = {
    "say": SayStep,
    "choose": ChooseStep,
    "ask": AskStep,
    "set": SetStep,
    "branch": BranchStep,
    "call": CallStep,
    "lookup": LookupStep,
    "handoff": HandoffStep,
    "schedule": ScheduleStep,
    "disappearing": DisappearingStep,
    "end": EndStep,
}


def step_kind(value: Any) -> str | None:
    """The kind key of a raw or parsed step, or None when there is not exactly one."""
    if isinstance(value, BaseModel):
        for kind, model in STEP_MODELS.items():
            if isinstance(value, model):
                return kind
        return None
    if not isinstance(value, dict):
        return None
    kinds = [k for k in STEP_KINDS if k in value]
    return kinds[0] if len(kinds) == 1 else None


class Flow(_Strict):
    id: str = Field(pattern=ID_PATTERN, description="Unique id; the file name without .yaml.")
    title: str = Field(description="A short name for admins (and for menus).")
    description: str | None = None
    start: str = Field(description="Id of the first step.")
    steps: dict[Annotated[str, Field(pattern=ID_PATTERN)], Step] = Field(min_length=1)

    def step(self, step_id: str) -> AnyStep:
        return self.steps[step_id]


AnyStep = (
    SayStep
    | ChooseStep
    | AskStep
    | SetStep
    | BranchStep
    | CallStep
    | LookupStep
    | HandoffStep
    | ScheduleStep
    | DisappearingStep
    | EndStep
)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one flow file, for editors that autocomplete YAML.

    Beyond what pydantic derives: step ids (the keys of ``steps``) and every place that
    names a step (``start``, ``next``) carry the id pattern, so an editor marks a bad id
    as it is typed; ``available:`` lists what the app can answer."""
    schema = Flow.model_json_schema(by_alias=True)
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
