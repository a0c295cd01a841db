"""Nothing lost, nothing stuck: the durable inbox and the operations queue, end to end with
the real client libraries over HTTP against the loopback fakes.

A "crash" here is a turn that never happens: the worker handling the event dies before its
turn is written (as a process killed at that moment would), then the app is stopped and a
new one starts on the same database. ``tests/test_kill_nine.py`` does it with real kill -9.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from helpline.app import App
from helpline.channels.signal import SignalChannel, SignalOptions
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.config import Settings
from helpline.events import Inbound, Message, RawInbound
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.state import State
from helpline.store import KeyMismatch, Store
from tests.conftest import SECRET, Harness, eventually, make_settings
from tests.fakes.signal_cli_api import FakeSignalAPI
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI

CHAT = 515151
PERSON = "+15550001111"
GREETING = "Hi, thanks for your message.\n\nIs it safe for you to talk right now?"
OTHER_SECRET = "another-secret-key-0123456789-abcdefghijkl"


def crash_every_turn(app: App) -> None:
    """Turns die before anything of theirs is written, as a process killed then would."""
    async def dead(work: object) -> None:
        raise asyncio.CancelledError

    app._turn = dead  # type: ignore[method-assign]


async def open_app(settings: Settings, channel: Any) -> App:
    vault = Vault(SECRET)
    store = await Store.open(settings.db, vault)
    return App(settings, load_flows(settings.flows), store, vault,
               CatalogTranslator(settings.locales), [channel])


async def close(app: App) -> None:
    await app.stop()
    await app.store.close()


def telegram(api: FakeBotAPI, **options: Any) -> TelegramChannel:
    return TelegramChannel(TelegramOptions(token=TOKEN, api_url=api.root,
                                           poll_timeout_seconds=1, rate_limit=False,
                                           exit_reply_delete_after_seconds=0.1, **options))


async def unprocessed(app: App) -> int:
    return len(await app.store.unprocessed())


@pytest.fixture
async def tg() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def sig() -> AsyncIterator[FakeSignalAPI]:
    async with FakeSignalAPI() as fake:
        yield fake


# ------------------------------------------------------------------ the inbox


async def test_an_update_telegram_was_told_we_have_is_answered_after_a_crash(
        tmp_path: Path, tg: FakeBotAPI) -> None:
    settings = make_settings(tmp_path)
    app = await open_app(settings, telegram(tg))
    crash_every_turn(app)
    await app.start()
    tg.person_sends(CHAT, "hi")
    await tg.wait_confirmed()  # Telegram will never hand this update over again
    await eventually(lambda: unprocessed(app), 1)
    await close(app)
    assert tg.sent_texts(CHAT) == []

    again = await open_app(settings, telegram(tg))
    await again.start()
    try:
        assert await tg.wait_sent(CHAT, 1) == [GREETING]
        await eventually(lambda: unprocessed(again), 0)
    finally:
        await close(again)


async def test_webhook_answers_200_only_once_written_and_a_redelivery_counts_once(
        tmp_path: Path, tg: FakeBotAPI) -> None:
    settings = make_settings(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    options = {"webhook_url": url, "webhook_listen": f"127.0.0.1:{port}",
               "webhook_secret": "hook-secret"}
    app = await open_app(settings, telegram(tg, **options))
    crash_every_turn(app)
    await app.start()
    tg.person_sends(CHAT, "hi")
    [update] = tg.pending_updates
    assert await tg.push_webhook() == 200
    assert await unprocessed(app) == 1  # written down before the 200
    await close(app)

    again = await open_app(settings, telegram(tg, **options))
    await again.start()
    try:
        assert await tg.wait_sent(CHAT, 1) == [GREETING]
        # Telegram sends the same update again (it did not see our 200, say): dropped.
        assert await tg.push_webhook(update) == 200
        await asyncio.sleep(0.2)
        assert tg.sent_texts(CHAT) == [GREETING]
        # A wrong secret is refused, and garbage is dropped with a 200 (sending it again
        # would not mend it) without blocking what comes after.
        assert await tg.push_webhook(update, secret_token="wrong") == 403
        assert await tg.push_webhook({"update_id": "x", "message": 5}) == 200
        tg.person_sends(CHAT, "Not now")
        assert await tg.push_webhook() == 200
        assert len(await tg.wait_sent(CHAT, 2)) == 2
    finally:
        await close(again)


def signal_channel(api: FakeSignalAPI) -> SignalChannel:
    return SignalChannel(SignalOptions(service=api.service, number=api.number,
                                       retry_first_seconds=0.05, retry_max_seconds=0.4,
                                       exit_reply_delete_after_seconds=0.1))


async def test_a_signal_frame_read_but_not_processed_is_answered_after_a_crash(
        tmp_path: Path, sig: FakeSignalAPI) -> None:
    settings = make_settings(tmp_path)
    app = await open_app(settings, signal_channel(sig))
    crash_every_turn(app)
    await app.start()
    await sig.wait_connected()
    sig.person_sends(PERSON, "hi")
    await eventually(lambda: unprocessed(app), 1)
    await close(app)
    assert sig.sent_texts(PERSON) == []

    again = await open_app(settings, signal_channel(sig))
    await again.start()
    try:
        await sig.wait_for_send(PERSON, 1)
        assert sig.sent_texts(PERSON) == [GREETING + "\n1. Yes\n2. Not now"]
    finally:
        await close(again)


async def test_events_kept_from_before_a_restart_go_first_and_in_order(
        harness_factory: Callable[..., Awaitable[Harness]], tmp_path: Path) -> None:
    first = await harness_factory()
    crash_every_turn(first.app)
    for n, text in enumerate(("hi", "yes", "2")):
        await first.app.handle(RawInbound("terminal", "p", "addr-p",
                                          Inbound(kind="text", at=0.0, text=text),
                                          event_id=f"e{n}"))
    assert await unprocessed(first.app) == 3
    await first.app.stop()

    second = await harness_factory()
    await eventually(lambda: unprocessed(second.app), 0)
    sent = [m.text for _, m in second.channel.sent]
    assert sent[:2] == GREETING.split("\n\n")  # "hi" answered first
    assert sent[2].startswith("Here you can read safety tips")  # then "yes"
    assert sent[-2].startswith("Here are some ideas")  # "2" last: the safety tips
    assert sent[-1] == "What would you like to look at?"


# ------------------------------------------------------------------ the operations queue


async def test_a_reply_rejected_for_good_ends_and_the_next_ones_arrive(
        tmp_path: Path, tg: FakeBotAPI) -> None:
    app = await open_app(make_settings(tmp_path), telegram(tg))
    await app.start()
    try:
        tg.fail_next("sendMessage", error_code=400, description="Bad Request: message is "
                     "too long")
        tg.person_sends(CHAT, "hi")
        await eventually(lambda: app.store.outcomes(), {("send", "rejected"): 1})
        assert tg.sent_texts(CHAT) == []
        tg.person_sends(CHAT, "yes")  # the question's buttons never arrived: typed
        [reply] = await tg.wait_sent(CHAT, 1)
        assert reply.startswith("Here you can read safety tips")
        await eventually(lambda: app.store.count_operations(), 0)
    finally:
        await close(app)


async def test_a_blocked_bot_ends_the_persons_queue_and_they_can_be_forgotten(
        basic: Harness) -> None:
    from helpline.errors import Rejected

    await basic.send("hi")

    async def blocked(address: str, message: Message) -> list[str]:
        raise Rejected("forbidden", gone=True)

    basic.channel.send = blocked  # type: ignore[method-assign]
    await basic.send("1")
    person = await basic.app.store.person(basic.pid)
    assert person is not None and person.unreachable
    assert await basic.app.store.count_operations() == 0
    assert await basic.app.store.outcomes() == {("send", "gone"): 1}


async def test_an_operation_past_its_time_ends_and_keeps_no_one(basic: Harness) -> None:
    await basic.send("hi")

    async def down(address: str, message: Message) -> list[str]:
        raise OSError("down")

    basic.channel.send = down  # type: ignore[method-assign]
    await basic.send("1")
    assert await basic.app.store.count_operations("send") == 1
    basic.clock.advance(8 * 86400)  # past a week, and past the conversation retention too
    counts = await basic.app.store.purge(basic.clock.now, 7, 48)
    assert counts["operations"] == 1 and counts["people"] == 1
    assert await basic.app.store.outcomes() == {("send", "expired"): 1}


async def test_a_lone_surrogate_the_platform_library_cannot_send_does_not_block(
        basic: Harness) -> None:
    """Sends that fail the same way every time (the library cannot encode the text) end;
    the queue behind them moves."""
    await basic.send("hi")
    real = basic.channel.send

    async def strict(address: str, message: Message) -> list[str]:
        message.text.encode("utf-8")  # what an HTTP client does to a JSON body
        return await real(address, message)

    basic.channel.send = strict  # type: ignore[method-assign]
    await basic.app.store.enqueue(basic.pid, "terminal", [Message("bad \ud800 text")],
                                  basic.clock.now)
    await basic.app.store.enqueue(basic.pid, "terminal", [Message("the next one")],
                                  basic.clock.now)
    await basic.app.deliver_now(basic.pid)
    assert [m.text for m in basic.new_messages()] == ["the next one"]
    assert await basic.app.store.outcomes() == {("send", "rejected"): 1}


# ------------------------------------------------------------------ the key must match


async def test_another_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = await Store.open(path, Vault(SECRET))
    await store.save_turn("p1", "telegram", "addr", State(turn=1), [], 1.0)
    await store.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(KeyMismatch):
        await Store.open(path, Vault(OTHER_SECRET))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    reopened = await Store.open(path, Vault(SECRET))
    await reopened.close()


async def test_an_older_database_without_a_check_value_is_checked_by_what_it_holds(
        tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = await Store.open(path, Vault(SECRET))
    await store.save_turn("p1", "telegram", "addr", State(turn=1), [], 1.0)
    await store.db.execute("DELETE FROM key_check")
    await store.db.commit()
    await store.close()
    with pytest.raises(KeyMismatch):
        await Store.open(path, Vault(OTHER_SECRET))


def test_helpline_run_with_another_key_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HELPLINE_DB": str(tmp_path / "h.db"),
           "HELPLINE_SECRET_KEY": SECRET, "HELPLINE_TELEGRAM_TOKEN": "123456:ABC",
           "HELPLINE_TELEGRAM_API_URL": "http://127.0.0.1:9"}

    async def make() -> None:
        store = await Store.open(tmp_path / "h.db", Vault(SECRET))
        await store.save_turn("p1", "telegram", "addr", State(turn=1), [], 1.0)
        await store.close()

    asyncio.run(make())
    env["HELPLINE_SECRET_KEY"] = OTHER_SECRET
    done = subprocess.run([sys.executable, "-m", "helpline", "run"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    # The start-up checks print their warnings too; the refusal is one line.
    errors = [line for line in done.stderr.splitlines() if "error" in line.split(":", 2)[1]]
    assert errors == ["helpline: error    key: this database was written with another secret "
                      "key; start with the key it was made with (HELPLINE_SECRET_KEY, or "
                      "secret.key beside the database), or move the database aside to begin "
                      "an empty one"], done.stderr
    assert "Traceback" not in done.stderr
    assert OTHER_SECRET not in done.stderr and SECRET not in done.stderr




async def test_an_event_whose_turn_fails_is_kept_and_answered_at_the_next_start(
        harness_factory: Callable[..., Awaitable[Harness]]) -> None:
    first = await harness_factory()

    def broken(state: State, inbound: Inbound) -> object:
        raise RuntimeError("a bug the next release fixes")

    first.app.engine.step = broken  # type: ignore[assignment,method-assign]
    await first.app.handle(RawInbound("terminal", "p", "addr-p",
                                      Inbound(kind="text", at=0.0, text="hi"), event_id="e1"))
    assert first.channel.sent == []
    assert await unprocessed(first.app) == 1  # nothing lost: its turn wrote nothing
    await first.app.stop()

    second = await harness_factory()

    async def answered() -> list[str]:
        return [m.text for _, m in second.channel.sent]

    await eventually(answered, GREETING.split("\n\n"))
    assert await unprocessed(second.app) == 0
