"""Conversation state: everything the engine needs to continue, and nothing more. Plain
data, shared by the engine (which changes it), the app and the store (which keep it), as
``helpline.events`` is.

Plain slotted classes, serialized by hand: the engine copies a state on every step, and a
validating model made that copy (and every attribute set) several times dearer. What
``from_json`` accepts is checked as strictly as a model would check it: a stored state that
does not fit raises ``ValueError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Value = str | int | float | bool | list[str] | None
Pending = Literal["erase", "language"]

_PENDING: tuple[Pending, ...] = ("erase", "language")
_KEYS = frozenset({"stack", "vars", "turn", "retries", "locale", "pending", "overlay",
                   "seen_welcome", "last_seen", "features"})


class Frame(NamedTuple):
    """Where in which flow. Immutable: states share frames (State.clone copies the list)."""

    flow: str
    step: str


@dataclass(frozen=True, slots=True)
class Overlay:
    """A menu the app shows in place of a step that waits for it: a lookup (search
    results, paging) or a handoff that cannot reach anyone now ("leave a message?").

    ``choices`` are (label, value) pairs. The engine understands three values itself:
    ``next`` (carry on after the step), ``restart`` (the flow again from its start) and
    ``flow:<id>``; any other value goes back to ``owner`` as an OverlayPick effect.
    ``words``, when given, holds for each choice the other words (normalized) that pick
    it when typed ("yes" for "Yes, leave a message"), besides its number and its label.
    Immutable, so states share it."""

    owner: str
    text: str
    choices: tuple[tuple[str, str], ...]
    words: tuple[frozenset[str], ...] = ()


@dataclass(slots=True)
class State:
    """One person's place in the flows. Stored encrypted; a fresh State means 'nothing'."""

    stack: list[Frame] = field(default_factory=list)
    vars: dict[str, Value] = field(default_factory=dict)
    turn: int = 0  # grows with every prompt; buttons carry it so stale ones are noticed
    retries: int = 0
    locale: str | None = None
    pending: Pending | None = None
    overlay: Overlay | None = None
    seen_welcome: bool = False
    last_seen: float = 0.0
    # What features keep for themselves about this conversation (the directory's results
    # on screen, the desk's "menu was asked"), by feature name. Flows can neither read nor
    # write these; they are stored (encrypted) with the state, so quick exit and erase
    # drop them with it. The engine only carries them along.
    features: dict[str, dict[str, Value]] = field(default_factory=dict)

    def clone(self) -> State:
        """A copy the engine may change without touching this one (frames and the overlay
        are immutable and shared; the stack, the variables and their lists are new)."""
        return State(list(self.stack), _copy(self.vars), self.turn, self.retries,
                     self.locale, self.pending, self.overlay, self.seen_welcome,
                     self.last_seen,
                     {k: _copy(v) for k, v in self.features.items()} if self.features else {})

    @property
    def idle(self) -> bool:
        return not self.stack

    @property
    def top(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    # ------------------------------------------------------------- storage

    def to_dict(self) -> dict[str, Any]:
        overlay: dict[str, Any] | None = None
        if self.overlay is not None:
            overlay = {"owner": self.overlay.owner, "text": self.overlay.text,
                       "choices": [list(c) for c in self.overlay.choices]}
            if self.overlay.words:
                overlay["words"] = [sorted(w) for w in self.overlay.words]
        data: dict[str, Any] = {
            "stack": [{"flow": f.flow, "step": f.step} for f in self.stack],
            "vars": self.vars, "turn": self.turn, "retries": self.retries,
            "locale": self.locale, "pending": self.pending, "overlay": overlay,
            "seen_welcome": self.seen_welcome, "last_seen": self.last_seen}
        kept = {name: values for name, values in self.features.items() if values}
        if kept:  # written only when a feature keeps something (as states were before)
            data["features"] = kept
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> State:
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"stored state is not JSON: {exc}") from None
        return cls.from_dict(parsed)

    @classmethod
    def from_dict(cls, data: object) -> State:
        if not isinstance(data, dict):
            raise ValueError("stored state is not an object")
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"stored state has unknown keys: {sorted(unknown)}")
        pending = data.get("pending")
        if pending is not None and pending not in _PENDING:
            raise ValueError(f"stored state has an unknown pending question: {pending!r}")
        return cls(
            stack=[_frame(f) for f in _list(data.get("stack", []), "stack")],
            vars=_vars(data.get("vars", {})),
            turn=_int(data.get("turn", 0), "turn"),
            retries=_int(data.get("retries", 0), "retries"),
            locale=_opt_str(data.get("locale"), "locale"),
            pending=pending,
            overlay=_overlay(data.get("overlay")),
            seen_welcome=_bool(data.get("seen_welcome", False), "seen_welcome"),
            last_seen=_float(data.get("last_seen", 0.0), "last_seen"),
            features=_features(data.get("features", {})),
        )


def _copy(values: dict[str, Value]) -> dict[str, Value]:
    return {k: (v[:] if isinstance(v, list) else v) for k, v in values.items()}


def _list(value: object, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"stored state: {name} is not a list")
    return value


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"stored state: {name} is not text")
    return value


def _opt_str(value: object, name: str) -> str | None:
    return None if value is None else _str(value, name)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"stored state: {name} is not a whole number")
    return value


def _float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"stored state: {name} is not a number")
    return float(value)


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"stored state: {name} is not true or false")
    return value


def _frame(value: object) -> Frame:
    if not isinstance(value, dict) or set(value) != {"flow", "step"}:
        raise ValueError("stored state: a stack frame is not {flow, step}")
    return Frame(_str(value["flow"], "flow"), _str(value["step"], "step"))


def _vars(value: object, name: str = "vars") -> dict[str, Value]:
    if not isinstance(value, dict):
        raise ValueError(f"stored state: {name} is not an object")
    out: dict[str, Value] = {}
    for key, item in value.items():
        if isinstance(item, list):
            out[key] = [_str(v, f"{name}.{key}") for v in item]
        elif item is None or isinstance(item, (str, int, float, bool)):
            out[key] = item
        else:
            raise ValueError(f"stored state: {name}.{key} has an unknown type")
    return out


def _features(value: object) -> dict[str, dict[str, Value]]:
    if not isinstance(value, dict):
        raise ValueError("stored state: features is not an object")
    return {_str(name, "a feature's name"): _vars(values, f"features.{name}")
            for name, values in value.items()}


def _overlay(value: object) -> Overlay | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not (
            {"owner", "text", "choices"} <= set(value) <= {"owner", "text", "choices", "words"}):
        raise ValueError("stored state: overlay is not {owner, text, choices[, words]}")
    choices = []
    for pair in _list(value["choices"], "overlay.choices"):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError("stored state: an overlay choice is not [label, value]")
        choices.append((_str(pair[0], "overlay label"), _str(pair[1], "overlay value")))
    words = tuple(frozenset(_str(w, "overlay word") for w in _list(group, "overlay.words"))
                  for group in _list(value.get("words", []), "overlay.words"))
    if words and len(words) != len(choices):
        raise ValueError("stored state: overlay words do not match its choices")
    return Overlay(_str(value["owner"], "overlay.owner"), _str(value["text"], "overlay.text"),
                   tuple(choices), words)
