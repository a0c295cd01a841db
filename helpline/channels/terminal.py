"""The in-process channel behind ``helpline chat`` and the transcript tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from helpline.channels.base import BaseChannel, Capabilities
from helpline.channels.base import numbered as numbered
from helpline.events import Message


@dataclass
class TerminalChannel(BaseChannel):
    """Prints messages (choices numbered) to a stream, and keeps them for tests."""

    out: TextIO | None = None
    name: str = "terminal"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(
            buttons=False, deletes_inbound=True, delete_window_hours=48
        )
    )
    exit_reply_delete_after: float | None = None  # the simulator shows every message
    sent: list[tuple[str, Message]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    disappearing: int | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, address: str, message: Message) -> list[str]:
        self.sent.append((address, message))
        if self.out is not None:
            self.out.write(render(message) + "\n")
            self.out.flush()
        return [str(next(self._ids))]

    async def delete(self, address: str, message_ids: Sequence[str]) -> None:
        self.deleted.extend(message_ids)
        if self.out is not None:
            self.out.write("  (this chat was cleared)\n")
            self.out.flush()

    async def set_disappearing(self, address: str, seconds: int) -> None:
        self.disappearing = seconds


def render(message: Message) -> str:
    """Text with choices as a numbered list, as Signal and the terminal show them."""
    lines = [f"bot> {line}" if i == 0 else f"     {line}"
             for i, line in enumerate(message.text.splitlines())] if message.text else []
    lines.extend(f"     {n}. {choice.label}" for n, choice in enumerate(message.choices, 1))
    return "\n".join(lines)

