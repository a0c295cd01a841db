"""The Telegram channel end to end: the real python-telegram-bot over HTTP against the
loopback Bot API fake, the real App, store and bundled flows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from helpline.app import App
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.store import Store
from tests.conftest import SECRET, make_settings
from tests.fakes.bot_api import TOKEN, FakeBotAPI

CHAT = 424242


class Bot:
    def __init__(self, api: FakeBotAPI, app: App, channel: TelegramChannel) -> None:
        self.api, self.app, self.channel = api, app, channel

    async def say(self, text: str | None, chat: int = CHAT, count: int = 1,
                  **kw: object) -> list[str]:
        before = len(self.api.sent_texts(chat))
        self.api.person_sends(chat, text, **kw)  # type: ignore[arg-type]
        texts = await self.api.wait_sent(chat, before + count)
        return texts[before:]

    async def press(self, label: str, chat: int = CHAT, count: int = 1) -> list[str]:
        before = len(self.api.sent_texts(chat))
        self.api.press(chat, label)
        texts = await self.api.wait_sent(chat, before + count)
        return texts[before:]

    def pid(self, chat: int = CHAT) -> str:
        return self.app.vault.pseudonym("telegram", str(chat))


Starter = Callable[..., Awaitable[Bot]]


async def eventually(probe: Callable[[], Awaitable[object]], expected: object,
                     timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await probe() == expected:
            return
        await asyncio.sleep(0.02)
    assert await probe() == expected


@pytest.fixture
async def start_bot(tmp_path: Path) -> AsyncIterator[Starter]:
    api = await FakeBotAPI().start()
    running: list[tuple[App, Store]] = []

    async def start(**option_overrides: object) -> Bot:
        settings = make_settings(tmp_path)
        options = TelegramOptions(token=TOKEN, api_url=api.root, poll_timeout_seconds=1,
                                  exit_reply_delete_after_seconds=0.2, **option_overrides)  # type: ignore[arg-type]
        vault = Vault(SECRET)
        store = await Store.open(settings.db, vault)
        channel = TelegramChannel(options)
        app = App(settings, load_flows(settings.flows), store, vault,
                  CatalogTranslator(settings.locales), [channel])
        await app.start()
        running.append((app, store))
        return Bot(api, app, channel)

    start.api = api  # type: ignore[attr-defined]
    yield start
    for app, store in running:
        await app.stop()
        await store.close()
    await api.stop()


async def stop(bot: Bot) -> None:
    await bot.app.stop()
    await bot.app.store.close()


async def test_first_contact_buttons_and_typed_answers(start_bot: Starter) -> None:
    bot = await start_bot()
    assert bot.api.calls_to("getMe")
    commands = bot.api.calls_to("setMyCommands")
    assert commands and [c["command"] for c in commands[0].params["commands"]] == [
        "menu", "help", "language", "exit"]
    replies = await bot.say("hi", count=2)
    assert replies[1] == "Is it safe for you to talk right now?"
    sent = bot.api.calls_to("sendMessage")[-1].params
    assert sent["protect_content"] is True
    labels = [row[0]["text"] for row in sent["reply_markup"]["inline_keyboard"]]
    assert labels == ["Yes", "Not now"]
    replies = await bot.press("Yes", count=4)
    assert replies[-1].startswith("What would you like to do?")
    assert bot.api.calls_to("answerCallbackQuery")
    # Typing the option's number or its label works too.
    assert (await bot.say("2", count=2))[1] == "What would you like to look at?"
    replies = await bot.say("back to the MAIN menu")
    assert replies[0].startswith("What would you like to do?")


async def test_stale_and_forged_buttons_get_a_gentle_reprompt(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi", count=2)
    await bot.press("Yes", count=4)
    state_before = (await bot.app.store.person(bot.pid())).state  # type: ignore[union-attr]
    last_bot_message = max(bot.api.live_message_ids(CHAT))
    for data in ("c:1:0", "g:lang:xx", "\x00\xff garbage", "o:5:5"):
        before = len(bot.api.sent_texts(CHAT))
        bot.api.person_presses(CHAT, last_bot_message, data)
        texts = await bot.api.wait_sent(CHAT, before + 2)
        assert texts[before].startswith("That button is from an earlier message"), data
        assert texts[before + 1].startswith("What would you like to do?"), data
    person = await bot.app.store.person(bot.pid())
    assert person is not None and person.state.top == state_before.top


async def test_quick_exit_deletes_both_sides_and_clears_state(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi", count=2)
    await bot.press("Yes", count=4)
    await bot.say("4", count=3)  # talk to a person: mid-flow, at the consent question
    assert len(bot.api.live_message_ids(CHAT)) >= 9
    bot.api.person_sends(CHAT, "/exit")
    await bot.api.wait_for("deleteMessages")
    await asyncio.sleep(0.1)
    assert bot.api.live_message_ids(CHAT) == set()
    person = await bot.app.store.person(bot.pid())
    assert person is not None and person.state.idle and person.state.vars == {}


async def test_quick_exit_reply_is_neutral_and_deleted_after_a_delay(
    start_bot: Starter, tmp_path: Path
) -> None:
    bot = await start_bot()
    bot.app.engine.config = bot.app.engine.config.__class__(
        **{**bot.app.engine.config.__dict__, "quick_exit_reply": "OK."})
    await bot.say("hi", count=2)
    assert await bot.say("exit") == ["OK."]
    await asyncio.sleep(0.5)
    assert bot.api.live_message_ids(CHAT) == set()


async def test_many_deletions_go_in_batches_of_100(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.channel.delete(str(CHAT), [str(i) for i in range(1, 251)])
    batches = [c.params["message_ids"] for c in bot.api.calls_to("deleteMessages")]
    assert [len(b) for b in batches] == [100, 100, 50]


async def test_one_chat_in_order_and_chats_concurrently(start_bot: Starter) -> None:
    bot = await start_bot()
    for chat in (1001, 1002, 1003):
        bot.api.person_sends(chat, "hi")
    for chat in (1001, 1002, 1003):
        await bot.api.wait_sent(chat, 2)
    bot.api.press(1001, "Yes")
    bot.api.person_sends(1001, "2")
    bot.api.person_sends(1001, "1")
    texts = await bot.api.wait_sent(1001, 2 + 4 + 2 + 1)
    assert texts[5].startswith("What would you like to do?")
    assert texts[7] == "What would you like to look at?"
    assert texts[8].startswith("Keeping your phone private")


async def test_429_is_retried_not_dropped(start_bot: Starter) -> None:
    bot = await start_bot()
    bot.api.fail_next("sendMessage", retry_after=1, times=1)
    replies = await bot.say("hi", count=2)
    assert replies[0] == "Hi, thanks for your message."
    sends = bot.api.calls_to("sendMessage")
    assert [c.failed for c in sends] == [True, False, False]  # the 429, its retry, the question
    await eventually(lambda: bot.app.store.count("outbox"), 0)


async def test_non_text_updates_get_a_kind_answer_or_are_ignored(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi", count=2)
    replies = await bot.say(None, count=1, photo=[{"file_id": "x", "file_unique_id": "y",
                                                 "width": 1, "height": 1}])
    assert replies[0] == "I can only read text messages here."
    for extra in ({"sticker": {"file_id": "s", "file_unique_id": "t", "width": 1, "height": 1,
                               "is_animated": False, "is_video": False, "type": "regular"}},
                  {"voice": {"file_id": "v", "file_unique_id": "w", "duration": 1}},
                  {"location": {"latitude": 1.0, "longitude": 2.0}},
                  {"contact": {"phone_number": "+15550100", "first_name": "X"}}):
        before = len(bot.api.sent_texts(CHAT))
        bot.api.person_sends(CHAT, None, **extra)
        texts = await bot.api.wait_sent(CHAT, before + 1)
        assert texts[before] == "I can only read text messages here."
    # Group messages, channel posts, edits and garbage are ignored; the chat still works.
    bot.api.person_sends(-100777, "hello group")
    bot.api.queue_update({"channel_post": {"message_id": 1, "date": 0, "text": "x",
                                           "chat": {"id": -100888, "type": "channel"}}})
    bot.api.queue_update({"edited_message": {"message_id": 1, "date": 0, "edit_date": 0,
                                             "text": "changed", "chat": {"id": CHAT,
                                                                         "type": "private"}}})
    bot.api.queue_update({"message": {"garbage": True}})
    replies = await bot.say("1", count=4)
    assert replies[-1].startswith("What would you like to do?")
    assert bot.api.sent_texts(-100777) == []


async def test_blocked_person_is_marked_unreachable(start_bot: Starter) -> None:
    bot = await start_bot()
    bot.api.blocked.add(CHAT)
    bot.api.person_sends(CHAT, "hi")
    for _ in range(100):
        person = await bot.app.store.person(bot.pid())
        if person is not None and person.unreachable:
            break
        await asyncio.sleep(0.05)
    assert person is not None and person.unreachable
    assert await bot.app.store.count("outbox") == 0


async def test_resume_after_restart_continues_at_the_same_step(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi", count=2)
    await bot.press("Yes", count=4)
    await bot.say("2", count=2)
    await stop(bot)
    again = await start_bot()
    replies = await again.say("1")
    assert replies[0].startswith("Keeping your phone private")


async def test_start_with_a_deep_link_opens_that_flow(start_bot: Starter) -> None:
    bot = await start_bot()
    replies = await bot.say("/start emergency", count=3)
    assert replies[0] == "This bot cannot send help or call anyone for you."
    assert (await bot.say("/start", count=1))


async def test_webhook_mode_checks_the_secret_token(start_bot: Starter) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bot = await start_bot(webhook_url=f"http://127.0.0.1:{port}/hook-path",
                          webhook_listen=f"127.0.0.1:{port}", webhook_secret="s3cret-token")
    assert bot.api.webhook["secret"] == "s3cret-token"
    update = {"message": {"message_id": 1, "date": 0, "text": "hi",
                          "chat": {"id": CHAT, "type": "private"},
                          "from": {"id": CHAT, "is_bot": False, "first_name": "A"}}}
    assert await bot.api.push_webhook(update, secret="wrong") == 403
    assert await bot.api.push_webhook(update) == 200
    texts = await bot.api.wait_sent(CHAT, 2)
    assert texts[0] == "Hi, thanks for your message."


async def test_canaries_reach_neither_database_nor_logs(
    start_bot: Starter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from helpline.runtime import QUIET_LOGGERS
    from tests.test_privacy import raw_bytes

    for name in QUIET_LOGGERS:  # as `helpline run` configures them
        logging.getLogger(name).setLevel(logging.WARNING)
    caplog.set_level(logging.DEBUG)
    chat, user_name, text = 918273645501, "canary_user_tg", "canary words about my day zq9"
    bot = await start_bot()
    await bot.say("hi", chat=chat, count=2, username=user_name, first_name="Canaryfirst")
    await bot.press("Yes", chat=chat, count=4)
    await bot.say("4", chat=chat, count=3)
    await bot.press("Yes", chat=chat, count=1)
    replies = await bot.say(text, chat=chat, count=1, username=user_name)
    assert replies == ["When is it usually safer for you to get a message here?"]
    person = await bot.app.store.person(bot.pid(chat))
    assert person is not None and person.state.vars["advocate_note"] == text
    data = raw_bytes(bot.app.settings.db)
    assert "telegram:" in caplog.text
    for canary in (str(chat), user_name, "Canaryfirst", text):
        assert canary.encode() not in data, canary
        assert canary not in caplog.text, canary
