"""`helpline flows check|graph|schema` and refusing to start on invalid flows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpline.cli import main

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "flows_broken"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_reports_every_problem_with_position_and_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "flows", "check", str(BROKEN))
    assert code == 1
    lines = out.splitlines()
    main_yaml = str(BROKEN / "main.yaml")
    expected = [
        f"{main_yaml}:7:5: unknown key 'nxt' in step 'intro'; did you mean 'next'?",
        f"{main_yaml}:17:3: duplicate step id 'orphan'; the later one would silently replace",
        f"{main_yaml}:12:9: step 'menu' goes to unknown step 'tipz' in flow 'main'",
        f"{main_yaml}:14:9: step 'menu' names unknown flow 'safty'",
        f"{main_yaml}:20:3: step 'dead' has no way forward; add 'next: <step>'",
        f"{main_yaml}:20:3: step 'dead' is unreachable from 'intro'",
        f"{BROKEN / 'branchy.yaml'}:7:9: a case of branch 'a' goes nowhere; give it 'next:",
        f"{BROKEN / 'branchy.yaml'}:8:5: a case of branch 'a' goes nowhere",
        f"{BROKEN / 'ping.yaml'}:6:5: call cycle with no exit: ping -> pong -> ping",
        f"{BROKEN / 'syntax.yaml'}:6:1: YAML syntax",
        f"{BROKEN / 'typed.yaml'}:8:16: min in step 'a': Input should be a valid number",
        f"{BROKEN / 'typed.yaml'}:10:3: step 'b' has no kind; did you mean 'set' or 'say'?",
        f"{BROKEN / 'typed.yaml'}:12:3: step 'c' has more than one kind (say, choose)",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)


def test_check_passes_on_bundled_flows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "flows", "check")
    assert code == 0, out
    assert "flows OK" in out


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "flows", "schema")
    schema = json.loads(out)
    assert code == 0
    assert schema["title"] == "helpline flow"
    assert {"id", "title", "start", "steps"} <= set(schema["properties"])


def test_graph_prints_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "flows", "graph", "main", "--flows",
                           str(HERE / "flows_basic"))
    assert code == 0
    assert out.startswith("flowchart TD\n")
    assert '  step_menu -->|"Answer a question"| step_name' in out
    assert 'step_tip_call -.->|"call"| flow_tip[["flow tip"]]' in out


@pytest.mark.parametrize("command", ["chat", "run"])
def test_chat_and_run_refuse_invalid_flows(command: str, tmp_path: Path) -> None:
    env = {"HELPLINE_FLOWS": str(BROKEN), "HELPLINE_DB": str(tmp_path / "x.db"),
           "HELPLINE_SECRET_KEY": "k" * 40, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "helpline", command], env=env, input="",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "unknown key 'nxt' in step 'intro'; did you mean 'next'?" in done.stderr
    assert "refusing to start" in done.stderr
    assert not (tmp_path / "x.db").exists()


def test_schema_carries_the_step_id_pattern_and_accepts_the_bundled_flows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import jsonschema
    import yaml

    code, out, _ = run_cli(capsys, "flows", "schema")
    assert code == 0
    schema = json.loads(out)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((HERE.parent / "flows").glob("*.yaml")):
        flow = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert list(validator.iter_errors(flow)) == [], path
    flow = yaml.safe_load((HERE.parent / "flows" / "main.yaml").read_text(encoding="utf-8"))
    bad = {**flow, "steps": {**flow["steps"], "Go-Home": {"say": "x", "next": "menu"}}}
    assert any("Go-Home" in e.message for e in validator.iter_errors(bad))
    bad = {**flow, "start": "Menu"}
    assert any("does not match" in e.message for e in validator.iter_errors(bad))
    step = {"branch": [{"if": {"available": "advocate"}, "next": "menu"}],
            "else": {"next": "menu"}}
    bad = {**flow, "steps": {**flow["steps"], "check": step}}
    assert list(validator.iter_errors(bad))
