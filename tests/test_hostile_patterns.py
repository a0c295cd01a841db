"""Admins' answer patterns: compiled at load by RE2; a crafted answer never stalls others."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.events import Inbound, RawInbound
from helpline.flow.loader import check_flows
from tests.conftest import HarnessFactory

WELCOME = """id: welcome
title: Welcome
start: hi
steps:
  hi:
    say: "Hello."
    flow: main
"""

MAIN = """id: main
title: Main
start: code
steps:
  code:
    ask: "Type your code."
    save: code
    validate:
      pattern: "{pattern}"
    retry: "That doesn't look like a code. Try again?"
    next: done
  done:
    end: "Thank you."
"""


def flows_with(tmp_path: Path, pattern: str) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    (folder / "welcome.yaml").write_text(WELCOME, encoding="utf-8")
    (folder / "main.yaml").write_text(MAIN.replace("{pattern}", pattern), encoding="utf-8")
    return folder


async def test_a_redos_answer_does_not_hold_up_another_person(
    tmp_path: Path, harness_factory: HarnessFactory
) -> None:
    bot = await harness_factory(flows_with(tmp_path, "(a+)+$"))
    await bot.send("hi", platform_id="attacker")
    await bot.send("hi", platform_id="other")
    bot.new_messages()
    # Python's backtracking re takes minutes on this answer ((a+)+ against 2**30 splits);
    # RE2 answers at once.
    hostile = "a" * 30 + "!"
    replies: dict[str, float] = {}
    started = time.perf_counter()

    async def person(pid: str, text: str) -> None:
        await bot.app.handle(RawInbound("terminal", pid, f"addr-{pid}",
                                        Inbound(kind="text", at=0.0, text=text),
                                        message_id=pid))
        replies[pid] = time.perf_counter() - started

    await asyncio.wait_for(asyncio.gather(person("attacker", hostile),
                                          person("other", "aaaa")), timeout=10)
    assert replies["other"] < 0.5, replies
    sent = {address: message.text for address, message in bot.channel.sent[-2:]}
    assert sent == {"addr-attacker": "That doesn't look like a code. Try again?",
                    "addr-other": "Thank you."}


@pytest.mark.parametrize(("pattern", "fix"), [
    ("(unclosed", "a '(' is not closed"),
    ("(a)\\\\1", "RE2 has no backreferences"),
    ("(?=a)a", "RE2 has no lookahead"),
    ("(?<!b)a", "RE2 has no lookbehind"),
    ("a++", "RE2 has no possessive repeats"),
])
def test_a_pattern_re2_refuses_is_a_check_error_at_its_line(
    tmp_path: Path, pattern: str, fix: str
) -> None:
    folder = flows_with(tmp_path, pattern)
    _, problems = check_flows(folder)
    assert [(p.path, p.line) for p in problems] == [(str(folder / "main.yaml"), 9)]
    message = problems[0].message
    assert message.startswith("pattern in step 'code': the pattern cannot be used ("), message
    assert fix in message


def test_flows_check_prints_the_pattern_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = flows_with(tmp_path, "(unclosed")
    assert main(["flows", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"{folder / 'main.yaml'}:9:7: pattern in step 'code': the pattern cannot be used" \
        " (missing ): (unclosed); a '(' is not closed; add the ')' or escape it as \\(" in out


async def test_a_valid_pattern_still_checks_answers(
    tmp_path: Path, harness_factory: HarnessFactory
) -> None:
    bot = await harness_factory(flows_with(tmp_path, "[A-Z]{2}[0-9]{3}"))
    await bot.send("hi")
    assert [m.text for m in await bot.send("ab123")] == [
        "That doesn't look like a code. Try again?"]
    assert [m.text for m in await bot.send("AB123")] == ["Thank you."]
