"""A database written by an earlier helpline opens, upgrades and reads in the current one."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from helpline.parts import ALL
from helpline.privacy import Vault
from helpline.resources import Directory, set_openings
from helpline.store import Store
from helpline.store.schema import PARTS_MARK, legacy_versions, statements
from tests.conftest import SECRET

NOW = 1_800_000_000.0


def earlier_token(plaintext: bytes) -> bytes:
    """A value as helpline wrote it before AES-GCM: Fernet under the key of the time."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"helpline/v1",
               info=b"field-encryption").derive(SECRET.encode())
    return Fernet(base64.urlsafe_b64encode(key)).encrypt(plaintext)


def legacy_schema(db: sqlite3.Connection, shipped: int) -> None:
    """The schema as a release before parts wrote it: every migration that shipped as 1 to
    ``shipped``, in that order, and its single ``schema_version``."""
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number in range(1, shipped + 1):
        for part in ALL:
            for migration in part.migrations:
                if migration.shipped_as == number:
                    assert migration.step is None or number == 9
                    for statement in statements(migration.sql):
                        db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))


def part_versions(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {r[0]: r[1] for r in db.execute("SELECT part, version FROM schema_parts")}


def database_at_version_4(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        legacy_schema(db, 4)
        state = {"stack": [{"flow": "main", "step": "menu"}], "vars": {"name": "Kept"},
                 "turn": 3, "seen_welcome": True, "last_seen": NOW}
        db.execute("INSERT INTO people (pid, channel, address, state, created_at, updated_at) "
                   "VALUES ('p1', 'signal', ?, ?, ?, ?)",
                   (earlier_token(b"+12025550123"), earlier_token(json.dumps(state).encode()),
                    NOW, NOW))
        db.execute("INSERT INTO pending_deletes (channel, address, ids, until) "
                   "VALUES ('signal', ?, ?, ?)",
                   (earlier_token(b"+12025550123"), earlier_token(b'["111", "222"]'),
                    NOW + 3600))
        db.execute("INSERT INTO directory_sources (source, format, imported_at, services, "
                   "fictional) VALUES ('s', 'yaml', ?, 1, 0)", (NOW,))
        db.execute("INSERT INTO services (id, source, name, data) VALUES ('svc', 's', 'A', ?)",
                   ('{"id": "svc", "name": "A"}',))


def test_the_statements_of_a_trigger_stay_whole() -> None:
    sql = """
        CREATE TABLE t (a INTEGER);  -- a comment; with a semicolon
        CREATE TRIGGER t_counts AFTER INSERT ON t
        BEGIN UPDATE t SET a = a + 1; UPDATE t SET a = a - 1; END;
    """
    assert statements(sql) == [
        "CREATE TABLE t (a INTEGER)",
        "CREATE TRIGGER t_counts AFTER INSERT ON t\n        BEGIN UPDATE t SET a = a + 1; "
        "UPDATE t SET a = a - 1; END"]


async def test_an_earlier_database_upgrades_and_everything_in_it_still_reads(
        tmp_path: Path) -> None:
    path = tmp_path / "helpline.db"
    database_at_version_4(path)
    store = await Store.open(path, Vault(SECRET))
    try:
        assert part_versions(path) == {part.name: part.latest for part in ALL}
        with sqlite3.connect(path) as db:
            # A release before parts reads the single version and refuses the database.
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == (
                PARTS_MARK)
            # Every value was written again in the current form by the upgrade itself.
            address, state = db.execute("SELECT address, state FROM people").fetchone()
            assert address[:1] == b"\x01" and state[:1] == b"\x01"
            body, kept_address = db.execute("SELECT body, address FROM operations").fetchone()
            assert body[:1] == b"\x01" and kept_address[:1] == b"\x01"
            # The places a service serves go with it by a trigger (resources migration 6),
            # not a foreign key checked for every row an import writes.
            assert db.execute("PRAGMA foreign_key_list(directory_terms)").fetchall() == []
            assert db.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND "
                              "name = 'services_delete_terms'").fetchone() == (1,)
        person = await store.person("p1")
        assert person is not None and person.address == "+12025550123"
        assert person.state.vars == {"name": "Kept"} and person.state.turn == 3
        # A kept quick-exit delete became an operation tied to no one, due at once.
        [pending] = await store.operations()
        assert pending.kind == "delete" and pending.body == ("111", "222")
        assert pending.key.startswith("x:") and pending.not_before == 0.0
        assert pending.address == "+12025550123" and pending.expires_at == NOW + 3600
        # The directory written before the version counter existed is read, and a change
        # made now moves the counter.
        directory = Directory(store)
        first = await directory.snapshot()
        assert [s.id for s in first.services] == ["svc"]
        await set_openings(store, "svc", 2, NOW)
        assert (await directory.snapshot()).capacities["svc"][0].available == 2
        # The next write of the person stores the current form.
        await store.save_turn("p1", "signal", person.address, person.state, [], NOW + 1)
        with sqlite3.connect(path) as db:
            address, state = db.execute("SELECT address, state FROM people").fetchone()
        assert address[:1] == b"\x01" and state[:1] == b"\x01"
    finally:
        await store.close()


async def test_without_the_key_the_upgrade_stops_before_the_step_that_needs_it(
        tmp_path: Path) -> None:
    """The directory commands open the store with no key of theirs: the re-encryption
    waits for the next start with the key, and nothing is written with a wrong one."""
    path = tmp_path / "helpline.db"
    database_at_version_4(path)
    store = await Store.open(path, Vault("a-throwaway-key-0123456789-abcdefghijklmn"),
                             verify_key=False)
    await store.close()
    versions = part_versions(path)
    core = next(part for part in ALL if part.name == "core")
    resources = next(part for part in ALL if part.name == "resources")
    assert versions["core"] < core.latest  # the re-encryption waits for the key
    # The directory's own upgrades (its version counter, its indexes) went on without it,
    # and so did its re-encryption: no saved service held an old value.
    assert versions["resources"] == resources.latest
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT address FROM people").fetchone()[0][:6] == b"gAAAAA"
    store = await Store.open(path, Vault(SECRET))
    try:
        person = await store.person("p1")
        assert person is not None and person.address == "+12025550123"
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT address FROM people").fetchone()[0][:1] == b"\x01"


def test_each_part_starts_at_what_an_older_single_version_had() -> None:
    # A release before parts at 4 had: people, outbox, message ids, jobs (1); the directory
    # and saved services (2); cases and the outbox's address column (3); pending deletes (4).
    # Parts that came after (the statistics, the console) start from nothing.
    assert legacy_versions(ALL, 4) == {"core": 3, "jobs": 1, "resources": 1, "handoff": 1,
                                       "stats": 0, "console": 0, "outreach": 0}
    # At 9 (the last such release) every part had everything it has now... or more is new.
    at_nine = legacy_versions(ALL, 9)
    assert all(at_nine[part.name] <= part.latest for part in ALL)


async def test_the_last_single_version_release_upgrades_to_parts_with_nothing_to_run(
        tmp_path: Path) -> None:
    path = tmp_path / "helpline.db"
    with sqlite3.connect(path) as db:
        legacy_schema(db, 9)
    store = await Store.open(path, Vault(SECRET))
    await store.close()
    assert part_versions(path) == {part.name: part.latest for part in ALL}
    with sqlite3.connect(path) as fresh_db:
        fresh = {r[0] for r in fresh_db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')")}
    other = tmp_path / "fresh.db"
    store = await Store.open(other, Vault(SECRET))
    await store.close()
    with sqlite3.connect(other) as db:
        made = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')")}
    assert fresh == made  # an upgraded database has exactly the schema of a new one
