"""The real pipeline (engine + store + terminal channel) on a small test flow set."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from helpline.events import Inbound, Message, RawInbound
from tests.conftest import Harness


@dataclass
class Outage:
    down: bool = True


def outage(basic: Harness) -> Outage:
    """The channel's sends fail while ``down`` (the platform is unreachable)."""
    platform = Outage()
    real_send = basic.channel.send

    async def flaky(address: str, message: Message) -> list[str]:
        if platform.down:
            raise ConnectionError("platform down")
        return await real_send(address, message)

    basic.channel.send = flaky  # type: ignore[method-assign]
    return platform


def texts(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [m.text for m in messages]


async def test_ask_validation_branch_and_call_return(basic: Harness) -> None:
    first = await basic.send("hi")
    assert texts(first) == ["Hello.", "What would you like to do?"]
    assert [c.label for c in first[-1].choices] == [
        "Answer a question", "Hear a tip", "Check in later"]
    assert texts(await basic.send("1")) == ["What should I call you? (type skip to skip)"]
    assert texts(await basic.send("Sam")) == ["How old are you?"]
    assert texts(await basic.send("old")) == ["Please type your age as a number, like 30."]
    reply = await basic.send("15")
    assert reply[0].text == "Thanks Sam. Some services here are for people under 18."
    assert texts(await basic.press("Hear a tip")) == [
        "Tip: you can type exit at any time.", "That was the tip.", "Back in the main menu.",
        "What would you like to do?"]


async def test_state_is_saved_before_the_reply_and_survives_reopening(
    basic: Harness, harness_factory: object
) -> None:
    await basic.send("hi")
    await basic.send("1")
    await basic.send("Ana")
    person = await basic.app.store.person(basic.pid)
    assert person is not None and person.state.top is not None
    assert (person.state.top.flow, person.state.top.step) == ("main", "age")
    assert person.state.vars == {"channel": "terminal", "name": "Ana"}
    # A second app on the same file (a restart) continues at the same step.
    again = await harness_factory(basic.app.settings.flows)  # type: ignore[operator]
    assert texts(await again.send("40")) == ["Thanks Ana.", "What would you like to do?"]


async def test_stale_and_forged_buttons_reprompt_without_moving(basic: Harness) -> None:
    await basic.send("hi")
    old_choices = basic.last_choices
    await basic.press("Answer a question")
    for payload in (old_choices[1][1], "c:999:0", "garbage\x00", "g:nonsense"):
        reply = await basic.press_payload(payload)
        assert reply, payload
        top = (await basic.app.store.person(basic.pid)).state.top  # type: ignore[union-attr]
        assert top is not None and top.step == "name"


async def test_quick_exit_clears_state_jobs_and_deletes_messages(basic: Harness) -> None:
    await basic.send("hi")
    await basic.press("Check in later")
    await basic.press("In a day")
    assert await basic.app.store.count("jobs") == 1
    ids_before = await basic.app.store.message_ids(basic.pid, 0)
    assert ids_before
    assert await basic.send("EXIT") == []
    assert set(ids_before) <= set(basic.channel.deleted)
    person = await basic.app.store.person(basic.pid)
    assert person is not None and person.state.idle and person.state.vars == {}
    assert await basic.app.store.count("jobs") == 0
    assert await basic.app.store.count_operations("send") == 0
    assert await basic.app.store.message_ids(basic.pid, 0) == []


async def test_quick_exit_mid_question_wins_over_the_answer(basic: Harness) -> None:
    await basic.send("hi")
    await basic.send("1")
    assert await basic.send("/exit") == []
    assert texts(await basic.send("hello")) == ["Hello.", "What would you like to do?"]


async def test_delete_my_data_confirms_then_erases_every_row(basic: Harness) -> None:
    await basic.send("hi")
    await basic.press("Check in later")
    await basic.press("In a day")
    reply = await basic.send("delete my data")
    assert [c.label for c in reply[0].choices] == ["Yes, erase", "No, keep it"]
    assert texts(await basic.send("no"))[0] == "Nothing was erased."
    await basic.send("delete my data")
    await basic.press("Yes, erase")
    for table in ("people", "operations", "message_ids", "jobs"):
        assert await basic.app.store.count(table) == 0, table
    assert basic.channel.deleted


async def test_checkin_runs_when_due_and_not_before(basic: Harness) -> None:
    await basic.send("hi")
    await basic.press("Check in later")
    await basic.press("In a day")
    basic.clock.advance(23 * 3600)
    assert await basic.app.run_due_jobs() == 0
    basic.clock.advance(2 * 3600)
    assert await basic.app.run_due_jobs() == 1
    due = basic.new_messages()
    assert due[0].text.startswith("Hi, this is the check-in you asked for")
    assert await basic.app.store.count("jobs") == 0


async def test_a_due_checkin_run_twice_at_once_is_sent_once(basic: Harness) -> None:
    """Two runs of the due jobs at once (two workers in a takeover's moment): the one
    that takes the job off the list runs it; the other finds it gone."""
    await basic.send("hi")
    await basic.press("Check in later")
    await basic.press("In a day")
    basic.new_messages()
    basic.clock.advance(25 * 3600)
    ran = await asyncio.gather(basic.app.run_due_jobs(), basic.app.run_due_jobs())
    assert sorted(ran) == [0, 1]
    sent = [m.text for m in basic.new_messages()]
    assert sum(t.startswith("Hi, this is the check-in you asked for") for t in sent) == 1


async def test_weeks_later_the_question_is_shown_again(basic: Harness) -> None:
    await basic.send("hi")
    await basic.send("1")
    basic.clock.advance(21 * 86400)
    reply = await basic.send("hello again")
    assert texts(reply) == ["Welcome back. Here is where we left off:",
                            "What should I call you? (type skip to skip)"]
    assert texts(await basic.send("Kim")) == ["How old are you?"]


async def test_one_persons_messages_are_handled_in_order(basic: Harness) -> None:
    await basic.send("hi")
    events = [RawInbound("terminal", "person-1", "addr", Inbound(kind="text", at=0, text=t))
              for t in ("1", "Lee", "30")]
    await asyncio.gather(*(basic.app.handle(e) for e in events))
    assert texts(basic.new_messages()) == [
        "What should I call you? (type skip to skip)", "How old are you?", "Thanks Lee.",
        "What would you like to do?"]


async def test_failed_sends_are_kept_and_delivered_in_order(basic: Harness) -> None:
    await basic.send("hi")
    platform = outage(basic)
    await basic.send("1")
    await basic.send("Jo")
    assert await basic.app.store.count_operations("send") == 2
    platform.down = False
    basic.clock.advance(600)
    await basic.app.deliver_pending()
    assert texts(basic.new_messages()) == [
        "What should I call you? (type skip to skip)", "How old are you?"]
    assert await basic.app.store.count_operations("send") == 0


async def test_garbage_never_breaks_a_conversation(basic: Harness) -> None:
    await basic.send("hi")
    for junk in ("", " ", "\x00\x01", "9" * 5000, "💥" * 100, "{name}", "%s%s%n"):
        await basic.send(junk)
    await basic.press_payload("c:1:999999999999")
    reply = await basic.send("1")
    assert texts(reply) == ["What should I call you? (type skip to skip)"]


async def test_erase_confirmation_by_number_as_on_a_numbered_list(basic: Harness) -> None:
    await basic.send("hi")
    await basic.send("delete my data")
    assert await basic.send("1") == []
    assert await basic.app.store.count("people") == 0


async def test_a_retried_reply_takes_the_replies_behind_it_along(basic: Harness) -> None:
    """Replies a turn just queued are left to that turn for a while (the periodic retry
    does not take them up at once); once the head of a queue is due, the retry sends it
    and everything behind it, in order, without waiting for their own time."""
    await basic.send("hi")
    platform = outage(basic)
    await basic.send("1")  # fails: retried in 2 s
    platform.down = False
    await basic.app.deliver_pending()  # not due yet: nothing is sent
    assert texts(basic.new_messages()) == []
    platform.down = True
    await basic.send("Jo")  # queued behind it; this turn's own try fails at the head again
    assert await basic.app.store.count_operations("send") == 2
    platform.down = False
    basic.clock.advance(10)  # the head's retry is due; the reply behind it is not
    await basic.app.deliver_pending()
    assert texts(basic.new_messages()) == [
        "What should I call you? (type skip to skip)", "How old are you?"]
    assert await basic.app.store.count_operations("send") == 0


async def test_quick_exit_deletes_are_kept_until_the_platform_has_done_them(
        basic: Harness) -> None:
    await basic.send("hi")
    real_delete = basic.channel.delete
    failing = True
    asked: list[list[str]] = []

    async def flaky(address: str, ids: Sequence[str]) -> list[str]:
        asked.append(list(ids))
        if failing:
            return list(ids)
        await real_delete(address, ids)
        return []

    basic.channel.delete = flaky  # type: ignore[method-assign,assignment]
    await basic.send("exit")
    assert await basic.app.store.count_operations("delete") == 1
    basic.clock.advance(10)
    await basic.app.deliver_pending()  # the sweep asks again, after a backoff: still failing
    assert len(asked) == 2 and asked[0] == asked[1] and asked[0]
    failing = False
    basic.clock.advance(10)
    await basic.app.deliver_pending()
    assert await basic.app.store.count_operations("delete") == 0
    assert sorted(basic.channel.deleted) == sorted(asked[0])
    # Past the platform's delete window a kept delete is dropped without asking.
    failing = True
    await basic.send("hi")
    await basic.send("exit")
    assert await basic.app.store.count_operations("delete") == 1
    before = len(asked)
    basic.clock.advance(49 * 3600)
    await basic.app.deliver_pending()
    assert len(asked) == before
    assert await basic.app.store.count_operations("delete") == 0
