"""``helpline backup`` of a live database (WAL included) and ``helpline restore``."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest

from helpline import cli
from helpline.backup import BackupError, backup_database, restore_database
from helpline.privacy import Vault
from helpline.state import State
from helpline.store import Store
from tests.conftest import SECRET

OTHER = "another-secret-key-0123456789-abcdefghijklmnop"


def people(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT pid FROM people ORDER BY pid")]


async def test_a_backup_of_a_live_database_holds_what_is_still_in_the_wal(
        tmp_path: Path) -> None:
    db = tmp_path / "var" / "helpline.db"
    store = await Store.open(db, Vault(SECRET))
    await store.save_turn("pid-1", "terminal", "addr-1", State(), [], time.time())
    assert Path(f"{db}-wal").stat().st_size > 0  # committed, not yet checkpointed
    copy = backup_database(db, tmp_path / "backups", now=1_800_000_000)
    await store.save_turn("pid-2", "terminal", "addr-2", State(), [], time.time())
    await store.close()
    assert copy == tmp_path / "backups" / "helpline-20270115-080000.db"
    assert people(copy) == ["pid-1"]
    assert not Path(f"{copy}-wal").exists()  # one self-contained file
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert list((tmp_path / "backups").iterdir()) == [copy]  # no partial file left


def test_a_backup_of_a_missing_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackupError) as err:
        backup_database(tmp_path / "nope.db", tmp_path / "backups")
    assert "does not exist; check HELPLINE_DB" in str(err.value)
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())


async def test_restore_refuses_a_database_in_use_and_keeps_the_one_it_replaces(
        tmp_path: Path) -> None:
    db = tmp_path / "helpline.db"
    store = await Store.open(db, Vault(SECRET))
    await store.save_turn("pid-1", "terminal", "addr-1", State(), [], time.time())
    copy = backup_database(db, tmp_path / "backups")
    await store.save_turn("pid-2", "terminal", "addr-2", State(), [], time.time())
    with pytest.raises(BackupError) as err:
        restore_database(copy, db, Vault(SECRET))
    assert "is in use; stop helpline first" in str(err.value)
    await store.close()
    with pytest.raises(BackupError) as err:
        restore_database(copy, db, Vault(OTHER))
    assert "does not open this backup" in str(err.value)
    restored = restore_database(copy, db, Vault(SECRET), now=1_800_000_000)
    assert people(db) == ["pid-1"]
    [kept] = restored.kept
    assert kept == tmp_path / "helpline.db.before-restore-20270115-080000"
    assert people(kept) == ["pid-1", "pid-2"]  # the WAL was folded in before moving it
    store = await Store.open(db, Vault(SECRET))
    assert await store.address("pid-1") == "addr-1"
    await store.close()


def test_restore_refuses_what_is_not_a_helpline_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 4096)
    with pytest.raises(BackupError) as err:
        restore_database(junk, tmp_path / "helpline.db", Vault(SECRET))
    assert "is not a helpline database" in str(err.value)
    assert not (tmp_path / "helpline.db").exists()


async def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "helpline.db"
    store = await Store.open(db, Vault(SECRET))
    await store.save_turn("pid-1", "terminal", "addr-1", State(), [], time.time())
    await store.close()
    monkeypatch.delenv("HELPLINE_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["backup", "--db", str(db), str(tmp_path / "b")]) == 0
    [copy] = (tmp_path / "b").iterdir()
    assert capsys.readouterr().out == f"{copy}\n"
    assert cli.main(["restore", "--db", str(db), str(copy)]) == 2
    assert "set HELPLINE_SECRET_KEY" in capsys.readouterr().err
    monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
    assert cli.main(["restore", "--db", str(db), str(copy)]) == 0
    out = capsys.readouterr().out
    assert "kept the database it replaced as" in out and f"restored {db}" in out
    assert SECRET not in out


async def test_an_older_database_is_copied_before_run_upgrades_it(tmp_path: Path) -> None:
    from helpline.backup import backup_before_upgrade, schema_state

    db = tmp_path / "helpline.db"
    assert backup_before_upgrade(db) is None  # nothing yet
    store = await Store.open(db, Vault(SECRET))
    await store.save_turn("pid-1", "terminal", "addr-1", State(), [], time.time())
    await store.close()
    assert backup_before_upgrade(db) is None  # current: nothing to upgrade
    state = schema_state(db)
    assert state is not None and state.behind == ()
    with sqlite3.connect(db) as conn:  # as if the core tables had a migration still to run
        conn.execute("UPDATE schema_parts SET version = version - 1 WHERE part = 'core'")
    saved = backup_before_upgrade(db, now=1_800_000_000)
    assert saved == tmp_path / "before-upgrade" / "helpline-20270115-080000.db"
    before = schema_state(saved)
    assert before is not None and before.behind == ("core",)
    assert people(saved) == ["pid-1"]
