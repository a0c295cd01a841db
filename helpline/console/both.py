"""Both desks at once (``[console] desk = "both"``): every case has a page in the console
and a topic in the Telegram staff group, and a claim in one shows as claimed in the other.

The relay sees one desk. A case's thread is the console's (its id in ``cases.topic``); the
console's thread row keeps the Telegram topic beside it (``peer``). Each post goes to the
console first (a local write), then to Telegram; when Telegram fails, the queue tries the
post again later, and the console, which has it already, is not given it twice (kept in
memory: after a restart in an outage, a line may show twice in the console). Events from
Telegram are given the console's thread, and an advocate's words written in the Telegram
topic join the console's transcript, so that both show the whole chat.
"""

from __future__ import annotations

import logging

from helpline.console.desk import ConsoleDesk
from helpline.handoff.desk import Desk, DeskEvent, DeskHandler

log = logging.getLogger("helpline.console")
SEPARATOR = "|"  # a card's message id on both: "<console's>|<Telegram's>"


class BothDesks:
    def __init__(self, console: ConsoleDesk, telegram: Desk, note_prefix: str = "!") -> None:
        self.console = console
        self.note_prefix = note_prefix
        self.telegram = telegram
        self.max_text = min(console.max_text, int(getattr(telegram, "max_text", 4096)))
        self.text_unit = getattr(telegram, "text_unit", "utf16")
        self._posted: dict[tuple[str, str], str] = {}  # posts the console has, Telegram not

    def listen(self, handler: DeskHandler) -> None:
        self.console.listen(handler)

        async def from_telegram(event: DeskEvent) -> None:
            found = await self.console.by_peer(event.thread)
            if found is None:  # a topic of before both desks were on: as it was
                await handler(event)
                return
            mine = DeskEvent(event.kind, str(found.id), event.user, event.text, event.query)
            await handler(mine)
            text = event.text.strip()
            if event.kind == "message" and text and not text.startswith("/"):
                if self.note_prefix and text.startswith(self.note_prefix):
                    await self.console.note(event.user, found.id, text)
                else:
                    await self.console.record(found.id, event.user, text)

        self.telegram.listen(from_telegram)

    def is_staff(self, user: str) -> bool:
        return self.console.is_staff(user)

    def has_staff(self) -> bool:
        return self.console.has_staff()

    async def create_thread(self, name: str) -> str:
        thread = await self.console.create_thread(name)
        found = await self.console.thread(int(thread))
        if found is None or found.peer is None:
            peer = await self.telegram.create_thread(name)
            await self.console.set_peer(int(thread), peer)
        return thread

    async def _peer(self, thread: str) -> str | None:
        found = await self.console.thread(int(thread))
        return None if found is None else found.peer

    async def post(self, thread: str, text: str, claim: str | None = None) -> str:
        key = (thread, text)
        mine = self._posted.pop(key, None)
        if mine is None:
            mine = await self.console.post(thread, text, claim)
        peer = await self._peer(thread)
        if peer is None:
            return mine
        try:
            theirs = await self.telegram.post(peer, text, claim)
        except BaseException:
            self._posted[key] = mine
            raise
        return f"{mine}{SEPARATOR}{theirs}"

    async def edit(self, thread: str, message_id: str, text: str, claim: str | None = None
                   ) -> None:
        mine, _, theirs = message_id.partition(SEPARATOR)
        await self.console.edit(thread, mine, text, claim)
        peer = await self._peer(thread)
        if peer is not None and theirs:
            await self.telegram.edit(peer, theirs, text, claim)

    async def answer(self, query: str, text: str) -> None:
        if query.startswith("console-"):
            await self.console.answer(query, text)
        else:
            await self.telegram.answer(query, text)

    async def close_thread(self, thread: str) -> None:
        peer = await self._peer(thread)
        await self.console.close_thread(thread)
        if peer is not None:
            await self.telegram.close_thread(peer)

    async def delete_thread(self, thread: str) -> bool:
        peer = await self._peer(thread)
        if peer is not None and not await self.telegram.delete_thread(peer):
            log.warning("the Telegram topic of a case was not deleted; the console's is")
            await self.console.delete_thread(thread)
            return False
        return await self.console.delete_thread(thread)
