"""Simulated people: what someone does next, given the bot's last question.

The same policy drives the engine benchmark (in memory) and the Telegram and Signal
benchmarks (over the loopback fakes), so every run walks the bundled flows the same way:
mostly button presses, some typed numbers and labels, typed answers to free-text
questions ("skip" now and then), an occasional global command, and for one person in
twenty a quick exit as the last message.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ActionKind = Literal["text", "button"]

FIRST_WORDS = ("hi", "hello", "/start", "Hi, I need some help")
FREE_TEXT = (
    "Berlin Mitte", "Kreuzberg", "10115", "Spanish", "Romanian", "I would rather talk later",
    "I need somewhere safe to stay tonight", "They took my passport",
)
# Options that end the conversation (idle, nothing more to answer): a person who wants help
# does not pick them in this benchmark, so each message has a question to answer next.
AVOID = frozenset({"Not now"})


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    value: str  # text typed, or the button's payload (callback data)


@dataclass(frozen=True)
class Prompt:
    """The bot's last question as a person sees it."""

    text: str
    choices: Sequence[tuple[str, str]] = ()  # (label, payload); empty for a typed answer


class Person:
    """One person's plan: ``messages`` messages, the last one maybe a quick exit."""

    def __init__(self, index: int, messages: int, seed: int = 1) -> None:
        self.index = index
        self.messages = messages
        self.sent = 0
        self.rng = random.Random(seed * 1_000_003 + index)
        self.quick_exit = index % 20 == 7

    @property
    def done(self) -> bool:
        return self.sent >= self.messages

    def first(self) -> Action:
        return self._count(Action("text", self.rng.choice(FIRST_WORDS)))

    def answer(self, prompt: Prompt | None) -> Action:
        """The next message, in answer to ``prompt`` (None: the bot asked nothing)."""
        rng = self.rng
        if self.quick_exit and self.sent == self.messages - 1:
            return self._count(Action("text", rng.choice(("exit", "/exit"))))
        if prompt is None:
            return self._count(Action("text", "menu"))
        roll = rng.random()
        if roll < 0.03:
            return self._count(Action("text", rng.choice(("help", "menu"))))
        choices = [(i, c) for i, c in enumerate(prompt.choices) if c[0] not in AVOID]
        if choices:
            i, (label, payload) = rng.choice(choices)
            if roll < 0.75:
                return self._count(Action("button", payload))
            if roll < 0.90:
                return self._count(Action("text", str(i + 1)))
            return self._count(Action("text", label))
        if roll < 0.3:
            return self._count(Action("text", "skip"))
        return self._count(Action("text", rng.choice(FREE_TEXT)))

    def _count(self, action: Action) -> Action:
        self.sent += 1
        return action
