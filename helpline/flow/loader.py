"""Load a folder of flow files and check them, reporting every problem at once.

Two passes, as Rasa does it: first each file against the schema (with positions, so each
problem names ``file:line:col``), then the graph across all flows (targets, reachability,
dead ends, call cycles). Every message says what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from helpline.flow import steps as kinds
from helpline.flow.components import strongly_connected
from helpline.flow.model import (
    MAX_DEPTH,
    BranchStep,
    EndStep,
    Flow,
    HandoffStep,
    LookupStep,
    Target,
    flow_model,
    step_kind,
)
from helpline.flow.yamlsource import Located, Position, YamlSyntaxError, load_located

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


@dataclass
class FlowSource:
    path: Path
    located: Located
    # Steps that failed the schema; the graph pass sees stand-ins so it can still check
    # the rest of the flow without repeating (or inventing) problems about these.
    placeholders: set[str] = field(default_factory=set)

    def where(self, *keys: str | int) -> Position:
        return self.located.position(tuple(keys))


@dataclass
class FlowSet:
    """Every valid flow by id, with the file each came from."""

    flows: dict[str, Flow] = field(default_factory=dict)
    sources: dict[str, FlowSource] = field(default_factory=dict)
    # Ids (file names) of flow files that could not be read at all: links to them are not
    # reported again as "unknown flow" in every file that uses them.
    broken: set[str] = field(default_factory=set)

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self.flows

    def __getitem__(self, flow_id: str) -> Flow:
        return self.flows[flow_id]

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def text_of(self, ref: str) -> str | None:
        """The (English) text the step ``flow.step`` shows (the one under its kind key: a
        say, a question, a last line), or, for a call, the text of the called flow's first
        step. None when it shows none."""
        flow_id, _, step_id = ref.partition(".")
        for _ in range(MAX_DEPTH):
            flow = self.flows.get(flow_id)
            step = flow.steps.get(step_id) if flow is not None else None
            if step is None:
                return None
            kind = kinds.kind_of(step)
            text = next((t for path, t in kind.texts(step) if path == (kind.key,)), None)
            if text is not None:
                return text
            called = kind.calls(step) if kind.call_kind == "call" else []
            if not called or called[0] not in self.flows:
                return None
            flow_id, step_id = called[0], self.flows[called[0]].start
        return None


class FlowError(Exception):
    """Raised when flows are invalid; ``problems`` holds every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_flows(folder: Path, roots: tuple[str, ...] = ("welcome", "main")) -> FlowSet:
    """Load and check every ``*.yaml`` flow in ``folder``; raise FlowError on any problem.
    ``roots``: the first and the home flow, which every other flow must be reached from."""
    flows, problems = check_flows(folder, roots)
    if problems:
        raise FlowError(problems)
    return flows


def check_flows(folder: Path, roots: tuple[str, ...] = ("welcome", "main")
                ) -> tuple[FlowSet, list[Problem]]:
    from helpline.flow.checks import run_time_checks  # it builds on this module

    problems: list[Problem] = []
    flowset = FlowSet()
    if not folder.is_dir():
        return flowset, [Problem(str(folder), 1, 1, "flows folder not found; "
                                 "set HELPLINE_FLOWS or --flows to a folder of .yaml files")]
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        problems.append(Problem(str(folder), 1, 1, "no flow files (*.yaml) in this folder"))
    for path in files:
        flow, source, file_problems = _load_file(path)
        problems.extend(file_problems)
        if flow is None or source is None:
            flowset.broken.add(path.stem)
            continue
        if flow.id in flowset.flows:
            other = flowset.sources[flow.id].path
            pos = source.where("id")
            problems.append(Problem(str(path), pos.line, pos.column,
                                    f"duplicate flow id '{flow.id}' (also in {other}); "
                                    "give each flow its own id"))
            continue
        flowset.flows[flow.id] = flow
        flowset.sources[flow.id] = source
    problems.extend(_check_graph(flowset))
    problems.extend(run_time_checks(flowset, roots))
    return flowset, sorted(set(problems))


