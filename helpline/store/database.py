"""The database: one SQLite file in WAL mode (or PostgreSQL: ``helpline.store.postgres``),
its connections, transactions, group commit and batched reads. What the rows mean is the
repositories' business (the core ``Store``, ``Jobs``, the directory, the desk's cases);
each part's tables are declared in ``helpline.store.schema`` terms and upgraded here at
open.

Two connections. The features' own reads and transactions and the migrations go through
aiosqlite (``conn``). The core's hot path goes through a connection of its own in a thread
of its own: ``write`` runs a batch of works in one transaction (group commit), ``rows`` and
``by_key`` read in one trip each, by column name. Both write paths hold one lock, so the
process never competes with itself for SQLite's write lock; WAL lets each connection see
the other's commits at once. On PostgreSQL the inbox is written on a third connection
(``write_inbox``), never queued behind the turns' writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import asyncpg

from helpline.errors import HelplineError
from helpline.privacy import SecretError, Vault, private_database
from helpline.store.postgres import (
    GONE,
    PgAsync,
    PgSync,
    PostgresError,
    connect,
    is_url,
)
from helpline.store.schema import Part, table_names, upgrade
from helpline.store.sql import AsyncConn, Row, SyncConn

T = TypeVar("T")
Work = Callable[[SyncConn], Any]
# Advisory locks (with the schema's hash: one helpline a schema): held by a start
# upgrading the tables, and by the one ``helpline run`` of a PostgreSQL database.
SCHEMA_LOCK = 0x68656C70
RUN_LOCK = 0x68656C71
STANDBY_POLL_SECONDS = 1.0  # a worker standing by asks for the run lock this often
LOCK_CHECK_SECONDS = 2.0  # the serving worker checks the lock's connection this often
log = logging.getLogger("helpline.store")
KEY_CHECK_LABEL = b"helpline key check v1"
PRAGMAS = ("PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
           "PRAGMA secure_delete=ON",  # erased rows are overwritten, not left in the file
           "PRAGMA busy_timeout=5000")
READ_CHUNK = 500  # keys a batched read asks for at once, below SQLite's bound-parameter limit


class AlreadyServed(HelplineError):
    """Another ``helpline run`` is using this database."""


class KeyMismatch(HelplineError):
    """The database was written with another secret key."""


KEY_MISMATCH = ("this database was written with another secret key; start with the key it "
                "was made with (HELPLINE_SECRET_KEY, or secret.key beside the database), or "
                "move the database aside to begin an empty one")


def key_matches(db: sqlite3.Connection, vault: Vault,
                encrypted: Iterable[tuple[str, str]] = ()) -> bool | None:
    """Whether ``vault`` holds the key the database was written with: by its check value,
    or (a database older than it) by decrypting one of the ``encrypted`` columns' values.
    True or False, or None when it holds nothing to check the key by. Reads only
    (``Database.open``, ``helpline doctor``)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for sql, is_check in _key_queries(tables, encrypted):
        row = db.execute(sql).fetchone()
        if row is not None:
            return _key_verdict(vault, bytes(row[0]), is_check)
    return None


async def key_matches_async(db: AsyncConn, vault: Vault,
                            encrypted: Iterable[tuple[str, str]] = ()) -> bool | None:
    """``key_matches`` on a connection awaited (PostgreSQL's)."""
    for sql, is_check in _key_queries(await table_names(db), encrypted):
        for row in await db.execute_fetchall(sql):
            return _key_verdict(vault, bytes(row[0]), is_check)
    return None


def _key_queries(tables: set[str], encrypted: Iterable[tuple[str, str]]
                 ) -> list[tuple[str, bool]]:
    """What tells the key, in order (query, whether it reads the check value): the check
    value, then one value of each encrypted column; the first row found decides."""
    queries = [("SELECT value FROM key_check WHERE id = 1", True)] \
        if "key_check" in tables else []
    return queries + [(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT 1",
                       False) for table, column in encrypted if table in tables]


def _key_verdict(vault: Vault, value: bytes, is_check: bool) -> bool:
    if is_check:
        return hmac.compare_digest(value, vault.check_value(KEY_CHECK_LABEL))
    try:
        vault.decrypt(value)
    except SecretError:
        return False
    return True


