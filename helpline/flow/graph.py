"""A Mermaid flowchart of one flow, for admins to see its shape.

Node ids are prefixed (``step_``, ``flow_``), so a step may be called ``end``, ``class``,
``style`` or ``start`` without breaking the chart or merging with the start node; texts are
quoted with Mermaid's entity for ``"``. Edges carry what leads along them: the option's
label, a branch's condition, ``else``, ``call``, ``later``.
"""

from __future__ import annotations

from helpline.flow import steps as kinds
from helpline.flow.loader import called_flows, step_targets
from helpline.flow.model import BranchCase, Condition, Flow, Option

ENTRY = "entry"  # the start node: no step id can be this (step ids get a prefix)


def _label(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # Inside "..." Mermaid takes everything but a double quote; entities are its escape.
    return text.replace("#", "#35;").replace('"', "#quot;")


def _step_node(step_id: str) -> str:
    return f"step_{step_id}"


def _flow_node(flow_id: str) -> str:
    return f"flow_{flow_id}"


def condition_label(cond: Condition) -> str:
    """A condition as people read it: ``age < 18``, ``channel = telegram``."""
    if cond.available is not None:
        return f"{cond.available} available"
    if cond.unavailable is not None:
        return f"no {cond.unavailable}"
    parts: list[str] = []
    var = cond.var or "?"
    if cond.is_set is not None:
        parts.append(f"{var} is set" if cond.is_set else f"{var} is not set")
    if cond.equals is not None:
        parts.append(f"{var} = {cond.equals}")
    if cond.not_equals is not None:
        parts.append(f"{var} ≠ {cond.not_equals}")
    if cond.in_ is not None:
        parts.append(f"{var} in {', '.join(map(str, cond.in_))}")
    if cond.gt is not None:
        parts.append(f"{var} > {cond.gt:g}")
    if cond.lt is not None:
        parts.append(f"{var} < {cond.lt:g}")
    return " and ".join(parts) or var


def _describe(step: object) -> str:
    """What a node says: its kind, and its text or what it does."""
    return kinds.kind_of(step).label(step)


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD",
             f'  {ENTRY}(["{_label(flow.title)}"]) --> {_step_node(flow.start)}']
    flows_shown: set[str] = set()

    def flow_node(flow_id: str) -> str:
        node = _flow_node(flow_id)
        if flow_id in flows_shown:
            return node
        flows_shown.add(flow_id)
        return f'{node}[["flow {_label(flow_id)}"]]'

    for step_id, step in flow.steps.items():
        node = _step_node(step_id)
        text = _label(f"{step_id} · {_describe(step)}", 48)
        kind = kinds.kind_of(step)
        shape = kind.shape
        lines.append(f'  {node}{shape[0]}"{text}"{shape[1]}')
        for keys, target in step_targets(step):
            edge = ""
            if isinstance(target, Option):  # an edge says what leads along it
                label = target.label
                if target.conditions:
                    label = f"{label} (if {' and '.join(map(condition_label, target.conditions))})"
                edge = f'|"{_label(label, 48)}"|'
            elif isinstance(target, BranchCase):
                edge = f'|"{_label(" and ".join(map(condition_label, target.conditions)), 48)}"|'
            elif keys and keys[0] == "else":
                edge = '|"else"|'
            if target.next:
                lines.append(f"  {node} -->{edge} {_step_node(target.next)}")
            elif target.flow:
                lines.append(f"  {node} -->{edge} {flow_node(target.flow)}")
        for callee in called_flows(step):
            arrow = f'-.->|"{kind.call_kind}"|'
            lines.append(f"  {node} {arrow} {flow_node(callee)}")
    return "\n".join(lines) + "\n"
