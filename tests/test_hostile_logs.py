"""No log line at any level, in polling or webhook mode, carries message text, a platform
id, a name, a full pseudonym or a ciphertext: libraries' records go through the privacy
filter that ``setup_logging`` puts on every handler (helpline/logfilter.py)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from helpline import logfilter
from helpline.events import Inbound, RawInbound
from helpline.logfilter import WITHHELD, PrivacyFilter
from helpline.runtime import setup_logging
from tests.conftest import Harness, logged
from tests.test_telegram_channel import (  # fixtures: api, start_bot
    CHAT,
    GREETING,
    Starter,
    api,
    start_bot,
)

TEXT = "canary words zq8 about my day"
NAME = "Canaryname"
USER = "canary_user_zq8"


def record(name: str, level: int, msg: str, *args: object,
           exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args,
                             (type(exc), exc, exc.__traceback__) if exc else None)


def shown(rec: logging.LogRecord) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PrivacyFilter())
    assert handler.filter(rec)
    return handler.format(rec)


def test_library_records_are_reduced_to_a_fixed_phrase() -> None:
    update = {"update_id": 5, "message": {"text": TEXT, "from": {"first_name": NAME}}}
    try:
        raise KeyError(TEXT)
    except KeyError as exc:
        critical = record("telegram.ext._utils.webhookhandler", logging.CRITICAL,
                          "Something went wrong processing the data received from Telegram. "
                          "Received data was *not* processed! Received data was: %r",
                          update, exc=exc)
    assert shown(critical) == (f"CRITICAL telegram.ext._utils.webhookhandler: {WITHHELD} "
                               "[KeyError]")
    sql = record("aiosqlite", logging.DEBUG, "executing %s",
                 "partial(execute, 'INSERT INTO people VALUES (?, ?)', ('a1b2c3d4e5f6', b'x'))")
    assert shown(sql) == f"DEBUG aiosqlite: {WITHHELD}"
    url = record("httpx", logging.INFO, 'HTTP Request: %s %s "%s %d %s"', "POST",
                 "http://127.0.0.1/bot123:ABC/sendMessage", "HTTP/1.1", 200, "OK")
    assert shown(url) == f"INFO httpx: {WITHHELD}"
    fstring = record("signalbot", logging.WARNING, f"message from +15550123: {TEXT}")
    assert shown(fstring) == f"WARNING signalbot: {WITHHELD}"


def test_fixed_library_texts_and_our_own_records_pass_whole() -> None:
    assert shown(record("telegram.ext.Updater", logging.DEBUG, "Updater started (polling)")) \
        == "DEBUG telegram.ext.Updater: Updater started (polling)"
    # A fixed text with an argument that is not a number is withheld all the same.
    assert shown(record("apscheduler", logging.INFO, "Scheduler started", TEXT)) \
        == f"INFO apscheduler: {WITHHELD}"
    assert shown(record("helpline.app", logging.DEBUG, "%s: step %s", "terminal:ab12", "menu")) \
        == "DEBUG helpline.app: terminal:ab12: step menu"


@pytest.fixture
def root_handlers_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    level = root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for h, kept in filters.items():
        h.filters[:] = kept


def test_setup_logging_filters_every_root_handler(
    root_handlers_restored: None, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging("DEBUG")
    assert all(any(isinstance(f, PrivacyFilter) for f in h.filters)
               for h in logging.getLogger().handlers)
    assert logging.getLogger("aiosqlite").level == logging.WARNING
    logging.getLogger("telegram.ext").critical("Received data was: %r", {"text": TEXT})
    assert TEXT not in caplog.text
    assert WITHHELD in caplog.text


async def test_at_debug_no_pseudonym_or_ciphertext_reaches_the_logs(
    basic: Harness, all_logs: pytest.LogCaptureFixture
) -> None:
    platform_id = "555000111"

    async def say(text: str) -> None:
        await basic.app.handle(RawInbound("terminal", platform_id, "addr-canary",
                                          Inbound(kind="text", at=0, text=text),
                                          message_id="7"))

    for text in ("hi", "1", TEXT, "33"):
        await say(text)
    pseudonym = basic.app.vault.pseudonym("terminal", platform_id)
    async with basic.app.store.db.execute("SELECT state FROM people") as rows:
        ciphertexts = [bytes(r[0]) for r in await rows.fetchall() if r[0]]
    assert ciphertexts
    logs = logged(all_logs)
    if basic.app.store.database.dialect == "sqlite":  # it did log, withheld
        assert any(r.name == "aiosqlite" for r in all_logs.records)
    assert pseudonym[:8] in logs  # our own lines carry the short form
    for canary in (pseudonym, platform_id, TEXT, "addr-canary", "canary"):
        assert canary not in logs, canary
    for token in ciphertexts:
        assert token.hex() not in logs and repr(token)[2:40] not in logs


async def test_telegram_polling_at_debug_logs_no_canary(
    start_bot: Starter, all_logs: pytest.LogCaptureFixture
) -> None:
    chat = 918273645502
    bot = await start_bot()
    await bot.say("hi", chat=chat, username=USER, first_name=NAME)
    await bot.say(TEXT, chat=chat, username=USER, first_name=NAME)
    logs = logged(all_logs)
    assert any(r.name.startswith(("httpx", "telegram")) for r in all_logs.records)
    for canary in (str(chat), USER, NAME, TEXT, bot.pid(chat)):
        assert canary not in logs, canary


async def test_telegram_webhook_at_debug_logs_no_canary_even_for_an_unreadable_update(
    start_bot: Starter, all_logs: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook-path"
    bot = await start_bot(webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                          webhook_secret="s3cret-token")
    chat = 918273645503
    # A message with no chat: no library can make an Update of it.
    broken = {"update_id": 900001, "message": {
        "message_id": 1, "date": 1_800_000_000, "text": TEXT,
        "from": {"id": chat, "is_bot": False, "first_name": NAME, "username": USER}}}
    await bot.api.push_webhook(broken)
    bot.api.person_sends(chat, TEXT, username=USER, first_name=NAME)
    assert await bot.api.push_webhook() == 200
    assert await bot.api.wait_sent(chat, 1) == ["\n\n".join(GREETING)]
    logs = logged(all_logs)
    for canary in (str(chat), USER, NAME, TEXT, bot.pid(chat), "s3cret-token"):
        assert canary not in logs, canary


_ = (CHAT, api, start_bot, logfilter)


def test_a_json_line_carries_its_named_fields_only(
    root_handlers_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library record with content in its message, its arguments, its extras and its
    exception: the JSON line (after the privacy filter) has time, level, logger, message
    and the exception's type, and none of it."""
    import json

    from helpline.logformat import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PrivacyFilter())
    try:
        raise ValueError(TEXT)
    except ValueError as exc:
        rec = record("telegram.ext", logging.ERROR, "update %r failed", {"text": TEXT}, exc=exc)
    rec.__dict__.update({"update": {"from": {"username": USER}}, "chat_id": 918273645502})
    assert handler.filter(rec)
    line = json.loads(handler.format(rec))
    assert set(line) == {"time", "level", "logger", "message"}
    assert line["level"] == "ERROR" and line["logger"] == "telegram.ext"
    assert line["message"] == f"{WITHHELD} [ValueError]"
    for canary in (TEXT, USER, "918273645502"):
        assert canary not in handler.format(rec)
    # A record of our own with an exception attached: its type, never its message.
    try:
        raise KeyError(TEXT)
    except KeyError as exc:
        own = record("helpline.app", logging.ERROR, "a turn failed", exc=exc)
    line = json.loads(handler.format(own))
    assert line["exception"] == "KeyError" and TEXT not in handler.format(own)


def test_setup_logging_in_json_writes_one_object_a_line(
    root_handlers_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    for handler in list(logging.getLogger().handlers):  # as at a real start: none yet
        logging.getLogger().removeHandler(handler)
    setup_logging("INFO", "json")
    logging.getLogger("helpline.serve").info("started with %d channel(s)", 2)
    logging.getLogger("aiohttp.access").warning("GET /bot%s/getMe", "123:secret-token")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["logger"], x["message"]) for x in lines] == [
        ("helpline.serve", "started with 2 channel(s)"), ("aiohttp.access", WITHHELD)]
