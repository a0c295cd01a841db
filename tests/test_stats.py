"""Statistics that identify no one: buckets of counts and nothing else, small counts shown
as "<5", totals that would reveal a hidden count hidden too, and ``helpline stats``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.privacy import Vault
from helpline.stats import Stats, claim_time_bucket, week_of
from helpline.stats.counts import Count
from helpline.stats.report import HIDDEN, table
from helpline.store import Store
from tests.conftest import SECRET

MONDAY = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()  # 2026-W49


def c(event: str, count: int, detail: str = "", channel: str = "telegram",
      language: str = "en", week: str = "2026-W49") -> Count:
    return Count(week, channel, language, event, detail, "", count)


def shown(rows: list, **match: str) -> list[str]:  # type: ignore[type-arg]
    return [r.count for r in rows if all(getattr(r, k) == v for k, v in match.items())]


def test_small_counts_and_the_totals_that_would_reveal_them_are_hidden() -> None:
    rows = table([c("lookup", 12, "shelter"), c("lookup", 3, "legal"),
                  c("lookup", 9, "legal", channel="signal")])
    assert shown(rows, event="lookup", week="2026-W49") == ["12", "<5", "9"]
    # legal's total (12) minus what is shown (9) would give the hidden 3: hidden.
    assert shown(rows, event="lookup", week="all", detail="legal") == [HIDDEN]
    assert shown(rows, event="lookup", week="all", detail="shelter") == ["12"]
    # The event's total minus shelter's would give legal's: hidden as well.
    assert shown(rows, event="lookup", week="all", detail="all") == [HIDDEN]


def test_a_total_of_several_hidden_counts_that_add_up_to_enough_is_shown() -> None:
    rows = table([c("quick_exit", 3, channel="telegram"), c("quick_exit", 4, channel="signal"),
                  c("quick_exit", 20, language="es")])
    assert shown(rows, event="quick_exit", week="2026-W49") == ["<5", "<5", "20"]
    assert shown(rows, event="quick_exit", detail="all") == ["27"]  # 7 hidden in two: safe
    two_small = table([c("erasure", 1, channel="telegram"), c("erasure", 2, channel="signal"),
                       c("erasure", 30, language="es")])
    assert shown(two_small, event="erasure", detail="all") == [HIDDEN]  # 3 < 5 in all


def test_min_count_is_a_setting() -> None:
    rows = table([c("lookup", 7, "food"), c("lookup", 12, "shelter")], min_count=10)
    assert shown(rows, week="2026-W49") == ["<10", "12"]


def test_buckets_take_codes_never_words(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(tmp_path / "h.db", Vault(SECRET))
        try:
            stats = Stats(store.database)
            with pytest.raises(ValueError, match="unknown statistics event"):
                await stats.count("said_something", MONDAY, "telegram", "en")
            with pytest.raises(ValueError, match="short codes only"):
                await stats.count("lookup", MONDAY, "telegram", "en", detail="I need a bed")
            for _ in range(6):
                await stats.count("lookup", MONDAY, "telegram", "en", detail="shelter")
            assert await stats.counts("2026-W49", "2026-W49") == [
                Count("2026-W49", "telegram", "en", "lookup", "shelter", "", 6)]
        finally:
            await store.close()

    asyncio.run(go())
    with sqlite3.connect(tmp_path / "h.db") as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(stats_counts)")}
    assert columns == {"week", "channel", "language", "event", "detail", "campaign", "count"}


def test_weeks_are_the_organisations_and_claim_times_are_buckets() -> None:
    sunday_night_utc = datetime(2026, 12, 6, 23, 30, tzinfo=UTC).timestamp()
    assert week_of(sunday_night_utc) == "2026-W49"
    assert week_of(sunday_night_utc, "Europe/Madrid") == "2026-W50"  # already Monday there
    assert [claim_time_bucket(s) for s in (30, 600, 1800, 7200, 36000, 200000)] == [
        "under-5m", "5-15m", "15-60m", "1-4h", "4-24h", "over-24h"]


def test_helpline_stats_prints_the_weeks_asked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELPLINE_DB", str(tmp_path / "h.db"))

    async def fill() -> None:
        store = await Store.open(tmp_path / "h.db", Vault(SECRET))
        try:
            stats = Stats(store.database)
            for _ in range(8):
                await stats.count("handoff_asked", MONDAY, "signal", "es")
            await stats.count("handoff_asked", MONDAY - 7 * 86400, "signal", "es")  # W48
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["stats", "--since", "2026-11-30", "--until", "2026-12-06"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("statistics of 2026-W49 to 2026-W49 (ISO weeks, UTC)")
    assert out[1].split() == ["week", "event", "detail", "channel", "language", "campaign",
                              "count"]
    assert [line.split() for line in out[2:]] == [
        ["2026-W49", "handoff_asked", "signal", "es", "8"],
        ["all", "handoff_asked", "all", "all", "all", "all", "8"]]
    assert main(["stats", "--since", "2026-11-23", "--until", "2026-12-06", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["week"], r["count"]) for r in data] == [("2026-W48", "<5"), ("2026-W49", "8"),
                                                       ("all", HIDDEN)]
    assert main(["stats", "--since", "2026-11-23", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        "week,event,detail,channel,language,campaign,count"
    assert main(["stats", "--since", "yesterday"]) == 2


def test_weeks_older_than_stats_days_are_purged(tmp_path: Path) -> None:
    async def go() -> dict[str, int]:
        store = await Store.open(tmp_path / "h.db", Vault(SECRET))
        try:
            stats = Stats(store.database)
            await stats.count("lookup", MONDAY - 400 * 86400, "telegram", "en")
            await stats.count("lookup", MONDAY - 10 * 86400, "telegram", "en")
            counts = await store.purge(MONDAY, 90, 48, {"stats_days": 365.0})
            left = await stats.counts("2000-W01", "2099-W01")
            assert [c.week for c in left] == [week_of(MONDAY - 10 * 86400)]
            return counts
        finally:
            await store.close()

    assert asyncio.run(go())["stats_counts"] == 1
