"""What every loopback fake of a platform shares: an aiohttp server on 127.0.0.1 (a free
port unless one is given) that hands every request to the fake's ``_dispatch``, a log of
the calls it received, queues of failures to answer with, waiting for a condition, and
stop. A fake of a new platform derives from ``LoopbackServer`` and writes only what its
platform answers.

Nothing here binds or connects to a non-loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from aiohttp import web

from helpline.netaddr import is_loopback

__all__ = ["LOOPBACK", "FailureQueues", "LoopbackServer", "is_loopback"]

LOOPBACK = "127.0.0.1"

CallT = TypeVar("CallT")
FailureT = TypeVar("FailureT")


class FailureQueues(Generic[FailureT]):
    """Failures to answer with, in order, per key (a method, an endpoint)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[FailureT]] = {}

    def add(self, key: str, failure: FailureT, times: int = 1) -> None:
        self._queues.setdefault(key, deque()).extend(failure for _ in range(times))

    def take(self, key: str) -> FailureT | None:
        """The next failure queued for ``key``, or None."""
        queue = self._queues.get(key)
        return queue.popleft() if queue else None

    def clear(self) -> None:
        self._queues.clear()


class LoopbackServer(Generic[CallT]):
    """An aiohttp server on 127.0.0.1 whose every request goes to ``_dispatch``.

    ``calls`` is the log of what it received (``_record`` adds one and wakes waiters);
    ``_notify`` wakes everyone in ``wait_until`` after any other change of state."""

    # The largest request body taken (aiohttp answers 413 past it).
    client_max_size: ClassVar[int] = 1024 * 1024
    # ``wait_until`` re-checks its condition at least this often, so a condition may look
    # at state outside the fake.
    recheck_seconds: ClassVar[float] = 0.05

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.calls: list[CallT] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The port it listens on (kept across an outage that closes the listener)."""
        if self._port == 0:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is None:
            await self._listen()

    async def stop(self) -> None:
        await self._close_listener()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _listen(self) -> None:
        """Listen on 127.0.0.1 (on the same port again after ``_close_listener``)."""
        app = web.Application(client_max_size=self.client_max_size)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, self._port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self._port == 0:
            self._port = int(runner.addresses[0][1])

    async def _close_listener(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    # ------------------------------------------------------------------ observation

    def _record(self, call: CallT) -> None:
        self.calls.append(call)
        self._notify()

    def _notify(self) -> None:
        """Wake everything waiting for a change (``wait_until``)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def describe(self) -> str:
        """What a failed wait shows: the recent calls."""
        return ""

    def _timed_out(self, timeout: float, what: str) -> str:
        return f"timed out after {timeout}s waiting for {what}\n{self.describe()}"

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 5.0,
        what: str = "the condition",
    ) -> None:
        """Wait until ``condition()`` is true: re-checked whenever the fake's state changes
        and at least every ``recheck_seconds``. Raises AssertionError (with ``describe``)
        on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._timed_out(timeout, what))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, self.recheck_seconds))
