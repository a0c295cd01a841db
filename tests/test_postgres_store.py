"""What only PostgreSQL does: its connections can be dropped under the bot (a restart of
the server, a failover, an admin's pg_terminate_backend), and the bot goes on."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from helpline.events import Inbound, Message, RawInbound
from helpline.privacy import Vault
from helpline.state import State
from helpline.store import Store
from helpline.store.postgres import GONE
from tests.conftest import SECRET

NOW = 1_800_000_000.0


async def drop_connections(url: str) -> int:
    """Terminate every helpline connection to the database (as a server restart would)."""
    other = await asyncpg.connect(url)
    try:
        rows = await other.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "application_name = 'helpline' AND pid <> pg_backend_pid()")
        return len(rows)
    finally:
        await other.close()


async def test_connections_dropped_by_the_server_are_made_again(pg_url: str) -> None:
    store = await Store.open(pg_url, Vault(SECRET))
    try:
        await store.save_turn("p1", "telegram", "a1", State(turn=1), [Message("one")], NOW)
        assert await drop_connections(pg_url) == 3  # the features', the core's, the inbox's
        # What was under way when the server dropped them fails; what comes after works.
        for _ in range(2):
            try:
                await store.save_turn("p2", "telegram", "a2", State(turn=2),
                                      [Message("two")], NOW)
                break
            except GONE:
                continue
        person = await store.person("p2")
        assert person is not None and person.state.turn == 2
        rows = await store.db.execute_fetchall("SELECT COUNT(*) FROM people")
        assert next(iter(rows))[0] == 2
        assert [op.body for op in await store.operations("p2")] == [Message("two")]
    finally:
        await store.close()


async def test_a_statement_of_a_transaction_cut_off_is_not_run_on_its_own(
        pg_url: str) -> None:
    store = await Store.open(pg_url, Vault(SECRET))
    try:
        with pytest.raises(GONE):
            async with store.transaction() as db:
                await db.execute("INSERT INTO jobs (pid, kind, due_at, body, created_at) "
                                 "VALUES ('p', 'k', 1, 'x', 1)")
                await drop_connections(pg_url)
                await db.execute("INSERT INTO jobs (pid, kind, due_at, body, created_at) "
                                 "VALUES ('p', 'k', 2, 'x', 1)")
        rows = await store.db.execute_fetchall("SELECT COUNT(*) FROM jobs")
        assert next(iter(rows))[0] == 0  # neither half of the cut-off transaction is kept
    finally:
        await store.close()


async def test_the_inbox_is_written_while_the_turns_writes_are_busy(pg_url: str) -> None:
    """On PostgreSQL the inbox has a connection of its own: an event is written down at
    once, not behind a long group commit of turns (on Signal, a frame read and not yet
    written down dies with the process)."""
    store = await Store.open(pg_url, Vault(SECRET))
    try:
        busy = asyncio.ensure_future(store.database.write(lambda db: time.sleep(1.0)))
        await asyncio.sleep(0.1)  # the slow batch is under way in the core's thread
        began = time.monotonic()
        [row] = await store.accept([("p", "signal", "e1", RawInbound(
            "signal", "p", "addr", Inbound(kind="text", at=0.0, text="hi"), "1"))], NOW)
        took = time.monotonic() - began
        assert row is not None and not busy.done() and took < 0.5
        await busy
        assert [r.id for r in await store.unprocessed()] == [row]
    finally:
        await store.close()


async def test_a_second_run_stands_by_takes_over_and_the_first_is_fenced(pg_url: str) -> None:
    first = await Store.open(pg_url, Vault(SECRET))
    second = await Store.open(pg_url, Vault(SECRET))
    try:
        assert await first.database.hold_run_lock(asyncio.Event())
        stop = asyncio.Event()
        standing = asyncio.ensure_future(second.database.hold_run_lock(stop))
        await asyncio.sleep(1.5)
        assert not standing.done()  # standing by while the first serves
        lost: list[bool] = []
        watching = asyncio.ensure_future(first.database.watch_run_lock(
            lambda: lost.append(True)))
        # The first's lock connection is cut (its network, a failover of the server...):
        # it stops serving, and the second, standing by, takes over.
        other = await asyncpg.connect(pg_url)
        try:
            await other.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE "
                "l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()")
        finally:
            await other.close()
        assert await asyncio.wait_for(standing, 5.0) is True
        await asyncio.wait_for(watching, 6.0)
        assert lost == [True]
        # A run stopped while it stands by says so and holds nothing.
        third = await Store.open(pg_url, Vault(SECRET))
        try:
            stopped = asyncio.Event()
            waiting = asyncio.ensure_future(third.database.hold_run_lock(stopped))
            await asyncio.sleep(0.3)
            stopped.set()
            assert await asyncio.wait_for(waiting, 3.0) is False
        finally:
            await third.close()
    finally:
        await second.close()
        await first.close()
