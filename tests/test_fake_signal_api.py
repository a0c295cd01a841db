"""The REAL signalbot 2.2.1 client against the loopback signal-cli-rest-api fake.

Everything goes over real HTTP and a real websocket on 127.0.0.1. Several tests
pin signalbot behaviour our Signal channel has to live with (see the docstring of
``tests/fakes/signal_cli_api.py``); if one of those starts failing after a
signalbot upgrade, re-read that docstring rather than "fixing" the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import aiohttp
import pydantic
import pytest
from signalbot import (
    DataMessageContext,
    DataMessageHandler,
    ReceiptType,
    SendError,
    SendMessage,
    SignalBot,
    UpdateContact,
)
from signalbot.logger import LOGGER_NAME

from tests.fakes.signal_cli_api import Call, FakeSignalAPI

# NANP 555-01xx numbers are reserved for fiction and pass signalbot's
# `phonenumbers.is_valid_number` recipient check.
PERSON = "+12025550123"

Action = Callable[[DataMessageContext], Awaitable[None]]


class Recorder(DataMessageHandler):
    """Records the text of every data message and optionally runs ``action``."""

    def __init__(self, action: Action | None = None) -> None:
        self.texts: list[str | None] = []
        self.contexts: list[DataMessageContext] = []
        self._action = action

    async def handle_data_message(self, context: DataMessageContext) -> None:
        self.texts.append(context.message.text)
        self.contexts.append(context)
        if self._action is not None:
            await self._action(context)


@contextlib.asynccontextmanager
async def running_bot(
    api: FakeSignalAPI, *handlers: DataMessageHandler
) -> AsyncIterator[SignalBot]:
    """Run a real SignalBot inside the test's loop until the block ends.

    ``bot.stop()`` is NOT usable here: it calls ``loop.stop()`` on the test's loop.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handlers_before = list(logger.handlers)
    bot = SignalBot(
        {
            "phone_number": api.number,
            "signal_service": api.service,
            "storage": {"type": "in-memory"},
            "connection_mode": "http_only",
        }
    )
    for handler in handlers:
        bot.register(handler)
    bot.start(run_forever=False)
    try:
        await asyncio.wait_for(bot.wait_until_ready(), timeout=5)
        await api.wait_connected()
        yield bot
    finally:
        if bot.init_task is not None and not bot.init_task.done():
            bot.init_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot.init_task
        await bot._pipeline.stop()
        await bot.close()
        logger.handlers[:] = handlers_before  # every SignalBot() adds a StreamHandler


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalAPI]:
    async with FakeSignalAPI() as fake:
        yield fake


# --------------------------------------------------------------------- (1) basics


async def test_bot_connects_and_handler_replies(api: FakeSignalAPI) -> None:
    api.send_response = "list"  # the shape signalbot 2.2.1 parses, see test below

    sent_timestamps: list[int] = []

    async def reply(c: DataMessageContext) -> None:
        echoed = await c.send(SendMessage(text=f"echo: {c.message.text}"))
        quoted = await c.reply(SendMessage(text="quoted"))
        sent_timestamps.extend([echoed.timestamp, quoted.timestamp])

    handler = Recorder(reply)
    async with running_bot(api, handler):
        startup = [(c.method, c.path, c.status) for c in api.calls]
        assert startup == [
            ("GET", "/v1/health", 204),
            ("GET", "/v1/about", 200),
            ("GET", "/v1/about", 200),
            ("GET", f"/v1/groups/{api.number}", 200),
            ("GET", f"/v1/receive/{api.number}", 101),
        ]

        ts = api.person_sends(PERSON, "hello")
        bodies = await api.wait_for_send(PERSON, count=2)
        await api.wait_until(lambda: len(sent_timestamps) == 2)

    person_uuid = api.uuid_of(PERSON)
    assert handler.texts == ["hello"]
    assert handler.contexts[0].message.source_number == PERSON
    assert handler.contexts[0].message.timestamp == ts
    # signalbot answers to the sender's uuid, not to the number
    assert bodies[0] == {
        "message": "echo: hello",
        "number": api.number,
        "recipients": [person_uuid],
    }
    assert bodies[1]["message"] == "quoted"
    assert bodies[1]["recipients"] == [person_uuid]
    assert bodies[1]["quote_timestamp"] == ts
    assert bodies[1]["quote_author"] == person_uuid
    assert bodies[1]["quote_message"] == "hello"
    assert api.sent_texts(PERSON) == ["echo: hello", "quoted"]
    assert api.sent_texts(person_uuid) == ["echo: hello", "quoted"]
    # SentMessage.timestamp is the fake's unique, increasing send timestamp
    assert ts < sent_timestamps[0] < sent_timestamps[1]


