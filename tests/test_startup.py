"""``helpline run`` start-up explains itself: warnings printed, errors refused, every failure
one line with no secret, an unreachable Telegram waited for; and ``helpline telegram ids``."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpline import cli
from helpline.channels import telegram as telegram_module
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.channels.telegram_checks import SeenChat, SeenUser, watch_ids
from helpline.errors import Rejected
from helpline.serve import serve
from tests.conftest import BASIC_FLOWS, SECRET, make_settings
from tests.fakes.telegram_bot_api import FakeBotAPI

TOKEN = "123456:startup-test-token-abcdefghijklmnopq"
WRONG = "654321:startup-wrong-token-zyxwvutsrqpon"
FORUM = -1001234567890
ADVOCATE = 5551001


async def _nothing(*_: object) -> None:
    return None


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_module, "CONNECT_RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(telegram_module, "CONNECT_RETRY_MAX_SECONDS", 0.2)


async def test_an_unreachable_telegram_api_is_waited_for(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeBotAPI(valid_token=TOKEN) as api:
        api.set_down(True)
        channel = TelegramChannel(TelegramOptions(token=TOKEN, api_url=api.root,
                                                  poll_timeout_seconds=1))
        starting = asyncio.create_task(channel.start(_nothing, _nothing))
        await api.wait_for_call("getMe", count=3, timeout=5)
        assert not starting.done()
        api.set_down(False)
        await asyncio.wait_for(starting, 5)
        await api.wait_for_call("getUpdates", timeout=5)
        await channel.stop()
    waits = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    assert waits and waits[0].startswith("Telegram API is not reachable (NetworkError); "
                                         "trying again in 0.1s")
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("helpline")]
    assert ours and all(TOKEN not in m and "abcdefgh" not in m for m in ours)


async def test_a_rejected_token_is_one_clear_error_without_the_token() -> None:
    async with FakeBotAPI(valid_token=TOKEN) as api:
        channel = TelegramChannel(TelegramOptions(token=WRONG, api_url=api.root))
        with pytest.raises(Rejected) as err:
            await asyncio.wait_for(channel.start(_nothing, _nothing), 5)
        await channel.stop()
        assert len(api.calls_to("getMe")) == 1  # not retried
    assert "rejected the bot token" in str(err.value)
    assert WRONG not in str(err.value) and "zyxw" not in str(err.value)


async def test_a_stop_while_telegram_is_down_is_not_kept_waiting(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        api.set_down(True)
        channel = TelegramChannel(TelegramOptions(token=TOKEN, api_url=api.root))
        stop = asyncio.Event()
        serving = asyncio.create_task(serve(make_settings(tmp_path, BASIC_FLOWS), [channel],
                                            stop))
        await api.wait_for_call("getMe", count=2, timeout=5)
        stop.set()
        await asyncio.wait_for(serving, 5)
    assert not channel.app.running


# ---------------------------------------------------------------- the command line


@contextmanager
def fake_in_a_thread(**kwargs: object) -> Iterator[FakeBotAPI]:
    """A FakeBotAPI on its own event loop, for commands that run asyncio.run themselves."""
    loop = asyncio.new_event_loop()
    api = FakeBotAPI(**kwargs)  # type: ignore[arg-type]
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(api.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield api
    finally:
        asyncio.run_coroutine_threadsafe(api.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: str) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HELPLINE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELPLINE_DB", str(tmp_path / "var" / "helpline.db"))
    monkeypatch.setenv("HELPLINE_FLOWS", str(BASIC_FLOWS))
    for key, value in values.items():
        monkeypatch.setenv(f"HELPLINE_{key}", value)


def test_run_prints_the_warnings_and_refuses_on_errors(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    environment(monkeypatch, tmp_path, SECRET_KEY="short-secret", TELEGRAM_TOKEN=TOKEN)
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "helpline: error    key: the secret key has fewer than 32 characters" in err
    assert "helpline: warning  desk: no advocate desk" in err
    assert "helpline: warning  directory: the service directory is empty" in err
    assert err.rstrip().endswith("refusing to start: 1 error(s) above; fix them and start "
                                 "again (helpline doctor checks)")
    assert "Traceback" not in err and "short-secret" not in err and TOKEN not in err


def test_run_with_a_rejected_token_stops_with_one_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with fake_in_a_thread(valid_token=TOKEN) as api:
        environment(monkeypatch, tmp_path, SECRET_KEY=SECRET, TELEGRAM_TOKEN=WRONG,
                    TELEGRAM_API_URL=api.root)
        assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("helpline: Telegram rejected the bot token")
    assert WRONG not in err and "zyxw" not in err and "Traceback" not in err


def test_an_unexpected_failure_is_one_line_without_its_message() -> None:
    try:
        raise ValueError(f"token {TOKEN} in a library's message")
    except ValueError as exc:
        line = cli._one_line(exc)
    assert line.startswith("could not start (ValueError at test_startup.py:")
    assert TOKEN not in line and "\n" not in line


def test_doctor_exits_1_on_errors_and_prints_one_line_each(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with fake_in_a_thread(valid_token=TOKEN) as api:
        environment(monkeypatch, tmp_path, SECRET_KEY=SECRET, TELEGRAM_TOKEN=TOKEN,
                    TELEGRAM_API_URL=api.root)
        assert cli.main(["doctor"]) == 0
        first = capsys.readouterr().out.splitlines()
        assert "ok       telegram: token accepted: the bot is @helpline_test_bot" in first
        assert first[-1] == "0 error(s), 2 warning(s)"
        environment(monkeypatch, tmp_path, TELEGRAM_TOKEN=WRONG, TELEGRAM_API_URL=api.root)
        assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "error    key: HELPLINE_SECRET_KEY is not set" in out
    assert "error    telegram: Telegram rejected the bot token" in out
    assert WRONG not in out
    assert out.splitlines()[-1] == ("2 error(s), 2 warning(s); helpline run refuses to start "
                                    "until the errors are fixed")


def test_doctor_reports_a_bad_config_as_its_first_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    environment(monkeypatch, tmp_path, TELEGRAM_TOKN=TOKEN)
    assert cli.main(["doctor"]) == 2
    assert capsys.readouterr().out == (
        "error    config: environment: unknown variable HELPLINE_TELEGRAM_TOKN; did you mean "
        "HELPLINE_TELEGRAM_TOKEN?\n")


# ---------------------------------------------------------------- telegram ids


async def test_ids_shows_groups_and_their_writers_and_consumes_nothing() -> None:
    async with FakeBotAPI() as api:
        api.person_sends(FORUM, "hello desk", user_id=ADVOCATE, first_name="Ana",
                         chat_title="Desk", message_thread_id=7)
        api.person_sends(4242, "someone asking for help", first_name="Private Person")
        chats: list[SeenChat] = []
        users: list[SeenUser] = []
        private = await watch_ids(TelegramOptions(token=TOKEN, api_url=api.root), 1.0,
                                  chats.append, users.append)
        assert chats == [SeenChat(FORUM, "supergroup", "Desk", True)]
        assert users == [SeenUser(ADVOCATE, "Ana", FORUM)]
        assert private == 1
        assert len(api.pending_updates) == 2  # still there for helpline
        assert all("offset" not in c.params for c in api.calls_to("getUpdates"))


def test_ids_command_prints_the_settings_to_fill_in(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with fake_in_a_thread() as api:
        api.person_sends(FORUM, "hi", user_id=ADVOCATE, first_name="Ana",
                         chat_title="Desk", message_thread_id=7)
        api.person_sends(4242, "private words", first_name="Private Person")
        environment(monkeypatch, tmp_path, TELEGRAM_TOKEN=TOKEN, TELEGRAM_API_URL=api.root)
        assert cli.main(["telegram", "ids", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert f"group  {FORUM}  supergroup with topics  'Desk'" in out
    assert f"  user {ADVOCATE}  'Ana' wrote in {FORUM}" in out
    assert "(1 private chat(s) not shown: people writing to the bot)" in out
    assert out.endswith(f"[handoff]\nstaff_chat = {FORUM}\nadvocates = [{ADVOCATE}]\n")
    assert "4242" not in out and "Private Person" not in out and "private words" not in out
    assert TOKEN not in out


def test_chat_with_a_short_key_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    environment(monkeypatch, tmp_path, SECRET_KEY="short-secret")
    assert cli.main(["chat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("helpline: the secret key must be at least 32 characters")
    assert err.count("\n") == 1 and "short-secret" not in err


async def test_ids_while_a_webhook_is_set_says_what_to_do() -> None:
    from telegram import Bot

    async with FakeBotAPI() as api:
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            await bot.set_webhook("https://127.0.0.1:8443/hook")
        with pytest.raises(Rejected) as err:
            await watch_ids(TelegramOptions(token=TOKEN, api_url=api.root), 1.0,
                            lambda _: None, lambda _: None)
    assert "sends this bot's updates to a webhook" in str(err.value)
    assert TOKEN not in str(err.value)
