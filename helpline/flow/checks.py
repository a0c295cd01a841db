"""Checks of what would break only at run time, across the steps and flows of a folder.

Each check walks the graph iteratively (no recursion, so a very long flow cannot overflow
Python's stack) and is linear in the steps and links it looks at:

* a loop of steps that never asks anything (two ``say`` steps pointing at each other);
* a ``branch`` on a variable that no step saves (with "did you mean");
* an option ``value:`` on a ``choose`` step without ``save:`` (the value would be lost);
* a flow that calls itself, or calls that nest deeper than the engine allows;
* flows that nothing reaches from the first or the home flow.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from helpline.flow import steps as kinds
from helpline.flow.components import strongly_connected
from helpline.flow.loader import (
    APP_VARS,
    FlowSet,
    Problem,
    called_flows,
    saved_vars,
    step_targets,
)
from helpline.flow.model import (
    FACTS,
    MAX_DEPTH,
    BranchStep,
    ChooseStep,
    Condition,
    Flow,
)

N = TypeVar("N", bound=Hashable)

# Flows the app itself may open, whatever links to them: the resource browser's "Talk to a
# person" opens the advocate flow.
APP_FLOWS = frozenset({"advocate"})




def run_time_checks(flowset: FlowSet, roots: Sequence[str] = ("welcome", "main")
                    ) -> list[Problem]:
    problems: list[Problem] = []
    problems.extend(silent_loops(flowset))
    problems.extend(unknown_branch_vars(flowset))
    problems.extend(values_without_save(flowset))
    problems.extend(unknown_facts(flowset))
    problems.extend(call_depth(flowset, roots))
    problems.extend(unreached_flows(flowset, roots))
    return problems


def _problem(flowset: FlowSet, flow_id: str, keys: tuple[str | int, ...], message: str
             ) -> Problem:
    source = flowset.sources[flow_id]
    pos = source.where(*keys)
    return Problem(str(source.path), pos.line, pos.column, message)


# ---------------------------------------------------------------- loops that never wait


Node = tuple[str, str]  # (flow, step)


def _waits(flowset: FlowSet, flow: Flow, step_id: str, asking: set[str]) -> bool:
    step = flow.steps[step_id]
    kind = kinds.kind_of(step)
    if kind.asks:
        return True
    return kind.call_kind == "call" and any(callee in asking for callee in kind.calls(step))


def silent_loops(flowset: FlowSet) -> list[Problem]:
    """Steps that can go round in a circle, with no way out, without asking anything: at
    run time the engine stops after 100 steps with "Something went wrong"."""
    # Flows in which something asks (a call of one of them may wait for the person).
    asking = {flow.id for flow in flowset
              if any(kinds.kind_of(s).asks for s in flow.steps.values())}
    edges: dict[Node, list[Node]] = {}
    for flow in flowset:
        source = flowset.sources[flow.id]
        for step_id in flow.steps:
            if step_id in source.placeholders or _waits(flowset, flow, step_id, asking):
                continue
            out: list[Node] = []
            for _, target in step_targets(flow.steps[step_id]):
                if target.next is not None and target.next in flow.steps:
                    out.append((flow.id, target.next))
                elif target.flow is not None and target.flow in flowset:
                    out.append((target.flow, flowset[target.flow].start))
            edges[(flow.id, step_id)] = out
    problems: list[Problem] = []
    for component in strongly_connected(list(edges), edges):
        members = set(component)
        if len(component) == 1 and component[0] not in edges.get(component[0], ()):
            continue  # a single step that does not go to itself
        if any(t not in members for n in component for t in edges.get(n, ())):
            continue  # a branch can leave the circle: it depends on the variables
        first = min(component)
        order = _cycle_order(first, edges, members)
        chain = " -> ".join(f"{f}.{s}" if f != first[0] else s for f, s in [*order, first])
        what = (f"step '{first[1]}' leads back to itself" if len(component) == 1
                else f"steps {chain} go round in a circle")
        problems.append(_problem(
            flowset, first[0], ("steps", first[1]),
            f"{what} without asking anything (the person would get the same messages again "
            "and again); make one of them a 'choose' or 'ask' step, or lead one out"))
    return problems


def _cycle_order(first: Node, edges: Mapping[Node, Sequence[Node]], members: set[Node]
                 ) -> list[Node]:
    """One way round the circle from ``first``, for the message."""
    order = [first]
    seen = {first}
    node = first
    while True:
        nxt = next((t for t in edges.get(node, ()) if t in members), None)
        if nxt is None or nxt in seen:
            return order
        order.append(nxt)
        seen.add(nxt)
        node = nxt


# ---------------------------------------------------------------- variables and values


def unknown_branch_vars(flowset: FlowSet) -> list[Problem]:
    known = saved_vars(flowset) | APP_VARS
    choices = sorted(known)
    problems: list[Problem] = []
    for flow in flowset:
        for step_id, step in flow.steps.items():
            if not isinstance(step, BranchStep):
                continue
            for i, case in enumerate(step.branch):
                listed = isinstance(case.when, list)
                for j, cond in enumerate(case.conditions):
                    if cond.var is None or cond.var in known:
                        continue
                    keys: tuple[str | int, ...] = (("steps", step_id, "branch", i, "if", j, "var")
                                                   if listed else
                                                   ("steps", step_id, "branch", i, "if", "var"))
                    close = difflib.get_close_matches(cond.var, choices, n=1, cutoff=0.6)
                    hint = (f"did you mean '{close[0]}'?" if close
                            else "save it first with 'save:' or 'set:', or fix the name")
                    problems.append(_problem(
                        flowset, flow.id, keys,
                        f"branch '{step_id}' tests '{cond.var}' but no step saves it, so "
                        f"this condition never holds; {hint}"))
    return problems


def values_without_save(flowset: FlowSet) -> list[Problem]:
    problems: list[Problem] = []
    for flow in flowset:
        for step_id, step in flow.steps.items():
            if not isinstance(step, ChooseStep) or step.save is not None:
                continue
            for i, option in enumerate(step.options):
                if option.value is not None:
                    problems.append(_problem(
                        flowset, flow.id, ("steps", step_id, "options", i, "value"),
                        f"option '{option.label}' of step '{step_id}' has a 'value' but the "
                        "step has no 'save', so the value is lost; add 'save: <variable>' "
                        "to the step or remove the value"))
    return problems


def unknown_facts(flowset: FlowSet) -> list[Problem]:
    """``available:`` names something the app answers; anything else never holds. An
    option's ``if:`` on a variable needs a step that saves it."""
    known = saved_vars(flowset) | APP_VARS
    problems: list[Problem] = []
    for flow in flowset:
        for step_id, step in flow.steps.items():
            conditions: list[tuple[tuple[str | int, ...], Condition]] = []
            if isinstance(step, BranchStep):
                for i, case in enumerate(step.branch):
                    listed = isinstance(case.when, list)
                    for j, cond in enumerate(case.conditions):
                        if cond.fact is not None:
                            keys: tuple[str | int, ...] = (
                                ("branch", i, "if", j, _fact_key(cond)) if listed
                                else ("branch", i, "if", _fact_key(cond)))
                            conditions.append((keys, cond))
            elif isinstance(step, ChooseStep):
                for i, option in enumerate(step.options):
                    listed = isinstance(option.when, list)
                    for j, when in enumerate(option.conditions):
                        at: tuple[str | int, ...] = (("options", i, "if", j) if listed
                                                     else ("options", i, "if"))
                        if when.fact is not None:
                            conditions.append(((*at, _fact_key(when)), when))
                        elif when.var is not None and when.var not in known:
                            problems.append(_problem(
                                flowset, flow.id, ("steps", step_id, *at, "var"),
                                f"option '{option.label}' of step '{step_id}' depends on "
                                f"'{when.var}' but no step saves it; fix the name or save it "
                                "first"))
            for keys, tested in conditions:
                fact = tested.fact
                if fact is None or fact in FACTS:
                    continue
                close = difflib.get_close_matches(fact, FACTS, n=1, cutoff=0.5)
                hint = (f"did you mean '{close[0]}'?" if close
                        else "use one of: " + ", ".join(FACTS))
                problems.append(_problem(flowset, flow.id, ("steps", step_id, *keys),
                                         f"'{_fact_key(tested)}: {fact}' in step '{step_id}' "
                                         f"is not something the app can answer; {hint}"))
    return problems


