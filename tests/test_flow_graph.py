"""`helpline flows graph`: Mermaid that mermaid itself parses, whatever the step ids."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from helpline.flow.graph import mermaid
from helpline.flow.loader import check_flows, load_flows
from tests.conftest import BUNDLED_FLOWS

MERMAID_DIR = Path(__file__).resolve().parent / "mermaid"

TRICKY = """\
id: tricky
title: A "quoted" title
start: start
steps:
  start:
    say: 'She said "hi" #1'
    next: class
  class:
    choose: "Which?"
    save: pick
    options:
      - label: 'The "first"'
        value: a
        next: style
      - label: "Talk to a person"
        if: {available: advocates}
        next: end
      - label: "Later"
        next: subgraph
  style:
    branch:
      - if: {var: pick, equals: a}
        next: end
      - if: [{var: pick, is_set: true}, {available: directory}]
        next: subgraph
    else: {next: end}
  subgraph:
    set: {pick: b}
    next: end
  end:
    end: true
"""


def parse_with_mermaid(texts: list[str]) -> list[dict[str, str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: Mermaid output cannot be parsed with mermaid")
    if not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        pytest.fail("the mermaid npm package is missing: run `make test` (it installs "
                    "tests/mermaid), or `npm install --prefix tests/mermaid --no-package-lock`")
    done = subprocess.run([node, str(MERMAID_DIR / "parse.mjs")], input=json.dumps(texts),
                          capture_output=True, text=True, timeout=60, cwd=MERMAID_DIR,
                          check=True)
    results: list[dict[str, str]] = json.loads(done.stdout)
    return results


def tricky_flow(tmp_path: Path) -> str:
    (tmp_path / "tricky.yaml").write_text(TRICKY, encoding="utf-8")
    flows, problems = check_flows(tmp_path)
    assert [p for p in problems if "never reached" not in p.message] == []
    return mermaid(flows["tricky"])


def test_ids_are_escaped_and_conditions_label_the_edges(tmp_path: Path) -> None:
    chart = tricky_flow(tmp_path)
    lines = chart.splitlines()
    # Reserved words and "start" are ids no longer: every step node has a prefix.
    assert '  entry(["A #quot;quoted#quot; title"]) --> step_start' in lines
    assert any(line.startswith("  step_end([") for line in lines)
    assert "  step_class -->|\"Talk to a person (if advocates available)\"| step_end" in lines
    assert '  step_style -->|"pick = a"| step_end' in lines
    assert '  step_style -->|"pick is set and directory available"| step_subgraph' in lines
    assert '  step_style -->|"else"| step_end' in lines
    assert "branch: branch" not in chart
    assert 'step_style{{"style · branch"}}' in chart


INVALID = textwrap.dedent("""\
    flowchart TD
      start(["t"]) --> end
      end(["end"])
    """)


def test_mermaid_parses_every_chart(tmp_path: Path) -> None:
    """Every bundled flow and the tricky one parse with mermaid itself; the check is real:
    the ids written before they were prefixed (a bare ``end``) are refused. One node
    process for all (starting mermaid takes a few seconds)."""
    charts = [tricky_flow(tmp_path)]
    charts += [mermaid(flow) for flow in load_flows(BUNDLED_FLOWS)]
    *results, invalid = parse_with_mermaid([*charts, INVALID])
    assert results == [{"ok": "flowchart-v2"}] * len(charts), results
    assert "error" in invalid and "end" in invalid["error"], invalid
