"""Platform garbage is cleaned at each channel's edge: odd types, lone surrogates, control
characters, huge texts. The event still goes through, and never blocks the ones behind."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import CallbackQuery, Chat, Message, Update, User

from helpline.channels.clean import MAX_PAYLOAD, MAX_TEXT, clean_payload, clean_text
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.chat import terminal_text
from helpline.events import RawInbound
from tests.conftest import BASIC_FLOWS
from tests.fakes.telegram_bot_api import TOKEN
from tests.test_telegram_channel import (  # fixtures: api, start_bot
    CHAT,
    GREETING,
    Starter,
    api,
    start_bot,
)

FUZZ = settings(deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Any character at all, lone surrogates and controls included.
ANY_CHAR = st.characters(codec=None, categories=None)
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=60)
ODD = st.one_of(ANY_TEXT, st.none(), st.booleans(), st.integers(), st.floats(),
                st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                    st.integers(), max_size=2),
                st.binary(max_size=8))


def assert_clean(text: str, limit: int = MAX_TEXT) -> None:
    assert isinstance(text, str)
    text.encode("utf-8")  # no lone surrogate
    assert len(text) <= limit
    assert all(c in "\n\t" or c.isprintable() or not (ord(c) < 32 or 127 <= ord(c) < 160)
               for c in text)


@FUZZ
@given(ODD)
def test_clean_text_and_payload_take_anything(value: object) -> None:
    text = clean_text(value)
    assert_clean(text)
    assert text == "" or isinstance(value, str)
    payload = clean_payload(value)
    assert_clean(payload)
    assert len(payload.encode("utf-8")) <= MAX_PAYLOAD


def test_clean_text_keeps_what_people_write() -> None:
    for text in ("Hola, ¿qué tal?", "привіт", "مرحبا", "line one\nline two", "😀 ok", "\ttab"):
        assert clean_text(text) == text
    assert clean_text("hi\ud800there") == "hi\ufffdthere"
    assert clean_text("a\x00b\x1bc\r\nd") == "ab" + "c\nd"
    assert len(clean_text("x" * 10_000_000)) == MAX_TEXT


CHANNEL = TelegramChannel(TelegramOptions(token=TOKEN, api_url="http://127.0.0.1:9/bot"))
WHEN = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)


@FUZZ
@given(text=ODD, language=ODD, chat_id=st.integers(1, 2**52))
def test_telegram_messages_with_odd_values_become_clean_events(
    text: Any, language: Any, chat_id: int
) -> None:
    user = User(id=chat_id, first_name="A", is_bot=False, language_code=language)
    message = Message(message_id=7, date=WHEN, chat=Chat(id=chat_id, type="private"),
                      from_user=user, text=text)
    event = CHANNEL._to_inbound(Update(update_id=1, message=message))
    assert isinstance(event, RawInbound)  # never dropped
    assert event.platform_id == str(chat_id) and event.message_id == "7"
    assert_clean(event.inbound.text)
    assert_clean(event.inbound.payload)
    assert event.inbound.kind in ("text", "start", "unsupported")
    hint = event.inbound.locale_hint
    assert hint is None or (hint == language and hint.isascii())


@FUZZ
@given(data=ODD, language=ODD)
def test_telegram_button_presses_with_odd_data_become_clean_events(
    data: Any, language: Any
) -> None:
    user = User(id=5, first_name="A", is_bot=False, language_code=language)
    message = Message(message_id=8, date=WHEN, chat=Chat(id=5, type="private"))
    query = CallbackQuery(id="q1", from_user=user, chat_instance="c", message=message, data=data)
    event = CHANNEL._to_inbound(Update(update_id=2, callback_query=query))
    assert isinstance(event, RawInbound)
    assert event.inbound.kind == "button"
    assert_clean(event.inbound.payload)
    assert len(event.inbound.payload.encode("utf-8")) <= MAX_PAYLOAD


def test_start_with_the_bot_name_is_a_deep_link() -> None:
    message = Message(message_id=9, date=WHEN, chat=Chat(id=5, type="private"),
                      text="/start@Help_Bot safety")
    event = CHANNEL._to_inbound(Update(update_id=3, message=message))
    assert event is not None
    assert (event.inbound.kind, event.inbound.payload) == ("start", "safety")


async def test_a_lone_surrogate_and_a_number_as_button_data_over_the_wire(
    start_bot: Starter,
) -> None:
    bot = await start_bot()
    # json.dumps writes the lone surrogate as "\ud800": what a hostile client can send.
    assert await bot.say("hi \ud800") == ["\n\n".join(GREETING)]
    [message_id] = [m for m in bot.api._messages.get(CHAT, {})][-1:]
    before = len(bot.api.sent_texts(CHAT))
    bot.api.queue_update({"callback_query": {
        "id": "77", "chat_instance": "1", "data": 12345,
        "from": {"id": CHAT, "is_bot": False, "first_name": "A"},
        "message": {"message_id": message_id, "date": 1, "chat": {"id": CHAT,
                                                                   "type": "private"}}}})
    replies = await bot.api.wait_sent(CHAT, before + 1)
    # A press whose data is not a string is no answer: the question is asked again kindly.
    assert replies[before] == ("Sorry, I didn't catch that. You can tap an option or type "
                               "its number.")
    person = await bot.app.store.person(bot.pid())
    assert person is not None  # the state was saved, surrogate and all
    # Later messages still go through.
    assert len(await bot.say("1")) == 1


@FUZZ
@given(ANY_TEXT)
def test_any_terminal_line_becomes_clean_text(line: str) -> None:
    assert_clean(terminal_text(line + "\n"))


def test_terminal_lines_are_cleaned() -> None:
    assert terminal_text("hi\ud800\r\n") == "hi\ufffd"
    assert terminal_text("\x00\x07exit\n") == "exit"


def test_helpline_chat_reads_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    env = {**os.environ, "HELPLINE_DB": str(tmp_path / "h.db"),
           "HELPLINE_FLOWS": str(BASIC_FLOWS), "PYTHONUNBUFFERED": "1"}
    env.pop("HELPLINE_SECRET_KEY", None)
    done = subprocess.run([sys.executable, "-m", "helpline", "chat"], env=env,
                          input=b"hi\xff\xfe\x00\n1\nSam\n", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "you> hi\ufffd\ufffd" in out
    assert "bot> How old are you?" in out


_ = (api, start_bot, json)