def _load_file(path: Path) -> tuple[Flow | None, FlowSource | None, list[Problem]]:
    name = str(path)
    text, refused = _read_flow_text(path)
    if refused is not None:
        return None, None, [refused]
    try:
        located = load_located(text, max_chars=MAX_FLOW_BYTES)
    except YamlSyntaxError as exc:
        return None, None, [Problem(name, exc.position.line, exc.position.column,
                                    f"{exc.message}; check indentation, colons and quotes here")]
    source = FlowSource(path, located)
    problems: list[Problem] = []
    for dup_path, pos in located.duplicates:
        what = (f"step id '{dup_path[1]}'" if len(dup_path) == 2 and dup_path[0] == "steps"
                else f"key '{dup_path[-1]}'")
        problems.append(Problem(name, pos.line, pos.column,
                                f"duplicate {what}; the later one would silently replace the "
                                "earlier: rename or remove one"))
    if not isinstance(located.data, dict):
        return None, None, [*problems, Problem(name, 1, 1, "a flow file must be a mapping with "
                                               "id, title, start and steps")]
    try:
        flow = flow_model().model_validate(located.data)
    except ValidationError as exc:
        problems.extend(_schema_problems(name, located, exc))
        partial = _partial_flow(located.data, exc)
        if partial is None:
            return None, None, problems
        flow = partial
        source.placeholders = {
            str(e["loc"][1]) for e in exc.errors() if len(e["loc"]) >= 2 and e["loc"][0] == "steps"
        }
    if flow.id != path.stem:
        pos = source.where("id")
        problems.append(Problem(name, pos.line, pos.column,
                                f"flow id '{flow.id}' differs from the file name '{path.name}'; "
                                f"rename the file to '{flow.id}.yaml' or change the id"))
    return flow, source, problems


MAX_FLOW_BYTES = 1024 * 1024  # the bundled flows are a few KB each