def encrypted_columns(parts: Sequence[Part]) -> list[tuple[str, str]]:
    return [column for part in parts for column in part.encrypted]


def _run_batch(conn: SyncConn, works: Sequence[Work]) -> list[Exception | None]:
    """In the writer's thread: every work in one transaction, each in a savepoint. On
    PostgreSQL, where every statement is a trip to the server, each savepoint's release
    goes with the next one's start (or the commit), in one trip."""
    pg = isinstance(conn, PgSync)
    errors: list[Exception | None] = []
    pending = "BEGIN"  # PostgreSQL: sent with the next savepoint
    if not pg:
        conn.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            conn.execute(f"{pending}; SAVEPOINT work" if pg else "SAVEPOINT work")
            pending = "RELEASE work"
            try:
                work(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO work")
                errors.append(exc)
            else:
                errors.append(None)
            if not pg:
                conn.execute("RELEASE work")
        if pg:
            conn.execute(f"{pending}; COMMIT")
    except BaseException:
        conn.rollback()
        raise
    if not pg:
        conn.commit()
    return errors


def _fail_all(futures: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    """Every caller waiting on a trip that failed gets the error; a cancellation (the
    database is closing) is passed on after they have been told."""
    error = exc if isinstance(exc, Exception) else RuntimeError("the database is closing")
    for future in futures:
        if not future.done():
            future.set_exception(error)
    if not isinstance(exc, Exception):
        raise exc


def settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    """Give a waiter its outcome (nothing, or ``error``), unless it has one already."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _fetch(conn: SyncConn, sql: str, params: Sequence[Any]) -> list[Row]:
    return list(conn.execute(sql, params).fetchall())


def _fetch_keyed(conn: SyncConn, sql: str, key_column: str, keys: list[Any],
                 many: bool = False) -> dict[Any, Any]:
    """In the core connection's thread: the rows of ``keys``, by key, in chunks (``many``:
    a list of rows a key, in the query's order; else its one row)."""
    found: dict[Any, Any] = {}
    for start in range(0, len(keys), READ_CHUNK):
        chunk = keys[start:start + READ_CHUNK]
        for row in conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk):
            if many:
                found.setdefault(row[key_column], []).append(row)
            else:
                found[row[key_column]] = row
    return found


def _connect_writer(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.row_factory = sqlite3.Row
    return conn


class _Lane:
    """A connection in a thread of its own and its group commit: the first caller starts a
    flush; whoever queues while a flush runs goes in the next one."""

    def __init__(self, writer: SyncConn, executor: ThreadPoolExecutor,
                 lock: asyncio.Lock) -> None:
        self.writer = writer
        self.executor = executor
        self.lock = lock  # held while a batch is written (SQLite has one writer at a time)
        self.batch: list[tuple[Work, asyncio.Future[None]]] = []
        self.flushing: list[tuple[Work, asyncio.Future[None]]] = []  # the batch under way
        self.flusher: asyncio.Task[None] | None = None
        self.trips = 0

    def write_soon(self, work: Work) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.batch.append((work, future))
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())
        return future

    def waiting(self) -> list[asyncio.Future[None]]:
        return [future for _, future in (*self.flushing, *self.batch)]

    async def _flush(self) -> None:
        try:
            while self.batch:
                batch, self.batch = self.batch, []
                self.flushing = batch
                works = [work for work, _ in batch]
                try:
                    async with self.lock:
                        self.trips += 1
                        errors = await asyncio.get_running_loop().run_in_executor(
                            self.executor, _run_batch, self.writer, works)
                except BaseException as exc:  # the commit itself failed: nothing was saved
                    _fail_all((future for _, future in batch), exc)
                    continue
                for (_, future), error in zip(batch, errors, strict=True):
                    settle(future, error)
        finally:
            self.flusher = None
            self.flushing = []

    async def close(self) -> None:
        if self.flusher is not None:
            await asyncio.shield(self.flusher)
        await asyncio.get_running_loop().run_in_executor(self.executor, self.writer.close)
        self.executor.shutdown(wait=True)


class Database:
    """One open database: ``conn`` (aiosqlite) for the features' reads and transactions;
    ``write`` (group commit), ``rows``, ``row`` and ``by_key`` for the core's hot path."""

    def __init__(self, conn: AsyncConn, writer: SyncConn,
                 executor: ThreadPoolExecutor, vault: Vault, parts: Sequence[Part],
                 inbox: tuple[SyncConn, ThreadPoolExecutor] | None = None) -> None:
        self.conn = conn
        self.target = ""  # the file or the URL it was opened from (Database.open sets it)
        self.vault = vault
        self.parts = tuple(parts)
        self._writer = writer
        self._executor = executor
        self._write = asyncio.Lock()
        self._main = _Lane(writer, executor, self._write)
        # PostgreSQL: what platforms hand the bot is written on a connection of its own,
        # never queued behind the turns' writes (SQLite: one writer, so the same lane).
        self._inbox = self._main if inbox is None else _Lane(*inbox, asyncio.Lock())
        self._reads: dict[str, dict[Any, list[asyncio.Future[Any]]]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self._read_trips = 0
        self._run_lock: asyncpg.Connection | None = None  # PostgreSQL: held by this run

    @property
    def trips(self) -> int:
        """Trips to the core connections' threads so far (for tests, benches)."""
        extra = self._inbox.trips if self._inbox is not self._main else 0
        return self._read_trips + self._main.trips + extra

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the core connection's thread."""
        self._read_trips += 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @classmethod
    async def open(cls, path: Path | str, vault: Vault, parts: Sequence[Part],
                   verify_key: bool = True) -> Database:
        """Open (creating or upgrading) the database file. A database written with another
        secret key is refused (KeyMismatch) before anything is written; ``verify_key=False``
        is for tools that touch only the public directory tables, with no key of theirs."""
        if is_url(path):
            return await cls._open_postgres(str(path), vault, parts, verify_key)
        path = Path(path)
        if str(path) == ":memory:":
            raise HelplineError("the database must be a file (it is opened by two "
                                "connections); use a temporary folder")
        if verify_key and path.exists():
            with closing(sqlite3.connect(path)) as probe:
                if key_matches(probe, vault, encrypted_columns(parts)) is False:
                    raise KeyMismatch(KEY_MISMATCH)  # before anything is written
        private_database(path)  # 0600 (and so its -wal and -shm), folder 0700
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helpline-db")
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            for pragma in PRAGMAS:
                await conn.execute(pragma)
            await upgrade(conn, parts, vault if verify_key else None)
            if verify_key:  # the check value, where there is none yet
                await conn.execute("INSERT OR IGNORE INTO key_check (id, value) VALUES (1, ?)",
                                   (vault.check_value(KEY_CHECK_LABEL),))
                await conn.commit()
            writer = await asyncio.get_running_loop().run_in_executor(
                executor, _connect_writer, str(path))
        except BaseException:
            executor.shutdown(wait=False)  # its thread must not outlive a refused open
            await conn.close()
            raise
        database = cls(conn, writer, executor, vault, parts)
        database.target = str(path)
        return database

    @classmethod
    async def _open_postgres(cls, url: str, vault: Vault, parts: Sequence[Part],
                             verify_key: bool) -> Database:
        """Open (creating or upgrading the tables in) a PostgreSQL database. Workers
        starting together upgrade one at a time (an advisory lock)."""
        try:
            raw = await connect(url)
        except (OSError, asyncpg.PostgresError) as exc:
            # the URL may hold a password: only the kind of error is said
            raise PostgresError(f"cannot connect to PostgreSQL ({type(exc).__name__}); "
                                "check HELPLINE_DB and that the server is running") from None
        conn = PgAsync(raw, url)
        loop = asyncio.get_running_loop()
        lanes: list[tuple[PgSync, ThreadPoolExecutor]] = []
        try:
            await raw.execute(f"SELECT pg_advisory_lock({SCHEMA_LOCK}, "
                              "hashtext(current_schema()))")
            try:
                # SQLite's NOCASE (a console user name is unique whatever its case)
                await raw.execute("CREATE COLLATION IF NOT EXISTS nocase (provider = icu, "
                                  "locale = 'und-u-ks-level2', deterministic = false)")
                if verify_key and await key_matches_async(
                        conn, vault, encrypted_columns(parts)) is False:
                    raise KeyMismatch(KEY_MISMATCH)  # before anything is written
                await upgrade(conn, parts, vault if verify_key else None)
                await conn.refresh()
                if verify_key:
                    await conn.execute("INSERT OR IGNORE INTO key_check (id, value) "
                                       "VALUES (1, ?)", (vault.check_value(KEY_CHECK_LABEL),))
            finally:
                await raw.execute(f"SELECT pg_advisory_unlock({SCHEMA_LOCK}, "
                                  "hashtext(current_schema()))")
            for prefix in ("helpline-db", "helpline-inbox"):  # the core's, the inbox's
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=prefix)
                try:
                    lanes.append((await loop.run_in_executor(executor, PgSync.connect, url),
                                  executor))
                except BaseException:
                    executor.shutdown(wait=False)
                    raise
        except BaseException:
            for writer, executor in lanes:
                await loop.run_in_executor(executor, writer.close)
                executor.shutdown(wait=False)
            await conn.close()
            raise
        (writer, executor), inbox = lanes
        database = cls(conn, writer, executor, vault, parts, inbox)
        database.target = url
        return database

    async def hold_run_lock(self, stop: asyncio.Event | None = None,
                            wait_seconds: float = 10.0, leader: bool = False) -> bool:
        """Be the one ``helpline run`` of this database, for as long as it is open (on
        SQLite the run lock beside the file, ``helpline.runlock``, does this): only it reads
        the platforms, carries out the queue and runs the timed jobs.

        With ``stop`` (``helpline run``), a second worker stands by until the one serving
        stops or dies, then takes over; False: ``stop`` came first. Without, it is asked
        for ``wait_seconds`` (a run killed a moment ago holds the lock until PostgreSQL has
        seen its connection go), then refused (AlreadyServed). The lock is held on a
        connection of its own, with TCP keepalives, so that a machine that dies lets go of
        it within seconds (``watch_run_lock`` fences the holder that loses it). ``leader``:
        workers serving together ask for it to be the one that also runs the timed jobs
        and reads the platforms' single streams."""
        if not isinstance(self.conn, PgAsync):
            return True
        held = await connect(self.target, keepalive=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        waited = False
        try:
            while not await held.fetchval(  # one helpline a schema
                    f"SELECT pg_try_advisory_lock({RUN_LOCK}, hashtext(current_schema()))"):
                if stop is None:
                    if loop.time() >= deadline:
                        raise AlreadyServed("another 'helpline run' is using this "
                                            "PostgreSQL database; stop it first")
                    await asyncio.sleep(0.25)
                    continue
                if not waited and not leader:
                    log.info("standing by: another helpline run serves this database; this "
                             "one takes over when it stops")
                waited = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), STANDBY_POLL_SECONDS)
                if stop.is_set():
                    await held.close()
                    return False
        except BaseException:
            if not held.is_closed():
                await held.close()
            raise
        if waited and not leader:
            log.info("taking over: this helpline run now serves the database")
        self._run_lock = held
        return True

    async def watch_run_lock(self, lost: Callable[[], None]) -> None:
        """Until cancelled: the connection holding the run lock answers; once it does not,
        another worker may serve the database already, so ``lost()`` (stop serving)."""
        held = self._run_lock
        if held is None:
            return
        while True:
            await asyncio.sleep(LOCK_CHECK_SECONDS)
            try:
                await asyncio.wait_for(held.fetchval("SELECT 1"), LOCK_CHECK_SECONDS)
            except (TimeoutError, *GONE, asyncpg.PostgresError) as exc:
                log.error("lost the connection that holds the run lock (%s); stopping, so "
                          "that only one helpline serves the database", type(exc).__name__)
                lost()
                return

    @property
    def dialect(self) -> str:
        return "postgresql" if isinstance(self.conn, PgAsync) else "sqlite"

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._readers.values()):  # queued reads and writes finish first
            await asyncio.shield(task)
        if self._inbox is not self._main:
            await self._inbox.close()
        await self._main.close()
        await self.conn.close()
        if self._run_lock is not None and not self._run_lock.is_closed():
            with contextlib.suppress(*GONE):
                await self._run_lock.close()

    # ------------------------------------------------------------- writes

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConn]:
        """A transaction on the aiosqlite connection, each statement awaited (for features
        whose writes are rare: cases, the directory)."""
        async with self._write:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.rollback()
                raise
            await self.conn.commit()

    async def write(self, work: Callable[[SyncConn], T]) -> T:
        """Run ``work`` as its own transaction, with group commit: one trip to the writer's
        thread and one commit for every write queued meanwhile.

        ``transaction()`` awaits each statement: one trip per statement, each waiting for
        its turn on a busy event loop while the write lock is held. The hot writes come
        here instead: the first caller starts a flush; whoever queues while a flush runs
        goes in the next one. Each work runs inside a savepoint, so a failing one is undone
        alone and its caller gets the error; the others commit. Every caller returns only
        after its commit."""
        result: list[T] = []
        await self.write_soon(lambda db: result.append(work(db)))
        return result[0]

    def write_soon(self, work: Work) -> asyncio.Future[None]:
        """``write`` without waiting: ``work`` is queued for the next group commit now, and
        the future says when it is committed (or why not). ``close`` and ``flushed`` wait
        for it."""
        return self._main.write_soon(work)

    async def write_inbox(self, work: Callable[[SyncConn], T]) -> T:
        """``write`` for what a platform hands the bot: on PostgreSQL on a connection of
        its own, so that the inbox is written as soon as an event is read, however busy
        the turns' writes are (on Signal, a frame read and not yet written down dies with
        the process)."""
        result: list[T] = []
        await self._inbox.write_soon(lambda db: result.append(work(db)))
        return result[0]

    async def flushed(self) -> None:
        """Every write queued so far is committed (or has failed); later ones are not
        waited for."""
        waiting = self._main.waiting() + (
            self._inbox.waiting() if self._inbox is not self._main else [])
        if waiting:
            await asyncio.wait(waiting)

    # ------------------------------------------------------------- reads

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query, read by column name, in one trip."""
        return await self._run(_fetch, self._writer, sql, params)

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = await self.rows(sql, params)
        return found[0] if found else None

    async def by_key(self, sql: str, key_column: str, key: Any) -> Row | None:
        """The row whose ``key_column`` is ``key``, read together with every other row asked
        for by the same query meanwhile (one trip for all, as ``write`` does for writes).
        ``sql`` ends in ``IN ({marks})``, which the keys fill."""
        found: Row | None = await self._batched(sql, key_column, key, many=False)
        return found

    async def all_by_key(self, sql: str, key_column: str, key: Any) -> list[Row]:
        """Every row whose ``key_column`` is ``key``, in the order ``sql`` gives, read
        together with the rows other callers ask for by the same query meanwhile (one
        trip for all). ``sql`` ends in ``IN ({marks})`` or has it before its ORDER BY."""
        found: list[Row] = await self._batched(sql, key_column, key, many=True)
        return found

    async def _batched(self, sql: str, key_column: str, key: Any, many: bool) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reads.setdefault(sql, {}).setdefault(key, []).append(future)
        if sql not in self._readers:
            self._readers[sql] = asyncio.create_task(
                self._read_batches(sql, key_column, many))
        return await future

    async def _read_batches(self, sql: str, key_column: str, many: bool = False) -> None:
        try:
            while self._reads.get(sql):
                wanted = self._reads.pop(sql)
                keys = list(wanted)
                try:
                    found = await self._run(_fetch_keyed, self._writer, sql, key_column, keys,
                                            many)
                except BaseException as exc:
                    _fail_all((f for futures in wanted.values() for f in futures), exc)
                    continue
                for key, futures in wanted.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(found.get(key, [] if many else None))
        finally:
            self._readers.pop(sql, None)
