"""``helpline chat``: the real pipeline with the terminal channel, one line per message."""

from __future__ import annotations

import asyncio
import io
import sys

from helpline.channels.clean import clean_text
from helpline.channels.terminal import TerminalChannel
from helpline.config import Settings
from helpline.events import TERMINAL_PERSON, Inbound, RawInbound
from helpline.privacy import local_secret
from helpline.runtime import open_app

LOCAL_ID = TERMINAL_PERSON


async def run_chat(settings: Settings) -> int:
    secret = settings.secret_key or local_secret(settings.db.parent / "secret.key")
    channel = TerminalChannel(out=sys.stdout)
    if isinstance(sys.stdin, io.TextIOWrapper):  # bytes that are not UTF-8 become U+FFFD
        sys.stdin.reconfigure(errors="replace")
    interactive = sys.stdin.isatty()
    async with open_app(settings, secret, [channel]) as app:
        await app.start()
        if interactive:
            print(f"helpline chat: the conversation is kept in {settings.db}. "
                  "Type a message; Ctrl-D leaves (you can come back where you were).")
        while True:
            if interactive:
                print("you> ", end="", flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            text = terminal_text(line)
            if not interactive:
                print(f"you> {text}")
            await app.handle(RawInbound(
                channel="terminal", platform_id=LOCAL_ID, address="local",
                inbound=Inbound(kind="text", at=0.0, text=text),
                message_id=None,
            ))
            await app.run_due_jobs()
    return 0


def terminal_text(line: str) -> str:
    """One typed line as the text of an event, cleaned as every channel's input is."""
    return clean_text(line.rstrip("\r\n"))