def _fact_key(cond: Condition) -> str:
    return "available" if cond.available is not None else "unavailable"


# ---------------------------------------------------------------- calls and reach


@dataclass(frozen=True)
class _Link:
    target: str
    call: bool  # a call (one frame deeper) or a jump (the same frame)
    later: bool  # a scheduled flow: starts afresh when it is due
    step: str
    key: str


def _links(flowset: FlowSet, flow: Flow) -> list[_Link]:
    links: list[_Link] = []
    for step_id, step in flow.steps.items():
        for callee in called_flows(step):
            if callee in flowset:
                kind = kinds.kind_of(step)
                links.append(_Link(callee, kind.call_kind == "call", kind.call_kind == "later",
                                   step_id, kind.key))
        for _, target in step_targets(step):
            if target.flow is not None and target.flow in flowset:
                links.append(_Link(target.flow, False, False, step_id, "flow"))
    return links


def call_depth(flowset: FlowSet, roots: Sequence[str]) -> list[Problem]:
    """A flow that calls itself; calls that nest deeper than the engine allows."""
    problems: list[Problem] = []
    links = {flow.id: _links(flowset, flow) for flow in flowset}
    for flow_id, out in links.items():
        for link in out:
            if link.call and link.target == flow_id:
                problems.append(_problem(
                    flowset, flow_id, ("steps", link.step, "call"),
                    f"flow '{flow_id}' calls itself in step '{link.step}'; every call nests "
                    "one level deeper until the engine gives up: go back to its start with "
                    "'next:' instead"))
    # Each component of flows that reach one another: a call inside one nests deeper on
    # every round (a called flow that goes back with 'flow:' instead of ending).
    now = {f: [x.target for x in out if not x.later] for f, out in links.items()}
    components = strongly_connected(list(now), now)
    component_of = {f: i for i, comp in enumerate(components) for f in comp}
    unbounded: set[int] = set()
    jumps = {f: [x.target for x in out if not x.call and not x.later]
             for f, out in links.items()}
    for i, comp in enumerate(components):
        calls_in = [(f, x) for f in comp for x in links[f]
                    if x.call and not x.later and component_of[x.target] == i]
        if not calls_in:
            continue
        unbounded.add(i)
        # Only calls, round and round: the call-cycle check's business. A 'flow:' jump
        # back into a caller is this check's.
        if not any(component_of[t] == i for f in comp for t in jumps[f]):
            continue
        f, link = next(((f, x) for f, x in calls_in if x.target != f), calls_in[0])
        if link.target == f:
            continue  # a self-call, reported above
        back = next(iter(_path(now, link.target, f)))
        problems.append(_problem(
            flowset, f, ("steps", link.step, "call"),
            f"flow '{f}' calls '{link.target}', and '{link.target}' leads back to '{f}' "
            f"({back}) instead of ending; each round nests one level deeper until the "
            f"engine gives up at {MAX_DEPTH}: let '{link.target}' finish with 'end:' so "
            "the call returns"))
    # Deepest nesting from each root: components are found callees first, so one pass in
    # that order knows every callee's depth before its callers'.
    deepest: dict[int, int] = {}
    via: dict[int, tuple[str, _Link] | None] = {}
    for i, comp in enumerate(components):
        best, best_via = 1, None
        for f in comp:
            for link in links[f]:
                j = component_of[link.target]
                if link.later or j == i or j in unbounded:
                    continue
                depth = deepest[j] + (1 if link.call else 0)
                if depth > best:
                    best, best_via = depth, (f, link)
        deepest[i] = best
        via[i] = best_via
    for root in roots:
        if root not in component_of or component_of[root] in unbounded:
            continue
        i = component_of[root]
        if deepest[i] <= MAX_DEPTH:
            continue
        chain = [root]
        first_call: tuple[str, _Link] | None = None
        step_via = via[i]
        while step_via is not None:
            f, link = step_via
            if link.call and first_call is None:
                first_call = (f, link)
            chain.append(link.target)
            step_via = via[component_of[link.target]]
        where_flow: str = root
        keys: tuple[str | int, ...] = ("id",)
        if first_call is not None:
            where_flow, keys = first_call[0], ("steps", first_call[1].step, "call")
        problems.append(_problem(
            flowset, where_flow, keys,
            f"calls from '{root}' nest {deepest[i]} deep ({' -> '.join(chain)}); the engine "
            f"allows {MAX_DEPTH}: continue with 'flow:' instead of 'call:' where the flow "
            "need not come back"))
    return problems


