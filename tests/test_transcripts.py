"""Transcript tests: YAML files in tests/transcripts/ say what a person sends and what the
bot answers; each runs through the real pipeline (engine, store, terminal channel).

Format::

    title: what this conversation shows
    flows: bundled            # or: basic (tests/flows_basic)
    settings: {languages: [en, es]}   # optional overrides
    directory: data/sample-directory.yaml   # optional: imported first (path from the root)
    conversation:
      - person: hi            # typed text   (or  press: "Button label")
        locale_hint: es-ES    # optional: the app's language, as Telegram reports it
        bot:                  # every message the bot sends back, in order
          - "Hello"           # text contains this
          - text: "Is it safe"
            choices: ["Yes", "Not now"]   # exactly these options
      - wait_days: 21         # time passes
      - person: exit
        bot: []               # nothing at all
        cleared: true         # the chat was deleted
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from helpline.resources import import_directory
from tests.conftest import BASIC_FLOWS, BUNDLED_FLOWS, ROOT, HarnessFactory, make_settings

TRANSCRIPTS = sorted((Path(__file__).parent / "transcripts").glob("*.yaml"))


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
async def test_transcript(path: Path, harness_factory: HarnessFactory, tmp_path: Path) -> None:
    script = yaml.safe_load(path.read_text(encoding="utf-8"))
    flows = BASIC_FLOWS if script.get("flows") == "basic" else BUNDLED_FLOWS
    settings = make_settings(tmp_path, flows, **script.get("settings", {}))
    person = await harness_factory(flows, settings)
    if "directory" in script:
        result = await import_directory(person.app.store, ROOT / script["directory"],
                                        person.clock.now)
        assert result.applied, [str(p) for p in result.problems]
    for number, turn in enumerate(script["conversation"], start=1):
        where = f"{path.name} turn {number}"
        if "wait_days" in turn:
            person.clock.advance(float(turn["wait_days"]) * 86400)
            continue
        deleted_before = len(person.channel.deleted)
        if "press" in turn:
            messages = await person.press(str(turn["press"]))
        else:
            messages = await person.send(str(turn["person"]), locale_hint=turn.get("locale_hint"))
        check_replies(where, turn.get("bot", []), messages)
        if "cleared" in turn:
            assert (len(person.channel.deleted) > deleted_before) == turn["cleared"], where


def check_replies(where: str, expected: list[Any], messages: list[Any]) -> None:
    shown = [(m.text, [c.label for c in m.choices]) for m in messages]
    assert len(messages) == len(expected), f"{where}: expected {len(expected)}, got {shown}"
    for want, got in zip(expected, messages, strict=True):
        if isinstance(want, str):
            want = {"text": want}
        if "text" in want:
            assert want["text"] in got.text, f"{where}: {want['text']!r} not in {got.text!r}"
        if "exact" in want:
            assert got.text == want["exact"], where
        if "choices" in want:
            assert [c.label for c in got.choices] == want["choices"], f"{where}: {shown}"
