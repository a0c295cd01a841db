"""The Telegram channel end to end: the real python-telegram-bot over HTTP against the
loopback Bot API fake (tests/fakes/telegram_bot_api.py), the real App, store and bundled
flows."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Unpack

import pytest

from helpline.app import App
from helpline.channels.telegram import API_MAX_TEXT, TelegramChannel, TelegramOptions
from helpline.events import Choice, Message, split_text
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.store import Store
from tests.conftest import BUNDLED_FLOWS, SECRET, eventually, make_settings
from tests.fakes.telegram_bot_api import TOKEN, Call, FakeBotAPI, PersonOptions

CHAT = 424242
EXIT_REPLY_DELAY = 0.2
TEXT_ONLY = "I can only read text messages here."
GREETING = ("Hi, thanks for your message.", "Is it safe for you to talk right now?")
# After "Yes" to the safety question: the welcome flow's three texts and the main menu.
WELCOME = (
    "Here you can read safety tips, look for services, or ask to talk to a trained advocate."
    " Go at your own pace, and skip anything you don't want to answer.",
    "Quick exit: type exit at any time and this chat is cleared. You don't need to explain"
    " or say goodbye.",
    "What is kept: your name and number are not kept in a readable form. Your answers are"
    " kept encrypted and are deleted after a while. To erase everything, type delete my data"
    " at any time.",
    "What would you like to do?\nType exit at any time to clear this chat.",
)
# No directory imported and no advocate desk here: the menu says so (and keeps its numbers).
MENU = ["I need help right now", "Staying safe", "Find a service (none listed yet)",
        "Talk to a person (not available)", "Check in with me later"]
STALE = "That button is from an earlier message. Here is where we are now:"


class Bot:
    def __init__(self, api: FakeBotAPI, app: App, channel: TelegramChannel) -> None:
        self.api, self.app, self.channel = api, app, channel
        self.stopped = False

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.app.stop()
            await self.app.store.close()

    async def say(self, text: str, chat: int = CHAT, count: int = 1,
                  **person: Unpack[PersonOptions]) -> list[str]:
        """The person writes ``text``; returns the bot's next ``count`` (or more) replies."""
        before = len(self.api.sent_texts(chat))
        self.api.person_sends(chat, text, **person)
        texts = await self.api.wait_sent(chat, before + count)
        return texts[before:]

    async def send_content(self, content: dict[str, Any], chat: int = CHAT,
                           count: int = 1) -> list[str]:
        """The person sends a non-text message (photo, sticker ...)."""
        before = len(self.api.sent_texts(chat))
        self.api.person_sends_content(chat, content)
        texts = await self.api.wait_sent(chat, before + count)
        return texts[before:]

    async def press(self, label: str, chat: int = CHAT, count: int = 1, *,
                    first_name: str = "Canary", username: str | None = None) -> list[str]:
        """The person presses the button ``label`` on the newest bot message that has it."""
        before = len(self.api.sent_texts(chat))
        self.api.press_button(chat, label, first_name=first_name, username=username)
        texts = await self.api.wait_sent(chat, before + count)
        return texts[before:]

    def pid(self, chat: int = CHAT) -> str:
        return self.app.vault.pseudonym("telegram", str(chat))


Starter = Callable[..., Awaitable[Bot]]


def sends_to(api: FakeBotAPI, chat: int) -> list[Call]:
    return [c for c in api.calls_to("sendMessage") if c.params.get("chat_id") == chat]


def button_labels(call: Call) -> list[str] | None:
    """The labels of a sendMessage call's inline keyboard, or None without one."""
    markup = call.params.get("reply_markup")
    if markup is None:
        return None
    return [button["text"] for row in markup["inline_keyboard"] for button in row]


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def all_delivered(bot: Bot) -> None:
    """Wait until the outbox is empty: every reply queued so far has been sent."""
    await eventually(lambda: bot.app.store.count_operations("send"), 0)


def with_exit_reply(bot: Bot, text: str = "OK.") -> None:
    """Quick exit answers with one neutral line (``commands.quick_exit_reply``)."""
    bot.app.engine.config = bot.app.engine.config.__class__(
        **{**bot.app.engine.config.__dict__, "quick_exit_reply": text})


