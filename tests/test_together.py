"""Three workers serving one PostgreSQL database at once, Telegram's webhook requests
spread over them by a load balancer; a worker killed mid-stream, three times: nothing
lost, each person's replies in order, every worker answering requests."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError

from helpline.app import App
from helpline.channels.telegram import TelegramChannel
from helpline.config import Settings
from helpline.console.hub import QUEUE, Event, Hub
from helpline.events import Message
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.store import Store
from helpline.store.keylocks import KeyLocks
from helpline.store.sqlite import InboxRow
from tests.conftest import SECRET, make_settings
from tests.fakes.signal_cli_api import FakeSignalAPI
from tests.fakes.telegram_bot_api import FakeBotAPI
from tests.killrig import Child, _until
from tests.test_durability import (
    CHAT,
    GREETING,
    PERSON,
    crash_every_turn,
    signal_channel,
    telegram,
)
from tests.together import LEADING, RUNNING, _log, run_together


async def test_three_workers_together_one_killed_lose_nothing(tmp_path: Path,
                                                              pg_url: str) -> None:
    outcome = await run_together(tmp_path, pg_url, workers=3, kills=3)
    print(outcome.line())
    assert outcome.lost == [], outcome.line()
    assert outcome.out_of_order == 0, outcome.line()
    # A reply goes out twice only when a kill lands inside the call that sends it (at most
    # one a person a kill); two workers in one person's turn at once would give scores.
    assert outcome.duplicates <= outcome.kills * 8, outcome.line()
    assert outcome.sent >= 60
    # Every worker took its share of Telegram's requests, and a leader was there.
    assert all(n > 0 for n in outcome.answered_by), outcome.line()
    # The leader was killed once: another worker became the leader.
    assert outcome.leaders >= 2, outcome.line()


# ---------------------------------------------------------------- in one process

def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _together_app(settings: Settings, url: str, channel: TelegramChannel) -> App:
    vault = Vault(SECRET)
    store = await Store.open(url, vault)
    app = App(settings, load_flows(settings.flows), store, vault,
              CatalogTranslator(settings.locales), [channel])
    app.serve_together(await KeyLocks.open(url))
    return app


def _webhook(api: FakeBotAPI, hook: int, listen: int) -> TelegramChannel:
    """Telegram with the webhook at port ``hook`` (set by every worker), listening on
    ``listen``."""
    return telegram(api, webhook_url=f"http://127.0.0.1:{hook}/hook",
                    webhook_listen=f"127.0.0.1:{listen}", webhook_secret="hook-secret")


async def _close(app: App) -> None:
    await app.stop()
    await app.store.close()
    assert app.key_locks is not None
    await app.key_locks.close()


async def test_what_a_dead_worker_wrote_down_another_answers_in_order(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("helpline.app.STRANDED_SECONDS", 0.3)
    settings = make_settings(tmp_path)
    hook = _port()
    async with FakeBotAPI() as api:
        alive = await _together_app(settings, pg_url, _webhook(api, hook, _port()))
        await alive.start(leading=True)
        # The worker the webhook reaches writes each update down, answers 200, and dies
        # before its turns (its turns never happen).
        dying = await _together_app(settings, pg_url, _webhook(api, hook, hook))
        crash_every_turn(dying)
        await dying.start(leading=False)
        try:
            api.person_sends(CHAT, "hi")
            api.person_sends(CHAT, "No")
            assert await api.push_webhook() == 200
            assert await api.push_webhook() == 200
            assert len(await alive.store.unprocessed()) == 2  # written down, not answered
            texts = await api.wait_sent(CHAT, 2, timeout=10)
            assert texts[0] == GREETING  # "hi" first, then the answer to "No"
            assert texts[1] != GREETING
            assert await alive.store.unprocessed() == []
        finally:
            await _close(dying)
            await _close(alive)


async def test_a_person_held_by_one_worker_waits_for_it_and_is_freed_when_it_dies(
        pg_url: str) -> None:
    one, other = await KeyLocks.open(pg_url), await KeyLocks.open(pg_url)
    try:
        async with one.hold("person-a") as held:
            assert held
            async with other.hold("person-a", wait=False) as taken:
                assert not taken  # skipped, as SKIP LOCKED skips
            async with other.hold("person-b", wait=False) as taken:
                assert taken  # someone else: no wait
            waiting = asyncio.create_task(_hold_then(other, "person-a"))
            await asyncio.sleep(0.3)
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 5)  # let go: the other worker has it
        async with one.hold("person-c"):
            await one.close()  # the worker's connection is gone: so are its locks
            async with other.hold("person-c", wait=False) as taken:
                assert taken
    finally:
        await one.close()
        await other.close()


async def test_a_lock_won_for_an_asker_that_gave_up_is_let_go(pg_url: str) -> None:
    """A turn cancelled while its lock was being asked for (a page closed mid-request, a
    stop): what PostgreSQL granted it is let go, not held for the worker's life."""
    one, other = await KeyLocks.open(pg_url), await KeyLocks.open(pg_url)
    try:
        asking = asyncio.create_task(_hold_then(one, "person-d"))
        await asyncio.sleep(0)  # it has asked; the answer is on its way
        asking.cancel()
        await asyncio.sleep(0.3)
        async with other.hold("person-d", wait=False) as taken:
            assert taken
    finally:
        await one.close()
        await other.close()


