"""One line of ``helpline doctor`` (and of the warnings ``helpline run`` prints at start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """``item``: what was checked; ``text``: what was found when ok, else what to do.
    Never holds a secret, a message text or a person's id."""

    level: Level
    item: str
    text: str

    def __str__(self) -> str:
        return f"{self.level:<7}  {self.item}: {self.text}"


def ok(item: str, text: str) -> Finding:
    return Finding("ok", item, text)


def warning(item: str, text: str) -> Finding:
    return Finding("warning", item, text)


def error(item: str, text: str) -> Finding:
    return Finding("error", item, text)
