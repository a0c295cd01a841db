"""The small interface every channel implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from helpline.errors import ChannelError, RateLimited, Rejected, Unreachable
from helpline.events import Message, RawInbound, TextUnit, combined, split_long

__all__ = [
    "Capabilities", "Channel", "ChannelError", "DeskReplayer", "InboundHandler", "RateLimited",
    "ReadyHandler", "Rejected", "Unreachable",
]

InboundHandler = Callable[[RawInbound], Awaitable[None]]
ReadyHandler = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Capabilities:
    buttons: bool  # choices as buttons (else a numbered list)
    deletes_inbound: bool  # can delete the person's own messages too
    delete_window_hours: float  # how far back deletion is reliable
    disappearing: bool = False  # the bot can set a disappearing-messages timer
    # The longest text one message may carry; a turn's messages are joined up to it
    # (events.combined, unless [delivery] combine_replies is off). 0: never joined.
    max_text: int = 0
    # The most text a platform takes in one message, in ``text_unit``s; the app sends a
    # longer text in parts (events.split_long), before it is queued. 0: no limit.
    split_at: int = 0
    # How the platform counts a text: UTF-16 code units (Telegram) or UTF-8 bytes
    # (signal-cli). max_text and split_at are in this unit.
    text_unit: TextUnit = "utf16"

    def combine(self, messages: Sequence[Message]) -> list[Message]:
        """A turn's messages joined into as few as this channel takes (events.combined)."""
        return combined(messages, self.max_text, self.text_unit,
                        choices_in_text=not self.buttons)

    def fit(self, messages: Sequence[Message]) -> list[Message]:
        """Each message too long for this channel in parts (events.split_long), the last
        keeping room for a numbered list where choices are text."""
        return split_long(messages, self.split_at, self.text_unit,
                          choices_in_text=not self.buttons)


@runtime_checkable
class DeskReplayer(Protocol):
    """A channel that also carries an advocate desk's updates through the inbox."""

    async def replay_desk(self, payload: str) -> None: ...


class Channel(Protocol):
    name: str
    capabilities: Capabilities

    @property
    def exit_reply_delete_after(self) -> float | None:
        """Seconds after which a quick exit's neutral reply is deleted (None: it stays).
        The app asks for the delete and keeps it, like the quick exit's own, until done."""

    @property
    def first_contact_timer(self) -> int:
        """A disappearing-messages timer (seconds) to set in a chat at first contact, queued
        before the first reply; 0: none."""

    async def start(self, on_inbound: InboundHandler, on_ready: ReadyHandler) -> None:
        """Begin receiving; hand each event to ``on_inbound`` and acknowledge it to the
        platform only once the awaitable it returns is done (the event is then written
        down; it never raises for the event). Call ``on_ready`` each time the platform is
        reachable again after an outage (the app then carries out what it kept)."""

    async def stop(self) -> None: ...

    async def send(self, address: str, message: Message) -> list[str]:
        """Send one message; return the platform ids of what was sent. When it does not go
        through, raise one of helpline.errors: ``Unreachable`` or ``RateLimited`` (the app
        keeps it and tries again) or ``Rejected`` (never again; ``gone``: nor anything else
        to this person). Any other exception is a bug: the app keeps the message too."""

    async def delete(self, address: str, message_ids: Sequence[str]) -> Sequence[str] | None:
        """Delete what the platform allows of these messages; unknown ids are fine. Return
        the ids worth asking again for later (the platform was unreachable or asked us to
        wait), or None when there is nothing to try again: the app keeps those and asks
        again. Never raises for a platform's answer."""

    async def set_disappearing(self, address: str, seconds: int) -> None:
        """Make new messages in this chat disappear after ``seconds`` (0 = off), where the
        platform lets a bot do that; otherwise do nothing. Raises like ``send``."""
