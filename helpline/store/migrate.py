"""``helpline migrate-db``: an organisation's SQLite database moved into PostgreSQL.

The SQLite file is opened (and upgraded) with its key, so a wrong key stops it before
anything is read. The PostgreSQL database gets every part's tables by the same migrations
as at any start, and must hold no rows yet. Every table is copied in the order it was made
(a table's foreign keys point only at tables made before it) and checked, in one
transaction, so a failure leaves PostgreSQL as it was: the same number of rows in every
table, and every encrypted value in PostgreSQL opens with the key. Nothing of what is
copied is printed: table names and counts only, and of PostgreSQL's errors their kind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

from helpline.errors import HelplineError
from helpline.privacy import SecretError, Vault
from helpline.store.postgres import PgAsync, is_url
from helpline.store.schema import Part, table_names
from helpline.store.sqlite import Store

# Kept by each database for itself: versions of the schema, the key's check value.
OWN_TABLES = {"schema_parts", "schema_version", "key_check", "last_start"}
# One row each, made by the migrations (change counters, outreach's key): the SQLite
# file's row takes the place of the new database's.
SINGLE_ROWS = {"directory_version", "directory_shape", "outreach_key"}
BATCH = 5_000  # rows copied at a time


class MigrateError(HelplineError):
    """The databases could not be moved (said in one line, with what to do)."""


@dataclass(frozen=True)
class Moved:
    counts: dict[str, int]  # table: rows copied (and found again in PostgreSQL)
    decrypted: int  # encrypted values checked


def sqlite_path(source: str) -> Path:
    """The file of ``sqlite:///path`` (or a plain path)."""
    if source.startswith("sqlite:///"):
        return Path(source[len("sqlite:///") - 1:])  # keeps the leading / of an absolute path
    if source.startswith("sqlite://"):
        return Path(source[len("sqlite://"):])
    return Path(source)


def _tables(db: sqlite3.Connection) -> list[str]:
    """The SQLite file's tables in the order they were made."""
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                      "'sqlite_%' ORDER BY rowid").fetchall()
    return [str(r[0]) for r in rows if str(r[0]) not in OWN_TABLES]


async def _pg_columns(conn: PgAsync, table: str) -> dict[str, str]:
    rows = await conn.execute_fetchall(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ?", (table,))
    return {str(r[0]): str(r[1]) for r in rows}


def _value(value: Any, pg_type: str) -> Any:
    """A SQLite value as PostgreSQL's column takes it (SQLite keeps any type anywhere)."""
    if value is None:
        return None
    if pg_type == "bytea":
        return bytes(value) if not isinstance(value, str) else value.encode()
    if pg_type == "bigint":
        return int(value)
    if pg_type == "double precision":
        return float(value)
    if pg_type == "text":
        return value if isinstance(value, str) else str(value)
    return value


async def migrate(source: str, target: str, vault: Vault, parts: Sequence[Part]) -> Moved:
    path = sqlite_path(source)
    if not path.exists():
        raise MigrateError(f"{path} does not exist; give the SQLite file as "
                           "--from sqlite:///path/to/helpline.db")
    if not is_url(target):
        raise MigrateError("--to must be a PostgreSQL URL (postgresql://...)")
    old = await Store.open(path, vault, parts=parts)  # upgraded; a wrong key stops here
    await old.close()
    new = await Store.open(target, vault, parts=parts)
    try:
        conn = new.database.conn
        assert isinstance(conn, PgAsync)
        with closing(sqlite3.connect(path)) as db:
            return await _move(db, conn, vault, parts)
    except (asyncpg.PostgresError, psycopg.Error, OSError) as exc:
        # the message may quote a value being copied: only its kind is said
        raise MigrateError(f"PostgreSQL refused the copy ({type(exc).__name__}); nothing "
                           "was kept (one transaction)") from None
    finally:
        await new.close()


async def _move(db: sqlite3.Connection, conn: PgAsync, vault: Vault, parts: Sequence[Part]
                ) -> Moved:
    tables = _tables(db)
    missing = [t for t in tables if t not in await table_names(conn)]
    if missing:
        raise MigrateError("PostgreSQL has no table " + ", ".join(missing)
                           + "; is it a helpline database of the same version?")
    for table in (t for t in tables if t not in SINGLE_ROWS):
        if await conn.execute_fetchall(f"SELECT 1 FROM {table} LIMIT 1"):
            raise MigrateError(f"the PostgreSQL database has rows in {table} already; "
                               "migrate into an empty database")
    counts: dict[str, int] = {}
    # Copied and checked in one transaction: a check that fails leaves nothing behind.
    async with conn.raw.transaction():
        for table in tables:
            if table in SINGLE_ROWS:
                await conn.execute(f"DELETE FROM {table}")
            counts[table] = await _copy(db, conn, table)
        await _renumber(conn, tables)
        for table, count in counts.items():
            rows = await conn.execute_fetchall(f"SELECT COUNT(*) FROM {table}")
            if int(rows[0][0]) != count:
                raise MigrateError(f"{table}: {count} rows copied but {int(rows[0][0])} "
                                   "found; nothing was kept (one transaction)")
        decrypted = await _check_encrypted(conn, vault, parts)
    return Moved(counts, decrypted)


async def _copy(db: sqlite3.Connection, conn: PgAsync, table: str) -> int:
    theirs = await _pg_columns(conn, table)
    ours = [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]
    columns = [c for c in ours if c in theirs]
    if "rowid" in theirs and "rowid" not in ours:  # SQLite's implicit rowid, made a column
        columns.append("rowid")
    types = [theirs[c] for c in columns]
    picked = ", ".join("rowid" if c == "rowid" else f'"{c}"' for c in columns)
    cursor = db.execute(f"SELECT {picked} FROM {table} ORDER BY rowid" if _has_rowid(db, table)
                        else f"SELECT {picked} FROM {table}")
    copied = 0
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            return copied
        try:
            records = [tuple(_value(v, t) for v, t in zip(row, types, strict=True))
                       for row in batch]
        except (TypeError, ValueError):  # SQLite keeps any type in any column
            raise MigrateError(f"{table}: a value is not of its column's type; nothing "
                               "was kept (one transaction)") from None
        await conn.copy_records(table, records, columns)
        copied += len(records)


def _has_rowid(db: sqlite3.Connection, table: str) -> bool:
    try:
        db.execute(f"SELECT rowid FROM {table} LIMIT 0")
    except sqlite3.OperationalError:
        return False  # a WITHOUT ROWID table
    return True


async def _renumber(conn: PgAsync, tables: Sequence[str]) -> None:
    """Identity columns go on after the highest id copied."""
    rows = await conn.execute_fetchall(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND is_identity = 'YES'")
    for table, column in ((str(r[0]), str(r[1])) for r in rows):
        if table in tables:
            await conn.execute_fetchall(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"GREATEST((SELECT MAX({column}) FROM {table}), 1), "
                f"(SELECT MAX({column}) FROM {table}) IS NOT NULL)")


async def _check_encrypted(conn: PgAsync, vault: Vault, parts: Sequence[Part]) -> int:
    checked = 0
    for part in parts:
        for table, column in part.encrypted:
            rows = await conn.execute_fetchall(
                f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
            for row in rows:
                try:
                    vault.decrypt(bytes(row[0]))
                except SecretError:
                    raise MigrateError(f"{table}.{column}: a value does not open with the "
                                       "key; the SQLite file holds values of another key "
                                       "(run helpline doctor on it)") from None
                checked += 1
    return checked
