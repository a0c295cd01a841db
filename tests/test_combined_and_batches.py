"""A turn's replies joined into one message per channel, and the store's group commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helpline.channels.base import Capabilities
from helpline.config import Delivery
from helpline.events import Choice, Message, combined, split_long
from helpline.privacy import Vault
from helpline.state import Frame, State
from helpline.store import Store
from helpline.store.sql import SyncConn
from tests.conftest import BASIC_FLOWS, SECRET, HarnessFactory, make_settings

MENU = (Choice("Yes", "c:1:0"), Choice("No", "c:1:1"))


def test_texts_are_joined_onto_the_question_that_follows() -> None:
    joined = combined([Message("Hello."), Message("A tip."), Message("Safe?", MENU)], 4000)
    assert joined == [Message("Hello.\n\nA tip.\n\nSafe?", MENU)]


def test_choices_end_a_group_and_a_quiet_rerender_keeps_the_text() -> None:
    joined = combined([Message("Pick one", MENU), Message("After."), Message("", MENU)], 4000)
    assert joined == [Message("Pick one", MENU), Message("After.", MENU)]


def test_the_quick_exit_reply_is_never_joined() -> None:
    neutral = Message("OK", ephemeral=True)
    assert combined([Message("Bye."), neutral], 4000) == [Message("Bye."), neutral]
    assert combined([neutral, Message("Hi")], 4000) == [neutral, Message("Hi")]


def test_joining_stops_at_the_channel_limit_and_zero_means_never() -> None:
    parts = [Message("a" * 6), Message("b" * 6), Message("c" * 6)]
    assert combined(parts, 14) == [Message("aaaaaa\n\nbbbbbb"), Message("cccccc")]
    assert combined(parts, 0) == parts
    assert combined([], 4000) == []


def test_a_numbered_list_counts_toward_the_limit() -> None:
    # On Signal the choices become lines of the text: "Safe?" + two lines do not fit in 20.
    assert combined([Message("a" * 8), Message("Safe?", MENU)], 20) == [
        Message("a" * 8), Message("Safe?", MENU)]
    assert combined([Message("a" * 8), Message("Safe?", MENU)], 40) == [
        Message("a" * 8 + "\n\nSafe?", MENU)]


def test_a_text_too_long_for_one_message_goes_in_parts_with_the_choices_last() -> None:
    long = " ".join(["word"] * 30)  # 149 characters
    parts = split_long([Message("short"), Message(long, MENU),
                        Message(long, ephemeral=True)], 60)
    assert parts[0] == Message("short")
    menu_parts = [m for m in parts[1:] if not m.ephemeral]
    assert len(menu_parts) == 3 and all(len(m.text) <= 60 for m in menu_parts)
    assert [m.choices for m in menu_parts] == [(), (), MENU]
    assert " ".join(m.text for m in menu_parts) == long
    assert all(m.ephemeral for m in parts[4:]) and len(parts) == 7
    assert split_long(parts, 0) == parts


async def test_a_channel_with_a_limit_gets_one_message_a_turn(
        harness_factory: HarnessFactory, tmp_path: Path) -> None:
    person = await harness_factory(BASIC_FLOWS)
    person.channel.capabilities = Capabilities(buttons=False, deletes_inbound=True,
                                               delete_window_hours=48, max_text=4000)
    [hello] = await person.send("hi")
    assert hello.text == "Hello.\n\nWhat would you like to do?"
    assert [c.label for c in hello.choices] == ["Answer a question", "Hear a tip",
                                                "Check in later"]
    rows = await person.app.store.db.execute_fetchall(
        "SELECT COUNT(*) FROM message_ids WHERE pid = ? AND from_bot = 1", (person.pid,))
    assert list(rows) == [(1,)]


async def test_combine_replies_off_sends_a_message_a_step(
        harness_factory: HarnessFactory, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, BASIC_FLOWS, delivery=Delivery(combine_replies=False))
    person = await harness_factory(BASIC_FLOWS, settings)
    person.channel.capabilities = Capabilities(buttons=False, deletes_inbound=True,
                                               delete_window_hours=48, max_text=4000)
    assert [m.text for m in await person.send("hi")] == ["Hello.",
                                                        "What would you like to do?"]


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    return await Store.open(tmp_path / "helpline.db", Vault(SECRET))


async def test_writes_queued_together_commit_together_and_all_land(store: Store) -> None:
    trips = store.database.trips  # trips to the database thread so far
    state = State(stack=[Frame("main", "menu")], turn=5)
    saved = await asyncio.gather(*(
        store.save_turn(f"pid-{i}", "telegram", f"addr-{i}", state, [Message(f"reply {i}")],
                        100.0, str(i)) for i in range(50)))
    # One trip for the first, one for everyone who queued meanwhile.
    assert store.database.trips - trips < 10
    assert all(s is not None and len(s) == 1 for s in saved)
    for i in range(50):
        person = await store.person(f"pid-{i}")
        assert person is not None and person.address == f"addr-{i}"
        assert person.state == state
        [item] = await store.operations(f"pid-{i}")
        assert item.message == Message(f"reply {i}")
    await store.close()


async def test_a_failing_write_is_undone_alone(store: Store) -> None:
    def boom(db: SyncConn) -> None:
        db.execute("INSERT INTO operations (key, channel, kind, body, created_at, not_before, "
                   "next_try_at) VALUES ('x', 'telegram', 'send', x'00', 1, 1, 1)")
        raise RuntimeError("this work fails after writing")

    state = State(turn=3)
    results = await asyncio.gather(
        store.save_turn("pid-a", "telegram", "addr-a", state, [Message("a")], 1.0),
        store.database.write(boom),
        store.save_turn("pid-b", "telegram", "addr-b", state, [Message("b")], 1.0),
        return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert [i.message.text for i in await store.operations("pid-a")] == ["a"]
    assert [i.message.text for i in await store.operations("pid-b")] == ["b"]
    assert await store.operations("x") == []  # the failing work's own row was rolled back
    await store.close()


async def test_a_save_with_older_replies_queued_says_so(store: Store) -> None:
    state = State(turn=3)
    first = await store.save_turn("pid-a", "telegram", "addr-a", state, [Message("1")], 1.0)
    assert first is not None and [i.message.text for i in first] == ["1"]
    second = await store.save_turn("pid-a", "telegram", "addr-a", state, [Message("2")], 2.0)
    assert second is None  # "1" is still queued: the caller must read the outbox, in order
    assert [i.message.text for i in await store.operations("pid-a")] == ["1", "2"]
    await store.close()


async def test_people_read_at_the_same_time_are_read_in_one_trip(store: Store) -> None:
    for i in range(0, 40, 2):
        await store.save_turn(f"pid-{i}", "signal", f"addr-{i}", State(turn=i), [], 1.0)
    trips = store.database.trips  # trips to the database thread so far
    people = await asyncio.gather(*(store.person(f"pid-{i % 40}") for i in range(1200)))
    assert store.database.trips - trips <= 3
    for i, person in enumerate(people):
        if i % 2:
            assert person is None  # never saved
        else:
            assert person is not None and person.address == f"addr-{i % 40}"
            assert person.state.turn == i % 40
    await store.close()
