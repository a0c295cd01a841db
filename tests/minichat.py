"""A third channel written with the kit alone: a small chat platform over HTTP (its fake
is tests/fakes/minichat_api.py). Everything a new channel needs is in this file, plus
its section in Settings and its ``ChannelKind`` registered (see test_channel_kit.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp

from helpline.channels.base import BaseChannel, Capabilities, InboundHandler, ReadyHandler
from helpline.channels.options import ChannelOptions
from helpline.channels.registry import ChannelKind, ChannelServices
from helpline.errors import Rejected, Unreachable
from helpline.events import Inbound, Message, RawInbound


class MiniChatOptions(ChannelOptions):
    switched_on_by: ClassVar[str] = "HELPLINE_MINICHAT_API"
    api: str = ""  # the platform's root URL

    def configured(self) -> bool:
        return bool(self.api)


class MiniChatChannel(BaseChannel):
    name = "minichat"
    capabilities = Capabilities(buttons=True, deletes_inbound=False, delete_window_hours=24,
                                max_text=1000, max_buttons=3, max_label=16)

    def __init__(self, options: MiniChatOptions) -> None:
        self.options = options
        self._session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self, on_inbound: InboundHandler, on_ready: ReadyHandler) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._poller = asyncio.create_task(self._poll(self._session, on_inbound))
        await on_ready()

    async def _poll(self, session: aiohttp.ClientSession, on_inbound: InboundHandler) -> None:
        """Fetch updates; a batch is confirmed (the next offset) once all are written down.
        The app orders each person's events: a batch is handed over all at once."""
        offset = 0
        while True:
            try:
                async with session.get(f"{self.options.api}/updates",
                                       params={"offset": offset}) as resp:
                    updates: list[dict[str, Any]] = await resp.json()
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            await asyncio.gather(*(on_inbound(self._event(u)) for u in updates))
            offset = max([offset - 1, *(u["id"] for u in updates)]) + 1

    def _event(self, update: dict[str, Any]) -> RawInbound:
        who = str(update["from"])
        inbound = (Inbound(kind="button", at=0.0, payload=str(update["press"]))
                   if "press" in update else Inbound(kind="text", at=0.0, text=update["text"]))
        return RawInbound(self.name, who, who, inbound, event_id=str(update["id"]))

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._session is not None:
            await self._session.close()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            raise Unreachable("minichat: not started")
        try:
            async with self._session.post(f"{self.options.api}{path}", json=body) as resp:
                if resp.status >= 500:
                    raise Unreachable(f"minichat: {resp.status}")
                if resp.status >= 400:
                    raise Rejected(f"minichat: refused ({resp.status})")
                answer: dict[str, Any] = await resp.json()
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"minichat: {type(exc).__name__}") from None

    async def send(self, address: str, message: Message) -> list[str]:
        answer = await self._post("/send", {"to": address, "text": message.text, "buttons": [
            [c.label, c.payload] for c in message.choices]})
        return [str(answer["id"])]

    async def delete(self, address: str, message_ids: Sequence[str]) -> list[str]:
        try:
            await self._post("/delete", {"to": address, "ids": list(message_ids)})
        except Unreachable:
            return list(message_ids)
        except Rejected:
            pass
        return []


def build(options: MiniChatOptions, services: ChannelServices) -> MiniChatChannel:
    return MiniChatChannel(options)


KIND = ChannelKind("minichat", MiniChatOptions, build)
