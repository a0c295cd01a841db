"""The small interface every channel implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from helpline.errors import ChannelError, RateLimited, Rejected, Unreachable
from helpline.events import (
    ELLIPSIS,
    Choice,
    Message,
    RawInbound,
    TextUnit,
    combined,
    measure,
    split_long,
)

__all__ = [
    "BaseChannel", "Capabilities", "Channel", "ChannelError", "DeskReplayer", "InboundHandler",
    "RateLimited", "ReadyHandler", "Rejected", "Unreachable", "numbered",
]

InboundHandler = Callable[[RawInbound], Awaitable[None]]
ReadyHandler = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Capabilities:
    """The one description of what a channel's platform takes. The app shapes every
    message for it from this alone (``prepare``): a channel declares its limits here and
    needs no code elsewhere for them."""

    buttons: bool = False  # choices as buttons (else a numbered list in the text)
    deletes_inbound: bool = False  # can delete the person's own messages too
    delete_window_hours: float = 0  # how far back deletion is reliable (0: none)
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
    # Where choices are buttons: the most one message may carry (0: no limit); a message
    # with more shows them as a numbered list in its text, and a typed number answers.
    max_buttons: int = 0
    # Where choices are buttons: the longest label a button shows, in ``text_unit``s (0: no
    # limit); a longer one is cut, with an ellipsis (its payload is kept whole).
    max_label: int = 0
    # Whether the bot may write to someone who has not written to it first (Signal may;
    # a Telegram bot may not). Nothing writes first yet; outreach is to ask this.
    may_write_first: bool = True

    def shape(self, messages: Sequence[Message]) -> list[Message]:
        """Each message's choices as this channel can show them: within ``max_buttons``
        (else as a numbered list in the text) and ``max_label``."""
        if not self.buttons or not (self.max_buttons or self.max_label):
            return list(messages)
        out: list[Message] = []
        for message in messages:
            choices = message.choices
            if self.max_buttons and len(choices) > self.max_buttons:
                message = message._replace(text=numbered(message), choices=())
            elif self.max_label and any(measure(c.label, self.text_unit) > self.max_label
                                        for c in choices):
                message = message._replace(choices=tuple(
                    Choice(self.label(c.label), c.payload) for c in choices))
            out.append(message)
        return out

    def label(self, text: str) -> str:
        """A button's label within ``max_label``."""
        if not self.max_label or measure(text, self.text_unit) <= self.max_label:
            return text
        room = self.max_label - measure(ELLIPSIS, self.text_unit)
        end = len(text)
        while end > 0 and measure(text[:end], self.text_unit) > room:
            end -= 1
        cut = text[:end]
        space = cut.rfind(" ")
        if space > end // 2:  # at a word's end where one is in the second half
            cut = cut[:space]
        return cut.rstrip() + ELLIPSIS

    def prepare(self, messages: Sequence[Message], combine: bool = True) -> list[Message]:
        """A turn's messages as this channel takes them: choices shaped (``shape``), joined
        into as few messages as it takes (``combine``, unless ``combine`` is off), and any
        text too long for one message in parts (``fit``)."""
        shaped = self.shape(messages)
        return self.fit(self.combine(shaped) if combine else shaped)

    def combine(self, messages: Sequence[Message]) -> list[Message]:
        """A turn's messages joined into as few as this channel takes (events.combined)."""
        return combined(messages, self.max_text, self.text_unit,
                        choices_in_text=not self.buttons)

    def fit(self, messages: Sequence[Message]) -> list[Message]:
        """Each message too long for this channel in parts (events.split_long), the last
        keeping room for a numbered list where choices are text."""
        return split_long(messages, self.split_at, self.text_unit,
                          choices_in_text=not self.buttons)


def numbered(message: Message) -> str:
    """A message's text with its choices as a numbered list after it: what a chat without
    buttons shows (a typed number answers)."""
    lines = message.text.splitlines() if message.text else []
    lines.extend(f"{n}. {choice.label}" for n, choice in enumerate(message.choices, 1))
    return "\n".join(lines)


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


class BaseChannel:
    """A channel with the no-op defaults: a new channel derives from this and writes only
    what its platform does (``send``, and ``start`` to receive). It declares its name and
    ``capabilities``; nothing is deleted, no timer is set, and a quick exit's neutral
    reply stays, unless it says otherwise."""

    name: str = "base"
    capabilities: Capabilities = Capabilities()

    @property
    def exit_reply_delete_after(self) -> float | None:
        return None

    @property
    def first_contact_timer(self) -> int:
        return 0

    async def start(self, on_inbound: InboundHandler, on_ready: ReadyHandler) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, address: str, message: Message) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} does not send")

    async def delete(self, address: str, message_ids: Sequence[str]) -> Sequence[str] | None:
        return None

    async def set_disappearing(self, address: str, seconds: int) -> None:
        return None
