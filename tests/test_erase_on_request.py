"""``helpline erase HANDLE --by NAME``: a request made to staff erases the case's person as
"delete my data" does (the case closed and its thread deleted, every row of theirs gone),
says nothing to them, and leaves an audit entry of who asked, for which case, and when."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.handoff.cases import Cases
from helpline.stats import Stats, week_of
from helpline.stats.feature import StatsFeature
from tests.conftest import SECRET, HarnessFactory
from tests.test_handoff import ask_for_advocate, desk_harness


async def test_a_request_made_to_staff_erases_the_person_and_is_audited(
        harness_factory: HarnessFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    h, desk, _ = await desk_harness(harness_factory, tmp_path)
    h.app.add(StatsFeature())
    await ask_for_advocate(h)
    [case] = await Cases(h.app.store).waiting()
    monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HELPLINE_DB", h.app.settings.database)
    monkeypatch.chdir(tmp_path)
    sent = len(h.channel.sent)

    assert await asyncio.to_thread(main, ["erase", case.handle.lower(), "--by", "Ana"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"queued: helpline run erases the person of case {case.handle}")
    assert await h.app.store.person(h.pid) is not None  # the running bot does it, next poll

    assert await h.app.run_due_jobs() == 1
    assert await h.app.store.person(h.pid) is None
    for table in ("people", "message_ids", "jobs", "saved_services"):
        assert await h.app.store.count(table) == 0, table
    # As with "delete my data", the case is closed and tied to no one (its thread is gone).
    assert [tuple(r) for r in await h.app.store.database.rows(
        "SELECT pid, status FROM cases")] == [("", "closed")]
    assert desk.deleted == [case.topic]  # the case's thread, with the person's words
    assert h.channel.sent[sent:] == []  # nothing said to them
    assert h.channel.deleted  # the chat's deletes were asked for
    [entry] = await h.app.store.database.rows("SELECT * FROM staff_erasures")
    assert (entry["handle"], entry["requested_by"]) == (case.handle, "Ana")
    week = week_of(h.clock.now)
    counted = {(c.event, c.detail) for c in await Stats(h.app.store.database).counts(week, week)}
    assert ("erasure", "on-request") in counted

    assert await asyncio.to_thread(main, ["erase", case.handle, "--by", "Ana"]) == 1
    assert "no case" in capsys.readouterr().err  # its person is erased already


async def test_a_quick_exit_before_the_bot_gets_to_it_does_not_cancel_the_request(
        harness_factory: HarnessFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick exit cancels the person's own check-ins; an erasure asked of staff is not
    theirs to cancel, and still happens."""
    h, _desk, _ = await desk_harness(harness_factory, tmp_path)
    await ask_for_advocate(h)
    [case] = await Cases(h.app.store).waiting()
    monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HELPLINE_DB", h.app.settings.database)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["erase", case.handle, "--by", "Ana"]) == 0
    await h.send("exit")  # within the poll: cancels check-ins, not the request
    assert await h.app.store.count("jobs") == 1
    assert await h.app.run_due_jobs() == 1
    assert await h.app.store.person(h.pid) is None
