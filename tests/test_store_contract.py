"""The storage contract: what the app relies on from the conversation store, the inbox and
the operations queue, written against the store's public calls only, so that a second
backend (PostgreSQL) runs the same tests by adding itself to ``BACKENDS``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpline.events import Inbound, Message, RawInbound
from helpline.privacy import Vault
from helpline.state import State
from helpline.store import PendingDelete, Store
from helpline.store.sql import SyncConn
from tests.conftest import SECRET
from tests.postgres import BACKENDS, opened_store

NOW = 1_800_000_000.0
@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with opened_store(request.param, request, tmp_path) as opened:
        yield opened


def raw(text: str, who: str = "p", event: str | None = None) -> RawInbound:
    return RawInbound("telegram", who, f"addr-{who}", Inbound(kind="text", at=0.0, text=text),
                      message_id="7", event_id=event)


# ------------------------------------------------------------------ conversations


async def test_a_turn_saves_state_and_queues_replies_in_order(store: Store) -> None:
    queued = await store.save_turn("pid", "telegram", "addr", State(turn=2),
                                   [Message("a"), Message("b")], NOW, timers=[86400])
    assert queued is not None and [op.kind for op in queued] == ["timer", "send", "send"]
    person = await store.person("pid")
    assert person is not None and person.state.turn == 2 and person.address == "addr"
    assert [(op.kind, op.body) for op in await store.operations("pid")] == [
        ("timer", 86400), ("send", Message("a")), ("send", Message("b"))]
    again = await store.save_turn("pid", "telegram", "addr", State(turn=3), [Message("c")],
                                  NOW + 1)
    assert again is None  # older operations are queued: the caller reads the queue


async def test_erase_leaves_nothing_of_the_person_but_the_deletes_tied_to_no_one(
        store: Store) -> None:
    await store.save_turn("pid", "telegram", "addr", State(turn=1), [Message("a")], NOW,
                          inbound_msg_id="5")
    [row_id] = await store.accept([("pid", "telegram", "e1", raw("x"))], NOW)
    key = await store.erase_person("pid", PendingDelete("telegram", "addr", ("5",),
                                                        NOW + 3600, NOW), row_id)
    assert await store.person("pid") is None
    assert await store.operations("pid") == []
    assert await store.unprocessed() == []
    assert key is not None and key.startswith("x:")
    [kept] = await store.operations(key)
    assert kept.kind == "delete" and kept.body == ("5",) and kept.address == "addr"
    assert await store.message_ids("pid", 0) == []


# ------------------------------------------------------------------ the inbox


async def test_the_inbox_keeps_order_and_drops_a_redelivery(store: Store) -> None:
    ids = await store.accept([("p1", "telegram", "e1", raw("one")),
                              ("p2", "telegram", "e2", raw("two", "q")),
                              ("p1", "telegram", "e3", raw("three"))], NOW)
    assert all(i is not None for i in ids)
    assert await store.accept([("p1", "telegram", "e1", raw("one"))], NOW) == [None]
    rows = await store.unprocessed()
    assert [(r.pid, r.raw.inbound.text) for r in rows] == [
        ("p1", "one"), ("p2", "two"), ("p1", "three")]
    assert rows[0].raw.address == "addr-p" and rows[0].raw.message_id == "7"
    first = ids[0]
    assert first is not None
    await store.save_turn("p1", "telegram", "addr-p", State(), [], NOW, inbox_id=first)
    assert [r.raw.inbound.text for r in await store.unprocessed()] == ["two", "three"]
    # Crossed off, it is still known: delivered again, it is dropped.
    assert await store.accept([("p1", "telegram", "e1", raw("one"))], NOW) == [None]


async def test_processed_events_keep_no_person_and_go_with_retention(store: Store) -> None:
    [row_id] = await store.accept([("p1", "telegram", "e1", raw("one"))], NOW)
    assert row_id is not None
    await store.inbox_done(row_id)
    counts = await store.purge(NOW + 49 * 3600, 90, 48)
    assert counts["inbox"] == 1
    assert await store.accept([("p1", "telegram", "e1", raw("one"))], NOW) != [None]


# ------------------------------------------------------------------ the operations queue


async def test_operations_are_retried_ended_and_counted(store: Store) -> None:
    await store.save_turn("pid", "telegram", "addr", State(), [Message("a"), Message("b")],
                          NOW)
    first, second = await store.operations("pid")
    await store.retry_later(first.id, NOW + 10)
    [(key, due)] = await store.keys_with_operations()
    assert key == "pid" and due == NOW + 10
    again = (await store.operations("pid"))[0]
    assert again.attempts == 1 and again.next_try_at == NOW + 10
    await store.operation_ended(again, "rejected")
    await store.operation_done(second, "pid", ["42"], NOW)
    assert await store.operations("pid") == []
    assert await store.message_ids("pid", 0) == ["42"]
    assert await store.outcomes() == {("send", "rejected"): 1}


async def test_a_deletes_remaining_ids_are_kept_for_the_next_try(store: Store) -> None:
    key = await store.keep_deletes(PendingDelete("signal", "addr", ("1", "2", "3"),
                                                 NOW + 3600, NOW + 5))
    [op] = await store.operations(key)
    assert op.not_before == NOW + 5 and op.expires_at == NOW + 3600
    await store.retry_later(op.id, NOW + 20, ("3",))
    [op] = await store.operations(key)
    assert op.body == ("3",) and op.next_try_at == NOW + 20


async def test_expired_operations_end_and_free_the_person_for_retention(store: Store) -> None:
    await store.save_turn("pid", "telegram", "addr", State(), [Message("a")], NOW)
    counts = await store.purge(NOW + 100 * 86400, 90, 48)
    assert counts["operations"] == 1 and counts["people"] == 1
    assert await store.outcomes() == {("send", "expired"): 1}


async def test_a_person_gone_ends_their_queue(store: Store) -> None:
    await store.save_turn("pid", "telegram", "addr", State(), [Message("a"), Message("b")],
                          NOW)
    await store.mark_unreachable("pid")
    person = await store.person("pid")
    assert person is not None and person.unreachable
    assert await store.operations("pid") == []
    assert await store.outcomes() == {("send", "gone"): 2}


async def test_an_event_every_start_finds_unprocessed_is_given_up_after_three(
        store: Store) -> None:
    """An event that kills the bot each time it is handled must not keep it down."""
    await store.accept([("p1", "telegram", "e1", raw("poison"))], NOW)
    for _ in range(3):
        assert [r.raw.inbound.text for r in await store.replay_at_start()] == ["poison"]
        await store.processing_began()  # each start got to it, and died on it
    assert await store.replay_at_start() == []
    assert await store.outcomes() == {("inbox", "given up"): 1}


async def test_events_behind_a_persons_first_are_never_given_up_for_kills_in_a_row(
        store: Store) -> None:
    """Kills in a row before the bot got to a backlog: only each person's first event can
    have been in a turn, so only it is counted; the rest wait their turn, however many
    starts there were."""
    await store.accept([("p1", "telegram", f"e{n}", raw(f"m{n}")) for n in range(3)]
                       + [("p2", "telegram", "f0", raw("other"))], NOW)
    for _ in range(3):
        await store.replay_at_start()
        await store.processing_began()
    left = [r.raw.inbound.text for r in await store.replay_at_start()]
    assert left == ["m1", "m2"]  # each person's first was given up: the poison guess
    assert await store.outcomes() == {("inbox", "given up"): 2}


async def test_a_persons_events_read_together_and_a_failing_one_given_up_after_three(
        store: Store) -> None:
    """Serving together: each worker reads one person's waiting events (the reads asked
    for at once share a trip); a turn that failed on three workers ends."""
    await store.accept([("p1", "telegram", "e1", raw("one")),
                        ("p2", "telegram", "e2", raw("two", "q")),
                        ("p1", "telegram", "e3", raw("three"))], NOW)
    mine, theirs, nobody = await asyncio.gather(
        store.unprocessed_of("p1"), store.unprocessed_of("p2"), store.unprocessed_of("p3"))
    assert [r.raw.inbound.text for r in mine] == ["one", "three"]
    assert [r.raw.inbound.text for r in theirs] == ["two"] and nobody == []
    assert [await store.turn_failed(mine[0].id) for _ in range(3)] == [False, False, True]
    assert [r.raw.inbound.text for r in await store.unprocessed_of("p1")] == ["three"]
    assert await store.outcomes() == {("inbox", "given up"): 1}


async def test_kills_during_start_ups_in_a_row_count_against_no_event(store: Store) -> None:
    """A start killed before it processed anything tried nothing: the next start does not
    count it against the events it left."""
    await store.accept([("p1", "telegram", "e1", raw("waiting"))], NOW)
    await store.replay_at_start()
    await store.processing_began()  # a start that processed: then killed
    for _ in range(6):  # killed during start-up, six times in a row
        assert [r.raw.inbound.text for r in await store.replay_at_start()] == ["waiting"]
    assert await store.outcomes() == {}


async def test_the_features_reads_asked_at_once_each_get_their_own_answer(
        store: Store) -> None:
    for i in range(3):
        await store.save_turn(f"p{i}", "telegram", f"a{i}", State(turn=i), [], NOW)
    asked = [f"p{i % 3}" for i in range(30)]
    answers = await asyncio.gather(*(store.db.execute_fetchall(
        "SELECT pid FROM people WHERE pid = ?", (pid,)) for pid in asked))
    assert [[r[0] for r in rows] for rows in answers] == [[pid] for pid in asked]


async def test_a_failing_write_is_undone_alone_and_the_others_commit(store: Store) -> None:
    def boom(db: SyncConn) -> None:
        db.execute("INSERT INTO operations (key, channel, kind, body, created_at, not_before, "
                   "next_try_at) VALUES ('x', 'telegram', 'send', ?, 1, 1, 1)", (b"\0",))
        raise RuntimeError("this work fails after writing")

    def refused(db: SyncConn) -> None:  # the database itself says no, mid-transaction
        db.execute("INSERT INTO operations (key, channel, kind, body, created_at, not_before, "
                   "next_try_at) VALUES ('y', 'telegram', 'send', ?, 1, 1, 1)", (b"\0",))
        db.execute("INSERT INTO people (pid, channel, address, created_at, updated_at) "
                   "VALUES ('p', 'telegram', NULL, 1, 1)")

    results = await asyncio.gather(
        store.save_turn("pid-a", "telegram", "addr-a", State(turn=3), [Message("a")], NOW),
        store.database.write(boom),
        store.database.write(refused),
        store.save_turn("pid-b", "telegram", "addr-b", State(turn=3), [Message("b")], NOW),
        return_exceptions=True)
    assert isinstance(results[1], RuntimeError) and isinstance(results[2], Exception)
    assert [op.body for op in await store.operations("pid-a")] == [Message("a")]
    assert [op.body for op in await store.operations("pid-b")] == [Message("b")]
    assert await store.operations("x") == [] and await store.operations("y") == []


@pytest.mark.parametrize("package", ["hsds", "hsds-1.1", "hsds-2.0", "hsds-json"])
async def test_a_directory_package_imports_to_the_same_services(
        store: Store, package: str, tmp_path: Path) -> None:
    """Each HSDS form the tests carry, imported on this database and into a SQLite file
    of its own: the same services, needs, places and openings."""
    from helpline.resources import Directory, import_directory

    folder = Path(__file__).parent / "data" / package
    path = folder / "service_list.json" if package == "hsds-json" else folder
    reference = await Store.open(tmp_path / "reference.db", Vault(SECRET))
    try:
        for target in (store, reference):
            result = await import_directory(target, path, NOW, skip_bad=True)
            assert result.applied and result.services, result.problems
        ours, theirs = Directory(store), Directory(reference)
        assert [s.model_dump() for s in await ours.services()] == [
            s.model_dump() for s in await theirs.services()]
        assert await ours.capacities() == await theirs.capacities()
        assert await ours.places() == await theirs.places()
        assert len(await ours.services()) > 0
    finally:
        await reference.close()
