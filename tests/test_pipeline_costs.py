"""What the pipeline does not do again each message (bench/README.md, "latest round"): the
person's row is used as the app saved it, the address is not read back, the events a
platform hands over together are written by one call, and a person's message id is kept
only where quick exit can delete it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from helpline.channels.base import Capabilities
from helpline.config import Retention
from helpline.events import Inbound, RawInbound
from tests.conftest import TEST_TOGETHER, Harness


def _refuse(*_: Any) -> Any:
    raise AssertionError("read from the store")


@pytest.mark.skipif(TEST_TOGETHER, reason="one worker keeps the row it saved; workers "
                    "serving together read it afresh every turn (another may have served "
                    "the person since)")
async def test_the_next_turn_uses_the_row_as_it_was_saved(basic: Harness) -> None:
    await basic.send("hi")
    # Every read of the person (and of their address) fails from now on: the turns go on.
    basic.app.store.person = _refuse  # type: ignore[method-assign,assignment]
    basic.app.store.address = _refuse  # type: ignore[method-assign,assignment]
    assert [m.text for m in await basic.press("Hear a tip")] == [
        "Tip: you can type exit at any time.", "That was the tip.", "Back in the main menu.",
        "What would you like to do?"]
    assert [m.text for m in await basic.send("menu")] == ["What would you like to do?"]


async def test_after_a_purge_a_person_starts_again(basic: Harness) -> None:
    """What the retention purge removed does not come back from memory."""
    await basic.send("hi")
    await basic.press("Check in later")
    basic.app.settings = basic.app.settings.model_copy(
        update={"retention": Retention(conversation_days=1 / 86400)})  # a second
    basic.clock.advance(5)  # a moment later: what the app kept of the row is still fresh
    counts = await basic.app.purge()
    assert counts["people"] == 1
    again = [m.text for m in await basic.send("hi")]
    assert again[0] == "Hello."  # the welcome again: a new conversation, not "When?"


@pytest.mark.skipif(TEST_TOGETHER, reason="one worker keeps the row it saved; workers "
                    "serving together read it afresh every turn (another may have served "
                    "the person since)")
async def test_a_row_kept_in_memory_is_read_again_after_a_while(basic: Harness) -> None:
    await basic.send("hi")
    reads = 0
    person = basic.app.store.person

    async def counted(pid: str) -> Any:
        nonlocal reads
        reads += 1
        return await person(pid)

    basic.app.store.person = counted  # type: ignore[method-assign]
    await basic.press("Hear a tip")
    assert reads == 0
    basic.clock.advance(60)
    await basic.send("menu")
    assert reads == 1


async def test_events_handed_over_together_are_written_by_one_call(basic: Harness) -> None:
    calls: list[int] = []
    accept = basic.app.store.accept

    async def counted(events: Sequence[Any], now: float) -> list[int | None]:
        calls.append(len(events))
        return await accept(events, now)

    basic.app.store.accept = counted  # type: ignore[method-assign]
    futures = [basic.app.accept(RawInbound("terminal", f"p{i}", f"addr-p{i}",
                                           Inbound(kind="text", at=0.0, text="hi"),
                                           event_id=str(i))) for i in range(5)]
    await asyncio.gather(*futures)
    assert calls == [5]
    await basic.app._serial.join()
    assert len(basic.channel.sent) >= 5  # everyone was answered


async def test_an_event_that_cannot_be_written_fails_alone(basic: Harness) -> None:
    accept = basic.app.store.accept

    async def picky(events: Sequence[Any], now: float) -> list[int | None]:
        if any(raw.inbound.text == "bad" for *_, raw in events):
            raise OSError("disk full")
        return await accept(events, now)

    basic.app.store.accept = picky  # type: ignore[method-assign]
    texts = ["hi", "bad", "hi"]
    futures = [basic.app.accept(RawInbound("terminal", f"p{i}", f"addr-p{i}",
                                           Inbound(kind="text", at=0.0, text=text)))
               for i, text in enumerate(texts)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], OSError)
    assert await basic.app.store.count("inbox") == 2


async def _kept_ids(person: Harness) -> list[tuple[int]]:
    rows = await person.app.store.db.execute_fetchall(
        "SELECT from_bot FROM message_ids WHERE pid = ? ORDER BY from_bot", (person.pid,))
    return [tuple(r) for r in rows]


async def test_a_person_s_message_id_is_kept_only_where_it_can_be_deleted(
        basic: Harness) -> None:
    await basic.send("hi")
    assert await _kept_ids(basic) == [(0,), (1,), (1,)]  # theirs and the bot's two
    basic.channel.capabilities = Capabilities(buttons=True, deletes_inbound=False,
                                              delete_window_hours=24)  # as Signal
    await basic.send("menu")
    assert await _kept_ids(basic) == [(0,), (1,), (1,), (1,)]  # only the bot's reply


async def test_a_turn_does_not_wait_for_its_counts(basic: Harness) -> None:
    """Statistics are added up and go in the turn's commit (or the next): a new person's
    first message (first contact, conversation started, a flow reached) costs no more trips
    to the database with statistics than without."""
    from helpline.stats import Stats, week_of
    from helpline.stats.feature import StatsFeature

    db = basic.app.store.database
    basic.platform_id = "without"
    before = db.trips
    await basic.send("hi")
    without = db.trips - before
    basic.app.add(StatsFeature())
    basic.platform_id = "with"
    before = db.trips
    await basic.send("hi")
    assert db.trips - before == without
    week = week_of(basic.clock.now)
    counted = {c.event: c.count for c in await Stats(db).counts(week, week)}
    assert counted["first_contact"] == 1 and counted["conversation_started"] == 1
