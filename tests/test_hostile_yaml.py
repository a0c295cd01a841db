"""Hostile YAML (alias bombs, self-referring aliases, deep nesting, huge files) and call
graphs that used to be exponential: each refused or checked at file:line within 2 s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpline.flow.loader import _check_graph, check_flows
from helpline.flow.yamlsource import YamlSyntaxError, load_located
from helpline.resources.yaml_import import read_yaml

LAUGHS = "".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10)])

HEADER = "id: main\ntitle: Main\nstart: a\nsteps:\n  a:\n    end: true\n"


def flow_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def timed_check(folder: Path) -> list[str]:
    started = time.perf_counter()
    _, problems = check_flows(folder)
    assert time.perf_counter() - started < 2
    return [str(p) for p in problems]


def test_an_alias_bomb_in_a_flow_is_refused_at_its_line(tmp_path: Path) -> None:
    folder = flow_folder(tmp_path, {"main.yaml": HEADER + LAUGHS})
    problems = timed_check(folder)
    assert len(problems) == 1
    # The budget runs out while the fourth anchor's lists are being expanded again.
    assert problems[0].startswith(f"{folder / 'main.yaml'}:")
    line = int(problems[0].split(":")[1])
    assert 7 <= line <= 16
    assert "aliases here expand to more than 10000 values (an alias bomb?)" in problems[0]


def test_a_self_referring_alias_is_refused(tmp_path: Path) -> None:
    folder = flow_folder(tmp_path, {"main.yaml": HEADER + "loop: &me [1, *me]\n"})
    assert timed_check(folder) == [
        f"{folder / 'main.yaml'}:7:7: YAML: an alias refers to the value it is part of, which "
        "never ends; write the value out instead; check indentation, colons and quotes here"]


def test_too_many_aliases_are_refused() -> None:
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * 1001) + "]\n"
    with pytest.raises(YamlSyntaxError, match="more than 1000 aliases"):
        load_located(text)
    # A few aliases are still fine.
    assert load_located("a: &x [1, 2]\nb: *x\nc: *x\n").data == {
        "a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    for text in ("[" * 900 + "]" * 900, "a: " + "[" * 150 + "]" * 150):
        with pytest.raises(YamlSyntaxError, match="nested more than 100 levels"):
            load_located(text)


def test_a_key_that_is_a_list_is_refused() -> None:
    with pytest.raises(YamlSyntaxError, match="a key must be plain text") as caught:
        load_located("ok: 1\n? [a, b]\n: 2\n")
    assert caught.value.position.line == 2


def test_a_huge_flow_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = flow_folder(tmp_path, {"main.yaml": HEADER + "# " + "x" * (1024 * 1024) + "\n"})
    assert timed_check(folder) == [
        f"{folder / 'main.yaml'}:1:1: the file is larger than 1024 KB; split it into "
        "several flows"]


def test_an_alias_bomb_in_the_directory_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(LAUGHS + "services: []\n", encoding="utf-8")
    started = time.perf_counter()
    data = read_yaml(path, 0.0)
    assert time.perf_counter() - started < 2
    assert len(data.problems) == 1
    assert "an alias bomb?" in str(data.problems[0])


def chain(n: int, last: str) -> dict[str, str]:
    """welcome -> f0 -> f1 -> ... -> f(n-1), each by a call step."""
    files = {"welcome.yaml": "id: welcome\ntitle: W\nstart: go\nsteps:\n"
                             "  go:\n    call: f0\n    next: done\n  done:\n    end: true\n"}
    for i in range(n):
        callee = f"f{i + 1}" if i + 1 < n else last
        files[f"f{i}.yaml"] = (f"id: f{i}\ntitle: F\nstart: go\nsteps:\n"
                               f"  go:\n    call: {callee}\n    next: done\n"
                               "  done:\n    end: true\n")
    return files


def test_1500_chained_calls_are_checked_without_recursion(tmp_path: Path) -> None:
    files = chain(1500, "f0")  # the last calls the first: a cycle no flow can leave
    folder = flow_folder(tmp_path, files)
    flowset, found = check_flows(folder)  # reading 1,500 files takes about a second
    started = time.perf_counter()
    assert sorted(set(_check_graph(flowset))) == found  # the graph checks alone: fast
    assert time.perf_counter() - started < 2
    problems = [str(p) for p in found]
    assert len(problems) == 1
    assert problems[0].startswith(f"{folder / 'f0.yaml'}:6:5: call cycle with no exit: "
                                  "f0 -> f1 -> f2 -> f3 -> ")
    assert "-> f1498 -> f1499 -> f0; let one of these flows reach an 'end:' step" in problems[0]


def test_a_dense_call_graph_is_checked_in_linear_time(tmp_path: Path) -> None:
    # Each flow calls every later one, and every flow can end: no cycle. A depth-first
    # search for cycles from each flow walked every path (2**n of them: minutes for 30).
    n = 60
    files = {"main.yaml": HEADER}
    for i in range(n):
        steps = "".join(f"  c{j}:\n    call: g{j:02d}\n    next: c{j + 1}\n"
                        for j in range(i + 1, n))
        steps += f"  c{n}:\n    end: true\n"
        files[f"g{i:02d}.yaml"] = (f"id: g{i:02d}\ntitle: G\nstart: c{i + 1}\n"
                                   f"steps:\n{steps}")
    # No cycle is reported (nothing calls main, and calls nest 60 deep: those checks of
    # flows check speak up, in the same time).
    problems = timed_check(flow_folder(tmp_path, files))
    assert [p for p in problems if "never reached" not in p and "deeper" not in p] == []


def test_a_cycle_beside_flows_that_end_is_still_reported(tmp_path: Path) -> None:
    files = chain(3, "f1")  # f0 -> f1 -> f2 -> f1: f1 and f2 can never return
    problems = timed_check(flow_folder(tmp_path, files))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "call cycle with no exit: f1 -> f2 -> f1; let one of these flows reach an 'end:' "
        "step so the calls can return"]
