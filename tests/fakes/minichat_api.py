"""Loopback fake of a small chat platform, for the kit's third channel (tests/minichat.py):
a fake written on tests/fakes/loopback.py, with what the platform answers only.

* ``GET /updates?offset=N``: the updates with ``id >= N`` (a long poll of up to 1 s), each
  ``{"id", "from", "text"}`` or ``{"id", "from", "press"}``; an offset confirms the ones
  before it.
* ``POST /send`` ``{"to", "text", "buttons": [[label, payload], ...]}``: ``{"id"}``. Like a
  real platform it refuses what it cannot show: more than ``MAX_BUTTONS`` buttons or a label
  longer than ``MAX_LABEL`` characters (400), an empty message (400).
* ``POST /delete`` ``{"to", "ids"}``: deletes the bot's messages it still has.
* ``fail_next(path, status)``: the next request to ``path`` answers ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import FailureQueues, LoopbackServer

MAX_BUTTONS = 3
MAX_LABEL = 16
LONG_POLL_SECONDS = 1.0


@dataclass
class Call:
    method: str
    path: str
    body: Any
    status: int = 0


@dataclass
class Sent:
    id: str
    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)
    deleted: bool = False


class FakeMiniChat(LoopbackServer[Call]):
    def __init__(self) -> None:
        super().__init__()
        self._updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(501)
        self.sent: dict[str, list[Sent]] = {}
        self._failures: FailureQueues[int] = FailureQueues()
        self._closing = False

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # a waiting long poll answers at once
        await super().stop()

    # ------------------------------------------------------------------ people

    def person_says(self, who: str, *texts: str) -> None:
        """Queue texts from ``who``; several come in one batch of updates."""
        self._updates.extend({"id": next(self._ids), "from": who, "text": t} for t in texts)
        self._notify()

    def person_presses(self, who: str, label: str) -> None:
        """Press the button ``label`` on the newest of the bot's messages that has it."""
        payload = next(p for m in reversed(self.sent.get(who, [])) for lab, p in m.buttons
                       if lab == label)
        self._updates.append({"id": next(self._ids), "from": who, "press": payload})
        self._notify()

    def fail_next(self, path: str, status: int, times: int = 1) -> None:
        self._failures.add(path, status, times)

    # ------------------------------------------------------------------ observation

    def live(self, who: str) -> list[Sent]:
        return [m for m in self.sent.get(who, []) if not m.deleted]

    async def wait_sent(self, who: str, count: int, timeout: float = 5.0) -> list[Sent]:
        await self.wait_until(lambda: len(self.sent.get(who, [])) >= count, timeout=timeout,
                              what=f"{count} message(s) to {who}")
        return self.sent[who]

    def describe(self) -> str:
        return "\n".join(f"  {c.status} {c.method} {c.path} {c.body}" for c in self.calls[-20:])

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        call = Call(request.method, request.path, body)
        self._record(call)
        failed = self._failures.take(request.path)
        if failed is not None:
            response = web.json_response({"error": "failed"}, status=failed)
        elif request.path == "/updates":
            response = await self._get_updates(int(request.query.get("offset", "0")))
        elif request.path == "/send" and isinstance(body, dict):
            response = self._send(body)
        elif request.path == "/delete" and isinstance(body, dict):
            response = self._delete(body)
        else:
            response = web.json_response({"error": "not found"}, status=404)
        call.status = response.status
        self._notify()
        return response

    async def _get_updates(self, offset: int) -> web.Response:
        self._updates = [u for u in self._updates if u["id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LONG_POLL_SECONDS
        while not self._updates and not self._closing and (left := deadline - loop.time()) > 0:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
        return web.json_response(list(self._updates))

    def _send(self, body: dict[str, Any]) -> web.Response:
        buttons = [(str(label), str(payload)) for label, payload in body.get("buttons", [])]
        text = str(body.get("text", ""))
        if len(buttons) > MAX_BUTTONS:
            return web.json_response({"error": "too many buttons"}, status=400)
        if any(len(label) > MAX_LABEL for label, _ in buttons):
            return web.json_response({"error": "button label too long"}, status=400)
        if not text:
            return web.json_response({"error": "empty message"}, status=400)
        sent = Sent(str(next(self._message_ids)), text, buttons)
        self.sent.setdefault(str(body["to"]), []).append(sent)
        return web.json_response({"id": sent.id})

    def _delete(self, body: dict[str, Any]) -> web.Response:
        ids = {str(i) for i in body.get("ids", [])}
        for message in self.sent.get(str(body["to"]), []):
            if message.id in ids:
                message.deleted = True
        return web.json_response({"ok": True})
