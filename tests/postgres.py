"""A throw-away PostgreSQL for the tests that run on both databases.

``TESTS_POSTGRES_URL=postgresql://...`` points them at a server of your own (each test
works in a schema of its own, dropped after). Otherwise a cluster is made in a temporary
folder with the installed PostgreSQL (``pg_config --bindir``, or Debian's
``/usr/lib/postgresql/N/bin``), listening on loopback only, and run as an unprivileged
user when the tests run as root. No PostgreSQL and no ``TESTS_SKIP_POSTGRES=1``: the
PostgreSQL tests fail, saying what to install; they are skipped only when asked.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from helpline.privacy import Vault
from helpline.store import Store
from helpline.store.postgres import pg_sql

SKIP = os.environ.get("TESTS_SKIP_POSTGRES") == "1"
MISSING = ("PostgreSQL is not installed, so the tests that run on it cannot: install it "
           "(apt-get install postgresql), or set TESTS_POSTGRES_URL=postgresql://... to "
           "a server of yours, or TESTS_SKIP_POSTGRES=1 to skip them")


def _bindir() -> Path | None:
    config = shutil.which("pg_config")
    if config:
        found = Path(subprocess.run([config, "--bindir"], capture_output=True, text=True,
                                    check=False).stdout.strip())
        if (found / "initdb").exists():
            return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name
                      .isdigit() else 0)
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_user(argv: list[str], user: str | None) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's ``postgres`` database."""
    given = os.environ.get("TESTS_POSTGRES_URL")
    if given:
        yield given
        return
    if SKIP:
        pytest.skip("PostgreSQL tests skipped (TESTS_SKIP_POSTGRES=1)")
    try:
        with cluster() as url:
            yield url
    except PostgresMissing as exc:
        pytest.fail(str(exc))


class PostgresMissing(Exception):
    """No PostgreSQL to start, or no user to start it as."""


@contextlib.contextmanager
def cluster(durable: bool = False) -> Iterator[str]:
    """A throw-away PostgreSQL cluster in a temporary folder, on loopback, for as long as
    the context lasts (the tests' and the benchmarks'); yields its ``postgres`` URL.
    ``durable``: PostgreSQL's own defaults (fsync, synchronous commit), as a deployment
    runs it; else both off, for speed (the tests')."""
    bindir = _bindir()
    if bindir is None:
        raise PostgresMissing(MISSING)
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None:
            raise PostgresMissing("running as root and there is no 'postgres' or 'nobody' "
                                  "user to run PostgreSQL as")
    folder = Path(tempfile.mkdtemp(prefix="helpline-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", _free_port()
    subprocess.run(_as_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                             "helpline", "-E", "UTF8", "--no-sync"], user),
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(_as_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                             str(folder / "log"), "-w", "start"], user),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://helpline@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                 "stop"], user), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


async def new_schema(server: str) -> str:
    """A URL whose connections work in a new schema of their own."""
    schema = "t_" + secrets.token_hex(6)
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    joiner = "&" if "?" in server else "?"
    return f"{server}{joiner}search_path={schema}"


async def drop_schema(server: str, url: str) -> None:
    schema = url.rsplit("search_path=", 1)[1]
    conn = await asyncpg.connect(server)
    try:
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def pg_url(postgres_server: str) -> AsyncIterator[str]:
    """A URL whose connections work in a schema of this test's own (dropped after)."""
    url = await new_schema(postgres_server)
    yield url
    await drop_schema(postgres_server, url)


BACKENDS = ("postgresql", "sqlite")


@contextlib.asynccontextmanager
async def opened_store(backend: str, request: pytest.FixtureRequest, folder: Path
                       ) -> AsyncIterator[Store]:
    """A ``Store`` on ``backend``: a SQLite file in ``folder``, or a schema of its own on
    the tests' PostgreSQL (dropped after)."""
    from tests.conftest import SECRET

    if backend == "sqlite":
        store = await Store.open(folder / "helpline.db", Vault(SECRET))
        try:
            yield store
        finally:
            await store.close()
        return
    server: str = request.getfixturevalue("postgres_server")
    url = await new_schema(server)
    store = await Store.open(url, Vault(SECRET))
    try:
        yield store
    finally:
        await store.close()
        await drop_schema(server, url)


async def from_elsewhere(store: Store, sql: str) -> None:
    """Run ``sql`` (SQLite's) on a connection of its own to the store's database, as
    another process would, and commit."""
    target = store.database.target
    if store.database.dialect == "sqlite":
        with closing(sqlite3.connect(target)) as other, other:
            other.execute(sql)
        return
    other = await asyncpg.connect(target)
    try:
        await other.execute(pg_sql(sql))
    finally:
        await other.close()


async def stored_bytes(store: Store) -> bytes:
    """Everything the database holds, as an attacker with the database alone reads it:
    the SQLite file with its journal, or every row of every table in PostgreSQL (bytes
    as they are, the rest as text)."""
    target = store.database.target
    if store.database.dialect == "sqlite":
        path = Path(target)
        return path.read_bytes() + b"".join(p.read_bytes()
                                            for p in path.parent.glob(path.name + "-*"))
    other = await asyncpg.connect(target)
    try:
        out: list[bytes] = []
        for table in await other.fetch("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = current_schema()"):
            for row in await other.fetch(f'SELECT * FROM "{table[0]}"'):
                out.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
        return b"\n".join(out)
    finally:
        await other.close()
