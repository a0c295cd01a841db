"""Retention you can check: ``helpline purge --dry-run`` counts what the purge would remove
and removes nothing; ``helpline retention check`` reports what is kept past its period
(longer than its period and one purge interval) and exits 1; ``helpline purge`` removes it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.privacy import Vault
from helpline.state import State
from helpline.store import Store
from tests.conftest import SECRET, HarnessFactory

DAY = 86400.0


async def _people(db: Path, ages_days: dict[str, float]) -> None:
    """A person per name, whose last message was that many days ago (with its id kept)."""
    store = await Store.open(db, Vault(SECRET))
    try:
        now = time.time()
        for n, (pid, age) in enumerate(ages_days.items()):
            await store.save_turn(pid, "telegram", f"addr-{n}", State(), [], now - age * DAY,
                                  inbound_msg_id=str(100 + n))
    finally:
        await store.close()


async def _count(db: Path, table: str) -> int:
    store = await Store.open(db, Vault(SECRET))
    try:
        return await store.count(table)
    finally:
        await store.close()


@pytest.fixture
def db(cli_db: Path) -> Path:
    return cli_db


def test_dry_run_counts_what_would_go_and_removes_nothing(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_people(db, {"gone-quiet": 100, "wrote-3-days-ago": 3}))
    assert main(["purge", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "would remove, by kind (nothing was removed: --dry-run):"
    by_kind = {line.split()[1].rstrip(":"): int(line.split()[0]) for line in out[1:]}
    # The person who went quiet goes with their message ids; the other keeps the
    # conversation but not the id of a message sent 3 days ago (48 hours).
    assert by_kind == {"people": 1, "message_ids": 1, "inbox": 0, "operations": 0,
                       "cases": 0, "case_events": 0, "staff_erasures": 0, "stats_counts": 0,
                       "console_setup": 0,
                       "console_sessions": 0, "console_audit": 0, "console_lines": 0,
                       "console_threads": 0, "outreach_recipients": 0, "outreach_sends": 0}
    assert "(kept 90 days after the last message (conversation_days)" in out[1]
    assert asyncio.run(_count(db, "people")) == 2 and asyncio.run(_count(db, "message_ids")) == 2


def test_the_check_reports_what_is_kept_past_its_period_and_the_purge_removes_it(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Past its period by more than a purge interval (6 hours): kept past it. Past it by an
    # hour only: the next purge takes it, nothing is wrong yet.
    asyncio.run(_people(db, {"gone-quiet": 100, "just-due": 90 + 1 / 24, "writing": 0.5}))
    assert main(["retention", "check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "kept past its period, by kind:"
    assert [line.split()[:2] for line in out[1:-1]] == [["1", "people:"],
                                                         ["1", "message_ids:"]]
    assert out[-1].startswith("fix: the bot purges every 6 hours while it runs")

    assert main(["purge"]) == 0
    removed = capsys.readouterr().out.splitlines()
    assert removed[0] == "removed, by kind:" and removed[1].split()[:2] == ["2", "people:"]
    assert main(["retention", "check"]) == 0
    assert capsys.readouterr().out == ("ok: nothing is kept past its period (the bot purges "
                                       "every 6 hours)\n")
    assert asyncio.run(_count(db, "people")) == 1  # the one still writing


def test_the_check_needs_the_key(db: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_people(db, {"someone": 1}))
    monkeypatch.setenv("HELPLINE_SECRET_KEY", "another key, long enough to be one, but not it")
    assert main(["retention", "check"]) == 2
    assert "written with another secret key" in capsys.readouterr().err


async def test_how_long_a_reply_is_worth_sending_is_a_retention_setting(
        harness_factory: HarnessFactory, tmp_path: Path) -> None:
    from helpline.config import Retention
    from helpline.events import Message
    from tests.conftest import make_settings

    h = await harness_factory(settings=make_settings(
        tmp_path, retention=Retention(reply_days=2)))
    await h.app.store.enqueue("someone", "elsewhere", [Message("later")], h.clock.now)
    [op] = await h.app.store.operations("someone")
    assert op.expires_at == h.clock.now + 2 * DAY
