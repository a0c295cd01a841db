"""Each part of helpline that keeps rows (the core store, the jobs, the directory, the
advocate desk...) owns its tables: it declares them here as a ``Part``, with its own numbered
migrations and what "delete my data", quick exit and the retention purge must do with them.
The core store runs the upgrades and the erasing by these declarations and names no
feature's table (``helpline.parts`` lists the parts, in the order they are upgraded).

Versions are kept per part in ``schema_parts``. Databases written before parts existed kept
one ``schema_version`` for everything: each migration that shipped then says which number it
shipped as (``shipped_as``), and such a database starts each part at the migrations it
already has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpline.errors import HelplineError
from helpline.privacy import Vault
from helpline.store.postgres import PgAsync
from helpline.store.sql import AsyncConn

# A migration's Python step: runs after its SQL, in the same transaction, with the vault
# (None when the caller has no checked key). Returns False when it cannot be done without
# the key: the part's upgrade then stops there, undone, until a start that has it.
Step = Callable[[AsyncConn, Vault | None], Awaitable[bool]]
# What a part removes by its own retention rules (e.g. closed cases after their period),
# inside the purge's transaction; returns counts removed by table.
RetentionHook = Callable[[AsyncConn, "Retention"], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class Migration:
    version: int  # within its part
    description: str
    sql: str
    step: Step | None = None
    shipped_as: int | None = None  # its number in the single schema_version of old releases
    # The migration's statements for PostgreSQL, where SQLite's cannot be put into its
    # dialect statement by statement (``helpline.store.postgres.pg_sql``); None: SQLite's.
    pg: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Retention:
    """The purge's settings: ``settings`` holds every ``[retention]`` setting by name, where
    a part finds its own period (e.g. ``case_days``)."""

    now: float
    conversation_days: float
    message_id_hours: float
    settings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    name: str
    migrations: Sequence[Migration]
    # Tables with a ``pid`` column: "delete my data" and the purge of an idle person clear
    # the person from each.
    person_tables: tuple[str, ...] = ()
    # Tables cleared of the person at a quick exit too (whoever picks up the phone next must
    # not find them).
    exit_tables: tuple[str, ...] = ()
    # Queries giving the pids that must not be purged yet (e.g. a booked check-in, an open
    # case an advocate may still answer).
    keeps_people: tuple[str, ...] = ()
    # Every encrypted column (table, column): older databases are checked against the key
    # by decrypting one of these.
    encrypted: tuple[tuple[str, str], ...] = ()
    retention: RetentionHook | None = None

    @property
    def latest(self) -> int:
        return max((m.version for m in self.migrations), default=0)


def reencrypt_fernet(columns: Sequence[tuple[str, str]]) -> Step:
    """A step writing values still in the Fernet form of the first releases (they begin
    with ``gAAAAA``) again in the current AES-GCM form (without the key: only when there
    are none)."""
    async def step(db: AsyncConn, vault: Vault | None) -> bool:
        if isinstance(db, PgAsync):
            return True  # PostgreSQL databases began after the Fernet form was gone
        tables = await table_names(db)
        for table, column in columns:
            if table not in tables:
                continue
            rows = await db.execute_fetchall(
                f"SELECT rowid, {column} FROM {table} "
                f"WHERE substr({column}, 1, 6) = CAST('gAAAAA' AS BLOB)")
            if rows and vault is None:
                return False
            if vault is not None:
                await db.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                                     [(vault.encrypt(vault.decrypt(bytes(value))), rowid)
                                      for rowid, value in rows])
        return True
    return step


async def table_names(db: AsyncConn) -> set[str]:
    """The database's tables (in PostgreSQL: in the schema the connection works in)."""
    rows: Iterable[Any]
    if isinstance(db, PgAsync):
        rows = await db.execute_fetchall(
            "SELECT table_name FROM information_schema.tables WHERE "
            "table_schema = current_schema()")
    else:
        rows = await db.execute_fetchall("SELECT name FROM sqlite_master WHERE "
                                         "type = 'table'")
    return {str(r[0]) for r in rows}