async def _hold_then(locks: KeyLocks, key: str) -> bool:
    async with locks.hold(key) as held:
        return held


def test_together_needs_postgresql_and_one_webhook_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"workers\.together needs PostgreSQL"):
        Settings(db=tmp_path / "h.db", workers={"together": True})
    with pytest.raises(ValidationError, match=r"telegram\.webhook_secret"):
        Settings(database_url="postgresql://helpline@127.0.0.1/helpline",
                 workers={"together": True},
                 telegram={"token": "1:a", "webhook_url": "https://bot.example.org/t"})
    Settings(database_url="postgresql://helpline@127.0.0.1/helpline",
             workers={"together": True},
             telegram={"token": "1:a", "webhook_url": "https://bot.example.org/t",
                       "webhook_secret": "s"})


async def test_the_leader_killed_another_reads_signal_within_ten_seconds(
        tmp_path: Path, pg_url: str) -> None:
    """Signal's receive socket is read by the leader alone; killed, another worker leads
    within seconds and reads it: what people write then is answered."""
    async with FakeSignalAPI() as api:
        env = {"HELPLINE_SIGNAL_SERVICE": api.service, "HELPLINE_SIGNAL_NUMBER": api.number,
               "HELPLINE_SIGNAL_DISAPPEARING_SECONDS": "0",
               "HELPLINE_WORKERS_TOGETHER": "true"}
        children = []
        for n in range(2):
            (tmp_path / f"w{n}").mkdir()
            children.append(Child(tmp_path / f"w{n}", env, pg_url))
        numbers = [f"+1555030{n:04d}" for n in range(3)]
        try:
            children[0].start()
            await _until(lambda: LEADING in _log(children[0]), 60, "the first leading")
            children[1].start()
            await _until(lambda: RUNNING in _log(children[1]), 60, "the second running")
            for number in numbers:
                api.person_sends(number, "hello")
            await _until(lambda: all(api.sent_texts(n) for n in numbers), 30, "the prompts")
            assert LEADING not in _log(children[1])  # it serves, but does not lead
            children[0].kill()
            killed = time.monotonic()
            await _until(lambda: LEADING in _log(children[1]), 30, "the other leading")
            took = time.monotonic() - killed
            assert took < 10.0, took
            # Written once the new leader reads (frames the bridge wrote to the dying
            # socket are lost on any client: tests/killrig.py).
            for number in numbers:
                api.person_sends(number, "m-0-0")
            await _until(lambda: all(any("got m-0-0" in t for t in api.sent_texts(n))
                                     for n in numbers), 30, "the answers")
        finally:
            for child in children:
                child.stop()