def _path(edges: Mapping[str, Sequence[str]], start: str, goal: str) -> Iterable[str]:
    """A shortest chain of links from ``start`` to ``goal``, as text (breadth first)."""
    parent: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        nxt_round: list[str] = []
        for node in todo:
            if node == goal:
                chain = [node]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])  # type: ignore[arg-type]
                yield " -> ".join(reversed(chain))
                return
            for t in edges.get(node, ()):
                if t not in parent:
                    parent[t] = node
                    nxt_round.append(t)
        todo = nxt_round
    yield f"{start} -> {goal}"


def unreached_flows(flowset: FlowSet, roots: Sequence[str]) -> list[Problem]:
    present = [r for r in roots if r in flowset]
    if not present or flowset.broken:
        # Nothing to measure from; or a file that could not be read may be what links to
        # the others (its own error is the one to fix first).
        return []
    reached = set(present) | {f for f in APP_FLOWS if f in flowset}
    todo = list(reached)
    while todo:
        flow_id = todo.pop()
        for link in _links(flowset, flowset[flow_id]):
            if link.target not in reached:
                reached.add(link.target)
                todo.append(link.target)
    names = " or ".join(f"'{r}'" for r in present)
    return [_problem(flowset, flow.id, ("id",),
                     f"flow '{flow.id}' is never reached from {names}; link to it (a menu "
                     f"option with 'flow: {flow.id}', or 'call: {flow.id}') or remove the file")
            for flow in flowset if flow.id not in reached]
