"""`flows check` catches what would only break at run time (each problem at its line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpline.flow.components import strongly_connected
from helpline.flow.loader import check_flows

MAIN = """\
id: main
title: Main
start: menu
steps:
  menu:
    choose: "What now?"
    options:
      - label: "Other"
        flow: other
      - label: "Done"
        next: bye
  bye:
    end: true
"""


def write(folder: Path, **files: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def problems(folder: Path) -> list[str]:
    _, found = check_flows(folder)
    return [f"{Path(p.path).name}:{p.line}:{p.column}: {p.message}" for p in found]


def only(found: list[str], needle: str) -> str:
    hits = [p for p in found if needle in p]
    assert len(hits) == 1, (needle, found)
    return hits[0]


def test_two_say_steps_pointing_at_each_other(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: a
        steps:
          a:
            say: "One"
            next: b
          b:
            say: "Two"
            next: a
        """)
    hit = only(problems(folder), "go round in a circle")
    assert hit.startswith("other.yaml:5:3: steps a -> b -> a go round in a circle without "
                          "asking anything"), hit


def test_a_circle_a_branch_can_leave_or_that_asks_is_fine(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: a
        steps:
          a:
            set: {seen: true}
            next: b
          b:
            branch:
              - if: {var: seen, equals: true}
                next: q
            else: {next: a}
          q:
            choose: "Again?"
            options:
              - label: "Yes"
                next: a
              - label: "No"
                next: fin
          fin:
            end: true
        """)
    assert problems(folder) == []


def test_branch_on_a_variable_no_step_saves_suggests_the_name(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: q
        steps:
          q:
            ask: "Age?"
            save: age
            next: b
          b:
            branch:
              - if: {var: aeg, lt: 18}
                next: fin
            else: {next: fin}
          fin:
            end: true
        """)
    hit = only(problems(folder), "no step saves it")
    assert hit.startswith("other.yaml:11:14: branch 'b' tests 'aeg' but no step saves it"), hit
    assert hit.endswith("did you mean 'age'?")


def test_value_without_save_is_lost(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: q
        steps:
          q:
            choose: "When?"
            options:
              - label: "Soon"
                value: 24
                next: fin
          fin:
            end: true
        """)
    hit = only(problems(folder), "has a 'value'")
    assert hit.startswith("other.yaml:9:9: option 'Soon' of step 'q' has a 'value' but the "
                          "step has no 'save'"), hit


def test_a_flow_that_calls_itself(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: q
        steps:
          q:
            choose: "Again?"
            options:
              - label: "Yes"
                next: again
              - label: "No"
                next: fin
          again:
            call: other
            next: fin
          fin:
            end: true
        """)
    hit = only(problems(folder), "calls itself")
    assert hit.startswith("other.yaml:13:5: flow 'other' calls itself in step 'again'"), hit


def test_a_called_flow_that_jumps_back_to_its_caller_nests_deeper_each_round(
    tmp_path: Path,
) -> None:
    folder = write(tmp_path / "f", main="""\
        id: main
        title: Main
        start: menu
        steps:
          menu:
            choose: "What now?"
            options:
              - label: "Tips"
                next: tips
          tips:
            call: tips
            next: menu
        """, tips="""\
        id: tips
        title: Tips
        start: tip
        steps:
          tip:
            choose: "A tip."
            options:
              - label: "Back to the main menu"
                flow: main
        """)
    hit = only(problems(folder), "nests one level deeper")
    assert hit.startswith("main.yaml:11:5: flow 'main' calls 'tips', and 'tips' leads back "
                          "to 'main' (tips -> main) instead of ending"), hit


def test_calls_deeper_than_the_engine_allows(tmp_path: Path) -> None:
    files = {"main": MAIN.replace("flow: other", "next: go").replace(
        "  bye:\n", "  go:\n    call: f1\n    next: bye\n  bye:\n")}
    for i in range(1, 9):
        files[f"f{i}"] = f"""\
            id: f{i}
            title: F{i}
            start: go
            steps:
              go:
                call: f{i + 1}
                next: fin
              fin:
                end: true
            """
    files["f9"] = """\
        id: f9
        title: F9
        start: q
        steps:
          q:
            ask: "Deep?"
            save: deep
            next: fin
          fin:
            end: true
        """
    found = problems(write(tmp_path / "f", **files))
    hit = only(found, "nest 10 deep")
    assert hit.startswith("main.yaml:13:5: calls from 'main' nest 10 deep (main -> f1 -> f2"), hit
    assert "the engine allows 8" in hit
    # Eight levels (main and seven calls) are what the engine runs.
    (tmp_path / "f" / "f7.yaml").write_text(textwrap.dedent(files["f9"]).replace(
        "f9", "f7").replace("F9", "F7"), encoding="utf-8")
    (tmp_path / "f" / "f8.yaml").unlink()
    (tmp_path / "f" / "f9.yaml").unlink()
    assert problems(tmp_path / "f") == []


