"""The REAL python-telegram-bot 22.8 client against the loopback Bot API fake.

Everything goes over real HTTP on 127.0.0.1 (see the docstring of
``tests/fakes/telegram_bot_api.py`` for what PTB does on the wire). If one of these starts
failing after a PTB upgrade, re-read that docstring rather than "fixing" the test.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    ForumTopic,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_bot_api import BOT_ID, BOT_USERNAME, TOKEN, FakeBotAPI

CHAT = 987654321
FORUM = -100123
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes"),
                                  InlineKeyboardButton("No", callback_data="no")]])
KEYBOARD_JSON = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"},
                                      {"text": "No", "callback_data": "no"}]]}

AnyApp = Application[Any, Any, Any, Any, Any, Any]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as b:
        yield b


def build_app(api: FakeBotAPI) -> AnyApp:
    app: AnyApp = (
        ApplicationBuilder().token(TOKEN).base_url(f"{api.root}/bot")
        .base_file_url(api.base_file_url).build()
    )
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_application_initializes_and_sends_a_keyboard(api: FakeBotAPI) -> None:
    app = build_app(api)
    await app.initialize()
    try:
        me = await api.wait_for_call("getMe")
        assert me.token == TOKEN
        assert me.status == 200
        assert app.bot.id == BOT_ID
        assert app.bot.username == BOT_USERNAME

        sent = await app.bot.send_message(CHAT, "Pick one", reply_markup=KEYBOARD)
        call = await api.wait_for_call("sendMessage")
        assert call.params["chat_id"] == CHAT  # decoded from the form string
        assert call.raw["chat_id"] == str(CHAT)
        assert call.params["reply_markup"] == KEYBOARD_JSON
        assert sent.message_id == api.live_message_ids(CHAT)[-1]
        assert sent.reply_markup == KEYBOARD
        assert sent.from_user is not None and sent.from_user.id == BOT_ID
        assert sent.chat.id == CHAT and sent.chat.type == "private"

        # A numeric-looking text stays a string; a second message gets the next id.
        second = await app.bot.send_message(CHAT, "42")
        assert api.calls_to("sendmessage")[-1].params["text"] == "42"
        assert second.message_id == sent.message_id + 1
        assert api.sent_texts(CHAT) == ["Pick one", "42"]
    finally:
        await app.shutdown()


async def test_polling_handles_messages_commands_and_button_presses(api: FakeBotAPI) -> None:
    app = build_app(api)

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"welcome {context.args}")

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"echo: {update.message.text}", reply_markup=KEYBOARD)

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("thanks")
        await query.edit_message_text(f"pressed {query.data}")

    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    app.add_handler(CallbackQueryHandler(on_press))

    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        assert api.calls_to("deleteWebhook")  # start_polling bootstraps with deleteWebhook
        incoming = api.person_sends(CHAT, "hello", first_name="Ada")
        reply = await api.wait_for_call("sendMessage", lambda c: c.params["chat_id"] == CHAT)
        assert reply.params["text"] == "echo: hello"
        assert reply.params["reply_markup"] == KEYBOARD_JSON
        bot_message_id = api.live_message_ids(CHAT, sender="bot")[-1]
        assert api.live_message_ids(CHAT) == [incoming, bot_message_id]

        query_id = api.person_presses(CHAT, bot_message_id, "yes")
        answer = await api.wait_for_call("answerCallbackQuery")
        assert answer.params == {"callback_query_id": query_id, "text": "thanks"}
        await api.wait_for_call("editMessageText")
        edited = api.message(CHAT, bot_message_id)
        assert edited is not None
        assert edited["text"] == "pressed yes"
        assert "reply_markup" not in edited  # the edit dropped the keyboard

        api.person_sends(CHAT, "/start deep-link")
        welcome = await api.wait_for_call("sendMessage", count=2)
        assert welcome.params["text"] == "welcome ['deep-link']"
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert api.pending_updates == []  # Updater.stop() confirmed everything it fetched
    offsets = [c.params.get("offset") for c in api.calls_to("getUpdates")]
    assert offsets[0] == 0 and offsets[-1] == 10_004


async def test_delete_messages_removes_both_sides(api: FakeBotAPI, bot: Bot) -> None:
    from_person = api.person_sends(CHAT, "my secret")
    first = await bot.send_message(CHAT, "one")
    second = await bot.send_message(CHAT, "two")
    keep = await bot.send_message(CHAT, "three")
    assert api.live_message_ids(CHAT) == [from_person, first.message_id, second.message_id,
                                          keep.message_id]

    assert await bot.delete_messages(CHAT, [from_person, first.message_id,
                                            second.message_id, 999]) is True
    call = api.calls_to("deleteMessages")[-1]
    assert call.params["message_ids"] == [from_person, first.message_id, second.message_id, 999]
    assert api.live_message_ids(CHAT) == [keep.message_id]
    assert api.sent_texts(CHAT) == ["one", "two", "three"]  # the log keeps deleted ones

    with pytest.raises(BadRequest, match=r"(?i)too many"):
        await bot.delete_messages(CHAT, list(range(1, 102)))
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(CHAT, first.message_id)
    assert await bot.delete_message(CHAT, keep.message_id) is True
    assert api.live_message_ids(CHAT) == []


async def test_fail_next_429_surfaces_as_retry_after(
    api: FakeBotAPI, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # no deprecation warning; timedelta values
    api.fail_next("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "hi")
    assert caught.value.retry_after == dtm.timedelta(seconds=3)
    assert api.live_message_ids(CHAT) == []  # the failed call had no effect

    await bot.send_message(CHAT, "hi")  # only the next call failed
    assert [c.status for c in api.calls_to("sendMessage")] == [429, 200]

    api.fail_next("getChat", error_code=400, description="Bad Request: chat not found")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(CHAT)
    chat = await bot.get_chat(CHAT)
    assert chat.id == CHAT and chat.type == "private"


async def test_blocked_chat_raises_forbidden(api: FakeBotAPI, bot: Bot) -> None:
    api.block(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "are you there?")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(CHAT, "typing")
    assert await bot.send_message(CHAT + 1, "other chats still work")

    api.person_sends(CHAT, "/start")  # restarting the bot unblocks it, like Telegram
    assert (await bot.send_message(CHAT, "welcome back")).text == "welcome back"


async def test_outage_gives_network_error_then_recovers(api: FakeBotAPI, bot: Bot) -> None:
    api.set_down(True)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(CHAT, "hi")
    api.set_down(False)
    assert (await bot.send_message(CHAT, "hi")).message_id == 1
    assert [c.status for c in api.calls_to("sendMessage")] == [502, 200]


async def test_webhook_push_with_right_and_wrong_secret(api: FakeBotAPI) -> None:
    app = build_app(api)

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"got {update.message.text}")

    app.add_handler(MessageHandler(filters.TEXT, on_text))
    port = free_port()
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1", port=port, url_path="hook",
        webhook_url=f"http://127.0.0.1:{port}/hook", secret_token="s3cret-Token_1",
    )
    try:
        assert api.webhook_url == f"http://127.0.0.1:{port}/hook"
        assert api.webhook_secret == "s3cret-Token_1"
        api.person_sends(CHAT, "via webhook")
        assert await api.push_webhook(secret_token="wrong") == 403
        assert await api.push_webhook(secret_token=None) == 403
        assert len(api.pending_updates) == 1  # not delivered yet
        assert await api.push_webhook() == 200
        reply = await api.wait_for_call("sendMessage")
        assert reply.params["text"] == "got via webhook"
        assert api.pending_updates == []

        with pytest.raises(Conflict, match="webhook is active"):
            await app.bot.get_updates(timeout=0)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def test_forum_topics_and_topic_messages(api: FakeBotAPI, bot: Bot) -> None:
    topic = await bot.create_forum_topic(FORUM, "Case 7")
    assert isinstance(topic, ForumTopic)
    assert api.topics(FORUM)[topic.message_thread_id]["name"] == "Case 7"

    sent = await bot.send_message(FORUM, "new case", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    with pytest.raises(BadRequest, match=r"(?i)thread not found"):
        await bot.send_message(FORUM, "nowhere", message_thread_id=9999)

    api.person_sends(FORUM, "advocate here", chat_type="supergroup",
                     message_thread_id=topic.message_thread_id, is_topic_message=True,
                     user_id=555)
    updates = await bot.get_updates(timeout=0)
    message = updates[-1].message
    assert isinstance(message, Message)
    assert message.chat.type == "supergroup" and message.chat.is_forum
    assert message.is_topic_message and message.message_thread_id == topic.message_thread_id
    assert message.from_user is not None and message.from_user.id == 555

    assert await bot.close_forum_topic(FORUM, topic.message_thread_id)
    with pytest.raises(BadRequest, match=r"(?i)TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(FORUM, topic.message_thread_id)
    assert await bot.reopen_forum_topic(FORUM, topic.message_thread_id)
    assert await bot.edit_forum_topic(FORUM, topic.message_thread_id, name="Case 7 (done)")
    assert api.topics(FORUM)[topic.message_thread_id] == {
        "name": "Case 7 (done)", "icon_color": 7322096, "icon_custom_emoji_id": None,
        "closed": False,
    }


async def test_edits_callbacks_and_commands_follow_telegram_rules(
    api: FakeBotAPI, bot: Bot
) -> None:
    sent = await bot.send_message(CHAT, "Pick", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("Pick", CHAT, sent.message_id, reply_markup=KEYBOARD)
    edited = await bot.edit_message_reply_markup(CHAT, sent.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", CHAT, 424242)

    with pytest.raises(LookupError):
        api.person_presses(CHAT, sent.message_id, "yes")  # the keyboard is gone
    forged = api.person_presses(CHAT, sent.message_id, "forged", strict=False)
    assert await bot.answer_callback_query(forged)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(forged)

    assert await bot.set_my_commands([BotCommand("menu", "Show the menu")], language_code="de")
    assert api.commands(language_code="de") == [{"command": "menu",
                                                 "description": "Show the menu"}]
    assert [c.command for c in await bot.get_my_commands(language_code="de")] == ["menu"]
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_raw_updates_json_bodies_and_long_poll(api: FakeBotAPI, bot: Bot) -> None:
    api.queue_update({"future_update_kind": {"x": 1}})  # unknown kinds still parse
    photo = api.person_sends_photo(CHAT, caption="look")
    api.person_sends_location(CHAT)
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [10_001, 10_002, 10_003]
    assert updates[0].api_kwargs == {"future_update_kind": {"x": 1}}
    assert updates[1].message is not None and updates[1].message.message_id == photo
    assert updates[1].message.photo and updates[1].message.caption == "look"
    assert updates[2].message is not None and updates[2].message.location is not None

    # The offset confirms; an empty long poll returns after min(timeout, cap).
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(offset=10_004, timeout=30) == ()
    assert loop.time() - started < 2.0
    assert api.pending_updates == []

    # A waiting long poll returns as soon as something is queued.
    waiter = asyncio.create_task(bot.get_updates(offset=10_004, timeout=30))
    await api.wait_for_call("getUpdates", count=3)
    api.person_sends(CHAT, "now")
    assert [u.update_id for u in await asyncio.wait_for(waiter, 1.0)] == [10_004]

    # JSON bodies, GET query strings and case-insensitive method names work too.
    async with aiohttp.ClientSession() as session:
        url = f"{api.base_url}other-token/SENDMESSAGE"
        async with session.post(url, json={"chat_id": str(CHAT), "text": "7",
                                           "reply_markup": KEYBOARD_JSON}) as response:
            body = await response.json()
        assert body["ok"] is True and body["result"]["text"] == "7"
        async with session.get(f"{api.base_url}{TOKEN}/getMe?x=1") as response:
            assert (await response.json())["result"]["username"] == BOT_USERNAME
        async with session.post(f"{api.base_url}{TOKEN}/someFutureMethod",
                                data={"n": "5", "flag": "true"}) as response:
            assert await response.json() == {"ok": True, "result": True}
    call = api.calls_to("sendMessage")[-1]
    assert call.token == "other-token"
    assert call.params == {"chat_id": CHAT, "text": "7", "reply_markup": KEYBOARD_JSON}
    assert api.calls_to("getme")[-1].http_method == "GET"
    assert api.calls_to("someFutureMethod")[-1].params == {"n": 5, "flag": True}


async def test_bulk_queue_and_observers_for_load_drivers(api: FakeBotAPI, bot: Bot) -> None:
    seen: list[tuple[str, object]] = []
    api.observers.append(lambda call, result: seen.append((call.method, result)))
    waiter = asyncio.create_task(bot.get_updates(timeout=30))
    await api.wait_for_call("getUpdates")
    with api.bulk():  # queued at once: the waiting long poll wakes when the block ends
        for chat in (1001, 1002, 1003):
            api.person_sends(chat, f"hi {chat}")
        api.queue_update({"update_id": 10_000, "future_update_kind": {}})  # out of order
        assert not waiter.done()
    updates = await asyncio.wait_for(waiter, 1.0)
    assert [u.update_id for u in updates] == [10_000, 10_001, 10_002, 10_003]
    sent = await bot.send_message(1002, "hello")
    answers = [result for method, result in seen if method == "sendMessage"]
    assert len(answers) == 1 and isinstance(answers[0], dict)
    assert answers[0]["message_id"] == sent.message_id and answers[0]["text"] == "hello"
