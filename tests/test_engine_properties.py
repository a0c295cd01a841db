"""Property-based tests of the pure engine over every bundled flow.

Whatever a person sends, from whatever state the bundled flows can reach, the engine must:
never raise; return a state that survives a round trip through pydantic (and JSON, as the
store keeps it); point only at flows and steps that exist; leave the conversation idle,
waiting on a question, or waiting at a lookup or a handoff for the app (the tests play the
app's part, see ``app_settles``); show only buttons that are fresh for the new state; and
never touch the state it was given. Quick exit, in every spelling, from every state, must forget
everything and ask for the chat to be deleted.

The tests at the end pin engine bugs found by these properties (huge or non-ASCII
numbers, state saved before a flow was edited, a check-in due while "Erase now?" waits).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpline.events import (
    CancelSchedules,
    DeleteChat,
    Effect,
    EraseData,
    Handoff,
    Inbound,
    InboundKind,
    Lookup,
    Schedule,
)
from helpline.flow.engine import Engine, Result
from helpline.flow.loader import load_flows
from helpline.flow.model import (
    MAX_DEPTH,
    AnyStep,
    AskStep,
    ChooseStep,
    HandoffStep,
    LookupStep,
)
from helpline.state import Frame, State

FLOWS = load_flows(Path(__file__).parent.parent / "flows")
ENGINE = Engine(FLOWS)

START_AT = 1_800_000_000.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY

EXIT_TEXTS = ("exit", "/exit", "EXIT", " Exit ")
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ helpers


def current(state: State) -> AnyStep | None:
    top = state.top
    return None if top is None else FLOWS[top.flow].steps[top.step]


OVERLAY_CHOICES = [("More results", "page:2"), ("Carry on", "next"), ("Start again", "restart"),
                   ("Main menu", "flow:main"), ("A person", "flow:advocate")]


# What the advocate desk asks at a handoff step off shift, in place of the next question.
LATER_CHOICES = [("Yes, leave a message", "later:yes"), ("No, thanks", "later:no")]


def app_settles(state: State, show_results: bool, effects: list[Effect]) -> Result | None:
    """Play the app's part at a lookup step (show results as an overlay menu, or, with no
    directory, move past the step) and at a handoff step (off shift, just reached: ask
    "leave a message?" as an overlay; otherwise move past it). None when the engine is
    not waiting for the app."""
    if not ENGINE.waits_for_app(state):
        return None
    state = state.clone()
    if isinstance(current(state), HandoffStep):
        if show_results and any(isinstance(e, Handoff) for e in effects):
            message = ENGINE.show_overlay(state, "handoff", "Leave a message?", LATER_CHOICES,
                                          words=[("yes",), ("no",)])
            return Result(state, [message])
        return ENGINE.advance(Result(state))
    if show_results:
        message = ENGINE.show_overlay(state, "test", "Here is what I found.", OVERLAY_CHOICES)
        return Result(state, [message])
    return ENGINE.advance(Result(state))


def check_result(before: State, snapshot: State, result: Result) -> None:
    """Invariants that hold after every step, whatever was sent."""
    assert before == snapshot, "the engine changed the state it was given"
    state = result.state
    assert State.from_dict(state.to_dict()) == state
    assert State.from_json(state.to_json()) == state
    for frame in state.stack:
        assert frame.flow in FLOWS, frame
        assert frame.step in FLOWS[frame.flow].steps, frame
    assert len(state.stack) <= MAX_DEPTH
    if state.stack:
        step = current(state)
        # waiting on a question, or at a lookup or a handoff for the app to show its own
        # menu or move on
        assert isinstance(step, (ChooseStep, AskStep, LookupStep, HandoffStep)), (
            state.top, step)
    if state.overlay is not None:
        assert isinstance(current(state), (LookupStep, HandoffStep))
    # One message a turn: texts join the message after them, so at most one may carry
    # choices, and it comes last.
    with_choices = [i for i, m in enumerate(result.messages) if m.choices]
    assert with_choices in ([], [len(result.messages) - 1]), result.messages
    fresh = (f"c:{state.turn}:", f"o:{state.turn}:", "g:")
    for message in result.messages:
        assert isinstance(message.text, str)
        for choice in message.choices:
            assert choice.payload.startswith(fresh), (choice, state.turn)


def quick_exits(at: float) -> list[Inbound]:
    return [*(Inbound(kind="text", at=at, text=t) for t in EXIT_TEXTS),
            Inbound(kind="button", at=at, payload="g:exit")]


def check_quick_exit(state: State, at: float) -> None:
    """Quick exit from ``state``, in every spelling, forgets everything and clears the chat."""
    for inbound in quick_exits(at):
        result = ENGINE.step(state, inbound)
        fresh = result.state
        assert fresh.stack == [], inbound
        assert fresh.vars == {}, inbound
        assert fresh.pending is None, inbound
        assert fresh.locale is None, inbound
        assert any(isinstance(e, DeleteChat) for e in result.effects), inbound
        assert any(isinstance(e, CancelSchedules) for e in result.effects), inbound
        assert all(m.ephemeral for m in result.messages), inbound


def step_and_check(state: State, inbound: Inbound, show_results: bool = False) -> Result:
    """One inbound event, then the app's part at a lookup or a handoff; every invariant
    checked."""
    snapshot = state.clone()
    result = ENGINE.step(state, inbound)
    check_result(state, snapshot, result)
    check_quick_exit(result.state, inbound.at + 1)
    effects = result.effects
    for _ in range(4):  # an overlay pick can leave the lookup waiting again
        settled = app_settles(result.state, show_results, effects)
        if settled is None:
            break
        effects = settled.effects
        check_result(result.state, result.state.clone(), settled)
        check_quick_exit(settled.state, inbound.at + 1)
        result = Result(settled.state, result.messages + settled.messages,
                        result.effects + settled.effects)
    # The whole turn, the app's part included, is one message: at most one with choices,
    # last (the app's own menu at a lookup or a handoff takes the next question's place).
    with_choices = [i for i, m in enumerate(result.messages) if m.choices]
    assert with_choices in ([], [len(result.messages) - 1]), result.messages
    return result


def texts(result: Result) -> str:
    return "\n".join(m.text for m in result.messages)


# ------------------------------------------------------------------ strategies

FLOW_IDS = sorted(FLOWS.flows)
WORDS = [
    "", " ", "\n", "\t", "hi", "yes", "y", "no", "ok", "skip", "SKIP", " Skip. ", "menu",
    "/menu", "/start", "help", "/help", "language", "/language", "delete my data", "/delete",
    "quit", "/quit", "0", "1", "01", "2", "12", "13", "99", "-1", "1.5", "1e9", "nan", "∞",
    "١", "²", "𝟏", "፩", "᧚", "{needs}", "{area}", "c:1:0", "g:exit", "exit please",
    "i want to exit", "İ", "ß", "ǅ", "\u200b", "\u0301", "😀", "\x00", "a" * 600, "9" * 4300,
]

random_text = st.one_of(
    st.text(),
    st.text(min_size=1, max_size=3).flatmap(
        lambda s: st.integers(500, 20_000).map(lambda n: s * n)),  # huge
    st.text(alphabet=st.characters(categories=["Nd", "No", "Zs", "P"]), max_size=8),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=3),
    st.integers(4290, 4310).map(lambda n: "1" * n),  # around int()'s 4300-digit limit
    st.sampled_from(WORDS),
    st.binary(max_size=64).map(lambda b: b.decode("utf-8", "replace")),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
)

G_PAYLOADS = [
    "g:exit", "g:menu", "g:help", "g:language", "g:erase", "g:erase:yes", "g:erase:no",
    "g:lang:en", "g:lang:EN_gb", "g:lang:xx", "g:lang:", "g:", "g:EXIT", "g:exit ", "g::",
    "o:0:0", "o::", "c::",
]


def payloads(state: State) -> st.SearchStrategy[str]:
    turn = state.turn
    turns = st.one_of(st.sampled_from([turn, turn - 1, turn + 1, 0]),
                      st.integers(-2, 10**12))
    return st.one_of(
        st.builds(lambda n, m: f"c:{n}:{m}", turns, st.integers(-2, 15)),
        st.builds(lambda n, m: f"o:{n}:{m}", turns, st.integers(-2, 8)),
        st.builds(lambda n, m: f"c:{n}:{m}", turns, st.text(max_size=4)),
        st.builds(lambda n, m: f"c:{n}:{m}", turns, st.integers(4290, 4310).map(
            lambda k: "0" * k)),
        st.sampled_from(G_PAYLOADS),
        st.text(max_size=20).map(lambda t: "g:" + t),
        st.text(max_size=20).map(lambda t: "g:lang:" + t),
        st.binary(max_size=32).map(lambda b: b.decode("utf-8", "replace")),
        st.text(),
    )


def decorated(word: str) -> st.SearchStrategy[str]:
    """The same word as a person might type it."""
    return st.sampled_from([word, word.upper(), word.lower(), f"  {word} ", f"{word}!",
                            f"{word}.", word.title()])


def option_numbers(state: State) -> st.SearchStrategy[str]:
    step = current(state)
    count = len(step.options) if isinstance(step, ChooseStep) else 5
    return st.integers(-1, count + 2).flatmap(lambda n: decorated(str(n)))


def option_labels(state: State) -> st.SearchStrategy[str]:
    step = current(state)
    if state.overlay is not None:
        return st.sampled_from([label for label, _ in state.overlay.choices]).flatmap(decorated)
    if not isinstance(step, ChooseStep):
        return st.sampled_from(WORDS)
    words = [o.label for o in step.options] + [k for o in step.options for k in o.keywords]
    return st.sampled_from(words).flatmap(decorated)


gaps = st.one_of(
    st.floats(0, 5 * MINUTE),
    st.floats(0, 2 * DAY),
    st.integers(1, 8).map(lambda weeks: weeks * WEEK),
)
locale_hints = st.sampled_from([None, None, None, "en", "en-GB", "es_ES", "xx", ""])
channels = st.sampled_from(["", "telegram", "signal", "terminal"])


@st.composite
def random_inbound(draw: st.DrawFn, state: State, at: float) -> Inbound:
    what = draw(st.sampled_from(["text", "text", "button", "button", "number", "number",
                                 "label", "label", "label", "exit", "other"]))
    base = Inbound(kind="text", at=at, locale_hint=draw(locale_hints), channel=draw(channels))
    if what == "text":
        return replace(base, text=draw(random_text))
    if what == "button":
        return replace(base, kind="button", payload=draw(payloads(state)))
    if what == "number":
        return replace(base, text=draw(option_numbers(state)))
    if what == "label":
        return replace(base, text=draw(option_labels(state)))
    if what == "exit":
        return draw(st.sampled_from(quick_exits(at)))
    kind: InboundKind = draw(st.sampled_from(["start", "timer", "unsupported"]))
    payload = draw(st.one_of(st.sampled_from([*FLOW_IDS, "", "nope"]), st.text(max_size=10)))
    text = draw(st.one_of(st.just(""), random_text))
    return replace(base, kind=kind, text=text, payload=payload)


@st.composite
def valid_inbound(draw: st.DrawFn, state: State, at: float) -> Inbound:
    """Something that moves the conversation on: a valid option, or an answer."""
    step = current(state)
    if state.pending == "erase":
        return Inbound(kind="button", at=at, payload="g:erase:no")
    if state.overlay is not None:
        index = draw(st.integers(0, len(state.overlay.choices) - 1))
        return Inbound(kind="button", at=at, payload=f"o:{state.turn}:{index}")
    if isinstance(step, ChooseStep):
        index = draw(st.integers(0, len(step.options) - 1))
        option = step.options[index]
        how = draw(st.sampled_from(["press", "number", "label"]))
        if how == "press":
            return Inbound(kind="button", at=at, payload=f"c:{state.turn}:{index}")
        if how == "number":
            return Inbound(kind="text", at=at, text=draw(decorated(str(index + 1))))
        return Inbound(kind="text", at=at, text=draw(decorated(option.label)))
    if isinstance(step, AskStep):
        answer = draw(st.one_of(
            st.sampled_from([*step.skip, "North district", "Spanish", "Please call after 6"]),
            st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=1,
                    max_size=40).filter(lambda t: t.strip() != ""),
        ))
        return Inbound(kind="text", at=at, text=answer)
    return Inbound(kind="text", at=at, text=draw(st.sampled_from(["hi", "hello", "?"])))


# ------------------------------------------------------------------ properties


@settings(SETTINGS, max_examples=120)
@given(st.data())
def test_random_events_keep_every_invariant(data: st.DataObject) -> None:
    state = State()
    at = START_AT
    check_quick_exit(state, at)
    for _ in range(data.draw(st.integers(1, 25), label="length")):
        at += data.draw(gaps, label="gap")
        inbound = data.draw(random_inbound(state, at), label="inbound")
        show = data.draw(st.booleans(), label="app shows results")
        state = step_and_check(state, inbound, show).state


@settings(SETTINGS, max_examples=60)
@given(st.data())
def test_walking_valid_options_reaches_deep_states(data: st.DataObject) -> None:
    state = State()
    at = START_AT
    deepest = 0
    for _ in range(data.draw(st.integers(5, 60), label="length")):
        at += data.draw(st.one_of(st.floats(1, 5 * MINUTE), st.just(3 * WEEK)), label="gap")
        if data.draw(st.integers(0, 19), label="detour") == 0:
            # now and then something off the path, to mix deep states with odd input
            inbound = data.draw(random_inbound(state, at), label="odd")
        else:
            inbound = data.draw(valid_inbound(state, at), label="valid")
        show = data.draw(st.booleans(), label="app shows results")
        result = step_and_check(state, inbound, show)
        state = result.state
        deepest = max(deepest, len(state.stack))
    assert deepest <= MAX_DEPTH


def test_every_question_of_every_bundled_flow_is_reachable() -> None:
    """Breadth-first over valid answers (and due check-ins, with the app moving past each
    lookup): every choose and ask step of every bundled flow is reached, and a lookup, a
    handoff and a check-in happen."""
    at = START_AT
    seen: set[tuple[tuple[tuple[str, str], ...], bool, str, frozenset[str] | None]] = set()
    reached: set[tuple[str, str]] = set()
    effects: set[type] = set()
    # Flows may branch on the variable 'channel': walk them as no channel, Signal, Telegram;
    # and on what the app has: everything, nothing, a desk off shift, a check-in booked.
    fact_sets: tuple[frozenset[str] | None, ...] = (None, frozenset(),
                                                     frozenset({"desk", "directory"}),
                 frozenset({"checkin", "desk", "directory", "advocates"}))
    todo: deque[tuple[State, str, frozenset[str] | None]] = deque(
        (State(), channel, facts) for channel in ("", "signal", "telegram")
        for facts in fact_sets)
    while todo:
        state, channel, facts = todo.popleft()
        step = current(state)
        if isinstance(step, ChooseStep):
            inputs = [Inbound(kind="button", at=at, payload=f"c:{state.turn}:{i}",
                              channel=channel, facts=facts) for i in range(len(step.options))]
        elif isinstance(step, AskStep):
            inputs = [Inbound(kind="text", at=at, text=t, channel=channel, facts=facts)
                      for t in [*step.skip, "Somewhere"]]
        else:
            inputs = [Inbound(kind="text", at=at, text="hi", channel=channel, facts=facts)]
        for inbound in inputs:
            result = step_and_check(state, inbound)
            extra = [Inbound(kind="timer", at=at, payload=e.flow, facts=facts)
                     for e in result.effects if isinstance(e, Schedule)]
            effects.update(type(e) for e in result.effects)
            for nxt in [result.state, *(ENGINE.step(result.state, t).state for t in extra)]:
                key = (tuple((f.flow, f.step) for f in nxt.stack), nxt.seen_welcome, channel,
                       facts)
                if nxt.top is not None:
                    reached.add((nxt.top.flow, nxt.top.step))
                if key not in seen:
                    seen.add(key)
                    todo.append((nxt, channel, facts))
    questions = {(flow.id, step_id) for flow in FLOWS for step_id, step in flow.steps.items()
                 if isinstance(step, (ChooseStep, AskStep))}
    assert questions - reached == set()
    assert {Lookup, Handoff, Schedule} <= effects


# ------------------------------------------------------------------ examples


def walk(*inputs: str | tuple[str, str], at: float = START_AT) -> tuple[State, float]:
    """Run typed texts (or ("press", label)) from a fresh state; return the state and time."""
    state = State()
    for item in inputs:
        at += MINUTE
        if isinstance(item, tuple):
            step = current(state)
            assert isinstance(step, ChooseStep)
            index = [o.label for o in step.options].index(item[1])
            inbound = Inbound(kind="button", at=at, payload=f"c:{state.turn}:{index}")
        else:
            inbound = Inbound(kind="text", at=at, text=item)
        state = step_and_check(state, inbound).state
    return state, at


def test_welcome_then_menu_then_quick_exit() -> None:
    state, at = walk("hi")
    assert state.top == Frame(flow="welcome", step="safe_now")
    state, at = walk("hi", ("press", "Yes"))
    assert state.top == Frame(flow="main", step="menu")
    result = ENGINE.step(state, Inbound(kind="text", at=at + 1, text=" Exit! "))
    assert result.state == State(turn=result.state.turn)
    assert result.messages == []
    assert any(isinstance(e, DeleteChat) for e in result.effects)


def test_not_now_ends_quietly_and_the_next_message_starts_the_welcome_again() -> None:
    # "Not now" cut the welcome short: the quick-exit and storage explanations were not
    # seen yet, so the next message starts with the welcome again, not the menu.
    state, at = walk("hi", "not now")
    assert state.idle and not state.seen_welcome
    result = ENGINE.step(state, Inbound(kind="text", at=at + 1, text="hello"))
    assert result.state.top == Frame(flow="welcome", step="safe_now")
    state, at = walk("hi", "yes")
    assert state.seen_welcome


def test_erase_asks_to_confirm_and_yes_erases_everything() -> None:
    state, at = walk("hi", "yes", "find a service", "legal help", "18 or over")
    assert state.vars["needs"] == "legal" and state.vars["age_group"] == "18_plus"

    asked = step_and_check(state, Inbound(kind="text", at=at + 1, text="Delete my data"))
    assert asked.state.pending == "erase"
    assert asked.effects == []
    assert asked.state.vars == state.vars and asked.state.stack == state.stack
    [confirm] = asked.messages
    assert [c.payload for c in confirm.choices] == ["g:erase:yes", "g:erase:no"]

    for yes in (Inbound(kind="text", at=at + 2, text="yes"),
                Inbound(kind="button", at=at + 2, payload="g:erase:yes")):
        erased = step_and_check(asked.state, yes)
        assert any(isinstance(e, EraseData) for e in erased.effects)
        assert any(isinstance(e, DeleteChat) for e in erased.effects)
        fresh = erased.state
        assert (fresh.stack, fresh.vars, fresh.pending, fresh.locale) == ([], {}, None, None)


def test_erase_answered_no_keeps_everything() -> None:
    state, at = walk("hi", "yes", "find a service", "legal help", "North district")
    asked = ENGINE.step(state, Inbound(kind="text", at=at + 1, text="/delete"))
    for no in (Inbound(kind="text", at=at + 2, text="no"),
               Inbound(kind="button", at=at + 2, payload="g:erase:no"),
               Inbound(kind="text", at=at + 2, text="what?")):
        kept = step_and_check(asked.state, no)
        assert not any(isinstance(e, (EraseData, DeleteChat)) for e in kept.effects)
        assert kept.state.pending is None
        assert kept.state.stack == state.stack
        assert kept.state.vars == state.vars
        assert "Nothing was erased." in texts(kept)


def test_a_stale_button_re_prompts_and_does_not_move() -> None:
    state, at = walk("hi", "yes")
    menu_turn = state.turn
    state, at = walk("hi", "yes", ("press", "Staying safe"))
    assert state.top == Frame(flow="safety_tips", step="menu")
    for old in (f"c:{menu_turn}:0", f"c:{state.turn - 1}:1", "c:x:y", "g:nope"):
        result = step_and_check(state, Inbound(kind="button", at=at + 1, payload=old))
        assert result.messages[0].text.startswith("That button is from an earlier message")
        assert result.state.stack == state.stack
        assert result.state.vars == state.vars
        assert result.effects == []
        assert [c.payload for c in result.messages[-1].choices] == [
            f"c:{result.state.turn}:{i}" for i in range(5)]
    # a button of the current turn but past the last option is stale too
    result = step_and_check(state, Inbound(kind="button", at=at + 1,
                                           payload=f"c:{state.turn}:9"))
    assert "earlier message" in result.messages[0].text
    assert result.state.stack == state.stack


def test_coming_back_after_three_weeks_mid_question_re_asks() -> None:
    state, at = walk("hi", "yes", "find a service", "food", "18 or over", "prefer not to say")
    assert state.top == Frame(flow="resources", step="language")
    later = at + 3 * WEEK
    result = step_and_check(state, Inbound(kind="text", at=later, text="Arabic"))
    assert result.messages[0].text.startswith("Welcome back")
    language = FLOWS["resources"].steps["language"]
    assert isinstance(language, AskStep)
    assert result.messages[-1].text == language.ask
    assert result.state.stack == state.stack
    assert "language" not in result.state.vars
    # the next message, soon after, is taken as the answer
    answered = step_and_check(result.state, Inbound(kind="text", at=later + MINUTE,
                                                    text="Arabic"))
    assert answered.state.vars["language"] == "Arabic"
    assert answered.state.top == Frame(flow="resources", step="documents")


def test_coming_back_after_three_weeks_at_a_menu_re_shows_it() -> None:
    state, at = walk("hi", "yes")
    result = step_and_check(state, Inbound(kind="text", at=at + 3 * WEEK, text="2"))
    assert result.messages[0].text.startswith("Welcome back")
    assert result.state.stack == state.stack
    assert result.messages[-1].choices
    # a fresh button press is a clear answer, even weeks later
    pressed = step_and_check(state, Inbound(kind="button", at=at + 3 * WEEK,
                                            payload=f"c:{state.turn}:1"))
    assert pressed.state.top == Frame(flow="safety_tips", step="menu")


def test_sub_flows_return_to_the_main_menu() -> None:
    state, _ = walk("hi", "yes", "staying safe", "back to the main menu")
    assert state.stack == [Frame(flow="main", step="menu")]
    state, _ = walk("hi", "yes", "i need help right now", "safety tips",
                    "back to the main menu")
    assert state.stack == [Frame(flow="main", step="menu")]
    state, _ = walk("hi", "yes", "talk to a person", "yes", "skip", "evenings")
    assert state.stack == [Frame(flow="main", step="menu")]


def test_checkin_schedules_and_the_due_check_in_is_neutral() -> None:
    state, at = walk("hi", "yes", "check in with me later")
    result = step_and_check(state, Inbound(kind="text", at=at + 1, text="in 3 days"))
    assert Schedule(kind="checkin", after_hours=72.0, flow="checkin_due") in result.effects
    due = step_and_check(result.state, Inbound(kind="timer", at=at + 3 * DAY,
                                               payload="checkin_due"))
    assert due.state.stack == [Frame(flow="checkin_due", step="hello")]
    assert due.messages[0].text.startswith("Hi, this is the check-in you asked for.")


def test_handoff_shares_only_what_was_agreed() -> None:
    state, at = walk("hi", "yes", "find a service", "legal help", "18 or over",
                     "prefer not to say", "skip", "prefer not to say", "North district",
                     "talk to a person", "yes")
    result = step_and_check(state, Inbound(kind="text", at=at + 1, text="I need a lawyer"))
    result = step_and_check(result.state, Inbound(kind="text", at=at + 2, text="mornings"))
    [handoff] = [e for e in result.effects if isinstance(e, Handoff)]
    assert handoff.summary == {"advocate_note": "I need a lawyer", "safe_time": "mornings",
                               "needs": "legal"}


# ------------------------------------------------------------------ fixed engine bugs


def at_main_menu() -> tuple[State, float]:
    return walk("hi", "yes")


@pytest.mark.parametrize("text", ["፩", "𐩀", "᧚"])
def test_non_decimal_digits_at_a_menu(text: str) -> None:
    state, at = at_main_menu()
    result = ENGINE.step(state, Inbound(kind="text", at=at + 1, text=text))
    assert result.state.stack == state.stack


@pytest.mark.parametrize("sent", [
    ("text", "1" * 4301),
    ("button", "c:" + "1" * 4301 + ":0"),
    ("button", "c:{turn}:" + "0" * 4301),
], ids=["typed", "payload-turn", "payload-index"])
def test_huge_numbers_at_a_menu(sent: tuple[str, str]) -> None:
    state, at = at_main_menu()
    kind, raw = sent
    inbound = (Inbound(kind="text", at=at + 1, text=raw) if kind == "text" else
               Inbound(kind="button", at=at + 1, payload=raw.replace("{turn}", str(state.turn))))
    result = ENGINE.step(state, inbound)
    assert result.state.stack == state.stack


def test_state_saved_before_a_flow_was_edited() -> None:
    state, at = at_main_menu()
    state.stack = [Frame(flow="main", step="old_menu")]
    result = ENGINE.step(state, Inbound(kind="text", at=at + 1, text="1"))
    assert all(f.step in FLOWS[f.flow].steps for f in result.state.stack)


def test_check_in_due_while_erase_is_asked() -> None:
    state, at = at_main_menu()
    asked = ENGINE.step(state, Inbound(kind="text", at=at + 1, text="delete my data")).state
    due = ENGINE.step(asked, Inbound(kind="timer", at=at + DAY, payload="checkin_due"))
    assert "Nothing was erased." not in texts(due)
