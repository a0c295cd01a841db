"""What the step kinds share: targets, conditions, options, answer checks, the limits.

Each step kind is a module of ``helpline.flow.steps`` (its model and what it does);
``helpline.flow.model`` puts them together into a flow file's model.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(Strict):
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


class StepBase(Target):
    note: str | None = Field(None, description="A note for translators and other admins.")



class Condition(Strict):
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


class Validation(Strict):
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


class BranchCase(Target):
    when: Condition | list[Condition] = Field(alias="if")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def conditions(self) -> list[Condition]:
        return self.when if isinstance(self.when, list) else [self.when]


