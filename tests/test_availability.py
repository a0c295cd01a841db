"""What the app has (a desk, a directory, a booked check-in) decides what flows offer; the
check-in can be seen and cancelled; the quick exit's reply is translated."""

from __future__ import annotations

import textwrap
from pathlib import Path

from helpline.events import Inbound
from helpline.flow.engine import Engine, EngineConfig
from helpline.flow.loader import load_flows
from helpline.state import State
from tests.conftest import HarnessFactory, make_settings

FAR = 10**12  # every job is due by then


def conditional_flows(tmp_path: Path) -> Engine:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "main.yaml").write_text(textwrap.dedent("""\
        id: main
        title: Main
        start: menu
        steps:
          menu:
            choose: "What now?"
            options:
              - label: "Tips"
                next: bye
              - label: "A person"
                if: {available: advocates}
                next: bye
              - label: "Leave a message"
                if: [{unavailable: advocates}, {available: desk}]
                next: bye
              - label: "Services"
                next: bye
          bye:
            end: "Bye."
        """), encoding="utf-8")
    return Engine(load_flows(folder, roots=("main",)),
                  EngineConfig(first_flow="main", home_flow="main"))


def test_hidden_options_keep_their_payloads_and_typed_numbers_skip_them(
    tmp_path: Path,
) -> None:
    engine = conditional_flows(tmp_path)
    off_shift = frozenset({"desk"})
    shown = engine.step(State(), Inbound(kind="text", at=1.0, text="hi", facts=off_shift))
    menu = shown.messages[-1]
    assert [c.label for c in menu.choices] == ["Tips", "Leave a message", "Services"]
    turn = shown.state.turn
    assert [c.payload for c in menu.choices] == [f"c:{turn}:0", f"c:{turn}:2", f"c:{turn}:3"]
    # "3" is the third option shown (Services), not the hidden third one.
    typed = engine.step(shown.state, Inbound(kind="text", at=2.0, text="3", facts=off_shift))
    assert typed.state.idle and typed.messages[-1].text == "Bye."
    assert typed.state.turn == turn  # answered, not asked again
    # A press of an option not shown now is stale: the question comes again.
    hidden = engine.step(shown.state, Inbound(kind="button", at=2.0, payload=f"c:{turn}:1",
                                              facts=off_shift))
    assert hidden.messages[0].text.startswith("That button is from an earlier message.")
    assert not hidden.state.idle
    # On shift, the person is offered instead (the label, typed, picks it).
    on = frozenset({"desk", "advocates"})
    shown = engine.step(State(), Inbound(kind="text", at=1.0, text="hi", facts=on))
    assert [c.label for c in shown.messages[-1].choices] == ["Tips", "A person", "Services"]
    typed = engine.step(shown.state, Inbound(kind="text", at=2.0, text="leave a message",
                                             facts=on))
    assert not typed.state.idle  # not shown, so not picked


async def test_no_thanks_and_cancel_drop_the_booked_check_in(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory()
    await h.send("hi")
    await h.press("Yes")
    await h.press("Check in with me later")
    await h.press("In 3 days")
    [job] = await h.app.store.jobs.due(FAR)
    assert job.pid == h.pid and job.body == {"flow": "checkin_due"}
    await h.press("My check-in")
    await h.press("Change the time")
    await h.press("No thanks")
    assert await h.app.store.jobs.due(FAR) == []
    await h.press("Check in with me later")
    await h.press("In 1 week")
    assert len(await h.app.store.jobs.due(FAR)) == 1
    await h.press("My check-in")
    await h.press("Keep it")
    assert len(await h.app.store.jobs.due(FAR)) == 1
    await h.press("My check-in")
    await h.press("Cancel it")
    assert await h.app.store.jobs.due(FAR) == []
    person = await h.app.store.person(h.pid)
    assert person is not None
    assert not {"_checkin_due", "checkin_in", "checkin_date"} & set(person.state.vars)


async def test_a_due_check_in_no_longer_shows_as_booked(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory()
    await h.send("hi")
    await h.press("Yes")
    await h.press("Check in with me later")
    await h.press("In 1 day")
    h.clock.advance(86400 + 60)
    assert await h.app.run_due_jobs() == 1
    [due] = h.new_messages()
    assert due.text.startswith("Hi, this is the check-in you asked for.")
    [menu] = await h.press("Show me the menu")
    assert [c.label for c in menu.choices][-1] == "Check in with me later"


async def test_the_quick_exit_reply_is_said_in_the_persons_language(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, languages=["en", "es"])
    settings = settings.model_copy(update={"commands": settings.commands.model_copy(
        update={"quick_exit_reply": "OK."})})
    h = await harness_factory(settings=settings)
    await h.send("hola", locale_hint="es-ES")
    [reply] = await h.send("salir")
    assert reply.text == "De acuerdo." and reply.ephemeral