def deleted_ids(api: FakeBotAPI) -> set[int]:
    """Every message id a successful deleteMessages call named."""
    return {i for c in api.calls_to("deleteMessages") if c.status == 200
            for i in c.params["message_ids"]}


def long_note_flows(tmp_path: Path) -> tuple[Path, str]:
    """A flows folder whose welcome says a note too long for one Telegram message, then
    asks a question; returns the folder and the note."""
    flows = tmp_path / "flows"
    flows.mkdir()
    long_text = " ".join(["A long note about what happens next."] * 150)  # > 5,000 chars
    (flows / "welcome.yaml").write_text(json.dumps({
        "id": "welcome", "title": "Long", "start": "note",
        "steps": {
            "note": {"say": long_text, "next": "ask"},
            "ask": {"choose": "Go on?", "options": [{"label": "Yes", "next": "fin"}]},
            "fin": {"end": "Done."},
        },
    }), encoding="utf-8")
    return flows, long_text


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def start_bot(tmp_path: Path, api: FakeBotAPI) -> AsyncIterator[Starter]:
    running: list[Bot] = []

    async def start(*, flows: Path = BUNDLED_FLOWS, combine_replies: bool = True,
                    **option_overrides: Any) -> Bot:
        settings = make_settings(tmp_path, flows)
        if not combine_replies:
            settings = settings.model_copy(update={"delivery": settings.delivery.model_copy(
                update={"combine_replies": False})})
        options = TelegramOptions(token=TOKEN, api_url=api.root, poll_timeout_seconds=1,
                                  exit_reply_delete_after_seconds=EXIT_REPLY_DELAY,
                                  **option_overrides)
        vault = Vault(SECRET)
        store = await Store.open(settings.db, vault)
        channel = TelegramChannel(options)
        app = App(settings, load_flows(settings.flows), store, vault,
                  CatalogTranslator(settings.locales), [channel])
        await app.start()
        bot = Bot(api, app, channel)
        running.append(bot)
        return bot

    yield start
    for bot in running:
        await bot.stop()


async def test_first_contact_buttons_and_typed_answers(start_bot: Starter) -> None:
    bot = await start_bot()
    assert bot.api.calls_to("getMe")
    commands = bot.api.calls_to("setMyCommands")
    assert commands and commands[0].status == 200
    assert [c["command"] for c in commands[0].params["commands"]] == [
        "menu", "help", "language", "privacy", "exit"]
    [greeting] = await bot.say("hi")  # the greeting and the question, one message
    assert greeting.split("\n\n") == list(GREETING)
    sent = sends_to(bot.api, CHAT)[-1].params
    assert sent["protect_content"] is True
    labels = [row[0]["text"] for row in sent["reply_markup"]["inline_keyboard"]]
    assert labels == ["Yes", "Not now"]
    [welcome] = await bot.press("Yes")
    assert welcome.split("\n\n") == list(WELCOME)
    assert button_labels(sends_to(bot.api, CHAT)[-1]) == MENU
    answered = await bot.api.wait_for_call("answerCallbackQuery",
                                           lambda c: c.status is not None)
    assert answered.status == 200  # a real, not yet answered query id
    # Typing the option's number or its label works too.
    [tips] = await bot.say("2")
    intro, question = tips.split("\n\n")
    assert intro.startswith("Here are some ideas other people have found useful.")
    assert question == "What would you like to look at?"
    assert button_labels(sends_to(bot.api, CHAT)[-1]) == [
        "Keeping your phone private", "Making this chat disappear",
        "Planning for a safe moment", "When it is safe to get a message",
        "Back to the main menu"]
    replies = await bot.say("back to the MAIN menu")
    assert replies == [WELCOME[-1]]
    await all_delivered(bot)
    assert len(sends_to(bot.api, CHAT)) == 4  # one message a turn


