"""Step kinds, one module each: the kind's model and everything that depends on its kind
(where it can lead, its texts, the flows it calls, its label in the graph, what it does
when run, how it takes an answer if it waits). ``KINDS`` is the one registry: the flow
model, the JSON Schema, the loader's checks, the graph, the text extractor and the engine
all read it, so a new kind is one module that calls ``register``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from helpline.flow.base import Target

if TYPE_CHECKING:
    from helpline.events import Inbound
    from helpline.flow.engine import Engine, Result

Path = tuple[str | int, ...]  # where inside a step something is written


class Then(Enum):
    """What the engine does after running a step."""

    FOLLOW = "follow"  # go on to the step's own target (``next`` / ``flow`` / the flow's end)
    RUN_ON = "run on"  # the step moved the stack itself: run the step now on top
    WAIT = "wait"  # stop: the step waits (for the person, or for the app)


Run = Callable[["Engine", "Result", Any], Then]
# How a waiting step takes the next event: (engine, result, step, inbound, said, payload).
Answer = Callable[["Engine", "Result", Any, "Inbound", str, str], None]


def own_target(step: Any) -> list[tuple[Path, Target]]:
    return [((), step)] if isinstance(step, Target) and step.has_target else []


def nothing(step: Any) -> list[Any]:
    return []


def carry_on(engine: Engine, result: Result, step: Any, inbound: Inbound, said: str,
             payload: str) -> None:
    """A step that waits for nothing: an event finds the person there only after a crash
    mid-turn; carry on from it."""
    engine.advance(result)


def settled_by_app(engine: Engine, result: Result, step: Any, inbound: Inbound, said: str,
                   payload: str) -> None:
    """A step the app settles: its menu in front of the step takes the answer; without
    one (a crash before the app answered), carry on."""
    overlay = result.state.overlay
    if overlay is not None:
        engine.answer_overlay(result, overlay, said, payload)
    else:
        engine.advance(result)


@dataclass(frozen=True)
class StepKind:
    key: str  # the kind key, in YAML (``say:``, ``choose:``...)
    model: type[BaseModel]
    run: Run
    label: Callable[[Any], str]  # what its node in the graph says
    answer: Answer = carry_on
    targets: Callable[[Any], list[tuple[Path, Target]]] = own_target
    texts: Callable[[Any], Iterable[tuple[Path, str]]] = nothing  # what a person reads
    # Words a person may type here, each list with what they do (for translators).
    words: Callable[[Any], Iterable[tuple[Path, list[str], str]]] = nothing
    calls: Callable[[Any], list[str]] = nothing  # flows it starts
    call_kind: Literal["call", "later"] = "call"  # run inside this one, or later on its own
    saves: Callable[[Any], Iterable[str]] = nothing  # variables it fills in
    asks: bool = False  # it waits for the person: a loop through it is not a silent loop
    needs_target: bool = True  # its own ``next`` / ``flow`` is its way forward
    settled_by_app: bool = False  # it waits for the app (results, the desk's answer)
    shape: tuple[str, str] = ("[", "]")  # its node's shape in the graph


KINDS: dict[str, StepKind] = {}
_BY_MODEL: dict[type[BaseModel], StepKind] = {}
version = [0]  # moves at every registration: the flow model is built again


def register(kind: StepKind) -> StepKind:
    """Add a step kind (a kind key or model registered twice is an error)."""
    if kind.key in KINDS or kind.model in _BY_MODEL:
        raise ValueError(f"step kind '{kind.key}' is registered already")
    KINDS[kind.key] = kind
    _BY_MODEL[kind.model] = kind
    version[0] += 1
    return kind


def unregister(key: str) -> None:
    """Remove a kind again (tests that add one of their own)."""
    kind = KINDS.pop(key)
    del _BY_MODEL[kind.model]
    version[0] += 1


def kind_of(step: object) -> StepKind:
    """The kind of a parsed step (exact types: step models are never subclassed)."""
    return _BY_MODEL[type(step)]  # type: ignore[index]


def texts_of(step: object) -> Iterable[tuple[Path, str]]:
    return kind_of(step).texts(step)


def targets_of(step: object) -> list[tuple[Path, Target]]:
    return kind_of(step).targets(step)


def calls_of(step: object) -> list[str]:
    return kind_of(step).calls(step)


def inner_calls(step: object) -> list[str]:
    """The flows a step runs inside the current one (and goes on after)."""
    kind = kind_of(step)
    return kind.calls(step) if kind.call_kind == "call" else []


def number_of(spec: str | float, variables: dict[str, Any]) -> float | None:
    """A number written in the flow, or held by the variable it names."""
    value: object = variables.get(spec) if isinstance(spec, str) else spec
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None
