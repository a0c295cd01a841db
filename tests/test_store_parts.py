"""A feature's tables are its own: it declares them as a Part, and the core store upgrades,
erases, clears at a quick exit and purges them by that declaration, naming none of them."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from helpline.parts import ALL
from helpline.privacy import Vault
from helpline.state import State
from helpline.store import Store
from helpline.store.schema import Migration, Part, Retention
from helpline.store.sql import AsyncConn
from tests.conftest import SECRET

NOW = 1_800_000_000.0
DAY = 86400.0


async def forget_old_notes(db: AsyncConn, retention: Retention) -> dict[str, int]:
    days = retention.settings.get("note_days", 30.0)
    cursor = await db.execute("DELETE FROM notes WHERE at < ?", (retention.now - days * DAY,))
    return {"notes": cursor.rowcount}


NOTES = Part(
    "notes",
    [Migration(1, "a feature's own table",
               "CREATE TABLE notes (pid TEXT NOT NULL, at REAL NOT NULL, kept INTEGER);"),
     Migration(2, "a column added later", "ALTER TABLE notes ADD COLUMN tag TEXT;")],
    person_tables=("notes",), exit_tables=("notes",),
    keeps_people=("SELECT pid FROM notes WHERE kept = 1",), retention=forget_old_notes)


async def open_with_notes(path: Path) -> Store:
    return await Store.open(path, Vault(SECRET), parts=(*ALL, NOTES))


async def a_person_with_a_note(store: Store, pid: str, kept: bool = False,
                               at: float = NOW) -> None:
    await store.save_turn(pid, "telegram", "addr-" + pid, State(turn=1), [], at)
    await store.database.write(lambda db: db.execute(
        "INSERT INTO notes (pid, at, kept) VALUES (?, ?, ?)", (pid, at, int(kept))))


async def notes(store: Store) -> list[str]:
    return [r["pid"] for r in await store.database.rows("SELECT pid FROM notes ORDER BY pid")]


async def test_a_part_is_upgraded_by_its_own_numbers(tmp_path: Path) -> None:
    first = Part("notes", NOTES.migrations[:1])
    store = await Store.open(tmp_path / "h.db", Vault(SECRET), parts=(*ALL, first))
    await store.close()
    store = await open_with_notes(tmp_path / "h.db")  # the part's second migration runs now
    await store.close()
    with sqlite3.connect(tmp_path / "h.db") as db:
        assert db.execute("SELECT version FROM schema_parts WHERE part = 'notes'"
                          ).fetchone()[0] == 2
        assert [r[1] for r in db.execute("PRAGMA table_info(notes)")] == [
            "pid", "at", "kept", "tag"]


async def test_erase_and_quick_exit_clear_a_parts_person_tables(tmp_path: Path) -> None:
    store = await open_with_notes(tmp_path / "h.db")
    try:
        await a_person_with_a_note(store, "a")
        await a_person_with_a_note(store, "b")
        await store.erase_person("a")
        assert await notes(store) == ["b"]
        await store.clear_conversation("b", NOW)
        assert await notes(store) == []
        assert await store.person("b") is not None  # a quick exit keeps the person's row
    finally:
        await store.close()


async def test_the_purge_keeps_whom_a_part_keeps_and_runs_its_retention(
        tmp_path: Path) -> None:
    store = await open_with_notes(tmp_path / "h.db")
    try:
        await a_person_with_a_note(store, "idle")
        await a_person_with_a_note(store, "kept", kept=True)
        counts = await store.purge(NOW + 100 * DAY, 90, 48, {"note_days": 200.0})
        assert counts["people"] == 1 and counts["notes"] == 0  # none older than 200 days
        assert await store.person("idle") is None  # and their note went with them
        assert await store.person("kept") is not None and await notes(store) == ["kept"]
        # The part's own period: a note older than it goes, whoever it belongs to.
        counts = await store.purge(NOW + 100 * DAY, 90, 48, {"note_days": 10.0})
        assert counts["notes"] == 1 and await notes(store) == []
    finally:
        await store.close()


async def test_the_core_store_names_no_features_table() -> None:
    source = (Path(__file__).parent.parent / "helpline" / "store" / "sqlite.py").read_text()
    for part in ALL:
        if part.name == "core":
            continue
        for table in {*part.person_tables, *part.exit_tables}:
            assert not re.search(rf"(FROM|INTO|UPDATE|JOIN|TABLE)\s+{table}\b", source), (
                part.name, table)
