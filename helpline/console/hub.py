"""The console's live updates, in the process: pages listen (server-sent events) to a
topic, the console desk publishes to it.

Topics: ``queue`` (a case came, was claimed, closed...: the queue page fetches itself
again) and ``thread:<id>`` (a case page: a new line, the card changed, the case closed,
its transcript removed). Publishing never waits: each listener has a bounded queue, and a
listener too slow to keep up is dropped (its page reconnects and reads the page again).

Several workers serving together (``[workers] together``): what is published here is also
told to the other workers (``share``), as its topic and kind only, never its data (a
line's words stay out of PostgreSQL's notifications). Their pages then read again what
changed: a line or a line's state becomes ``changed`` (the case page reads its transcript
again).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

QUEUE = "queue"
BACKLOG = 256  # events a listener may be behind before it is dropped
# Told to the other workers as their kind only: the data they carry is read again there.
WITH_DATA = frozenset({"line", "state"})
KINDS = frozenset({"queue", "line", "state", "card", "closed", "cleared", "gone", "changed"})
log = logging.getLogger("helpline.console")


def thread_topic(thread: int) -> str:
    return f"thread:{thread}"


@dataclass(frozen=True)
class Event:
    kind: str  # the SSE event name: line, card, closed, cleared, queue
    data: dict[str, Any]

    def frame(self) -> bytes:
        """The event as server-sent events write it."""
        return f"event: {self.kind}\ndata: {json.dumps(self.data)}\n\n".encode()


class Listener:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(BACKLOG)
        self.dropped = False

    def put(self, event: Event | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds (time for a keep-alive) or
        when the listener was dropped or ended."""
        if self.dropped:
            return None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class Hub:
    def __init__(self) -> None:
        self._topics: dict[str, set[Listener]] = {}
        self.closed = False
        self._tell: Callable[[str], Awaitable[None]] | None = None
        self._telling: set[asyncio.Task[None]] = set()

    def share(self, tell: Callable[[str], Awaitable[None]]) -> None:
        """Tell the other workers what is published here, with ``tell`` (a notification
        to all of them); what they tell comes in through ``heard``."""
        self._tell = tell

    def heard(self, notice: str) -> None:
        """Another worker published ``topic|kind``: the pages listening here learn it."""
        topic, _, kind = notice.rpartition("|")
        if kind not in KINDS or not (topic == QUEUE or topic.startswith("thread:")):
            return
        self._deliver(topic, Event("changed" if kind in WITH_DATA else kind, {}))

    def close(self) -> None:
        """The console stops: every listener ends now (their pages reconnect later)."""
        self.closed = True
        for listeners in self._topics.values():
            for listener in listeners:
                listener.dropped = True
                listener.put(None)

    def publish(self, topic: str, kind: str, data: dict[str, Any] | None = None) -> None:
        self._deliver(topic, Event(kind, data or {}))
        if self._tell is not None:
            task = asyncio.ensure_future(self._told(f"{topic}|{kind}"))
            self._telling.add(task)
            task.add_done_callback(self._telling.discard)

    async def _told(self, notice: str) -> None:
        assert self._tell is not None
        try:
            await self._tell(notice)
        except Exception as exc:  # the other workers' pages catch up when read again
            log.warning("could not tell the other workers of a change (%s)",
                        type(exc).__name__)

    def _deliver(self, topic: str, event: Event) -> None:
        for listener in list(self._topics.get(topic, ())):
            listener.put(event)
            if listener.dropped:
                self._topics[topic].discard(listener)

    def listeners(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

    @asynccontextmanager
    async def listen(self, topic: str) -> AsyncIterator[Listener]:
        listener = Listener()
        self._topics.setdefault(topic, set()).add(listener)
        try:
            yield listener
        finally:
            found = self._topics.get(topic)
            if found is not None:
                found.discard(listener)
                if not found:
                    del self._topics[topic]
