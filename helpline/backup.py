"""``helpline backup`` and ``helpline restore``: a consistent copy of the live database, and
putting one back.

The copy is made with SQLite's online backup API while helpline runs: it reads one
consistent snapshot, the write-ahead log (``-wal``) included, so a backup never misses
what was committed and never catches half a transaction. The copy is checked
(``PRAGMA integrity_check``) before it counts, and is written under a temporary name first,
so a failed backup leaves no file that looks good.

A backup is encrypted as the database is: it is useless without the secret key, and the key
is useless without it. Keep them apart (docs/deploy.md, Key custody). Restoring checks that
the key set now opens the backup, moves the current database aside (never deleted) and
copies the backup in; the schema is upgraded by the next ``helpline run``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from helpline.errors import HelplineError
from helpline.privacy import SecretError, Vault
from helpline.store.schema import SchemaState
from helpline.store.schema import schema_state as read_schema_state


class BackupError(HelplineError):
    """A backup or restore that did not happen; the message says what to do."""


@dataclass(frozen=True)
class Restored:
    database: Path
    kept: list[Path]  # where the database that was replaced now is


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))


def _copy(source: sqlite3.Connection, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(sqlite3.connect(partial)) as out:
        source.backup(out, pages=1024)
        out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        result = out.execute("PRAGMA integrity_check").fetchone()
    if not result or result[0] != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed SQLite's integrity check ({result}); the "
                          "database itself may be damaged: keep the last good backup")
    os.chmod(partial, 0o600)
    os.replace(partial, target)


def backup_database(db: Path, folder: Path, now: float | None = None) -> Path:
    """Copy the live database ``db`` into ``folder`` as ``helpline-<UTC time>.db``."""
    if not db.is_file():
        raise BackupError(f"{db} does not exist; check HELPLINE_DB (or --db)")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"helpline-{_stamp(time.time() if now is None else now)}.db"
    if target.exists():
        raise BackupError(f"{target} exists already; wait a second or choose another folder")
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as source:
            _copy(source, target)
    except sqlite3.Error as exc:
        raise BackupError(f"{db} could not be copied ({type(exc).__name__}: {exc})") from exc
    return target


def schema_state(db: Path) -> SchemaState | None:
    """Where an existing database's tables stand (read-only), or None."""
    from helpline.parts import ALL

    if not db.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return read_schema_state(conn, ALL)
    except sqlite3.Error:
        return None


def backup_before_upgrade(db: Path, now: float | None = None) -> Path | None:
    """Before ``helpline run`` upgrades an older database's schema, a copy of it in
    ``<folder of db>/before-upgrade/``; None when there is nothing to upgrade."""
    state = schema_state(db)
    if state is None or not state.behind or not any(state.versions.values()):
        return None
    return backup_database(db, db.parent / "before-upgrade", now)


def _check_backup(backup: Path, vault: Vault) -> None:
    from helpline.parts import ALL

    try:
        with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as db:
            check = db.execute("PRAGMA integrity_check").fetchone()
            state = read_schema_state(db, ALL)
            sample = db.execute("SELECT address FROM people LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{backup} is not a helpline database ({type(exc).__name__})"
                          ) from exc
    if not check or check[0] != "ok":
        raise BackupError(f"{backup} fails SQLite's integrity check; use another backup")
    if state is None:
        raise BackupError(f"{backup} is not a helpline database (no schema)")
    if state.newer:
        raise BackupError(f"{backup} was made by a newer helpline (its tables "
                          f"{', '.join(state.newer)} are newer than this one knows); install "
                          "that version to restore it")
    if sample is not None:
        try:
            vault.decrypt(bytes(sample[0]))
        except SecretError:
            raise BackupError("the secret key set now does not open this backup; set the key "
                              "the backup was made with (HELPLINE_SECRET_KEY)") from None


def restore_database(backup: Path, db: Path, vault: Vault, now: float | None = None
                     ) -> Restored:
    """Put ``backup`` in place of ``db``. helpline must be stopped: a database in use is
    refused. The current files are renamed ``<db>.before-restore-<time>``, not deleted."""
    if not backup.is_file():
        raise BackupError(f"{backup} does not exist")
    _check_backup(backup, vault)
    kept: list[Path] = []
    if db.exists():
        try:
            # Leaving WAL mode needs the only connection: it fails while helpline (or
            # anything else) has the database open, and folds the -wal file into the
            # database that is kept aside.
            live = sqlite3.connect(db, timeout=0.5)
            try:
                mode = live.execute("PRAGMA journal_mode=DELETE").fetchone()
            finally:
                live.close()
            if not mode or str(mode[0]).lower() != "delete":
                raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as exc:
            raise BackupError(f"{db} is in use; stop helpline first (systemctl stop helpline, "
                              "or docker compose stop helpline)") from exc
        stamp = _stamp(time.time() if now is None else now)
        for suffix in ("", "-wal", "-shm"):
            current = Path(f"{db}{suffix}")
            if current.exists():
                aside = Path(f"{db}.before-restore-{stamp}{suffix}")
                os.replace(current, aside)
                kept.append(aside)
    db.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source:
        _copy(source, db)
    return Restored(db, kept)


__all__ = ["BackupError", "Restored", "backup_before_upgrade", "backup_database",
           "restore_database", "schema_state"]