async def test_stale_and_forged_buttons_get_a_gentle_reprompt(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi")
    await bot.press("Yes")
    state_before = (await bot.app.store.person(bot.pid())).state  # type: ignore[union-attr]
    last_bot_message = bot.api.live_message_ids(CHAT, sender="bot")[-1]
    live_data = {data for _, data in bot.api.buttons(CHAT, last_bot_message)}
    assert live_data  # the menu, with its buttons
    for data in ("c:1:0", "g:lang:xx", "\x00\xff garbage", "o:5:5"):
        assert data not in live_data, data  # stale or forged, not a live button
        before = len(bot.api.sent_texts(CHAT))
        bot.api.person_presses(CHAT, last_bot_message, data, strict=False)
        texts = await bot.api.wait_sent(CHAT, before + 1)
        # The note and the current question again, as one message with the menu's buttons.
        assert texts[before].split("\n\n") == [STALE, WELCOME[-1]], data
        assert button_labels(sends_to(bot.api, CHAT)[-1]) == MENU, data
        await all_delivered(bot)
        assert len(bot.api.sent_texts(CHAT)) == before + 1, data
    person = await bot.app.store.person(bot.pid())
    assert person is not None and person.state.top == state_before.top


async def test_quick_exit_deletes_both_sides_and_clears_state(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi")
    await bot.press("Yes")
    await bot.say("4")  # talk to a person: mid-flow, at the consent question
    await all_delivered(bot)
    person_ids = bot.api.live_message_ids(CHAT, sender="person")
    bot_ids = bot.api.live_message_ids(CHAT, sender="bot")
    assert len(person_ids) == 2  # "hi" and "4"
    assert len(bot_ids) == 3  # one reply a turn
    assert bot_ids == [m["message_id"] for m in bot.api.bot_messages(CHAT)]
    exit_id = bot.api.person_sends(CHAT, "/exit")
    await bot.api.wait_for_call("deleteMessages", lambda c: c.status == 200)
    await bot.api.wait_until(lambda: bot.api.live_message_ids(CHAT) == [],
                             what="an empty chat")
    deleted = deleted_ids(bot.api)
    assert deleted >= {*person_ids, *bot_ids, exit_id}
    person = await bot.app.store.person(bot.pid())
    assert person is not None and person.state.idle and person.state.vars == {}


async def test_quick_exit_reply_is_neutral_and_deleted_after_a_delay(
    start_bot: Starter,
) -> None:
    bot = await start_bot()
    with_exit_reply(bot)
    await bot.say("hi")
    assert await bot.say("exit") == ["OK."]  # on its own, never joined
    reply_call = sends_to(bot.api, CHAT)[-1]
    reply_id = bot.api.bot_messages(CHAT)[-1]["message_id"]
    await bot.api.wait_until(lambda: bot.api.live_message_ids(CHAT) == [],
                             what="an empty chat")
    deletions = [c for c in bot.api.calls_to("deleteMessages") if c.status == 200]
    # The history went first (before the reply was sent), then the reply on its own, later.
    assert reply_id not in deletions[0].params["message_ids"]
    assert deletions[0].at <= reply_call.at
    assert deletions[-1].params["message_ids"] == [reply_id]
    assert deletions[-1].at - reply_call.at >= EXIT_REPLY_DELAY * 0.75


async def test_after_delete_my_data_the_neutral_reply_goes_too_and_nothing_stays(
    start_bot: Starter,
) -> None:
    bot = await start_bot()
    with_exit_reply(bot)
    await bot.say("hi")
    await bot.say("delete my data")
    assert await bot.press("Yes, erase") == ["OK."]
    reply_id = bot.api.bot_messages(CHAT)[-1]["message_id"]
    for table in ("people", "message_ids", "jobs"):
        assert await bot.app.store.count(table) == 0, table
    # Nothing is queued for them either: after an erase the reply goes out unstored.
    assert await bot.app.store.count_operations("send") == 0
    # The inbox keeps only keyed hashes of what was received (against re-delivery).
    assert list(await bot.app.store.db.execute_fetchall(
        "SELECT COUNT(*) FROM inbox WHERE pid != '' OR body IS NOT NULL OR done = 0")) == [(0,)]
    # Only the reply's delete is kept (encrypted, tied to no one) until Telegram did it.
    assert await bot.app.store.count_operations("delete") == 1
    await bot.api.wait_until(lambda: bot.api.live_message_ids(CHAT) == [],
                             what="an empty chat")
    assert bot.api.calls_to("deleteMessages")[-1].params["message_ids"] == [reply_id]
    await eventually(lambda: bot.app.store.count_operations("delete"), 0)


async def test_a_restart_before_the_neutral_reply_is_due_still_deletes_it(
    start_bot: Starter,
) -> None:
    bot = await start_bot()
    with_exit_reply(bot)
    await bot.say("hi")
    assert await bot.say("exit") == ["OK."]
    reply_id = bot.api.bot_messages(CHAT)[-1]["message_id"]
    await bot.stop()  # at once: the reply's delete is not due yet
    assert reply_id in bot.api.live_message_ids(CHAT)
    await asyncio.sleep(EXIT_REPLY_DELAY)
    again = await start_bot()  # start-up asks for the kept deletes that are due
    assert again.api.live_message_ids(CHAT) == []
    assert again.api.calls_to("deleteMessages")[-1].params["message_ids"] == [reply_id]
    assert await again.app.store.count_operations("delete") == 0


async def test_many_deletions_go_in_batches_of_100(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.channel.delete(str(CHAT), [str(i) for i in range(1, 251)])
    calls = bot.api.calls_to("deleteMessages")
    assert [c.status for c in calls] == [200, 200, 200]
    batches = [c.params["message_ids"] for c in calls]
    assert [len(b) for b in batches] == [100, 100, 50]
    assert [i for b in batches for i in b] == list(range(1, 251))


async def test_one_chat_in_order_and_chats_concurrently(start_bot: Starter) -> None:
    bot = await start_bot()
    for chat in (1001, 1002, 1003):
        bot.api.person_sends(chat, "hi")
    for chat in (1001, 1002, 1003):
        assert (await bot.api.wait_sent(chat, 1))[0].split("\n\n") == list(GREETING)
    bot.api.press_button(1001, "Yes")
    bot.api.person_sends(1001, "2")
    bot.api.person_sends(1001, "1")
    texts = await bot.api.wait_sent(1001, 1 + 1 + 1 + 1)
    assert texts[1].split("\n\n") == list(WELCOME)
    assert texts[2].split("\n\n")[-1] == "What would you like to look at?"
    assert texts[3].startswith("Keeping your phone private")
    assert texts[3].split("\n\n")[-1] == "What would you like to look at?"
    await all_delivered(bot)
    assert len(bot.api.sent_texts(1001)) == 4


async def test_429_is_retried_not_dropped(start_bot: Starter) -> None:
    bot = await start_bot()
    bot.api.fail_next("sendMessage", retry_after=1, times=1)
    replies = await bot.say("hi")
    assert replies == ["\n\n".join(GREETING)]
    await eventually(lambda: bot.app.store.count_operations("send"), 0)
    # the 429, then its retry: the same message (greeting and question), buttons and all
    sends = sends_to(bot.api, CHAT)
    assert [c.status for c in sends] == [429, 200]
    assert sends[0].params == sends[1].params
    assert button_labels(sends[1]) == ["Yes", "Not now"]
    assert bot.api.sent_texts(CHAT) == ["\n\n".join(GREETING)]


async def test_non_text_updates_get_a_kind_answer_or_are_ignored(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi")
    hi_id = bot.api.live_message_ids(CHAT, sender="person")[0]
    before = len(bot.api.sent_texts(CHAT))
    bot.api.person_sends_photo(CHAT)
    assert (await bot.api.wait_sent(CHAT, before + 1))[before:] == [TEXT_ONLY]
    for content in ({"sticker": {"file_id": "s", "file_unique_id": "t", "width": 1,
                                 "height": 1, "is_animated": False, "is_video": False,
                                 "type": "regular"}},
                    {"voice": {"file_id": "v", "file_unique_id": "w", "duration": 1}},
                    {"location": {"latitude": 1.0, "longitude": 2.0}},
                    {"contact": {"phone_number": "+15550100", "first_name": "X"}}):
        assert (await bot.send_content(content))[0] == TEXT_ONLY, content
    # Group messages, channel posts, edits and garbage are ignored; the chat still works.
    bot.api.person_sends(-100777, "hello group")
    bot.api.person_sends(-1001234567890, "hello supergroup")
    bot.api.person_sends(-100888, "x", chat_type="channel")
    bot.api.person_edits(CHAT, hi_id, "changed")
    bot.api.queue_update({"message": {"garbage": True}})
    replies = await bot.say("1")
    assert [r.split("\n\n") for r in replies] == [list(WELCOME)]
    for chat in (-100777, -1001234567890, -100888):
        assert bot.api.sent_texts(chat) == [], chat
        assert [c for c in bot.api.calls if c.params.get("chat_id") == chat] == [], chat
    await bot.api.wait_confirmed()  # nothing is stuck behind the garbage


async def test_blocked_person_is_marked_unreachable(start_bot: Starter) -> None:
    bot = await start_bot()
    bot.api.person_sends(CHAT, "hi")
    bot.api.person_blocks_bot(CHAT)  # before the bot can fetch "hi"

    async def unreachable() -> bool:
        person = await bot.app.store.person(bot.pid())
        return person is not None and person.unreachable

    await eventually(unreachable, True)
    assert await bot.app.store.count_operations("send") == 0
    sends = sends_to(bot.api, CHAT)
    assert sends and {c.status for c in sends} == {403}
    assert bot.api.sent_texts(CHAT) == []


async def test_resume_after_restart_continues_at_the_same_step(start_bot: Starter) -> None:
    bot = await start_bot()
    await bot.say("hi")
    await bot.press("Yes")
    await bot.say("2")
    await bot.stop()
    again = await start_bot()
    replies = await again.say("1")
    assert len(replies) == 1
    tip, question = replies[0].split("\n\n")
    assert tip.startswith("Keeping your phone private")
    assert question == "What would you like to look at?"


async def test_start_with_a_deep_link_opens_that_flow(start_bot: Starter) -> None:
    bot = await start_bot()
    [emergency] = await bot.say("/start emergency")
    parts = emergency.split("\n\n")
    assert len(parts) == 3
    assert parts[0] == "This bot cannot send help or call anyone for you."
    assert parts[1].startswith("If you are in danger and it is safe to make a call")
    assert parts[2] == "What would you like to do now?"  # no desk: no advocate offered
    assert button_labels(sends_to(bot.api, CHAT)[-1]) == [
        "Safety tips", "Back to the main menu"]
    # A plain /start mid-flow shows the current question again; in a new chat, the welcome.
    again = await bot.say("/start", count=1)
    assert again == [parts[2]]
    first = await bot.say("/start", chat=CHAT + 1, count=1)
    assert first == ["\n\n".join(GREETING)]


async def test_webhook_mode_checks_the_secret_token(start_bot: Starter) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook-path"
    bot = await start_bot(webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                          webhook_secret="s3cret-token")
    assert bot.api.webhook_url == url
    assert bot.api.webhook_secret == "s3cret-token"
    assert not bot.api.calls_to("getUpdates")
    bot.api.person_sends(CHAT, "hi", first_name="A")
    assert await bot.api.push_webhook(secret_token="wrong") == 403
    assert await bot.api.push_webhook(secret_token=None) == 403
    assert len(bot.api.pending_updates) == 1  # refused, so still queued
    assert await bot.api.push_webhook() == 200
    assert bot.api.pending_updates == []
    texts = await bot.api.wait_sent(CHAT, 1)
    assert texts == ["\n\n".join(GREETING)]


async def test_canaries_reach_neither_database_nor_logs(
    start_bot: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    from helpline.runtime import QUIET_LOGGERS
    from tests.test_privacy import raw_bytes

    for name in QUIET_LOGGERS:  # as `helpline run` configures them
        logging.getLogger(name).setLevel(logging.WARNING)
    caplog.set_level(logging.DEBUG)
    chat, user_name, text = 918273645501, "canary_user_tg", "canary words about my day zq9"
    first_name = "Canaryfirst"
    bot = await start_bot()

    async def on_shift(turn: object) -> bool:  # the advocate flow's note is free text
        return True

    bot.app.facts["advocates"] = on_shift
    await bot.say("hi", chat=chat, count=1, username=user_name, first_name=first_name)
    await bot.press("Yes", chat=chat, count=1, username=user_name, first_name=first_name)
    await bot.say("4", chat=chat, count=1, username=user_name, first_name=first_name)
    await bot.press("Yes", chat=chat, count=1, username=user_name, first_name=first_name)
    replies = await bot.say(text, chat=chat, count=1, username=user_name,
                            first_name=first_name)
    assert replies == ["When is it usually safer for you to get a message here?"]
    person = await bot.app.store.person(bot.pid(chat))
    assert person is not None and person.state.vars["advocate_note"] == text
    data = raw_bytes(bot.app.settings.db)
    assert "telegram:" in caplog.text
    for canary in (str(chat), user_name, first_name, text):
        assert canary.encode() not in data, canary
        assert canary not in caplog.text, canary


async def test_a_location_at_the_area_question_sorts_by_distance_once(
    start_bot: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    """A location shared at the area question ranks services by distance in that
    turn only; the point reaches neither the database (nor its WAL) nor the logs, paging
    needs no point, and a location anywhere else gets the text-only answer."""
    from helpline.events import SHARED_LOCATION
    from helpline.resources import SAMPLE_DIRECTORY, browse, import_directory
    from helpline.runtime import QUIET_LOGGERS
    from tests.test_privacy import raw_bytes

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    caplog.set_level(logging.DEBUG)
    bot = await start_bot()
    browse.install(bot.app)
    await import_directory(bot.app.store, SAMPLE_DIRECTORY, bot.app.clock())
    lat, lon = 12.345678, 98.765432

    def labels() -> list[str]:
        markup = sends_to(bot.api, CHAT)[-1].params["reply_markup"]
        return [row[0]["text"] for row in markup["inline_keyboard"]]

    async def share(count: int = 1) -> list[str]:
        before = len(bot.api.sent_texts(CHAT))
        bot.api.person_sends_location(CHAT, latitude=lat, longitude=lon)
        return (await bot.api.wait_sent(CHAT, before + count))[before:]

    await bot.say("hi")
    await bot.press("Yes")
    await bot.press("Find a service")  # the directory was imported above
    await bot.press("A safe place to stay")
    await bot.press("Prefer not to say")
    await bot.press("Prefer not to say")
    await bot.say("skip")
    assert await share() == [TEXT_ONLY]  # not at the area question: not used
    [question] = await bot.press("Prefer not to say")
    assert "You can also send a location instead" in question
    [results] = await share()
    assert results.startswith("Nearest first, from the location you sent.")
    shown = labels()
    assert shown[0].startswith("Northgate Night Shelter") and shown[0].endswith("about 7 km")
    assert shown[1].startswith("Cedar Lodge") and shown[1].endswith("about 32 km")
    assert "km" not in shown[2]  # confidential: no coordinates, no distance
    person = await bot.app.store.person(bot.pid())
    assert person is not None and person.state.vars["area"] == SHARED_LOCATION
    [more] = await bot.press("More")  # paging needs only the kept ids
    assert more.startswith("Here are 4 to 6.")
    assert not any("km" in label for label in labels())
    data = raw_bytes(bot.app.settings.db)
    for canary in ("12.345678", "98.765432", "12.34", "98.76"):
        assert canary.encode() not in data, canary
        assert canary not in caplog.text, canary


async def test_a_turns_texts_arrive_as_one_message_with_the_question_buttons(
    start_bot: Starter,
) -> None:
    bot = await start_bot()
    await bot.say("hi")
    await all_delivered(bot)
    before = len(sends_to(bot.api, CHAT))
    await bot.press("Yes")  # three texts of the welcome flow, then the main menu
    await all_delivered(bot)
    [sent] = sends_to(bot.api, CHAT)[before:]
    assert sent.status == 200
    assert sent.params["text"] == "\n\n".join(WELCOME)
    assert sent.params["text"].split("\n\n") == list(WELCOME)
    assert button_labels(sent) == MENU
    newest = bot.api.live_message_ids(CHAT, sender="bot")[-1]
    assert [label for label, _ in bot.api.buttons(CHAT, newest)] == MENU


async def test_with_combine_replies_off_each_text_is_its_own_message(
    start_bot: Starter,
) -> None:
    bot = await start_bot(combine_replies=False)
    assert bot.app.settings.delivery.combine_replies is False
    assert await bot.say("hi", count=2) == list(GREETING)
    await all_delivered(bot)
    before = len(sends_to(bot.api, CHAT))
    assert await bot.press("Yes", count=4) == list(WELCOME)
    await all_delivered(bot)
    sends = sends_to(bot.api, CHAT)[before:]
    assert [c.status for c in sends] == [200] * 4
    assert [c.params["text"] for c in sends] == list(WELCOME)
    # Only the question carries the buttons.
    assert [button_labels(c) for c in sends] == [None, None, None, MENU]


async def test_a_text_longer_than_telegram_takes_is_sent_in_parts(start_bot: Starter) -> None:
    bot = await start_bot()
    paragraph = " ".join(["Some words about staying safe, with a flower 🌷 now and then."] * 20)
    text = "\n\n".join(f"{n}. {paragraph}" for n in range(1, 9))
    assert utf16_units(text) > 2 * API_MAX_TEXT
    choices = (Choice("Yes", "c:1:0"), Choice("Not now", "c:1:1"))
    ids = await bot.channel.send(str(CHAT), Message(text, choices))
    sends = sends_to(bot.api, CHAT)
    assert len(sends) == 3
    assert [c.status for c in sends] == [200] * 3
    parts = [c.params["text"] for c in sends]
    assert all(utf16_units(part) <= API_MAX_TEXT for part in parts)
    # Cut between paragraphs (a blank line is always near here): nothing is lost.
    assert "\n\n".join(parts) == text
    assert [button_labels(c) for c in sends] == [None, None, ["Yes", "Not now"]]
    assert all(c.params["protect_content"] is True for c in sends)
    # Every part's id comes back (quick exit needs them all), in order.
    assert ids == [str(m["message_id"]) for m in bot.api.bot_messages(CHAT)]
    assert len(set(ids)) == 3
    assert [bot.api.message(CHAT, int(i))["text"] for i in ids] == parts  # type: ignore[index]


async def test_quick_exit_deletes_every_part_of_a_long_reply(
    start_bot: Starter, tmp_path: Path,
) -> None:
    flows, long_text = long_note_flows(tmp_path)
    assert len(long_text) > API_MAX_TEXT
    bot = await start_bot(flows=flows)
    await bot.say("hi", count=3)
    await all_delivered(bot)
    sends = sends_to(bot.api, CHAT)
    # The long text in two parts (too long to join the question to it), then the question.
    assert len(sends) == 3
    texts = [c.params["text"] for c in sends]
    assert all(utf16_units(t) <= API_MAX_TEXT for t in texts)
    assert " ".join(texts[:2]) == long_text
    assert texts[2] == "Go on?"
    assert [button_labels(c) for c in sends] == [None, None, ["Yes"]]
    bot_ids = bot.api.live_message_ids(CHAT, sender="bot")
    person_ids = bot.api.live_message_ids(CHAT, sender="person")
    assert len(bot_ids) == 3 and len(person_ids) == 1
    exit_id = bot.api.person_sends(CHAT, "exit")
    await bot.api.wait_until(lambda: bot.api.live_message_ids(CHAT) == [],
                             what="an empty chat")
    deleted = deleted_ids(bot.api)
    assert deleted >= {*bot_ids, *person_ids, exit_id}


async def test_a_failure_between_the_parts_of_a_long_reply_resends_only_what_is_left(
    start_bot: Starter, tmp_path: Path,
) -> None:
    flows, long_text = long_note_flows(tmp_path)
    bot = await start_bot(flows=flows)

    def fail_the_second_part(call: Call, result: Any) -> None:
        if call.method == "sendMessage" and call.status == 200 and len(sends_to(
                bot.api, CHAT)) == 1:
            bot.api.fail_next("sendMessage", error_code=500)

    bot.api.observers.append(fail_the_second_part)
    bot.api.person_sends(CHAT, "hi")
    await bot.api.wait_until(lambda: [c.status for c in sends_to(bot.api, CHAT)] == [200, 500],
                             what="part one sent, part two failed")
    await bot.app.deliver_pending(force=True)  # what the periodic retry does
    await all_delivered(bot)
    sends = sends_to(bot.api, CHAT)
    texts = [c.params["text"] for c in sends]
    # Part one went once; part two failed and went again; then the question.
    assert [c.status for c in sends] == [200, 500, 200, 200]
    assert texts[1] == texts[2] and texts[3] == "Go on?"
    assert " ".join([texts[0], texts[2]]) == long_text
    assert bot.api.sent_texts(CHAT) == [texts[0], texts[2], "Go on?"]
    exit_id = bot.api.person_sends(CHAT, "exit")
    await bot.api.wait_until(lambda: bot.api.live_message_ids(CHAT) == [],
                             what="an empty chat")
    deleted = deleted_ids(bot.api)
    assert exit_id in deleted


def test_split_text_counts_utf16_units_and_keeps_every_character() -> None:
    # Short texts, and texts exactly at the limit, stay whole.
    assert split_text("Stay safe 🌷", API_MAX_TEXT) == ["Stay safe 🌷"]
    exact = "🌷" * (API_MAX_TEXT // 2)  # each flower is two UTF-16 units
    assert split_text(exact, API_MAX_TEXT) == [exact]
    assert split_text(exact + "a", API_MAX_TEXT) == [exact, "a"]
    # Only astral characters, no place to cut: hard cuts, each part within the limit.
    flowers = "🌷" * 5000
    parts = split_text(flowers, API_MAX_TEXT)
    assert [utf16_units(p) for p in parts] == [4096, 4096, 1808]
    assert "".join(parts) == flowers
    # Words and emoji: cut at spaces, within the limit, no word lost or broken.
    words = " ".join(f"word{n}🌷🎉" for n in range(3000))
    parts = split_text(words, API_MAX_TEXT)
    assert len(parts) > 1
    assert all(0 < utf16_units(p) <= API_MAX_TEXT for p in parts)
    assert all(p == p.strip() for p in parts)
    assert " ".join(parts) == words
    # Paragraphs are preferred to spaces when a blank line is near the limit.
    text = "a" * 3000 + "\n\n" + " ".join(["b"] * 1000)
    assert split_text(text, API_MAX_TEXT) == ["a" * 3000, " ".join(["b"] * 1000)]


# ------------------------------------------------------------------ what Telegram answers


async def test_a_reply_telegram_refuses_for_good_is_dropped_and_the_next_ones_arrive(
    start_bot: Starter, caplog: pytest.LogCaptureFixture,
) -> None:
    bot = await start_bot()
    await bot.say("hi")
    await all_delivered(bot)
    bot.api.fail_next("sendMessage", error_code=400,
                      description="Bad Request: message is too long")
    async with bot.app.conversation(bot.pid()):
        reached = await bot.app.tell(bot.pid(), [Message("Refused canary"), Message("Second"),
                                                 Message("Third")])
    assert reached
    assert bot.api.sent_texts(CHAT)[-2:] == ["Second", "Third"]
    assert "Refused canary" not in bot.api.sent_texts(CHAT)
    assert await bot.app.store.count_operations("send") == 0
    person = await bot.app.store.person(bot.pid())
    assert person is not None and not person.unreachable
    assert "Refused canary" not in caplog.text and "too long" not in caplog.text


async def test_a_rate_limited_reply_waits_as_long_as_telegram_asks(start_bot: Starter) -> None:
    bot = await start_bot(rate_limit=False)  # PTB's limiter would retry it itself
    await bot.say("hi")
    await all_delivered(bot)
    bot.api.fail_next("sendMessage", retry_after=30)
    before = bot.app.clock()
    async with bot.app.conversation(bot.pid()):
        await bot.app.tell(bot.pid(), [Message("Later")])
    [kept] = await bot.app.store.operations(bot.pid())
    assert kept.message.text == "Later" and kept.next_try_at >= before + 30
