"""``helpline doctor``: one line per item, ok or what to do, for every finding it knows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from helpline.channels.signal import SignalOptions
from helpline.channels.signal_checks import check_signal
from helpline.channels.telegram import TelegramOptions
from helpline.channels.telegram_checks import check_telegram
from helpline.config import Handoff, Resources, Settings, Telegram
from helpline.doctor import (
    check_database,
    check_desk,
    check_directory,
    check_examples,
    check_key,
    check_languages,
    offline_findings,
)
from helpline.findings import Finding
from helpline.flow.loader import load_flows
from helpline.i18n_check import update_catalogs
from helpline.privacy import Vault
from helpline.resources import SAMPLE_DIRECTORY, import_directory, set_openings
from helpline.store import Store
from helpline.store.database import KEY_MISMATCH
from tests.conftest import BASIC_FLOWS, BUNDLED_FLOWS, SECRET
from tests.fakes.signal_cli_api import FakeSignalAPI
from tests.fakes.telegram_bot_api import FakeBotAPI

TOKEN = "123456:doctor-test-token-abcdefghijklmnopqrs"
OTHER_SECRET = "another-secret-key-0123456789-abcdefghijklmnop"
FORUM = -1001234567890


def lines(findings: list[Finding], level: str | None = None) -> list[str]:
    return [str(f) for f in findings if level is None or f.level == level]


def settings(tmp_path: Path, **updates: object) -> Settings:
    base = Settings(db=tmp_path / "helpline.db", secret_key=SECRET, flows=BASIC_FLOWS,
                    telegram=Telegram(token=TOKEN))
    return base.model_copy(update=updates)


async def a_database_with_a_person(path: Path) -> None:
    from helpline.state import State

    store = await Store.open(path, Vault(SECRET))
    await store.save_turn("pid-1", "terminal", "addr-1", State(), [], time.time())
    await store.close()


# ---------------------------------------------------------------- key and database


def test_a_missing_or_short_key_is_an_error_that_says_how_to_make_one(tmp_path: Path) -> None:
    missing, _ = check_key(settings(tmp_path, secret_key=""))
    assert missing.level == "error" and "HELPLINE_SECRET_KEY is not set" in missing.text
    assert "secrets.token_urlsafe(48)" in missing.text
    short, _ = check_key(settings(tmp_path, secret_key="too-short"))
    assert short.level == "error" and "fewer than 32 characters" in short.text
    assert "too-short" not in str(short)


async def test_a_key_that_does_not_open_the_database_is_an_error(tmp_path: Path) -> None:
    await a_database_with_a_person(tmp_path / "helpline.db")
    right = settings(tmp_path)
    assert lines(check_database(right, Vault(SECRET)), "error") == []
    assert "opens the stored conversations" in " ".join(lines(check_database(
        right, Vault(SECRET))))
    wrong = check_database(settings(tmp_path, secret_key=OTHER_SECRET), Vault(OTHER_SECRET))
    [line] = lines(wrong, "error")
    assert "this database was written with another secret key" in line
    assert OTHER_SECRET not in line and SECRET not in line


async def test_what_is_kept_past_its_period_is_warned_of(tmp_path: Path) -> None:
    from helpline.state import State

    await a_database_with_a_person(tmp_path / "helpline.db")  # writing now: nothing is late
    assert "ok       retention: nothing is kept past its period" in lines(
        check_database(settings(tmp_path), Vault(SECRET)))
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    await store.save_turn("pid-2", "terminal", "addr-2", State(), [], time.time() - 91 * 86400)
    await store.close()
    [late] = lines(check_database(settings(tmp_path), Vault(SECRET)), "warning")
    assert late.startswith("warning  retention: kept past its period: 1 people; the bot "
                           "purges every 6 hours")
    assert people_in(tmp_path / "helpline.db") == 2  # a dry run: nothing was removed


def people_in(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM people").fetchone()[0])


async def test_schema_versions_older_and_newer_than_this_helpline(tmp_path: Path) -> None:
    await a_database_with_a_person(tmp_path / "helpline.db")
    [current] = [f for f in check_database(settings(tmp_path), None) if f.item == "database"]
    assert current.level == "ok" and "schema core " in current.text
    with sqlite3.connect(tmp_path / "helpline.db") as db:
        db.execute("UPDATE schema_parts SET version = version - 1 WHERE part = 'handoff'")
    [older] = [f for f in check_database(settings(tmp_path), None) if f.item == "database"]
    assert older.level == "warning"
    assert "tables to upgrade (handoff); helpline run upgrades them at start" in older.text
    with sqlite3.connect(tmp_path / "helpline.db") as db:
        db.execute("UPDATE schema_parts SET version = version + 5 WHERE part = 'handoff'")
    [newer] = [f for f in check_database(settings(tmp_path), None) if f.item == "database"]
    assert newer.level == "error" and "tables of a newer helpline (handoff)" in newer.text
    with sqlite3.connect(tmp_path / "helpline.db") as db:  # a part this helpline lacks
        db.execute("UPDATE schema_parts SET version = 1 WHERE part = 'handoff'")
        db.execute("INSERT INTO schema_parts (part, version) VALUES ('telepathy', 1)")
    [unknown] = [f for f in check_database(settings(tmp_path), None) if f.item == "database"]
    assert unknown.level == "error" and "(telepathy)" in unknown.text


def test_a_database_that_cannot_be_created_or_read(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    [cannot] = check_database(settings(tmp_path, db=tmp_path / "a-file" / "h.db"), None)
    assert cannot.level == "error" and "cannot be created" in cannot.text
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    [junk] = check_database(settings(tmp_path, db=tmp_path / "junk.db"), None)
    assert junk.level == "error" and "restore it from a backup" in junk.text
    [new] = check_database(settings(tmp_path, db=tmp_path / "new" / "h.db"), None)
    assert new.level == "ok" and "helpline run creates it" in new.text
    assert not (tmp_path / "new").exists()  # doctor changes nothing


# ---------------------------------------------------------------- flows and languages


def test_example_texts_left_in_the_flows_are_warned_of() -> None:
    [example] = check_examples(load_flows(BUNDLED_FLOWS))
    assert example.level == "warning"
    assert "numbers.yaml:" in example.text and "'numbers.numbers'" in example.text
    assert "0800 000 000" in example.text
    assert check_examples(load_flows(BASIC_FLOWS)) == []


def test_an_incomplete_language_is_an_error_unless_allowed(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    update_catalogs(locales, BUNDLED_FLOWS, ["de"])
    base = settings(tmp_path, flows=BUNDLED_FLOWS, locales=locales, languages=["en", "de"])
    [line] = check_languages(base)
    assert line.level == "error" and line.item == "language de (Deutsch)"
    assert "0 of " in line.text and "missing" in line.text
    assert "add 'de' to allow_incomplete" in line.text
    allowed = check_languages(base.model_copy(update={"allow_incomplete": ["de"]}))
    assert [f.level for f in allowed] == ["warning"]


def test_the_bundled_languages_are_complete(tmp_path: Path) -> None:
    found = check_languages(settings(tmp_path, flows=BUNDLED_FLOWS,
                                     languages=["en", "es", "fr", "ru", "uk", "ar"]))
    assert [f.level for f in found] == ["ok"] * 5, lines(found)


# ---------------------------------------------------------------- directory and desk


async def test_the_directory_empty_fictional_and_stale(tmp_path: Path) -> None:
    config = settings(tmp_path)
    [empty] = check_directory(config, time.time())
    assert empty.level == "warning" and "directory is empty" in empty.text
    seeded = check_directory(config.model_copy(update={"resources": Resources(
        seed="services.yaml")}), time.time())
    assert [f.level for f in seeded] == ["ok"]
    store = await Store.open(config.db, Vault(SECRET))
    now = time.time()
    await import_directory(store, SAMPLE_DIRECTORY, now)
    found = check_directory(config, now)
    assert [f.level for f in found] == ["warning", "warning"]
    assert "fictional sample" in found[0].text
    assert "2 service(s) have openings counted more than 72 h ago" in found[1].text
    services = list(await store.db.execute_fetchall("SELECT id FROM services LIMIT 1"))
    await set_openings(store, str(services[0][0]), 3, now - 100 * 3600)
    await store.close()
    stale = [f for f in check_directory(config, now) if "openings" in f.text]
    assert "3 service(s) have openings counted more than 72 h ago" in stale[0].text


def test_desk_settings(tmp_path: Path) -> None:
    [none] = check_desk(settings(tmp_path))
    assert none.level == "warning" and "no advocate desk" in none.text
    no_telegram = settings(tmp_path, telegram=Telegram(),
                           handoff=Handoff(staff_chat=FORUM, advocates=[1]))
    assert any("Telegram is not" in f.text for f in check_desk(no_telegram)
               if f.level == "error")
    person = check_desk(settings(tmp_path, handoff=Handoff(staff_chat=42, advocates=[1])))
    assert any("a person's chat, not a group" in f.text for f in person)
    nobody = check_desk(settings(tmp_path, handoff=Handoff(staff_chat=FORUM)))
    assert [f.level for f in nobody] == ["warning"] and "nobody can claim" in nobody[0].text


def test_no_channel_is_an_error_and_a_bad_token_shape_too(tmp_path: Path) -> None:
    found = offline_findings(settings(tmp_path, telegram=Telegram()), None)
    assert any(f.item == "channels" and f.level == "error" for f in found)
    bad = offline_findings(settings(tmp_path, telegram=Telegram(token="nocolon")), None)
    assert any(f.item == "telegram" and "does not look like a bot token" in f.text
               for f in bad)
    assert all("nocolon" not in str(f) for f in bad)


# ---------------------------------------------------------------- the platforms


def options(api: FakeBotAPI, token: str = TOKEN) -> TelegramOptions:
    return TelegramOptions(token=token, api_url=api.root)


async def test_telegram_token_rejected_or_accepted() -> None:
    async with FakeBotAPI(valid_token=TOKEN) as api:
        wrong = "654321:rejected-token-zyxwvutsrqponmlk"
        [rejected] = await check_telegram(options(api, wrong), 0, "")
        assert rejected.level == "error" and "rejected the bot token" in rejected.text
        assert wrong not in str(rejected) and "zyxw" not in str(rejected)
        found = await check_telegram(options(api), 0, "")
        assert lines(found) == [
            "ok       telegram: token accepted: the bot is @helpline_test_bot",
            "ok       telegram webhook: none: long polling (nothing to expose)"]


async def test_telegram_unreachable() -> None:
    async with FakeBotAPI() as api:
        api.set_down(True)
        [down] = await check_telegram(options(api), 0, "")
        assert down.level == "error" and "is not reachable" in down.text


async def test_telegram_webhook_states() -> None:
    async with FakeBotAPI() as api:
        url = "https://127.0.0.1:8443/hook"
        found = await check_telegram(options(api), 0, "http://127.0.0.1:8443/hook")
        assert "must start with https://" in found[1].text
        found = await check_telegram(options(api), 0, url)
        assert found[1].level == "warning" and "sets it at start" in found[1].text
        await api_set_webhook(api, url)
        found = await check_telegram(options(api), 0, url)
        assert found[1].level == "ok"
        api.webhook_last_error = (time.time() - 600, "Connection refused")
        found = await check_telegram(options(api), 0, url)
        assert found[1].level == "error"
        assert "could not deliver to it 10 min ago (Connection refused)" in found[1].text
        found = await check_telegram(options(api), 0, "")
        assert found[1].level == "warning" and "removes it at start" in found[1].text


async def api_set_webhook(api: FakeBotAPI, url: str) -> None:
    from telegram import Bot

    async with Bot(TOKEN, base_url=api.base_url) as bot:
        await bot.set_webhook(url)


async def test_the_staff_group_topics_and_the_bots_rights() -> None:
    async with FakeBotAPI() as api:
        api.add_forum_topic(FORUM, "General")
        found = await check_telegram(options(api), FORUM, "")
        assert found[2] == Finding("ok", "desk", "the staff group has topics and the bot is "
                                   "an admin who manages them")
        api.bot_rights[FORUM] = {"can_manage_topics": False}
        found = await check_telegram(options(api), FORUM, "")
        assert "may not manage topics" in found[2].text
        api.bot_rights[FORUM] = {"status": "member"}
        found = await check_telegram(options(api), FORUM, "")
        assert "not an admin of the staff group" in found[2].text
        plain_group = -4001
        found = await check_telegram(options(api), plain_group, "")
        assert found[2].level == "error" and "has no topics" in found[2].text


async def test_a_staff_group_the_bot_cannot_see() -> None:
    async with FakeBotAPI(strict_chats=True) as api:
        found = await check_telegram(options(api), FORUM, "")
        assert found[2].level == "error" and "cannot see the staff group" in found[2].text


async def test_the_signal_bridge_mode_and_number() -> None:
    async with FakeSignalAPI() as bridge:
        good = SignalOptions(service=f"127.0.0.1:{bridge.port}", number=bridge.number)
        assert [f.level for f in await check_signal(good)] == ["ok", "ok"]
        other = SignalOptions(service=good.service, number="+4915199999999")
        found = await check_signal(other)
        assert found[1].level == "error" and "no account for signal.number" in found[1].text
        assert "+4915199999999" not in str(found[1])
        bridge.mode = "normal"
        found = await check_signal(good)
        assert found[0].level == "error" and "set MODE=json-rpc" in found[0].text
        port = bridge.port
    [down] = await check_signal(SignalOptions(service=f"127.0.0.1:{port}", number="+1"))
    assert down.level == "error" and "is not reachable" in down.text


async def test_a_postgresql_database_is_checked_for_its_schema_and_key(
        tmp_path: Path, pg_url: str) -> None:
    on_pg = settings(tmp_path, database_url=pg_url)
    assert lines(check_database(on_pg, Vault(SECRET))) == [
        "ok       database: PostgreSQL reachable, empty; helpline run creates its tables"]
    store = await Store.open(pg_url, Vault(SECRET))
    await store.close()
    [schema, key] = lines(check_database(on_pg, Vault(SECRET)))
    assert schema.startswith("ok       database: PostgreSQL reachable, schema core ")
    assert key == "ok       key: opens the stored conversations"
    wrong = lines(check_database(on_pg, Vault(OTHER_SECRET)), "error")
    assert wrong == [f"error    key: {KEY_MISMATCH}"]
    gone = settings(tmp_path, database_url="postgresql://helpline:s3cret@127.0.0.1:9/x")
    [down] = lines(check_database(gone, Vault(SECRET)), "error")
    assert down.startswith("error    database: PostgreSQL cannot be reached (")
    assert "s3cret" not in down
