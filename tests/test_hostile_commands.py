"""Quick exit in every form a platform or a keyboard delivers it, from every state.

Telegram adds the bot's name to a command picked from a menu or typed in a group
("/exit@HelpBot"); keyboards add trailing punctuation, capitals and full-width forms;
copied text carries zero-width and other invisible characters. Each of these, in every
enabled language, from every state the bundled flows reach, must clear the conversation
and ask for the chat to be deleted."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpline.app import engine_config
from helpline.config import Settings
from helpline.events import CancelSchedules, DeleteChat, Inbound, Schedule
from helpline.flow.engine import Engine
from helpline.flow.loader import load_flows
from helpline.flow.model import AskStep, ChooseStep
from helpline.i18n import CatalogTranslator, word_forms
from helpline.state import State
from tests.conftest import BUNDLED_FLOWS, Harness

LANGUAGES = ["en", "es", "fr", "ru", "uk", "ar"]
SETTINGS = Settings(flows=BUNDLED_FLOWS, languages=LANGUAGES)
TRANSLATOR = CatalogTranslator(SETTINGS.locales)
FLOWS = load_flows(BUNDLED_FLOWS)
ENGINE = Engine(FLOWS, engine_config(SETTINGS, TRANSLATOR), TRANSLATOR)
AT = 1_800_000_000.0
FACT_SETS: tuple[frozenset[str] | None, ...] = (None, frozenset(),
                                                frozenset({"desk", "directory"}),
             frozenset({"advocates", "desk", "directory", "checkin"}))

# The quick-exit words of every enabled language, as the catalogues give them.
EXIT_WORDS = sorted({form for word in SETTINGS.commands.quick_exit
                     for form in word_forms(TRANSLATOR, LANGUAGES, word)})


def reachable_states() -> list[State]:
    """Every state the bundled flows reach by valid answers (as no channel, Signal and
    Telegram), plus each of them waiting on "Erase now?" and on the language question."""
    found: list[State] = []
    seen: set[tuple[object, ...]] = set()
    todo: deque[tuple[State, str]] = deque((State(), ch) for ch in ("", "signal", "telegram"))
    while todo:
        state, channel = todo.popleft()
        top = state.top
        step = FLOWS[top.flow].steps[top.step] if top is not None else None
        if isinstance(step, ChooseStep):
            inputs = [Inbound(kind="button", at=AT, payload=f"c:{state.turn}:{i}",
                              channel=channel) for i in range(len(step.options))]
        elif isinstance(step, AskStep):
            inputs = [Inbound(kind="text", at=AT, text=t, channel=channel)
                      for t in [*step.skip, "Somewhere"]]
        else:
            inputs = [Inbound(kind="text", at=AT, text="hi", channel=channel)]
        # As fully staffed, with nothing available, off shift, and with a check-in booked
        # (see flow.model.FACTS).
        for inbound in [replace(i, facts=f) for i in inputs for f in FACT_SETS]:
            result = ENGINE.step(state, inbound)
            due = [ENGINE.step(result.state, Inbound(kind="timer", at=AT, payload=e.flow)).state
                   for e in result.effects if isinstance(e, Schedule)]  # a check-in comes
            for nxt in [result.state, *due]:
                key = (tuple((f.flow, f.step) for f in nxt.stack), nxt.seen_welcome,
                       nxt.pending, channel)
                if key not in seen:
                    seen.add(key)
                    todo.append((nxt, channel))
                    found.append(nxt)
    waiting = [ENGINE.step(s, Inbound(kind="text", at=AT, text=word)).state
               for s in found[::5] for word in ("delete my data", "language")]
    return [State(), *found, *waiting]


STATES = reachable_states()

FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
INVISIBLE = st.one_of(
    st.characters(categories=["Cf"]),
    st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e",
                     "\u202e", "\u2066", "\u3164", "\u0640"]),
)
PUNCTUATION = st.sampled_from([".", "!", "?", "!!", "...", "…", ",", ";", ":", ")", "。",
                               "！", "؟", "?!", " .", "❗"])
SPACE = st.sampled_from([" ", "\u00a0", "\u3000", "\t", "\n", "\u2009"])


@st.composite
def exit_forms(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(EXIT_WORDS), label="word")
    chars = []
    for char in word:
        if draw(st.booleans()):
            char = char.upper()
        if draw(st.integers(0, 3)) == 0:
            char = FULL_WIDTH.get(char, char)
        chars.append(char)
        if draw(st.integers(0, 4)) == 0:
            chars.append(draw(INVISIBLE, label="invisible"))
    text = "".join(chars)
    if word.startswith("/") and draw(st.booleans()):
        text += "@" + draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True),
                           label="bot name")
    if draw(st.booleans()):
        text += draw(PUNCTUATION, label="punctuation")
    before = draw(st.lists(SPACE, max_size=2))
    after = draw(st.lists(SPACE, max_size=2))
    return "".join(before) + text + "".join(after)


def test_the_states_cover_every_question_and_both_pending_answers() -> None:
    questions = {(flow.id, step_id) for flow in FLOWS for step_id, step in flow.steps.items()
                 if isinstance(step, (ChooseStep, AskStep))}
    reached = {(s.top.flow, s.top.step) for s in STATES if s.top is not None}
    assert questions <= reached
    assert {s.pending for s in STATES} >= {None, "erase", "language"}
    assert {"exit", "/exit", "salir", "выход", "вихід", "quitter", "خروج"} <= set(EXIT_WORDS)


@settings(deadline=None, max_examples=150,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exit_forms())
def test_quick_exit_in_every_form_from_every_state(text: str) -> None:
    for state in STATES:
        result = ENGINE.step(state, Inbound(kind="text", at=AT + 60, text=text))
        assert result.state.stack == [], (text, state.top)
        assert result.state.vars == {}, text
        assert result.state.pending is None, text
        assert any(isinstance(e, DeleteChat) for e in result.effects), (text, state.top)
        assert any(isinstance(e, CancelSchedules) for e in result.effects), text


def test_forms_that_are_not_the_word_stay_answers() -> None:
    state = STATES[0]
    for text in ("exits", "/exitnow", "ex it", "exit@home", "e x i t", "/exit now"):
        result = ENGINE.step(state, Inbound(kind="text", at=AT, text=text))
        assert not any(isinstance(e, DeleteChat) for e in result.effects), text


async def test_exit_with_the_bot_name_clears_the_chat_through_the_pipeline(
    basic: Harness,
) -> None:
    await basic.send("hi")
    assert [m.text for m in await basic.send("1")] == [
        "What should I call you? (type skip to skip)"]
    assert await basic.send("/EXIT@Help_Line_Bot!") == []
    assert basic.channel.deleted  # the chat's messages are asked to be deleted
    person = await basic.app.store.person(basic.pid)
    assert person is None or person.state.stack == []
