"""Conversation state: everything the engine needs to continue, and nothing more."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Value = str | int | float | bool | list[str] | None


class Frame(BaseModel):
    # Immutable: states share frames (State.clone copies the list, not the frames).
    model_config = ConfigDict(extra="forbid", frozen=True)

    flow: str
    step: str


class Overlay(BaseModel):
    """A menu the app shows in place of a waiting lookup step (search results, paging).

    ``choices`` are (label, value) pairs. The engine understands three values itself:
    ``next`` (carry on after the step), ``restart`` (the flow again from its start) and
    ``flow:<id>``; any other value goes back to ``owner`` as an OverlayPick effect."""

    model_config = ConfigDict(extra="forbid")

    owner: str
    text: str
    choices: list[tuple[str, str]]


class State(BaseModel):
    """One person's place in the flows. Stored encrypted; a fresh State means 'nothing'."""

    model_config = ConfigDict(extra="forbid")

    stack: list[Frame] = Field(default_factory=list)
    vars: dict[str, Value] = Field(default_factory=dict)
    turn: int = 0  # grows with every prompt; buttons carry it so stale ones are noticed
    retries: int = 0
    locale: str | None = None
    pending: Literal["erase", "language"] | None = None
    overlay: Overlay | None = None
    seen_welcome: bool = False
    last_seen: float = 0.0

    def clone(self) -> State:
        """A deep copy (what the engine changes is new), about three times faster than
        ``model_copy(deep=True)``, which the engine would otherwise pay on every step."""
        new = self.__copy__()  # pydantic's shallow copy, without copy.copy's dispatch
        fields = new.__dict__
        fields["stack"] = list(self.stack)  # frames are frozen: shared, never changed
        fields["vars"] = {k: (v[:] if isinstance(v, list) else v) for k, v in self.vars.items()}
        if self.overlay is not None:
            overlay = self.overlay.__copy__()
            overlay.__dict__["choices"] = list(self.overlay.choices)
            fields["overlay"] = overlay
        return new

    @property
    def idle(self) -> bool:
        return not self.stack

    @property
    def top(self) -> Frame | None:
        return self.stack[-1] if self.stack else None
