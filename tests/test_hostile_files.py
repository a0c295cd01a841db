"""Files and folders are private whatever the umask; a readable key file is refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.privacy import SecretError, Vault, local_secret
from helpline.store import Store
from tests.conftest import BUNDLED_FLOWS, SECRET


@pytest.fixture
def open_umask() -> Iterator[None]:
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_wal_shm_and_folders_are_private_under_umask_000(
    tmp_path: Path, open_umask: None
) -> None:
    db = tmp_path / "var" / "deep" / "helpline.db"
    store = await Store.open(db, Vault(SECRET))
    try:
        await store.db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        await store.db.execute("INSERT INTO probe VALUES (1)")  # the WAL and SHM now exist
        files = [db, db.with_name("helpline.db-wal"), db.with_name("helpline.db-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
        assert mode(tmp_path / "var") == 0o700
        assert mode(tmp_path / "var" / "deep") == 0o700
    finally:
        await store.close()


async def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "helpline.db"
    db.touch()
    os.chmod(db, 0o644)
    store = await Store.open(db, Vault(SECRET))
    await store.close()
    assert mode(db) == 0o600


def test_the_local_key_is_created_private_under_umask_000(
    tmp_path: Path, open_umask: None
) -> None:
    key = tmp_path / "var" / "secret.key"
    secret = local_secret(key)
    assert mode(key) == 0o600
    assert mode(tmp_path / "var") == 0o700
    assert local_secret(key) == secret


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, loose: int) -> None:
    key = tmp_path / "secret.key"
    local_secret(key)
    os.chmod(key, loose)
    with pytest.raises(SecretError) as caught:
        local_secret(key)
    assert str(caught.value) == (f"{key} can be read by others (mode {loose:04o}); "
                                 f"make it private with: chmod 600 {key}")


def test_helpline_chat_refuses_a_readable_key_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "secret.key"
    local_secret(key)
    os.chmod(key, 0o644)
    monkeypatch.delenv("HELPLINE_SECRET_KEY", raising=False)
    code = main(["chat", "--db", str(tmp_path / "helpline.db"), "--flows", str(BUNDLED_FLOWS)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"helpline: {key} can be read by others (mode 0644); make it private with: "
                   f"chmod 600 {key}\n")
    assert not (tmp_path / "helpline.db").exists()  # nothing was opened with that key
