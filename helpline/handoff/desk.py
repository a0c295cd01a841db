"""The advocate desk behind one small interface, so a web console can join Telegram later
without touching flows or channels.

A desk shows one thread per case (a Telegram forum topic), posts text into it, shows a case
card with a Claim button, and reports what advocates do (a message in a thread, a press of
Claim) as ``DeskEvent``s. Everything the desk is told goes through the app's durable
operations queue (see ``relay.DeskChannel``); card edits and press answers are best effort.

A desk with staff of its own (the console: its accounts) may also have ``is_staff(user)``
(its own ids, which no listed advocate's can be) and ``has_staff()``; the relay asks them
beside ``[handoff] advocates`` when it is there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from helpline.errors import Unreachable


@dataclass(frozen=True)
class DeskEvent:
    kind: Literal["message", "claim"]
    thread: str  # the case's thread (topic) id on the desk
    user: str  # the advocate's staff id (a Telegram user id)
    text: str = ""  # a message's text (advocates' own words, never logged)
    query: str = ""  # an id to answer a press with (``Desk.answer``)


DeskHandler = Callable[[DeskEvent], Awaitable[None]]


class DeskUnavailable(Unreachable):
    """The desk could not take this now; the queue retries later."""


class Desk(Protocol):
    def listen(self, handler: DeskHandler) -> None:
        """Call ``handler`` for every advocate action, in order per thread."""

    async def create_thread(self, name: str) -> str:
        """Open a new thread named ``name`` (the case handle); return its id."""

    async def post(self, thread: str, text: str, claim: str | None = None) -> str:
        """Post ``text`` into the thread (with a Claim button carrying ``claim`` if set);
        return the message id. Raise helpline.errors on failure: Unreachable or
        RateLimited (the queue retries), Rejected (this post is dropped)."""

    async def edit(self, thread: str, message_id: str, text: str, claim: str | None = None
                   ) -> None:
        """Change a posted message (the card); best effort."""

    async def answer(self, query: str, text: str) -> None:
        """Answer a press privately to the one who pressed; best effort."""

    async def close_thread(self, thread: str) -> None:
        """Mark the thread closed; best effort."""

    async def delete_thread(self, thread: str) -> bool:
        """Delete the thread with every message in it ("delete my data"). True when it is
        gone (also when it was already), False when the desk refuses for good (its messages
        then remain); raise DeskUnavailable to be tried again later."""