def test_a_flow_nothing_reaches(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: fin
        steps:
          fin:
            end: "Bye."
        """, lonely="""\
        id: lonely
        title: Lonely
        start: fin
        steps:
          fin:
            end: "Nobody comes here."
        """)
    assert problems(folder) == [
        "lonely.yaml:1:1: flow 'lonely' is never reached from 'main'; link to it (a menu "
        "option with 'flow: lonely', or 'call: lonely') or remove the file"]


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: a
        steps:
          a:
            say: "Hello
            next: b
          b:
            say: "Bye"
            next: c
          c:
            end: true
        """)
    hit = only(problems(folder), "YAML syntax")
    assert hit.startswith("other.yaml:6:10: YAML syntax: a quote opened here is never "
                          "closed"), hit
    # At the end of the file too.
    (folder / "other.yaml").write_text("id: other\nsteps:\n  a:\n    say: 'Hello\n",
                                       encoding="utf-8")
    assert only(problems(folder), "YAML syntax").startswith(
        "other.yaml:4:10: YAML syntax: a quote opened here is never closed")


def test_a_file_that_does_not_parse_causes_no_errors_elsewhere(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="id: other\nsteps: [oops\n")
    found = problems(folder)
    assert len(found) == 1 and found[0].startswith("other.yaml:"), found
    assert "YAML syntax" in found[0]
    # The home flow itself broken: the flows it links to are not "never reached".
    write(folder, other="id: other\ntitle: Other\nstart: a\nsteps:\n  a:\n    end: true\n",
          main="id: main\nsteps: {menu: [oops\n")
    found = problems(folder)
    assert len(found) == 1 and found[0].startswith("main.yaml:"), found


def test_available_names_something_the_app_answers(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", main=MAIN, other="""\
        id: other
        title: Other
        start: b
        steps:
          b:
            branch:
              - if: {available: advocate}
                next: fin
            else: {next: fin}
          fin:
            end: true
        """)
    hit = only(problems(folder), "not something the app can answer")
    assert hit.startswith("other.yaml:7:14: 'available: advocate' in step 'b'"), hit
    assert hit.endswith("did you mean 'advocates'?")


def test_strongly_connected_is_iterative_and_linear() -> None:
    # A chain of 100,000 steps: a recursive walk would overflow Python's stack.
    n = 100_000
    edges = {i: [i + 1] for i in range(n)}
    edges[n] = [0]
    components = strongly_connected(list(range(n + 1)), edges)
    assert len(components) == 1 and len(components[0]) == n + 1
    edges[n] = []
    assert len(strongly_connected(list(range(n + 1)), edges)) == n + 1


def test_flows_check_measures_from_the_configured_first_and_home_flows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpline.cli import main

    # The first flow is "start" (not "welcome"): only it leads to "other".
    folder = write(tmp_path / "f", start=MAIN.replace("id: main", "id: start"),
                   main=MAIN.replace("flow: other", "next: bye"), other="""\
        id: other
        title: Other
        start: fin
        steps:
          fin:
            end: "Bye."
        """)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELPLINE_CONVERSATION_FIRST_FLOW", "start")
    assert main(["flows", "check", str(folder)]) == 0, capsys.readouterr()
    assert "3 flows OK" in capsys.readouterr().out


def test_the_numbers_live_in_one_place_and_an_older_hotline_step_still_finds_them() -> None:
    from helpline.flow.loader import load_flows
    from tests.conftest import BUNDLED_FLOWS

    flows = load_flows(BUNDLED_FLOWS)
    numbers = flows.text_of("numbers.numbers")
    assert numbers is not None and "0800 000 000" in numbers and "112" in numbers
    # "emergency.numbers" (the setting's former default) is a call now: followed to the text.
    assert flows.text_of("emergency.numbers") == numbers
    assert flows.text_of("emergency.next_step") is None  # a branch shows no text
    assert flows.text_of("nowhere.numbers") is None
