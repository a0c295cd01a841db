"""Run work in order per key (one chat) while different keys run concurrently.

Platform libraries may hand us two messages from one person at once (signalbot runs several
consumers) or strictly one at a time (python-telegram-bot's default). Channels submit each
event here with the chat as key: events of one chat are handled one after another, in the
order submitted; chats don't wait for each other. A failing job never stops the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from helpline.logsafe import log_exception

log = logging.getLogger("helpline.channels")

Job = Callable[[], Awaitable[None]]


class KeyedSerializer:
    def __init__(self) -> None:
        self._queues: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind earlier jobs of ``key``. Returns at once."""
        queue = self._queues.setdefault(key, deque())
        queue.append(job)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._drain(key))

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except Exception as exc:
                    log_exception(log, "an event failed", exc)
        finally:
            del self._workers[key]
            if not queue:
                self._queues.pop(key, None)

    async def join(self) -> None:
        """Wait until everything submitted so far has run."""
        while self._workers:
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._workers.clear()
        self._queues.clear()
