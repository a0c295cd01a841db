"""A step kind is one module: this test adds one (``echo``: say a variable's value back, then
go on, or start another flow for it) from here alone, and takes it through load, the checks,
the graph, the text extractor and the engine, touching no other file."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import Field

from helpline.events import Inbound, Message
from helpline.flow import steps as kinds
from helpline.flow.base import StepBase
from helpline.flow.engine import Engine
from helpline.flow.graph import mermaid
from helpline.flow.loader import check_flows, load_flows
from helpline.flow.model import json_schema
from helpline.i18n_extract import extract_flows
from helpline.state import State

if TYPE_CHECKING:
    from helpline.flow.engine import Result


class EchoStep(StepBase):
    echo: str = Field(description="The text to say, then the variable's value.")
    var: str
    also: str | None = Field(None, description="A flow to start for it later.")


def run(engine: Engine, result: Result, step: EchoStep) -> kinds.Then:
    said = engine.fmt(result.state, step.echo)
    result.messages.append(Message(f"{said} {result.state.vars.get(step.var, '')}".strip()))
    return kinds.Then.FOLLOW


ECHO = kinds.StepKind(
    "echo", EchoStep, run, lambda s: f"echo {s.var}",
    texts=lambda s: [(("echo",), s.echo)], calls=lambda s: [s.also] if s.also else [],
    call_kind="later")

WELCOME = """\
id: welcome
title: Welcome
start: hi
steps:
  hi:
    say: "Hello."
    flow: main
"""
MAIN = """\
id: main
title: Main
start: name
steps:
  name:
    ask: "What should I call you?"
    save: name
    next: back
  back:
    echo: "You said:"
    var: name
    also: {also}
    next: done
  done:
    end: "Take care."
"""
LATER = """\
id: later
title: Later
start: bye
steps:
  bye:
    end: "Later."
"""


@pytest.fixture
def echo() -> Iterator[kinds.StepKind]:
    kinds.register(ECHO)
    yield ECHO
    kinds.unregister("echo")


def write(folder: Path, also: str = "later") -> Path:
    (folder / "welcome.yaml").write_text(WELCOME)
    (folder / "main.yaml").write_text(MAIN.format(also=also))
    (folder / "later.yaml").write_text(LATER)
    return folder


def test_without_the_kind_registered_the_step_is_refused(tmp_path: Path) -> None:
    _, problems = check_flows(write(tmp_path))
    [problem] = [p for p in problems if p.path.endswith("main.yaml")]
    assert problem.message.startswith("step 'back' has no kind")


def test_a_kind_added_from_a_test_loads_checks_draws_extracts_and_runs(
        tmp_path: Path, echo: kinds.StepKind) -> None:
    flows = load_flows(write(tmp_path))  # load and every check, "later" reached by it
    assert "echo" in str(json_schema())
    (tmp_path / "bad").mkdir()
    _, problems = check_flows(write(tmp_path / "bad", also="nowhere"))
    assert any("nowhere" in p.message for p in problems)  # the flow it starts is checked
    chart = mermaid(flows["main"])
    assert 'step_back["back · echo name"]' in chart
    assert 'step_back -.->|"later"| flow_later' in chart
    found = list(extract_flows(io.BytesIO((tmp_path / "main.yaml").read_bytes()), [], [], {}))
    assert (10, None, "You said:", ["step main.back"]) in found
    engine = Engine(flows)
    state = State()
    said: list[str] = []
    for text in ("hi", "Rae"):
        result = engine.step(state, Inbound(kind="text", at=0.0, text=text))
        state = result.state
        said += [m.text for m in result.messages]
    assert said == ["Hello.", "What should I call you?", "You said: Rae", "Take care."]
