"""Campaigns that do not write first, on Telegram: a deep link (/start <code>) counts a
new conversation for its campaign and starts the campaign's flow; the CLI prints the link.
And the admin's side: `helpline outreach create` reports every bad line at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpline.app import App
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.cli import main
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.outreach import OutreachService, install
from helpline.privacy import Vault
from helpline.stats import Stats
from helpline.stats.feature import StatsFeature
from helpline.store import Store
from tests.conftest import SECRET, make_settings
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI

CHAT = 4242
SAFETY_INTRO = "Here are some ideas other people have found useful."


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[FakeBotAPI, App, OutreachService]]:
    async with FakeBotAPI() as tg:
        settings = make_settings(tmp_path)
        vault = Vault(SECRET)
        store = await Store.open(settings.db, vault)
        channel = TelegramChannel(TelegramOptions(token=TOKEN, api_url=tg.root,
                                                  poll_timeout_seconds=1, rate_limit=False))
        app = App(settings, load_flows(settings.flows), store, vault,
                  CatalogTranslator(settings.locales), [channel], features=[StatsFeature()])
        service = install(app, None)
        await app.start()
        try:
            yield tg, app, service
        finally:
            await app.stop()
            await store.close()


async def test_a_deep_link_attributes_a_new_conversation_and_starts_its_flow(
        telegram: tuple[FakeBotAPI, App, OutreachService]) -> None:
    tg, app, service = telegram
    await service.repo.create("metro", "unused on Telegram", [], app.clock(), language="en",
                              keep_days=30, flow="safety_tips")
    campaign = await service.repo.by_name("metro")
    assert campaign is not None
    tg.person_sends(CHAT, f"/start {campaign.code}")
    await tg.wait_until(lambda: bool(tg.sent_texts(CHAT)), what="the bot's answer")
    assert tg.sent_texts(CHAT)[0].startswith(SAFETY_INTRO)
    rows = await Stats(app.store.database).counts("2000-W01", "2100-W01")
    found = [(r.event, r.detail, r.channel, r.campaign, r.count) for r in rows
             if r.event == "outreach_attributed"]
    assert found == [("outreach_attributed", "link", "telegram", "metro", 1)]
    # A code no campaign has is an ordinary start: the welcome, nothing counted.
    tg.person_sends(CHAT + 1, "/start nothing-here")
    await tg.wait_until(lambda: bool(tg.sent_texts(CHAT + 1)), what="the welcome")
    assert not tg.sent_texts(CHAT + 1)[0].startswith(SAFETY_INTRO)
    rows = await Stats(app.store.database).counts("2000-W01", "2100-W01")
    assert sum(r.count for r in rows if r.event == "outreach_attributed") == 1


@pytest.fixture
def db(cli_db: Path) -> Path:
    async def make() -> None:
        store = await Store.open(cli_db, Vault(SECRET))
        await store.close()
    asyncio.run(make())
    return cli_db


def test_create_reports_every_bad_line_at_once_and_creates_nothing(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = tmp_path / "message.txt"
    message.write_text("Hi. Our trafficking hotline is here for you.\nReply STOP to stop.\n")
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("name,number\nA,+12025550123\nB,not a number\nC,202 555 0124\n"
                       "D,+1202555012\nE,+12025550123\n")
    assert main(["outreach", "create", "spring", "--message-file", str(message),
                 "--numbers", str(numbers)]) == 1
    err = capsys.readouterr().err
    assert "message.txt:1: names what it is about (trafficking, hotline)" in err
    assert "numbers.csv:3: not a phone number; write it like +4915112345678" in err
    assert "numbers.csv:4: the number has no country code" in err
    assert "numbers.csv:5: not a valid number for its country" in err
    assert "numbers.csv:2" not in err and "numbers.csv:6" not in err  # a duplicate is fine
    assert "+1202555012" not in err and "555 0124" not in err  # never quoted back
    assert "nothing was created" in err
    assert main(["outreach", "list"]) == 0
    assert "no campaigns" in capsys.readouterr().out


def test_create_start_link_and_close(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HELPLINE_OUTREACH_DEFAULT_REGION", "US")
    monkeypatch.setenv("HELPLINE_OUTREACH_BOT_USERNAME", "daily_notes_bot")
    message = tmp_path / "message.txt"
    message.write_text("Hi. You can write here any time. Reply STOP to stop.\n")
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("+12025550123\n(202) 555-0124\n+1 202 555 0123\n")
    assert main(["outreach", "create", "spring", "--message-file", str(message),
                 "--numbers", str(numbers), "--keyword", "Bluebird"]) == 0
    assert "2 numbers to write to" in capsys.readouterr().out
    assert main(["outreach", "suppress", "2025550124"]) == 0
    assert "1 numbers added" in capsys.readouterr().out
    assert main(["outreach", "start", "spring"]) == 0
    assert main(["outreach", "link", "spring"]) == 0
    out = capsys.readouterr().out
    assert "https://t.me/daily_notes_bot?start=" in out and "Signal keyword: bluebird" in out
    assert main(["outreach", "list"]) == 0
    listed = capsys.readouterr().out
    assert "spring" in listed and "running" in listed
    assert main(["outreach", "close", "spring"]) == 0
    assert "2 numbers deleted" in capsys.readouterr().out  # suppressed after create: kept

    async def left() -> int:
        store = await Store.open(db, Vault(SECRET))
        try:
            return await store.count("outreach_recipients")
        finally:
            await store.close()
    assert asyncio.run(left()) == 0
    assert b"2025550123" not in db.read_bytes() and b"2025550124" not in db.read_bytes()


def test_status_counts_by_week_with_small_counts_hidden(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from helpline.outreach.store import Campaigns

    now = time.time()

    async def run() -> None:
        store = await Store.open(db, Vault(SECRET))
        try:
            await Campaigns(store).create("autumn", "Hi.", ["+12025550123"], now,
                                          language="en", keep_days=30)
            stats = Stats(store.database)
            for event, n in (("outreach_sent", 12), ("outreach_delivered", 11),
                             ("outreach_failed", 1), ("outreach_replied", 6),
                             ("outreach_opted_out", 2)):
                for _ in range(n):
                    await stats.count(event, now, "signal", "en", "", "autumn")
            await stats.count("outreach_replied", now, "signal", "en", "", "other")
        finally:
            await store.close()
    asyncio.run(run())
    assert main(["outreach", "status", "autumn"]) == 0
    out = capsys.readouterr().out
    assert "autumn: ready (en)" in out and "to write to: 1" in out
    [week] = [line for line in out.splitlines() if "-W" in line]
    assert week.split()[1:] == ["12", "11", "<5", "6", "<5", "0", "0", "50%"]
    [total] = [line for line in out.splitlines() if line.strip().startswith("all ")]
    assert total.split()[1:] == ["12", "11", "<5", "6", "<5", "0", "0", "50%"]
    assert "+1202" not in out


async def test_link_asks_telegram_for_the_bot_s_name_when_none_is_set(
        db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fakes.telegram_bot_api import BOT_USERNAME

    store = await Store.open(db, Vault(SECRET))
    try:
        from helpline.outreach.store import Campaigns

        await Campaigns(store).create("walls", "Hi.", [], 1.0, language="en", keep_days=30)
        campaign = await Campaigns(store).by_name("walls")
        assert campaign is not None
    finally:
        await store.close()
    async with FakeBotAPI() as tg:
        monkeypatch.setenv("HELPLINE_TELEGRAM_TOKEN", TOKEN)
        monkeypatch.setenv("HELPLINE_TELEGRAM_API_URL", tg.root)
        assert await asyncio.to_thread(main, ["outreach", "link", "walls"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"https://t.me/{BOT_USERNAME}?start={campaign.code}")
