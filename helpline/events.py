"""Plain values that cross the boundary between channels, the app and the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# How a platform counts the length of a text: Telegram in UTF-16 code units (4,096 a
# message after entity parsing), signal-cli in UTF-8 bytes (a text past 2,000 bytes is cut
# there and the whole sent as a long-text attachment).
TextUnit = Literal["utf16", "utf8"]
# The most one character can count in each unit (a character beyond the BMP).
_WIDEST = {"utf16": 2, "utf8": 4}
ELLIPSIS = "…"


def measure(text: str, unit: TextUnit = "utf16") -> int:
    """``text``'s length as a platform counts it. A lone surrogate (which no platform
    takes) is counted as it would be encoded, never raised on."""
    if unit == "utf8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def combined(messages: Sequence[Message], max_text: int, unit: TextUnit = "utf16",
             choices_in_text: bool = True) -> list[Message]:
    """A turn's messages as few messages as a channel takes (``max_text`` > 0, measured in
    ``unit``): a text without choices is joined to the message after it, a blank line
    between, while the joined text (and the numbered list, where choices are text) fits in
    ``max_text``. Choices stay on the message they came with, which stays the last of its
    group; a quick exit's reply (ephemeral) is never joined.

    One message a turn means one notification on a phone someone else may see, one
    message for quick exit to delete, and no bursts against a platform's per-chat limit
    (Telegram asks bots for at most one message a second in a chat)."""
    out: list[Message] = []
    for message in messages:
        last = out[-1] if out else None
        size = measure(message.text, unit) + (
            _list_size(message, unit) if choices_in_text else 0)
        if (last is None or max_text <= 0 or last.choices or last.ephemeral
                or message.ephemeral or not last.text
                or measure(last.text, unit) + 2 + size > max_text):
            out.append(message)
        else:
            text = f"{last.text}\n\n{message.text}" if message.text else last.text
            out[-1] = Message(text, message.choices)
    return out


def _list_size(message: Message, unit: TextUnit) -> int:
    return sum(measure(f"\n{n}. {c.label}", unit) for n, c in enumerate(message.choices, 1))


def split_long(messages: Sequence[Message], limit: int, unit: TextUnit = "utf16",
               choices_in_text: bool = False) -> list[Message]:
    """Each message whose text is longer than ``limit`` (in ``unit``; 0: no limit) as
    several, cut where ``split_text`` cuts; the choices go with the last part. Where the
    channel shows choices as a numbered list in the text (``choices_in_text``), the last
    part keeps room for it."""
    if limit <= 0:
        return list(messages)
    out: list[Message] = []
    for message in messages:
        room = limit - (_list_size(message, unit) if choices_in_text else 0)
        if len(message.text) * _WIDEST[unit] <= room:  # fits, however it is counted
            out.append(message)
            continue
        if measure(message.text, unit) <= room:
            out.append(message)
            continue
        parts = split_text(message.text, limit, unit)
        if measure(parts[-1], unit) > room:  # the list does not fit after the last part
            parts[-1:] = split_text(parts[-1], max(room, _WIDEST[unit]), unit)
        out.extend(Message(part, message.choices if n == len(parts) - 1 else (),
                           message.ephemeral) for n, part in enumerate(parts))
    return out


def split_text(text: str, limit: int, unit: TextUnit = "utf16") -> list[str]:
    """``text`` in parts of at most ``limit`` (in ``unit``: UTF-16 code units, how Telegram
    counts, or UTF-8 bytes, how signal-cli does), cut at a blank line, a line end or a
    space where one is in the second half. Every character is kept (only the spaces at a
    cut go)."""
    parts: list[str] = []
    widest = _WIDEST[unit]
    limit = max(limit, widest)  # room for one character, however wide
    while measure(text, unit) > limit:
        cut = min(len(text), limit)
        while (over := measure(text[:cut], unit) - limit) > 0:
            cut -= max(1, over // widest)
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


def shorten(text: str, limit: int, unit: TextUnit = "utf16") -> str:
    """``text`` if it fits in ``limit``, else as much of it as fits with "…" at the end
    (a visible mark, never a silent cut), at a space where one is near the end."""
    if measure(text, unit) <= limit:
        return text
    room = max(limit - measure(ELLIPSIS, unit), 0)
    head = split_text(text, room, unit)[0] if room else ""
    return (head.rstrip() + ELLIPSIS) if measure(head + ELLIPSIS, unit) <= limit else ELLIPSIS


def split_framed(text: str, limit: int, frame: Callable[[str], str],
                 unit: TextUnit = "utf16") -> list[str]:
    """``text`` in as many parts as it needs so that each, put in ``frame`` (a translated
    template such as "Person: {text}") and marked "(2/3)" when there are several, fits in
    ``limit``. Nothing is cut: the parts together hold every word."""
    whole = frame(text)
    if measure(whole, unit) <= limit:
        return [whole]
    overhead = measure(frame(""), unit)
    mark_room = measure("(999/999) ", unit)
    parts = split_text(text, max(limit - overhead - mark_room, _WIDEST[unit]), unit)
    total = len(parts)
    return [f"({n}/{total}) {frame(part)}" for n, part in enumerate(parts, 1)]


# "desk": an advocate desk's update kept in the inbox (its payload), never a person's turn.
InboundKind = Literal["text", "button", "start", "unsupported", "timer", "desk"]


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
    # The sender's phone number where the platform gives it besides the id the person is
    # known by (Signal: the number beside the UUID), for outreach's replies and opt-outs
    # (kept encrypted in the inbox with the event; never logged or stored otherwise).
    number: str = field(default="", repr=False)


# The simulator's one person (helpline chat): its platform id, which is not its address.
TERMINAL_PERSON = "local-terminal"


@dataclass(frozen=True)
class RawInbound:
    """An event as a channel hands it to the app; platform ids never leave the app."""

    channel: str
    platform_id: str  # who: chat id, phone number or UUID; hashed at once into a pseudonym
    address: str  # how to reply; encrypted before it is stored
    inbound: Inbound
    message_id: str | None = None  # the platform's id of the person's message, for deletion
    # The platform's own id of this event (a Telegram update id, a Signal sender and
    # timestamp): a re-delivered event is processed once. None: never re-delivered.
    event_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What the inbox keeps (encrypted) until the event is processed. A shared location
        is left out: it is never stored (see Inbound.location). The event id is kept so that
        a key rotation can make the event's keyed hash again (helpline.store.rotate)."""
        i = self.inbound
        return {"platform_id": self.platform_id, "address": self.address,
                "message_id": self.message_id, "kind": i.kind, "text": i.text,
                "payload": i.payload, "locale_hint": i.locale_hint, "event_id": self.event_id,
                **({"number": i.number} if i.number else {})}

    @classmethod
    def from_json(cls, channel: str, data: dict[str, Any]) -> RawInbound:
        inbound = Inbound(kind=data["kind"], at=0.0, text=str(data.get("text", "")),
                          payload=str(data.get("payload", "")),
                          locale_hint=data.get("locale_hint"),
                          number=str(data.get("number", "")))
        message_id, event_id = data.get("message_id"), data.get("event_id")
        return cls(channel=channel, platform_id=str(data["platform_id"]),
                   address=str(data["address"]), inbound=inbound,
                   message_id=None if message_id is None else str(message_id),
                   event_id=None if event_id is None else str(event_id))


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
