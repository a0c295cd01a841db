"""Plain values that cross the boundary between channels, the app and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ConversationKey:
    """Who a conversation is with: a channel name and the person's pseudonymous id."""

    channel: str
    pid: str

    def short(self) -> str:
        """A short form of the pseudonym for logs (never a platform id)."""
        return f"{self.channel}:{self.pid[:10]}"


@dataclass(frozen=True)
class Choice:
    label: str
    payload: str


@dataclass(frozen=True)
class Message:
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
