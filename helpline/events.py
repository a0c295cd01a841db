"""Plain values that cross the boundary between channels, the app and the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple


@dataclass(frozen=True)
class ConversationKey:
    """Who a conversation is with: a channel name and the person's pseudonymous id."""

    channel: str
    pid: str

    def short(self) -> str:
        """A short form of the pseudonym for logs (never a platform id)."""
        return f"{self.channel}:{self.pid[:10]}"


class Choice(NamedTuple):
    label: str
    payload: str


class Message(NamedTuple):
    """One outbound message: text, and the choices to show as buttons or a numbered list."""

    text: str
    choices: tuple[Choice, ...] = ()
    # Set for a quick exit's neutral reply, which the channel removes after a short delay.
    ephemeral: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "choices": [[c.label, c.payload] for c in self.choices],
            "ephemeral": self.ephemeral,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(
            text=str(data["text"]),
            choices=tuple(Choice(str(a), str(b)) for a, b in data.get("choices", [])),
            ephemeral=bool(data.get("ephemeral", False)),
        )


def combined(messages: Sequence[Message], max_text: int) -> list[Message]:
    """A turn's messages as few messages as a channel takes (``max_text`` > 0): a text
    without choices is joined to the message after it, a blank line between, while the
    joined text fits in ``max_text``. Choices stay on the message they came with, which
    stays the last of its group; a quick exit's reply (ephemeral) is never joined.

    One message a turn means one notification on a phone someone else may see, one
    message for quick exit to delete, and no bursts against a platform's per-chat limit
    (Telegram asks bots for at most one message a second in a chat)."""
    out: list[Message] = []
    for message in messages:
        last = out[-1] if out else None
        # A numbered list is part of the text on some channels: count the labels too.
        size = len(message.text) + sum(len(c.label) + 5 for c in message.choices)
        if (last is None or max_text <= 0 or last.choices or last.ephemeral
                or message.ephemeral or not last.text or len(last.text) + 2 + size > max_text):
            out.append(message)
        else:
            text = f"{last.text}\n\n{message.text}" if message.text else last.text
            out[-1] = Message(text, message.choices)
    return out


def split_long(messages: Sequence[Message], limit: int) -> list[Message]:
    """Each message whose text is longer than ``limit`` UTF-16 code units (0: no limit) as
    several, cut where ``split_text`` cuts; the choices go with the last part."""
    if limit <= 0:
        return list(messages)
    out: list[Message] = []
    for message in messages:
        if len(message.text) * 2 <= limit:  # at most two units a character: fits
            out.append(message)
            continue
        parts = split_text(message.text, limit)
        out.extend(Message(part, message.choices if n == len(parts) - 1 else (),
                           message.ephemeral) for n, part in enumerate(parts))
    return out


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-16 code units (how Telegram counts),
    cut at a blank line, a line end or a space where one is in the second half."""
    parts: list[str] = []
    limit = max(limit, 2)  # room for one character beyond the BMP
    while _units(text) > limit:
        cut = limit
        while _units(text[:cut]) > limit:  # characters beyond the BMP count twice
            cut -= max(1, (_units(text[:cut]) - limit + 1) // 2)
        for sep in ("\n\n", "\n", " "):
            at = text.rfind(sep, 0, cut)
            if at > cut // 2:
                cut = at
                break
        part = text[:cut].rstrip()
        if part:
            parts.append(part)
        text = text[cut:].lstrip()
    if text or not parts:
        parts.append(text)
    return parts


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


InboundKind = Literal["text", "button", "start", "unsupported", "timer"]


@dataclass(frozen=True)
class Inbound:
    """What a person did, already stripped of platform details."""

    kind: InboundKind
    at: float  # unix time, supplied by the app so the engine stays pure
    text: str = ""
    payload: str = ""  # button data, or the flow to start for "start" and "timer"
    locale_hint: str | None = None
    channel: str = ""  # which kind of channel; flows may branch on the variable 'channel'
    # A place the person shared (latitude, longitude), with kind "unsupported". Used once,
    # for distances, by a lookup in the same turn; never stored, logged or shown.
    location: tuple[float, float] | None = field(default=None, repr=False)
    # What the app has at this moment for ``available:`` conditions (flow.model.FACTS),
    # filled in by the app; None: the engine's default (EngineConfig.default_facts).
    facts: frozenset[str] | None = None


@dataclass(frozen=True)
class RawInbound:
    """An event as a channel hands it to the app; platform ids never leave the app."""

    channel: str
    platform_id: str  # who: chat id, phone number or UUID; hashed at once into a pseudonym
    address: str  # how to reply; encrypted before it is stored
    inbound: Inbound
    message_id: str | None = None  # the platform's id of the person's message, for deletion


# ------------------------------------------------------------------ effects


@dataclass(frozen=True)
class DeleteChat:
    """Ask the channel to delete what it can of this chat (quick exit)."""


@dataclass(frozen=True)
class EraseData:
    """Erase every stored row of this person (after they confirmed)."""


@dataclass(frozen=True)
class Lookup:
    """Find services that fit what the person chose to tell."""

    criteria: dict[str, Any] = field(default_factory=dict)
    limit: int = 3
    # The point the person shared this very turn (see Inbound.location): for distances
    # only; it never reaches the state, the store or a log.
    near: tuple[float, float] | None = field(default=None, repr=False)


# What the area variable holds when the person shared a location instead of typing a place:
# it says that a location was shared, never where.
SHARED_LOCATION = "(shared location)"


@dataclass(frozen=True)
class Handoff:
    """Open a case for a human advocate, with only what the person agreed to share."""

    summary: dict[str, Any] = field(default_factory=dict)
    topic: str | None = None
    # The flow already asked, and the person chose to leave a message for the next shift:
    # off shift, the case waits for it without asking again.
    for_next_shift: bool = False


@dataclass(frozen=True)
class Schedule:
    """A check-in the person asked for: run ``flow`` after ``after_hours``."""

    kind: str
    after_hours: float
    flow: str


@dataclass(frozen=True)
class SetDisappearing:
    """Make new messages in this chat disappear after ``seconds`` (0 turns it off)."""

    seconds: int


@dataclass(frozen=True)
class OverlayPick:
    """The person picked ``value`` from a menu that ``owner`` showed (see State.overlay)."""

    owner: str
    value: str


@dataclass(frozen=True)
class CancelSchedules:
    """Drop every pending check-in of this person."""


Effect = (
    DeleteChat
    | EraseData
    | Lookup
    | Handoff
    | Schedule
    | CancelSchedules
    | SetDisappearing
    | OverlayPick
)