def _read_flow_text(path: Path) -> tuple[str, Problem | None]:
    """The text of one flow file, or why it is refused (too large, not UTF-8, unreadable);
    the size is checked before anything is read."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FLOW_BYTES + 1)
    except OSError as exc:
        return "", Problem(name, 1, 1, f"cannot read file: {exc.__class__.__name__}; "
                           "check that it exists and can be read")
    if len(raw) > MAX_FLOW_BYTES:
        return "", Problem(name, 1, 1, f"the file is larger than {MAX_FLOW_BYTES // 1024} KB; "
                           "split it into several flows")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return "", Problem(name, 1, 1, f"cannot read file: {exc.__class__.__name__}; "
                           "save it as UTF-8 text")


def _partial_flow(data: dict[str, object], exc: ValidationError) -> Flow | None:
    """The flow with each broken step replaced by a stand-in that keeps its raw targets."""
    broken = {str(e["loc"][1]) for e in exc.errors()
              if len(e["loc"]) >= 2 and e["loc"][0] == "steps"}
    steps = data.get("steps")
    if not broken or not isinstance(steps, dict):
        return None
    patched = dict(steps)
    for step_id in broken:
        targets = sorted(set(_raw_targets(steps.get(step_id))))
        if targets:
            patched[step_id] = {"choose": "?", "options": [
                {"label": "?", kind: value} for kind, value in targets][:12]}
        else:
            patched[step_id] = {"end": True}
    try:
        return flow_model().model_validate({**data, "steps": patched})
    except ValidationError:
        return None


def _raw_targets(raw: object) -> Iterator[tuple[str, str]]:
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in ("next", "flow") and isinstance(value, str):
                yield key, value
            else:
                yield from _raw_targets(value)
    elif isinstance(raw, list):
        for item in raw:
            yield from _raw_targets(item)


def _strip_tags(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Pydantic puts the union tag after a step id; the YAML has no such level."""
    if len(loc) > 2 and loc[0] == "steps" and loc[2] in kinds.KINDS:
        return (*loc[:2], *loc[3:])
    return loc


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model whose fields are valid at ``loc`` (for suggesting a key), if known."""
    if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[2], str):
        kind = kinds.KINDS.get(loc[2])
        model = None if kind is None else kind.model
        rest = loc[3:-1]
        while model is not None and rest:
            head, *tail = rest
            field_info = _field_by_alias(model, str(head))
            model = _nested_model(field_info)
            rest = tuple(t for t in tail if not isinstance(t, int))
        return model
    if len(loc) == 1:
        return Flow
    return None


def _field_by_alias(model: type[BaseModel], key: str) -> object:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info.annotation
    return None


def _nested_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _describe(loc: tuple[str | int, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "steps":
        return f" in step '{loc[1]}'"
    return ""


def _schema_problems(name: str, located: Located, exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors():
        raw_loc = tuple(error["loc"])
        loc = _strip_tags(raw_loc)
        pos = located.position(loc)
        kind = error["type"]
        where = _describe(loc)
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(raw_loc)
            valid = _keys_of(model) if model else []
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = (f"did you mean '{close[0]}'?" if close
                    else f"valid keys here: {', '.join(valid)}" if valid else "remove it")
            message = f"unknown key '{key}'{where}; {hint}"
        elif kind == "step_kind":
            raw = located.data
            for part in loc:
                raw = raw.get(part) if isinstance(raw, dict) else None
            present = [k for k in kinds.KINDS if isinstance(raw, dict) and k in raw]
            if present:
                message = (f"step '{loc[-1]}' has more than one kind ({', '.join(present)}); "
                           "split it into one step per kind")
            else:
                keys = list(raw) if isinstance(raw, dict) else []
                guesses = [
                    difflib.get_close_matches(str(k), list(kinds.KINDS), n=2, cutoff=0.6)
                    for k in keys
                ]
                guess = next((" or ".join(f"'{x}'" for x in g) for g in guesses if g), None)
                hint = (f"did you mean {guess}?" if guess
                        else "start it with one of: " + ", ".join(kinds.KINDS))
                message = f"step '{loc[-1]}' has no kind; {hint}"
        elif kind == "missing":
            message = f"missing required key '{loc[-1]}'{where}; add it"
            pos = located.position(loc[:-1])
        elif kind == "regex_pattern":
            message = f"pattern{where}: {error['msg']}"
        elif kind == "string_pattern_mismatch":
            message = (f"'{error.get('input')}' is not a valid id{where}; use lower-case letters, "
                       "digits and _ and start with a letter")
        else:
            field_name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
            message = f"{field_name}{where}: {error['msg'].rstrip('.')}; fix the value here"
        problems.append(Problem(name, pos.line, pos.column, message))
    return problems


# ---------------------------------------------------------------- graph checks


def step_targets(step: object) -> list[tuple[tuple[str | int, ...], Target]]:
    """Every target a step can go to, with the key path (inside the step) where it is written."""
    return kinds.targets_of(step)


def called_flows(step: object) -> list[str]:
    return kinds.calls_of(step)


def step_texts(step: object) -> Iterable[tuple[tuple[str | int, ...], str]]:
    """Every user-facing text of a step, with the key path where it is written."""
    return kinds.texts_of(step)


def saved_vars(flows: FlowSet) -> set[str]:
    names: set[str] = set()
    for flow in flows:
        for step in flow.steps.values():
            names.update(kinds.kind_of(step).saves(step))
    return names


# Variables the app itself fills in; flows may show them without setting them.
APP_VARS = frozenset({"channel", "case_handle", "queue_position", "result_count",
                      "checkin_in", "checkin_date"})


def _check_graph(flowset: FlowSet) -> list[Problem]:
    problems: list[Problem] = []
    known_vars = saved_vars(flowset) | APP_VARS
    for flow in flowset:
        source = flowset.sources[flow.id]
        name = str(source.path)

        def at(*keys: str | int, src: FlowSource = source) -> Position:
            return src.where(*keys)

        if flow.start not in flow.steps:
            pos = at("start")
            problems.append(Problem(name, pos.line, pos.column,
                                    _unknown_step(flow.start, flow, "start")))
        for step_id, step in flow.steps.items():
            if step_id in source.placeholders:
                continue
            for keys, target in step_targets(step):
                if target.next is not None and target.next not in flow.steps:
                    pos = at("steps", step_id, *keys, "next")
                    problems.append(Problem(name, pos.line, pos.column,
                                            _unknown_step(target.next, flow, f"step '{step_id}'")))
                if (target.flow is not None and target.flow not in flowset
                        and target.flow not in flowset.broken):
                    pos = at("steps", step_id, *keys, "flow")
                    problems.append(Problem(name, pos.line, pos.column,
                                            _unknown_flow(target.flow, flowset, step_id)))
            for callee in called_flows(step):
                if callee not in flowset and callee not in flowset.broken:
                    key = kinds.kind_of(step).key
                    pos = at("steps", step_id, key)
                    problems.append(Problem(name, pos.line, pos.column,
                                            _unknown_flow(callee, flowset, step_id)))
            if kinds.kind_of(step).needs_target and not step.has_target:
                pos = at("steps", step_id)
                problems.append(Problem(name, pos.line, pos.column,
                                        f"step '{step_id}' has no way forward; add 'next: <step>' "
                                        "or 'flow: <flow>', or finish with an 'end:' step"))
            if isinstance(step, BranchStep):
                cases: list[tuple[tuple[str | int, ...], Target]] = [
                    (("branch", i), c) for i, c in enumerate(step.branch)]
                if step.else_ is not None:
                    cases.append((("else",), step.else_))
                for keys, case in cases:
                    if not case.has_target:
                        pos = at("steps", step_id, *keys)
                        problems.append(Problem(name, pos.line, pos.column,
                                                f"a case of branch '{step_id}' goes nowhere; "
                                                "give it 'next: <step>' or 'flow: <flow>'"))
            if isinstance(step, BranchStep) and step.else_ is None:
                pos = at("steps", step_id, "branch")
                problems.append(Problem(name, pos.line, pos.column,
                                        f"branch '{step_id}' has no 'else'; add 'else: {{next: "
                                        "<step>}' for when no condition holds"))
            for keys, text in step_texts(step):
                for var in PLACEHOLDER.findall(text):
                    if var not in known_vars:
                        pos = at("steps", step_id, *keys)
                        problems.append(Problem(name, pos.line, pos.column,
                                                f"text uses {{{var}}} but no step saves '{var}'; "
                                                "fix the name or save it first"))
        if flow.start in flow.steps:
            reached = _reachable(flow)
            for step_id in flow.steps:
                if step_id not in reached:
                    pos = at("steps", step_id)
                    problems.append(Problem(name, pos.line, pos.column,
                                            f"step '{step_id}' is unreachable from "
                                            f"'{flow.start}'; link to it or remove it"))
    problems.extend(_check_call_cycles(flowset))
    return problems


def _unknown_step(target: str, flow: Flow, where: str) -> str:
    close = difflib.get_close_matches(target, list(flow.steps), n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "add that step or fix the name"
    return f"{where} goes to unknown step '{target}' in flow '{flow.id}'; {hint}"


def _unknown_flow(target: str, flowset: FlowSet, step_id: str) -> str:
    close = difflib.get_close_matches(target, list(flowset.flows), n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "add flows/" + target + ".yaml or fix it"
    return f"step '{step_id}' names unknown flow '{target}'; {hint}"


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        step_id = todo.pop()
        if step_id in seen or step_id not in flow.steps:
            continue
        seen.add(step_id)
        todo.extend(t.next for _, t in step_targets(flow.steps[step_id]) if t.next)
    return seen


def can_finish(flowset: FlowSet) -> set[str]:
    """Flows from whose start some path reaches an end (calls only pass if the callee ends).

    Propagated backwards from the ``end:`` steps, each step and target handled a bounded
    number of times: linear in steps plus targets, with no recursion."""
    good: set[tuple[str, str]] = set()
    finishing: set[str] = set()
    next_preds: dict[tuple[str, str], list[tuple[str, str]]] = {}
    flow_preds: dict[str, list[tuple[str, str]]] = {}  # steps that go to (or call) a flow
    todo: list[tuple[str, str]] = []
    for flow in flowset:
        for step_id, step in flow.steps.items():
            node = (flow.id, step_id)
            if isinstance(step, EndStep):
                todo.append(node)
                continue
            for _, target in step_targets(step):
                if target.next is not None:
                    next_preds.setdefault((flow.id, target.next), []).append(node)
                if target.flow is not None:
                    flow_preds.setdefault(target.flow, []).append(node)
            for callee in kinds.inner_calls(step):
                flow_preds.setdefault(callee, []).append(node)

    def passes(node: tuple[str, str]) -> bool:
        step = flowset[node[0]].steps[node[1]]
        if any(callee not in finishing for callee in kinds.inner_calls(step)):
            return False
        return any((target.next is not None and (node[0], target.next) in good)
                   or (target.flow is not None and target.flow in finishing)
                   for _, target in step_targets(step))

    while todo:
        node = todo.pop()
        if node in good:
            continue
        good.add(node)
        waiting = list(next_preds.get(node, ()))
        if node[1] == flowset[node[0]].start and node[0] not in finishing:
            finishing.add(node[0])
            waiting.extend(flow_preds.get(node[0], ()))
        todo.extend(p for p in waiting if p not in good and passes(p))
    return finishing


def _check_call_cycles(flowset: FlowSet) -> list[Problem]:
    """A call cycle none of whose flows can end: reported once per group of flows that call
    each other (a strongly connected component), at the first of them in file order."""
    calls: dict[str, list[str]] = {f.id: [] for f in flowset}
    for flow in flowset:
        for step in flow.steps.values():
            calls[flow.id].extend(c for c in kinds.inner_calls(step) if c in flowset)
    finishing = can_finish(flowset)
    order = {flow_id: i for i, flow_id in enumerate(calls)}
    problems: list[Problem] = []
    for group in strongly_connected(calls, calls):
        members = set(group)
        start = min(group, key=order.__getitem__)
        if len(group) == 1 and start not in calls[start]:
            continue  # a flow that calls nothing of its own group is not a cycle
        if members & finishing:
            continue
        cycle = _cycle_through(start, calls, members)
        source = flowset.sources[start]
        step_id = next(s for s, st in flowset[start].steps.items()
                       if cycle[1 % len(cycle)] in kinds.inner_calls(st))
        pos = source.where("steps", step_id, kinds.kind_of(flowset[start].steps[step_id]).key)
        chain = " -> ".join([*cycle, cycle[0]])
        problems.append(Problem(str(source.path), pos.line, pos.column,
                                f"call cycle with no exit: {chain}; let one of these flows "
                                "reach an 'end:' step so the calls can return"))
    return problems




def _cycle_through(start: str, calls: dict[str, list[str]], members: set[str]) -> list[str]:
    """The shortest call path from ``start`` back to itself inside its group (breadth first,
    callees in name order): ``[start, ..., last]`` where ``last`` calls ``start``."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(set(calls[node]) & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]  # unreachable for a group with a cycle


__all__ = [
    "FlowError",
    "FlowSet",
    "FlowSource",
    "Problem",
    "can_finish",
    "check_flows",
    "load_flows",
    "step_kind",
    "step_targets",
    "step_texts",
]

_ = (HandoffStep, LookupStep)  # kinds with no extra graph rules yet
