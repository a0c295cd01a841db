"""``helpline migrate-db``: a SQLite database with people mid-conversation, a desk case, the
directory and a console account, moved into PostgreSQL, checked, and carried on there."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.config import Handoff
from helpline.console.accounts import Accounts
from helpline.handoff import install
from helpline.handoff.cases import Cases
from helpline.parts import ALL
from helpline.privacy import Vault
from helpline.resources import Directory, import_directory
from helpline.resources.matching import Criteria
from helpline.state import State
from helpline.store import Store
from helpline.store.migrate import MigrateError, migrate
from tests.conftest import SECRET, HarnessFactory, make_settings
from tests.postgres import drop_schema, new_schema
from tests.test_handoff import ADVOCATE, MemoryDesk, ask_for_advocate

DIRECTORY = Path(__file__).parent / "data" / "directory.yaml"


def counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = "
                                          "'table' AND name NOT LIKE 'sqlite_%'")]
        return {n: int(db.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0]) for n in names}


async def test_a_database_moves_whole_and_the_conversation_goes_on_in_postgresql(
        harness_factory: HarnessFactory, tmp_path: Path, postgres_server: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, handoff=Handoff(advocates=[ADVOCATE]))
    h = await harness_factory(settings=settings, backend="sqlite")
    install(h.app, MemoryDesk())
    await import_directory(h.app.store, DIRECTORY, h.clock.now)
    await ask_for_advocate(h)  # a waiting case, the person's state, their note
    await h.send("menu", platform_id="person-2")
    await Accounts(h.app.store.database, h.app.vault).add_user("lena", "advocate")
    await h.app.store.database.flushed()
    before = counts(tmp_path / "helpline.db")
    url = await new_schema(postgres_server)
    try:
        monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
        monkeypatch.chdir(tmp_path)
        code = await asyncio.to_thread(main, ["migrate-db", "--from",
                                              f"sqlite:///{tmp_path / 'helpline.db'}",
                                              "--to", url])
        out, err = capsys.readouterr()
        assert code == 0, err
        for table in ("people", "cases", "case_events", "services", "service_capacity",
                      "console_users"):
            assert f"{table}: {before[table]}\n" in out and before[table] > 0
        assert "every count matches" in out

        moved = await Store.open(url, Vault(SECRET))
        try:
            one = await h.app.store.person(h.app.vault.pseudonym("terminal", "person-1"))
            there = await moved.person(h.app.vault.pseudonym("terminal", "person-1"))
            assert one is not None and there is not None
            assert there.state == one.state and there.address == one.address
            [case] = await Cases(moved).waiting()
            assert case.pid == one.pid
            found = await Directory(moved).lookup(Criteria(needs=("shelter",)), h.clock.now)
            assert found.matches
            assert await Accounts(moved.database, moved.vault).user("LENA") is not None
        finally:
            await moved.close()
        # Where it left off: a person at the menu is answered from the moved state, as the
        # SQLite file answers them (both from the same state).
        there_settings = settings.model_copy(update={"database_url": url})
        again = await harness_factory(settings=there_settings)
        install(again.app, MemoryDesk())
        said = [m.text for m in await again.send("2", platform_id="person-2")]
        assert said and said == [m.text for m in await h.send("2", platform_id="person-2")]
        # A second run into the same database copies nothing.
        with pytest.raises(MigrateError, match="has rows in"):
            await migrate(str(tmp_path / "helpline.db"), url, Vault(SECRET), ALL)
    finally:
        await drop_schema(postgres_server, url)


async def test_another_key_is_refused_before_anything_is_copied(
        tmp_path: Path, postgres_server: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    await store.close()
    url = await new_schema(postgres_server)
    try:
        monkeypatch.setenv("HELPLINE_SECRET_KEY", "another-key-0123456789-abcdefghijklmnopq")
        code = await asyncio.to_thread(main, ["migrate-db", "--from",
                                              str(tmp_path / "helpline.db"), "--to", url])
        err = capsys.readouterr().err
        assert code == 2 and "written with another secret key" in err
        assert err.count("\n") == 1
    finally:
        await drop_schema(postgres_server, url)


async def test_a_value_postgresql_cannot_take_leaves_it_as_it_was(
        tmp_path: Path, postgres_server: str) -> None:
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    await store.save_turn("p1", "terminal", "a1", State(turn=1), [], 1.0)
    await store.jobs.add("p1", "checkin", 2.0, {}, 1.0)
    await store.close()
    with closing(sqlite3.connect(tmp_path / "helpline.db")) as db, db:
        db.execute("UPDATE jobs SET due_at = 'tomorrow-at-nine'")  # SQLite takes any type
    url = await new_schema(postgres_server)
    try:
        with pytest.raises(MigrateError) as refused:
            await migrate(str(tmp_path / "helpline.db"), url, Vault(SECRET), ALL)
        assert "jobs" in str(refused.value) and "tomorrow" not in str(refused.value)
        moved = await Store.open(url, Vault(SECRET))
        try:  # the people copied before jobs went with the rest
            assert await moved.person("p1") is None
        finally:
            await moved.close()
    finally:
        await drop_schema(postgres_server, url)
