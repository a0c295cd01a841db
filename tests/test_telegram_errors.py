"""What Telegram answers, as the channel and the desk say it (helpline.errors): the real
python-telegram-bot over HTTP against the strict loopback Bot API fake, one test per answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest

from helpline.channels.telegram import TelegramChannel, TelegramOptions, callback_data
from helpline.errors import RateLimited, Rejected, Unreachable
from helpline.events import Choice, Message, RawInbound
from helpline.handoff.telegram_desk import TelegramDesk
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI

CHAT = 424242
FORUM = -1001234567890


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def channel(api: FakeBotAPI) -> AsyncIterator[TelegramChannel]:
    """A channel whose bot is initialised (getMe) but not polling; PTB's rate limiter is
    off so that a 429 reaches the channel at once, and a call times out after 0.3 s."""
    ch = TelegramChannel(TelegramOptions(token=TOKEN, api_url=api.root, rate_limit=False,
                                         request_timeout_seconds=0.3))
    await ch.app.initialize()
    yield ch
    await ch.app.shutdown()


async def send_error(channel: TelegramChannel, text: str = "Hello") -> Exception:
    with pytest.raises(Exception) as caught:
        await channel.send(str(CHAT), Message(text))
    assert isinstance(caught.value, Exception)
    return caught.value


# ------------------------------------------------------------------ sends to a person


@pytest.mark.parametrize("description", [
    "Forbidden: bot was blocked by the user",
    "Forbidden: user is deactivated",
    "Forbidden: bot was kicked from the group chat",
    "Forbidden: bot can't initiate conversation with a user",
])
async def test_forbidden_means_the_person_is_gone(
    api: FakeBotAPI, channel: TelegramChannel, description: str
) -> None:
    api.block(CHAT, description)
    error = await send_error(channel)
    assert isinstance(error, Rejected) and error.gone
    assert description not in str(error)  # a fixed phrase, not Telegram's words


async def test_chat_not_found_is_gone(api: FakeBotAPI, channel: TelegramChannel) -> None:
    api.strict_chats = True  # nobody ever wrote from this chat
    error = await send_error(channel)
    assert isinstance(error, Rejected) and error.gone
    assert [c.status for c in api.calls_to("sendMessage")] == [400]


@pytest.mark.parametrize("description", [
    "Bad Request: message is too long",
    "Bad Request: text must be non-empty",
    "Bad Request: BUTTON_DATA_INVALID",
    "Bad Request: message thread not found",
    "Bad Request: TOPIC_CLOSED",
    "Bad Request: can't parse entities: unsupported start tag",
    "Bad Request: something Telegram says one day",
])
async def test_other_bad_requests_refuse_only_this_message(
    api: FakeBotAPI, channel: TelegramChannel, description: str
) -> None:
    api.fail_next("sendMessage", error_code=400, description=description)
    error = await send_error(channel)
    assert isinstance(error, Rejected) and not error.gone
    assert await channel.send(str(CHAT), Message("Next")) != []  # the chat still works


async def test_a_text_over_4096_utf16_units_is_refused_by_the_fake_and_split_by_the_channel(
    api: FakeBotAPI, channel: TelegramChannel,
) -> None:
    flowers = "🌷" * 2049  # 2,049 characters, 4,098 UTF-16 code units
    ids = await channel.send(str(CHAT), Message(flowers))
    assert len(ids) == 2 and "".join(api.sent_texts(CHAT)) == flowers
    # The fake measures as Telegram does: 2,048 flowers (4,096 units) fit, 2,049 do not.
    with pytest.raises(BadRequest, match="Message is too long"):
        await channel.app.bot.send_message(CHAT, flowers)
    await channel.app.bot.send_message(CHAT, flowers[:-1])


async def test_retry_after_is_rate_limited_with_its_seconds(
    api: FakeBotAPI, channel: TelegramChannel, monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.fail_next("sendMessage", retry_after=7)
    error = await send_error(channel)
    assert isinstance(error, RateLimited) and error.retry_after == 7
    # PTB 22 gives a timedelta instead with PTB_TIMEDELTA set: read the same.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api.fail_next("sendMessage", retry_after=3)
    error = await send_error(channel)
    assert isinstance(error, RateLimited) and error.retry_after == 3


@pytest.mark.parametrize("code", [500, 502, 401, 409])
async def test_server_errors_a_bad_token_and_conflicts_are_unreachable(
    api: FakeBotAPI, channel: TelegramChannel, code: int,
) -> None:
    api.fail_next("sendMessage", error_code=code)
    assert type(await send_error(channel)) is Unreachable


async def test_a_time_out_and_a_lost_connection_are_unreachable(
    api: FakeBotAPI, channel: TelegramChannel,
) -> None:
    api.stall_next("sendMessage", 1.0)
    assert type(await send_error(channel)) is Unreachable  # TimedOut after 0.3 s
    api.set_down(True)
    assert type(await send_error(channel)) is Unreachable  # 502: NetworkError
    api.set_down(False)
    await api.stop()
    assert type(await send_error(channel)) is Unreachable  # connection refused


# ------------------------------------------------------------------ deletes


async def test_deletes_ask_again_only_for_what_may_still_go_through(
    api: FakeBotAPI, channel: TelegramChannel,
) -> None:
    ids = [m for _ in range(3) for m in await channel.send(str(CHAT), Message("x"))]
    api.fail_next("deleteMessages", retry_after=2)
    assert sorted(await channel.delete(str(CHAT), ids)) == sorted(ids)  # wait: again
    api.fail_next("deleteMessages", error_code=502)
    assert sorted(await channel.delete(str(CHAT), ids)) == sorted(ids)  # down: again
    api.fail_next("deleteMessages", error_code=400,
                  description="Bad Request: message can't be deleted for everyone")
    assert await channel.delete(str(CHAT), ids) == []  # refused: never again
    api.fail_next("deleteMessages", error_code=403,
                  description="Forbidden: bot was blocked by the user")
    assert await channel.delete(str(CHAT), ids) == []
    assert await channel.delete(str(CHAT), ids) == []  # done
    assert api.live_message_ids(CHAT, sender="bot") == []


# ------------------------------------------------------------------ buttons


async def test_callback_data_is_measured_in_bytes_and_never_cut(
    api: FakeBotAPI, channel: TelegramChannel,
) -> None:
    fits = "c:1:" + "x" * 60  # 64 bytes: as is
    long = "é" * 64  # 64 characters, 128 bytes
    await channel.send(str(CHAT), Message("Pick", (Choice("A", fits), Choice("B", long))))
    [call] = [c for c in api.calls_to("sendMessage") if c.status == 200]
    [[a], [b]] = call.params["reply_markup"]["inline_keyboard"]
    assert a["callback_data"] == fits
    assert b["callback_data"] == callback_data(long) and len(b["callback_data"].encode()) <= 64
    # A press gives the whole payload back.
    assert channel.payload_of(b["callback_data"]) == long
    assert channel.payload_of(fits) == fits
    assert channel.payload_of("#unknown") == "#unknown"  # a stale press stays stale


async def test_the_fake_refuses_callback_data_over_64_bytes(
    api: FakeBotAPI, channel: TelegramChannel,
) -> None:
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await channel.app.bot.send_message(CHAT, "x", reply_markup=_markup("é" * 33))
    [call] = api.calls_to("sendMessage")
    assert call.status == 400
    await channel.app.bot.send_message(CHAT, "x", reply_markup=_markup("é" * 32))


def _markup(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data=data)]])


# ------------------------------------------------------------------ the desk


@pytest.fixture
async def desk(api: FakeBotAPI, channel: TelegramChannel) -> TelegramDesk:
    api.add_forum_topic(FORUM, "existing")
    return TelegramDesk(channel, FORUM)


async def test_desk_topic_names_are_shortened_visibly_to_128(
    api: FakeBotAPI, desk: TelegramDesk,
) -> None:
    thread = await desk.create_thread("Case " + "🌷 long " * 40)
    name = api.topics(FORUM)[int(thread)]["name"]
    assert len(name) <= 128 and name.endswith("…") and name.startswith("Case 🌷 long")
    short = await desk.create_thread("K-7Q2")
    assert api.topics(FORUM)[int(short)]["name"] == "K-7Q2"


async def test_desk_kicked_or_missing_group_waits_instead_of_dropping(
    api: FakeBotAPI, desk: TelegramDesk,
) -> None:
    thread = await desk.create_thread("K-1")
    api.block(FORUM)  # "Forbidden: bot was kicked from the supergroup chat"
    with pytest.raises(Unreachable):
        await desk.post(thread, "Person: hello")
    with pytest.raises(Unreachable):
        await desk.create_thread("K-2")
    api.unblock(FORUM)
    api.fail_next("sendMessage", error_code=400, description="Bad Request: chat not found")
    with pytest.raises(Unreachable):
        await desk.post(thread, "Person: hello")
    # A group that is no forum, or a bot without the rights: an admin's to fix, too.
    api.fail_next("createForumTopic", error_code=400,
                  description="Bad Request: not enough rights to manage topics")
    with pytest.raises(Unreachable):
        await desk.create_thread("K-3")
    api.fail_next("createForumTopic", error_code=400,
                  description="Bad Request: the chat is not a forum")
    with pytest.raises(Unreachable):
        await desk.create_thread("K-4")


async def test_desk_posts_map_like_the_channel(api: FakeBotAPI, desk: TelegramDesk) -> None:
    thread = await desk.create_thread("K-1")
    with pytest.raises(Rejected) as refused:
        await desk.post("999", "Person: hello")  # a topic someone deleted
    assert not refused.value.gone
    api.fail_next("sendMessage", retry_after=4)
    with pytest.raises(RateLimited):
        await desk.post(thread, "Person: hello")
    api.fail_next("createForumTopic", error_code=502)
    with pytest.raises(Unreachable):
        await desk.create_thread("K-3")


async def test_desk_edits_not_modified_is_success_and_close_twice_is_fine(
    api: FakeBotAPI, desk: TelegramDesk,
) -> None:
    thread = await desk.create_thread("K-1")
    card = await desk.post(thread, "Case K-1", claim="K-1")
    await desk.edit(thread, card, "Case K-1", claim="K-1")  # 400 "not modified": fine
    assert [c.status for c in api.calls_to("editMessageText")] == [400]
    await desk.edit(thread, card, "Case K-1\nClaimed.")
    with pytest.raises(Rejected):
        await desk.edit(thread, "9999", "Case K-1")  # message to edit not found
    await desk.close_thread(thread)
    await desk.close_thread(thread)  # TOPIC_NOT_MODIFIED: nothing to do
    api.fail_next("closeForumTopic", error_code=502)
    with pytest.raises(Unreachable):
        await desk.close_thread(thread)


async def test_desk_claim_payload_and_long_card_and_answers(
    api: FakeBotAPI, desk: TelegramDesk,
) -> None:
    thread = await desk.create_thread("K-1")
    card_text = "Case K-1\n" + "• First note: " + "word " * 1000  # over 4,096
    card = await desk.post(thread, card_text, claim="K-" + "é" * 60)
    texts = [t for t in api.sent_texts(FORUM)]
    assert "".join(texts).replace(" ", "") == card_text.replace(" ", "").strip()
    buttons = api.buttons(FORUM, int(card))
    assert len(buttons) == 1 and desk.channel.payload_of(buttons[0][1]) == "hd:claim:K-" + "é" * 60


async def test_a_press_of_a_button_with_a_long_payload_gives_the_whole_payload(
    api: FakeBotAPI,
) -> None:
    channel = TelegramChannel(TelegramOptions(token=TOKEN, api_url=api.root, rate_limit=False,
                                              poll_timeout_seconds=1))
    got: asyncio.Queue[RawInbound] = asyncio.Queue()

    async def inbound(raw: RawInbound) -> None:
        await got.put(raw)

    async def ready() -> None:
        return None

    await channel.start(inbound, ready)
    try:
        long = "c:7:" + "ü" * 60  # 124 bytes
        [sent] = await channel.send(str(CHAT), Message("Pick", (Choice("Yes", long),)))
        [(_, data)] = api.buttons(CHAT, int(sent))
        assert data != long
        api.person_presses(CHAT, int(sent), data)
        raw = await asyncio.wait_for(got.get(), 5)
        assert raw.inbound.kind == "button" and raw.inbound.payload == long
    finally:
        await channel.stop()
