"""Locks on a person (or a desk case) across workers serving one PostgreSQL database at once
(``[workers] together``): PostgreSQL's session advisory locks, held on a connection of
this worker's own with TCP keepalives.

While a worker holds a person's lock, only it reads and writes their conversation and
carries out their queue, so one person's events and replies keep their order whichever
worker took them. The lock goes with the connection: a worker that dies, or whose
connection breaks, lets go of every lock at once. A worker that can no longer reach the
connection stops serving (``watch``), so that no one is served by two workers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from helpline.store.postgres import GONE, connect

log = logging.getLogger("helpline.store")
FIRST_WAIT_SECONDS = 0.01  # a lock another worker holds is asked for again after this,
MOST_WAIT_SECONDS = 0.2  # doubling up to this
CHECK_SECONDS = 2.0  # the connection is checked this often


def lock_key(schema: str, key: str) -> int:
    """A 64-bit advisory lock key for ``key`` within ``schema`` (two keys sharing a hash
    only wait for each other; nothing else follows from it)."""
    digest = hashlib.blake2b(f"{schema}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class KeyLocks:
    """One worker's advisory locks on keys, on one connection asked one thing at a time."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self._conn = conn
        self._schema = schema
        self._turn = asyncio.Lock()  # asyncpg runs one statement at a time a connection
        self.waits = 0  # times a lock was found held by another worker (tests, benches)
        # Asked for meanwhile, and the task asking: one trip for all (as group commit).
        self._locks: list[tuple[int, asyncio.Future[bool]]] = []
        self._unlocks: list[int] = []
        self._asking: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str) -> KeyLocks:
        conn = await connect(url, keepalive=True)
        try:
            schema = str(await conn.fetchval("SELECT current_schema()"))
        except BaseException:
            await conn.close()
            raise
        return cls(conn, schema)

    def _try_lock(self, key: int) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._locks.append((key, future))
        self._ask_soon()
        return future

    def _unlock(self, key: int) -> None:
        self._unlocks.append(key)
        self._ask_soon()

    def _ask_soon(self) -> None:
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask_all())

    async def _ask_all(self) -> None:
        """Every lock let go of and asked for meanwhile, in one statement each."""
        try:
            while self._locks or self._unlocks:
                unlocks, self._unlocks = self._unlocks, []
                locks, self._locks = self._locks, []
                got: list[asyncpg.Record] = []
                try:
                    async with self._turn:
                        if unlocks:
                            await self._conn.execute(
                                "SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) k",
                                unlocks)
                        if locks:
                            got = await self._conn.fetch(
                                "SELECT pg_try_advisory_lock(k) AS got FROM "
                                "unnest($1::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
                                [key for key, _ in locks])
                except (*GONE, asyncpg.PostgresError) as exc:
                    if unlocks:  # gone: let go of with the connection (``watch`` stops us)
                        log.error("could not let go of %d people's locks (%s)", len(unlocks),
                                  type(exc).__name__)
                    for _, future in locks:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (key, future), row in zip(locks, got, strict=True):
                    if not future.done():
                        future.set_result(bool(row["got"]))
                    elif row["got"]:  # the asker gave up meanwhile (cancelled): let go
                        self._unlocks.append(key)
        finally:
            self._asking = None

    @asynccontextmanager
    async def hold(self, key: str, wait: bool = True) -> AsyncIterator[bool]:
        """Hold ``key``'s lock for the block. ``wait``: until the worker holding it lets go
        (asking again and again: the connection is shared, never blocked in a wait); else
        yields False at once when another worker holds it (skip, as SKIP LOCKED does)."""
        number = lock_key(self._schema, key)
        delay = FIRST_WAIT_SECONDS
        while not await self._try_lock(number):
            self.waits += 1
            if not wait:
                yield False
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MOST_WAIT_SECONDS)
        try:
            yield True
        finally:
            # Let go with the next trip (a connection gone has let go of every lock
            # already, and ``watch`` stops us).
            self._unlock(number)

    @property
    def _channel(self) -> str:
        """The notification channel of this schema's workers (PostgreSQL's channels are
        the database's: the schema's hash keeps two helplines in one database apart)."""
        return f"helpline_{lock_key(self._schema, 'notices') & 0xFFFFFFFF:08x}"

    async def tell(self, notice: str) -> None:
        """Tell every other worker ``notice`` (a few words naming what changed, never what
        a person or an advocate wrote: notifications pass through the server)."""
        async with self._turn:
            await self._conn.execute("SELECT pg_notify($1, $2)", self._channel, notice)

    async def hear(self, heard: Callable[[str], None]) -> None:
        """From now on, ``heard(notice)`` for what the other workers tell (not our own)."""
        own = self._conn.get_server_pid()

        def got(_conn: object, pid: int, _channel: str, payload: object) -> None:
            if pid != own:
                heard(str(payload))

        async with self._turn:
            await self._conn.add_listener(self._channel, got)

    async def watch(self, lost: Callable[[], None]) -> None:
        """Until cancelled: the connection answers; once it does not, the locks are gone and
        another worker may be serving our people already, so ``lost()`` (stop serving)."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                async with self._turn:
                    await asyncio.wait_for(self._conn.fetchval("SELECT 1"), CHECK_SECONDS)
            except (TimeoutError, *GONE, asyncpg.PostgresError) as exc:
                log.error("lost the connection that holds the people's locks (%s); stopping, "
                          "so that no one is served by two workers at once",
                          type(exc).__name__)
                lost()
                return

    async def close(self) -> None:
        if not self._conn.is_closed():
            with contextlib.suppress(*GONE):
                await self._conn.close()