async def test_bridge_shaped_send_response_makes_signalbot_send_raise(
    api: FakeSignalAPI,
) -> None:
    """The bridge answers ``{"timestamp": "..."}``; signalbot 2.2.1 wants a list,
    so ``send`` raises AFTER the message went out."""
    async with running_bot(api) as bot:
        with pytest.raises(pydantic.ValidationError):
            await bot.messages.send(SendMessage(text="hi"), PERSON)
    assert api.sent_texts(PERSON) == ["hi"]

    api.send_response = "list"
    async with running_bot(api) as bot:
        sent = await bot.messages.send(SendMessage(text="again"), PERSON)
    assert sent.timestamp > 0
    assert api.sent_texts(PERSON) == ["hi", "again"]


async def test_group_message_reply_goes_to_group(api: FakeSignalAPI) -> None:
    api.send_response = "list"
    group = api.add_group("Peer support", members=[PERSON])

    async def reply(c: DataMessageContext) -> None:
        await c.send(SendMessage(text="hi group"))

    handler = Recorder(reply)
    async with running_bot(api, handler):
        api.person_sends(PERSON, "hello all", group_id=group.id)
        [body] = await api.wait_for_send(group.id)
    assert body["recipients"] == [group.id]
    assert handler.contexts[0].message.is_group()
    assert api.sends_to(PERSON) == []


async def test_attachment_is_downloaded_while_parsing(api: FakeSignalAPI) -> None:
    handler = Recorder()
    async with running_bot(api, handler):
        api.person_sends_attachment(PERSON, b"\x89PNG fake", text="look")
        await api.wait_until(lambda: handler.texts == ["look"])
    [attachment] = handler.contexts[0].message.attachments or []
    assert attachment.base64_content == base64.b64encode(b"\x89PNG fake").decode()
    assert [c.path for c in api.calls if c.path.startswith("/v1/attachments/")] == [
        f"/v1/attachments/{attachment.local_filename}"
    ]


# ---------------------------------------------------- (2) delete / contacts / misc


async def test_remote_delete_and_contact_expiration(api: FakeSignalAPI) -> None:
    """Both have signalbot APIs: ``bot.messages.remote_delete`` and
    ``bot.contacts.update``."""
    api.send_response = "list"
    async with running_bot(api) as bot:
        sent = await bot.messages.send(SendMessage(text="secret"), PERSON)
        delete_ts = await bot.messages.remote_delete(sent)
        await bot.contacts.update(UpdateContact(expiration_in_seconds=3600), PERSON)

    [delete] = await api.wait_for(f"DELETE /v1/remote-delete/{api.number}")
    assert delete.json_body == {"recipient": PERSON, "timestamp": sent.timestamp}
    assert delete.status == 201
    assert delete_ts > sent.timestamp
    [contact] = await api.wait_for(f"PUT /v1/contacts/{api.number}")
    assert contact.json_body == {"recipient": PERSON, "expiration_in_seconds": 3600}
    assert contact.status == 204


async def test_typing_reaction_and_receipt(api: FakeSignalAPI) -> None:
    async def acknowledge(c: DataMessageContext) -> None:
        await c.start_typing()
        await c.react("👍")
        await c.send_receipt(ReceiptType.READ)
        await c.stop_typing()

    handler = Recorder(acknowledge)
    async with running_bot(api, handler):
        ts = api.person_sends(PERSON, "hi")
        await api.wait_for(f"DELETE /v1/typing-indicator/{api.number}")

    person_uuid = api.uuid_of(PERSON)
    tail = [(c.method, c.path, c.json_body, c.status) for c in api.calls[-4:]]
    assert tail == [
        ("PUT", f"/v1/typing-indicator/{api.number}", {"recipient": person_uuid}, 204),
        (
            "POST",
            f"/v1/reactions/{api.number}",
            {
                "reaction": "👍",
                "recipient": person_uuid,
                "target_author": person_uuid,
                "timestamp": ts,
            },
            204,
        ),
        (
            "POST",
            f"/v1/receipts/{api.number}",
            {"receipt_type": "read", "recipient": person_uuid, "timestamp": ts},
            204,
        ),
        ("DELETE", f"/v1/typing-indicator/{api.number}", {"recipient": person_uuid}, 204),
    ]


async def test_send_failure_raises_send_error_and_is_not_retried(api: FakeSignalAPI) -> None:
    api.send_response = "list"
    api.fail_sends(1, status=400, error="Failed to send message: untrusted identity")
    async with running_bot(api) as bot:
        with pytest.raises(SendError, match="400"):
            await bot.messages.send(SendMessage(text="first"), PERSON)
        await bot.messages.send(SendMessage(text="second"), PERSON)

    sends = [c for c in api.calls if c.path == "/v2/send"]
    assert [(c.status, c.json_body["message"]) for c in sends] == [(400, "first"), (201, "second")]
    assert api.sent_texts(PERSON) == ["second"]


# --------------------------------------------------------------------- (3) outages