async def test_the_console_pages_of_every_worker_learn_what_changed_not_what_was_said(
        pg_url: str) -> None:
    here, there = await KeyLocks.open(pg_url), await KeyLocks.open(pg_url)
    told: list[str] = []
    try:
        hubs = []
        for locks in (here, there):
            hub = Hub()

            async def tell(notice: str, locks: KeyLocks = locks) -> None:
                told.append(notice)
                await locks.tell(notice)

            hub.share(tell)
            await locks.hear(hub.heard)
            hubs.append(hub)
        async with hubs[0].listen("thread:7") as mine, hubs[1].listen("thread:7") as theirs, \
                hubs[1].listen(QUEUE) as queue:
            hubs[0].publish("thread:7", "line", {"text": "Canary words", "id": 3})
            hubs[0].publish(QUEUE, "queue")
            assert await mine.next(5) == Event("line", {"text": "Canary words", "id": 3})
            assert await theirs.next(5) == Event("changed", {})  # read again there
            assert await queue.next(5) == Event("queue", {})
            assert await mine.next(0.3) is None  # its own notice is not heard again
        assert told == ["thread:7|line", "queue|queue"]  # never the words
    finally:
        await here.close()
        await there.close()


async def test_a_reply_queued_for_signal_on_a_worker_that_does_not_lead_goes_out_now(
        tmp_path: Path, pg_url: str) -> None:
    """An advocate's reply to a Signal person, queued on a worker that does not read
    Signal: the leader is told, and sends it at once (not at its next sweep)."""
    settings = make_settings(tmp_path)
    async with FakeSignalAPI() as api:
        vault = Vault(SECRET)
        apps = []
        for leading in (True, False):
            store = await Store.open(pg_url, vault)
            app = App(settings, load_flows(settings.flows), store, vault,
                      CatalogTranslator(settings.locales), [signal_channel(api)])
            app.serve_together(await KeyLocks.open(pg_url))
            await app.start(leading=leading)
            apps.append(app)
        other = apps[1]  # apps[0] leads: it alone reads and sends on Signal
        try:
            api.person_sends(PERSON, "hi")
            await _until(lambda: bool(api.sent_texts(PERSON)), 10, "the greeting")
            [row] = await other.store.database.rows("SELECT pid FROM people")
            async with other.conversation(row["pid"]):
                assert await other.tell(row["pid"], [Message("Advocate: I'm here.")])
            await _until(lambda: "Advocate: I'm here." in api.sent_texts(PERSON), 3,
                         "the advocate's reply, sent by the leader")
        finally:
            for app in apps:
                await _close(app)


async def test_an_event_workers_kept_dying_on_is_given_up_and_the_next_answered(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("helpline.app.STRANDED_SECONDS", 0.3)
    settings = make_settings(tmp_path)
    hook = _port()
    async with FakeBotAPI() as api:
        dying = await _together_app(settings, pg_url, _webhook(api, hook, hook))
        crash_every_turn(dying)
        await dying.start(leading=False)
        api.person_sends(CHAT, "hi")
        api.person_sends(CHAT, "hi")
        assert await api.push_webhook() == 200
        assert await api.push_webhook() == 200
        await _close(dying)
        # Three workers took the first event up after the one before had died on it.
        first = min(r.id for r in await _waiting(pg_url))
        await _execute(pg_url, "UPDATE inbox SET replays = 3, received_at = received_at - 60 "
                       "WHERE id = $1", first)
        alive = await _together_app(settings, pg_url, telegram(api))
        await alive.start(leading=True)
        try:
            assert await api.wait_sent(CHAT, 1, timeout=10) == [GREETING]
            await asyncio.sleep(0.5)
            assert api.sent_texts(CHAT) == [GREETING]  # the first "hi" was given up
            assert await alive.store.unprocessed() == []
            assert await alive.store.outcomes() == {("inbox", "given up"): 1}
        finally:
            await _close(alive)


async def _waiting(url: str) -> list[InboxRow]:
    vault = Vault(SECRET)
    store = await Store.open(url, vault)
    try:
        return await store.unprocessed()
    finally:
        await store.close()


async def _execute(url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_a_worker_whose_locks_connection_is_cut_is_told_to_stop(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("helpline.store.keylocks.CHECK_SECONDS", 0.2)
    locks = await KeyLocks.open(pg_url)
    lost = asyncio.Event()
    watching = asyncio.create_task(locks.watch(lost.set))
    try:
        await asyncio.sleep(0.3)
        assert not lost.is_set()  # the connection answers: go on
        backend = locks._conn.get_server_pid()
        await _execute(pg_url, "SELECT pg_terminate_backend($1)", backend)  # an admin, a cut
        await asyncio.wait_for(lost.wait(), 5)
    finally:
        watching.cancel()
        await locks.close()
