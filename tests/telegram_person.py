"""The person of the desk's rigs, on the loopback Telegram fake: they write or press a
button in their chat with the bot, and the rig waits for the bot's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.fakes.telegram_bot_api import FakeBotAPI

CHAT = 424242  # the person's private chat with the bot on the Telegram fake


async def until(probe: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if probe():
            return
        await asyncio.sleep(0.02)
    assert probe()


async def until_async(probe: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await probe():
            return
        await asyncio.sleep(0.02)
    assert await probe()


async def says(api: FakeBotAPI, text: str, count: int = 1) -> list[str]:
    """The person writes; returns what the bot says back (``count`` messages)."""
    before = len(api.sent_texts(CHAT))
    api.person_sends(CHAT, text)
    await until(lambda: len(api.sent_texts(CHAT)) >= before + count)
    return api.sent_texts(CHAT)[before:]


async def presses(api: FakeBotAPI, label: str, count: int = 1) -> list[str]:
    """The person presses the newest button labelled ``label``; returns the answer."""
    before = len(api.sent_texts(CHAT))
    for message in reversed(api.messages(CHAT)):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == label:
                    api.person_presses(CHAT, message["message_id"], button["callback_data"])
                    await until(lambda: len(api.sent_texts(CHAT)) >= before + count)
                    return api.sent_texts(CHAT)[before:]
    raise AssertionError(f"no button {label!r}")
