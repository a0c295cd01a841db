"""One message a turn in every path of the advocate handoff: when a handoff cannot reach
anyone now, the app's own question ("leave a message?") takes the place of the flow's next
question in that turn, and the flow goes on from its next step once it is answered.

Transcripts over the real pipeline (terminal channel, store, flows): a custom flow whose
``handoff`` step has no ``for_next_shift`` and is followed by a menu, and the bundled flow
when the shift ends between the flow's availability check and the handoff."""

from __future__ import annotations

import random
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from helpline.config import Handoff
from helpline.events import Message, combined
from helpline.handoff import install
from helpline.handoff.office_hours import OfficeHours
from helpline.handoff.relay import HandoffService
from helpline.resources.importer import import_directory
from helpline.state import Overlay, State
from tests.conftest import BUNDLED_FLOWS, ROOT, Harness, HarnessFactory, make_settings
from tests.test_handoff import ADVOCATE, MAIN_MENU, NOTE, MemoryDesk

FLOWS = Path(__file__).resolve().parent / "flows_handoff_menu"
OFF_SHIFT = ["mon 00:00-00:01"]  # the harness's clock starts on a Friday at 08:00 UTC
ASKED = "Would you like to leave a message for the next advocate on shift?"
LATER_BUTTONS = ["Yes, leave a message", "No, thanks"]
ANYTHING_ELSE = "Is there anything else?"
AFTER_BUTTONS = ["A tip", "Back to the menu"]


def one_message(said: list[Message]) -> Message:
    """What a turn sent, as Telegram and Signal send it: one message, the buttons (if any)
    on it, last. Returns that message."""
    with_choices = [i for i, m in enumerate(said) if m.choices]
    assert with_choices in ([], [len(said) - 1]), said
    [joined] = combined(said, 4096)
    return joined


def labels(message: Message) -> list[str]:
    return [c.label for c in message.choices]


async def custom(factory: HarnessFactory, tmp_path: Path, flows: Path = FLOWS,
                 **settings: Any) -> tuple[Harness, MemoryDesk, HandoffService]:
    h = await factory(flows, make_settings(
        tmp_path, flows, handoff=Handoff(advocates=[ADVOCATE], hours=OFF_SHIFT), **settings))
    desk = MemoryDesk()
    return h, desk, install(h.app, desk)


async def at_the_question(h: Harness) -> Message:
    await h.send("hi", locale_hint="en")
    await h.press("Talk to a person")
    return one_message(await h.send(NOTE))


def payload_of(message: Message, label: str) -> str:
    return next(c.payload for c in message.choices if c.label == label)


# ------------------------------------------------------------------ a custom flow


