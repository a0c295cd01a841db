"""A Mermaid flowchart of one flow, for admins to see its shape."""

from __future__ import annotations

from helpline.flow.loader import called_flows, step_targets
from helpline.flow.model import (
    AskStep,
    BranchStep,
    CallStep,
    ChooseStep,
    EndStep,
    Flow,
    SayStep,
)


def _label(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace('"', "'")


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f'  start(["{_label(flow.title)}"]) --> {flow.start}']
    for step_id, step in flow.steps.items():
        kind = type(step).__name__.removesuffix("Step").lower()
        if isinstance(step, SayStep):
            text = step.say
        elif isinstance(step, ChooseStep):
            text = step.choose
        elif isinstance(step, AskStep):
            text = step.ask
        elif isinstance(step, EndStep):
            text = step.end if isinstance(step.end, str) else "end"
        else:
            text = kind
        shape = ("{{", "}}") if isinstance(step, BranchStep) else (
            ("([", "])") if isinstance(step, EndStep) else ("[", "]"))
        lines.append(f'  {step_id}{shape[0]}"{kind}: {_label(text)}"{shape[1]}')
        for keys, target in step_targets(step):
            edge = ""
            if keys and keys[0] == "options" and isinstance(step, ChooseStep):
                edge = f'|"{_label(step.options[int(keys[1])].label, 24)}"|'
            elif keys and keys[0] == "branch":
                edge = '|"if"|'
            elif keys and keys[0] == "else":
                edge = '|"else"|'
            if target.next:
                lines.append(f"  {step_id} -->{edge} {target.next}")
            elif target.flow:
                lines.append(f'  {step_id} -->{edge} flow_{target.flow}[["flow {target.flow}"]]')
        for callee in called_flows(step):
            arrow = "-.->|call|" if isinstance(step, CallStep) else "-.->|later|"
            lines.append(f'  {step_id} {arrow} flow_{callee}[["flow {callee}"]]')
    return "\n".join(lines) + "\n"