def read_versions(db: sqlite3.Connection) -> dict[str, int] | None:
    """The version of each part in a database (read only; no part table: the versions an
    older database's single ``schema_version`` stands for, by what each part shipped as),
    or None when the database has no helpline schema at all."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_parts" in tables:
        return {str(r[0]): int(r[1])
                for r in db.execute("SELECT part, version FROM schema_parts")}
    if "schema_version" in tables:
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return {"": int(row[0]) if row and row[0] is not None else 0}
    return None


def legacy_versions(parts: Sequence[Part], shipped: int) -> dict[str, int]:
    """The version each part is at in a database whose single schema version is
    ``shipped``."""
    return {part.name: max((m.version for m in part.migrations
                            if m.shipped_as is not None and m.shipped_as <= shipped),
                           default=0) for part in parts}


@dataclass(frozen=True)
class SchemaState:
    versions: dict[str, int]  # part: version in the database
    behind: tuple[str, ...]  # parts with migrations still to run
    newer: tuple[str, ...]  # parts the database has newer than this helpline (or unknown)

    def describe(self) -> str:
        return ", ".join(f"{name} {version}" for name, version in self.versions.items())


def schema_state(db: sqlite3.Connection, parts: Sequence[Part]) -> SchemaState | None:
    """Where a database stands against ``parts`` (read only); None: no helpline schema."""
    found = read_versions(db)
    if found is None:
        return None
    if set(found) == {""}:  # one schema_version: a release before parts
        found = legacy_versions(parts, found[""])
    known = {p.name: p for p in parts}
    behind = tuple(p.name for p in parts if found.get(p.name, 0) < p.latest)
    newer = tuple(name for name, version in found.items()
                  if name not in known or version > known[name].latest)
    return SchemaState(found, behind, newer)


PARTS_MARK = 10  # the schema_version of every database that keeps versions by part


class NewerSchema(HelplineError):
    """The database was written by a newer helpline."""


async def upgrade(db: AsyncConn, parts: Sequence[Part],
                  vault: Vault | None = None) -> dict[str, int]:
    """Apply every part's migrations newer than the database, part by part in the order
    given; returns the versions reached. Without a (checked) vault, a part's upgrade stops
    at a migration whose step needs it: that one and the part's later ones are done at the
    next start that has the key (other parts go on)."""
    versions = await _versions(db, parts)
    known = {p.name: p for p in parts}
    for name, version in versions.items():
        if name not in known or version > known[name].latest:
            raise NewerSchema(
                f"the database's '{name}' tables are at version {version}, newer than this "
                "helpline knows; upgrade helpline or restore a matching backup")
    for part in parts:
        for migration in part.migrations:
            if migration.version <= versions.get(part.name, 0):
                continue
            await db.execute("BEGIN")
            try:
                if isinstance(db, PgAsync):
                    for statement in (migration.pg if migration.pg is not None
                                      else statements(migration.sql)):
                        await db.execute(statement)
                else:
                    for statement in statements(migration.sql):
                        await db.execute(statement)
                if migration.step is not None and not await migration.step(db, vault):
                    await db.rollback()
                    break
                await db.execute(
                    "INSERT INTO schema_parts (part, version) VALUES (?, ?) "
                    "ON CONFLICT(part) DO UPDATE SET version = excluded.version",
                    (part.name, migration.version))
                await db.commit()
            except Exception:
                await db.rollback()
                raise
            versions[part.name] = migration.version
    return versions


async def _versions(db: AsyncConn, parts: Sequence[Part]) -> dict[str, int]:
    """The part versions, after turning an older database's single version into them."""
    tables = await table_names(db)
    if "schema_parts" not in tables:
        await db.execute("BEGIN")
        try:
            await db.execute("CREATE TABLE schema_parts (part TEXT PRIMARY KEY, "
                             "version INTEGER NOT NULL)")
            if "schema_version" in tables:
                rows = await db.execute_fetchall("SELECT MAX(version) FROM schema_version")
                shipped = next(iter(rows))[0] or 0
                for name, version in legacy_versions(parts, int(shipped)).items():
                    if version:
                        await db.execute("INSERT INTO schema_parts (part, version) "
                                         "VALUES (?, ?)", (name, version))
            else:
                await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            # A release before parts reads only schema_version: this number, above any it
            # knows, makes it refuse the database instead of upgrading it wrongly.
            await db.execute("INSERT INTO schema_version (version) VALUES (?)",
                             (PARTS_MARK,))
            await db.commit()
        except Exception:
            await db.rollback()
            raise
    rows = await db.execute_fetchall("SELECT part, version FROM schema_parts")
    return {str(r[0]): int(r[1]) for r in rows}


def statements(sql: str) -> list[str]:
    """The statements of a migration, comments dropped; a trigger's body (``BEGIN ...;
    END``) stays in one piece (sqlite3.complete_statement says where a statement ends)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    found: list[str] = []
    pending = ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                found.append(pending.strip().removesuffix(";").strip())
            pending = ""
    return found