@pytest.mark.parametrize("mode", ["refuse", "http_503"])
async def test_bot_reconnects_after_bridge_outage(
    api: FakeSignalAPI, mode: Literal["refuse", "http_503"]
) -> None:
    handler = Recorder()
    async with running_bot(api, handler) as bot:
        api.person_sends(PERSON, "before")
        await api.wait_until(lambda: handler.texts == ["before"])

        await api.go_down(mode)
        api.person_sends(PERSON, "while down")  # queued by the "bridge"
        with pytest.raises(SendError):
            await bot.messages.send(SendMessage(text="lost reply"), PERSON)
        await asyncio.sleep(0.2)
        await api.come_back()
        api.person_sends(PERSON, "after")

        # signalbot's producer retries by itself: first after 1 s, then 2, 4, 8...
        await api.wait_until(lambda: len(handler.texts) == 3, timeout=4)
    assert handler.texts == ["before", "while down", "after"]
    assert api.ws_connections == 2
    assert api.sent_texts(PERSON) == []


async def test_clean_websocket_close_stops_receiving_for_good(api: FakeSignalAPI) -> None:
    """A close frame (1000) ends signalbot's ``async for`` normally; its producer
    then returns and ``rerun_on_exception`` does not restart it."""
    handler = Recorder()
    async with running_bot(api, handler):
        await api.drop_websockets(clean=True)
        api.person_sends(PERSON, "never handled")
        await asyncio.sleep(1.5)  # signalbot's first retry would come after 1 s
        assert handler.texts == []
        assert api.ws_connections == 1
        assert api.pending == 1


# -------------------------------------------------------------- (4) garbage frames


async def test_garbage_frames_do_not_stop_later_messages(api: FakeSignalAPI) -> None:
    handler = Recorder()
    async with running_bot(api, handler):
        api.push_envelope("this is not json")
        api.push_envelope("{")
        api.receipt(PERSON, [1, 2])
        api.person_types(PERSON)  # no TypingHandler registered: parsed, dispatched to no one
        api.push_envelope(api.envelope(PERSON, syncMessage={"readMessages": []}))
        api.push_envelope(api.envelope(PERSON, callMessage={"offerMessage": {"id": 1}}))
        api.person_sends(PERSON, "after garbage")
        await api.wait_until(lambda: handler.texts == ["after garbage"], timeout=3)
    assert api.ws_connections == 1  # skipped in place, no reconnect
    assert api.pending == 0


async def test_wrongly_shaped_json_frame_restarts_receiver_and_drops_in_flight(
    api: FakeSignalAPI,
) -> None:
    """Valid JSON that fails signalbot's pydantic validation (e.g. the bridge's own
    ``{"error": ...}`` frame) kills the producer: it reconnects after 1 s, and the
    frame already written behind the bad one is lost."""
    handler = Recorder()
    async with running_bot(api, handler):
        api.push_envelope({"error": "signal-cli: connection to signal servers lost"})
        api.person_sends(PERSON, "in flight")
        await api.wait_connected(total=2, timeout=10)  # 1 s, and more on a loaded machine
        api.person_sends(PERSON, "after reconnect")
        await api.wait_until(lambda: "after reconnect" in handler.texts, timeout=10)
    assert handler.texts == ["after reconnect"]
    assert any(
        json.loads(f).get("envelope", {}).get("dataMessage", {}).get("message") == "in flight"
        for f in api.delivered
    )


# ---------------------------------------------------------------------- dispatching


async def test_three_consumers_run_handlers_concurrently(api: FakeSignalAPI) -> None:
    started: list[str | None] = []
    finished: list[str | None] = []
    running = 0
    peak = 0

    async def work(c: DataMessageContext) -> None:
        nonlocal running, peak
        started.append(c.message.text)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.3 if c.message.text == "slow" else 0.05)
        running -= 1
        finished.append(c.message.text)

    async with running_bot(api, Recorder(work)):
        for text in ["slow", "fast", "x", "y"]:
            api.person_sends(PERSON, text)
        await api.wait_until(lambda: len(finished) == 4, timeout=3)
    assert started[:2] == ["slow", "fast"]  # dequeued in arrival order...
    assert finished.index("fast") < finished.index("slow")  # ...but not completed in it
    assert peak == 3


# ------------------------------------------------------------ the fake on its own


async def test_fake_http_surface(api: FakeSignalAPI) -> None:
    base = f"http://{api.service}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/v1/about") as resp:
            about = await resp.json()
        assert about["mode"] == "json-rpc"
        async with session.get(f"{base}/v1/accounts") as resp:
            assert await resp.json() == [api.number]
        async with session.get(f"{base}/v1/identities/{api.number}") as resp:
            assert await resp.json() == []
        async with session.post(f"{base}/v1/nope", data='{"a": 1}') as resp:
            assert resp.status == 404
            assert "error" in await resp.json()
        async with session.get(f"{base}/v1/groups/+12025550199") as resp:
            assert resp.status == 400
        async with session.post(f"{base}/v2/send", data="not json") as resp:
            assert resp.status == 400

    assert api.calls[-3] == Call("POST", "/v1/nope", {"a": 1}, 404)
    with pytest.raises(AssertionError, match="/v1/nope"):
        await api.wait_for("/v1/never", timeout=0.05)