async def test_off_shift_the_apps_question_takes_the_place_of_the_flows_menu(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, desk, service = await custom(harness_factory, tmp_path)
    asked = await at_the_question(h)
    # One message: no one on shift, the numbers, the question with its buttons; the
    # flow's own menu waits until the question is answered.
    assert asked.text.startswith("No advocates are on shift right now.")
    assert "0800 000 000" in asked.text and asked.text.endswith(
        "They would reply here, and it may take a while.")
    assert ASKED in asked.text and ANYTHING_ELSE not in asked.text
    assert labels(asked) == LATER_BUTTONS
    # Nothing reaches the desk, and no case waits, unless the person says yes.
    assert desk.threads == {} and await service.cases.open_for(h.pid) is None
    # Yes: the case waits for the next shift, and the flow goes on at its next step.
    done = one_message(await h.press("Yes, leave a message"))
    assert done.text.startswith("Your message is in. Your case number is ")
    assert done.text.endswith(f"\n\n{ANYTHING_ELSE}") and labels(done) == AFTER_BUTTONS
    case = await service.cases.open_for(h.pid)
    assert case is not None and case.later == "yes" and case.handle in done.text
    assert [e for e, _, _ in await service.cases.events(case.id)] == [
        "opened", "wants_reply_later"]
    card, wants = desk.threads["1"]
    assert card.startswith(f"Case {case.handle}") and NOTE in card
    assert wants == "The person would like a reply when an advocate is on shift."
    # The flow's menu answers as usual; back at the top, typed text goes to the desk.
    tip = one_message(await h.press("A tip"))
    assert tip.text.startswith("Tip: you can turn on auto-delete") and labels(tip) == (
        AFTER_BUTTONS)
    await h.press("Back to the menu")
    assert await h.send("I can talk after six") == []
    assert desk.threads["1"][-1] == "Person: I can talk after six"


async def test_a_shift_that_began_meanwhile_takes_the_yes_as_a_request_now(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, desk, service = await custom(harness_factory, tmp_path)
    await at_the_question(h)
    service.hours = STAFFED
    done = one_message(await h.press("Yes, leave a message"))
    assert done.text.startswith("Your request is in. Your case number is ")
    assert "You are number 1 in the queue." in done.text and labels(done) == AFTER_BUTTONS
    case = await service.cases.open_for(h.pid)
    assert case is not None and case.later is None and NOTE in desk.threads["1"][0]


@pytest.mark.parametrize("answer", ["press", "no", "No", "2", "no, thanks"])
async def test_declining_leaves_nothing_and_the_flow_goes_on(
    harness_factory: HarnessFactory, tmp_path: Path, answer: str,
) -> None:
    h, desk, service = await custom(harness_factory, tmp_path)
    await at_the_question(h)
    said = await (h.press("No, thanks") if answer == "press" else h.send(answer))
    declined = one_message(said)
    assert declined.text == f"That's OK. You can ask for this from the menu at any time." \
        f"\n\n{ANYTHING_ELSE}"
    assert labels(declined) == AFTER_BUTTONS
    assert await service.cases.open_for(h.pid) is None and desk.threads == {}
    assert await h.app.store.count("cases") == 0
    # Typed text is the flow's again, never the desk's.
    again = one_message(await h.send("1"))
    assert again.text.startswith("Tip: you can turn on auto-delete")
    assert desk.threads == {}


@pytest.mark.parametrize("answer", ["yes", "1", "Yes, leave a message", "y"])
async def test_a_typed_yes_leaves_the_message(
    harness_factory: HarnessFactory, tmp_path: Path, answer: str,
) -> None:
    h, desk, service = await custom(harness_factory, tmp_path)
    await at_the_question(h)
    done = one_message(await h.send(answer))
    assert done.text.startswith("Your message is in. Your case number is ")
    assert labels(done) == AFTER_BUTTONS
    case = await service.cases.open_for(h.pid)
    assert case is not None and case.later == "yes"
    assert NOTE in desk.threads["1"][0]


async def test_anything_else_typed_at_the_question_asks_again_and_passes_nothing_on(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, desk, service = await custom(harness_factory, tmp_path)
    [_hello, menu] = await h.send("hi", locale_hint="en")
    await h.press("Talk to a person")
    asked = one_message(await h.send(NOTE))
    again = one_message(await h.send("is anyone there?"))
    assert again.text.startswith("Sorry, I didn't catch that.")
    assert again.choices == asked.choices  # the same question, its buttons still good
    help_ = one_message(await h.send("help"))
    assert help_.text.startswith("You can type menu at any time")
    assert ASKED in help_.text and help_.choices == asked.choices
    # A button of an earlier message is stale: it says so and asks again.
    old = one_message(await h.press_payload(payload_of(menu, "Talk to a person")))
    assert old.text.startswith("That button is from an earlier message.")
    assert ASKED in old.text and old.choices == asked.choices
    assert desk.threads == {} and await service.cases.open_for(h.pid) is None


async def test_menu_from_the_question_leaves_it_with_no_case(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, desk, _service = await custom(harness_factory, tmp_path)
    await at_the_question(h)
    menu = one_message(await h.send("menu"))
    assert menu.text == "What would you like to do?"
    assert labels(menu) == ["Talk to a person", "A tip", "Numbers to call"]
    # No case waits on an answer: the next typed answers are the menu's.
    tip = one_message(await h.send("2"))
    assert tip.text.startswith("Tip: you can type exit at any time.")
    assert desk.threads == {} and await h.app.store.count("cases") == 0


async def test_quick_exit_and_erase_from_the_question(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, desk, _service = await custom(harness_factory, tmp_path)
    await at_the_question(h)
    erase = one_message(await h.send("delete my data"))
    assert erase.text.startswith("This erases everything stored about you here")
    kept = one_message(await h.press("No, keep it"))
    assert kept.text.startswith("Nothing was erased.") and ASKED in kept.text
    assert labels(kept) == LATER_BUTTONS
    assert await h.send("exit") == []
    person = await h.app.store.person(h.pid)
    assert person is None or (person.state.idle and person.state.overlay is None)
    assert desk.threads == {} and await h.app.store.count("cases") == 0


async def test_a_language_switch_asks_the_question_again_in_the_new_language(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, desk, service = await custom(harness_factory, tmp_path, languages=["en", "es"])
    await at_the_question(h)
    menu = one_message(await h.send("language"))
    assert labels(menu) == ["English", "Español"]
    asked = one_message(await h.press("Español"))
    off_shift = h.app.tr.gettext("es", "No advocates are on shift right now.")
    question = h.app.tr.gettext("es", ASKED + " They would reply here, and it may take a "
                                "while.")
    assert off_shift != "No advocates are on shift right now."
    assert asked.text.startswith(f"De acuerdo.\n\n{off_shift}")
    assert asked.text.endswith(question)
    yes = h.app.tr.gettext("es", "Yes, leave a message")
    assert labels(asked) == [yes, h.app.tr.gettext("es", "No, thanks")]
    done = one_message(await h.press(yes))
    assert done.text.startswith(h.app.tr.gettext(
        "es", "Your message is in. Your case number is {handle}. An advocate will read it "
        "when they are on shift and reply here. Anything you write here until then is "
        "passed on too.").split("{handle}")[0])
    case = await service.cases.open_for(h.pid)
    assert case is not None and case.locale == "es" and desk.threads


async def test_with_no_desk_the_numbers_come_with_the_flows_next_question(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    """Nothing to leave a message with: the numbers, and the flow's menu in the same
    message (there is no question of the app's to answer)."""
    h = await harness_factory(FLOWS, make_settings(tmp_path, FLOWS))
    await h.send("hi")
    await h.press("Talk to a person")
    told = one_message(await h.send(NOTE))
    assert told.text.startswith("I'm sorry, there is no one here to chat with at the moment.")
    assert "0800 000 000" in told.text and "112" in told.text
    assert told.text.endswith(f"\n\n{ANYTHING_ELSE}") and labels(told) == AFTER_BUTTONS


# ------------------------------------------------------------------ the bundled flow


async def test_the_shift_ends_between_the_flows_check_and_the_handoff(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    # On shift until 08:10 UTC; the harness's clock starts at 08:00 on that Friday.
    h = await harness_factory(settings=make_settings(
        tmp_path, handoff=Handoff(advocates=[ADVOCATE], hours=["fri 00:00-08:10"])))
    desk = MemoryDesk()
    service = install(h.app, desk)
    await h.send("hi")
    await h.press("Yes")
    consent = one_message(await h.send("4"))  # the flow's check: advocates are on shift
    assert consent.text.startswith("A trained advocate can chat with you here.")
    await h.press("Yes")
    await h.send(NOTE)
    h.clock.advance(15 * 60)  # the shift ends while the person chooses
    asked = one_message(await h.press("Evenings"))
    assert asked.text.startswith("No advocates are on shift right now.")
    assert ASKED in asked.text and MAIN_MENU not in asked.text
    assert labels(asked) == LATER_BUTTONS
    assert desk.threads == {} and await service.cases.open_for(h.pid) is None
    done = one_message(await h.press("Yes, leave a message"))
    assert done.text.startswith("Your message is in. Your case number is ")
    assert done.text.endswith(MAIN_MENU)
    assert labels(done)[3] == "Leave a message for an advocate"  # off shift now
    case = await service.cases.open_for(h.pid)
    assert case is not None and case.later == "yes"
    assert NOTE in desk.threads["1"][0] and "evenings" in desk.threads["1"][0]


# ------------------------------------------------------------------ every path, every turn

ANSWERS = ["skip", NOTE, "North district", "Spanish", "hello", "2", "yes", "no", "?"]
COMMANDS = ["menu", "help", "language", "delete my data"]
# Taken more often than the rest, so that walks reach the handoff in its every state.
TOWARDS_A_PERSON = {"Talk to a person", "Leave a message for an advocate", "Yes",
                    "Leave a message", "Yes, leave a message", "No, thanks", "Evenings",
                    "Any time", "Not now"}


STAFFED = OfficeHours([], [], "UTC")
CLOSED = OfficeHours(OFF_SHIFT, [], "UTC")


async def walk(h: Harness, rng: random.Random, turns: int,
               service: HandoffService | None) -> list[str]:
    """Random moves (a button of the last message mostly, typed answers, a command now
    and then, an old button rarely), each turn checked: one message, its buttons (if
    any) last. Returns the transcript."""
    log: list[str] = []
    shown: list[tuple[str, str]] = []
    last = ""

    async def turn(what: str, said: Awaitable[list[Message]]) -> None:
        nonlocal last
        replies = await said
        log.append(f"{what} -> {[(m.text[:40], labels(m)) for m in replies]}")
        with_choices = [i for i, m in enumerate(replies) if m.choices]
        assert with_choices in ([], [len(replies) - 1]), "\n".join(log)
        assert len(combined(replies, 4096)) <= 1, "\n".join(log)
        shown[:] = [(c.label, c.payload) for c in replies[-1].choices] if replies else []
        last = replies[-1].text if replies else ""

    await turn("hi", h.send("hi"))
    for _ in range(turns):
        # A shift begins or ends between two turns; often it ends just before the handoff.
        if service is not None and last.startswith("When is it usually safer"):
            service.hours = rng.choice([CLOSED, CLOSED, service.hours])
        elif service is not None and rng.random() < 0.15:
            service.hours = CLOSED if service.hours is STAFFED else STAFFED
        roll = rng.random()
        if roll < 0.06:
            word = rng.choice(COMMANDS)
            await turn(word, h.send(word))
        elif roll < 0.08 and h.last_choices:
            label, payload = rng.choice(h.last_choices)
            await turn(f"old [{label}]", h.press_payload(payload))
        elif shown and roll < 0.9:
            towards = [c for c in shown if c[0] in TOWARDS_A_PERSON
                       or c[0] in {h.app.tr.gettext("es", t) for t in TOWARDS_A_PERSON}]
            label, payload = rng.choice(towards if towards and rng.random() < 0.6
                                        else shown)
            await turn(f"[{label}]", h.press_payload(payload))
        else:
            answer = rng.choice(ANSWERS)
            await turn(answer, h.send(answer))
    return log


async def test_no_turn_of_the_bundled_flows_sends_two_messages_with_buttons(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    """Random walks through the bundled flows with a desk whose shift begins and ends
    between any two turns (the flows' checks and the handoff may disagree), in English and
    Spanish (a switch re-renders what is on screen), and with no desk at all; the sample
    directory answers lookups with its own menus."""
    # The seed is one whose walks reach every landmark below (the walks change with the
    # bundled flows: a new option in the safety menu changed them).
    rng = random.Random(17)
    h, _desk, service = await custom(harness_factory, tmp_path / "desk", flows=BUNDLED_FLOWS,
                                     languages=["en", "es"])
    await import_directory(h.app.store, ROOT / "data" / "sample-directory.yaml", h.clock())
    logs: list[str] = []
    for person in range(16):
        h.platform_id = f"person-{person}"
        service.hours = rng.choice([STAFFED, CLOSED])
        logs += await walk(h, rng, 25, service)
    bare = await harness_factory(settings=make_settings(tmp_path / "bare"))
    for person in range(4):
        bare.platform_id = f"person-{person}"
        logs += await walk(bare, rng, 20, None)
    # The walks went where it matters: the app's question at a handoff step, a case for
    # the next shift and one on shift, results of a lookup, the no-desk answer.
    seen = "\n".join(logs)
    for landmark in ("['Yes, leave a message', 'No, thanks']",
                     "[Yes, leave a message] -> [('Your message is in.",
                     "('Your request is in.", "('I found ", "\"I'm sorry, there is no one here",
                     "[Español] -> "):
        assert landmark in seen, landmark


# ------------------------------------------------------------------ kept in the state


async def test_the_question_survives_a_restart(
    harness_factory: HarnessFactory, tmp_path: Path,
) -> None:
    h, _desk, _service = await custom(harness_factory, tmp_path)
    await at_the_question(h)
    again, desk, service = await custom(harness_factory, tmp_path)  # the same database
    again.platform_id = h.platform_id
    done = one_message(await again.send("yes"))
    assert done.text.startswith("Your message is in.") and labels(done) == AFTER_BUTTONS
    assert await service.cases.open_for(again.pid) is not None and NOTE in desk.threads["1"][0]


def test_an_overlays_typed_words_are_kept_and_older_states_still_load() -> None:
    state = State(overlay=Overlay("handoff", "Leave a message?",
                                  (("Yes", "later:yes"), ("No", "later:no")),
                                  (frozenset({"yes", "y"}), frozenset({"no"}))))
    assert State.from_json(state.to_json()) == state
    older = State(overlay=Overlay("resources", "Found", (("Done", "next"),)))
    assert "words" not in older.to_json() and State.from_json(older.to_json()) == older
    broken = state.to_dict()
    broken["overlay"]["words"] = [["yes"]]
    with pytest.raises(ValueError, match="words do not match"):
        State.from_dict(broken)
