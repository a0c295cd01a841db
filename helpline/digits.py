"""Whether a text is a number written in ASCII digits, the only kind ``int()`` is asked to
read here. ``str.isdigit`` is true for "²" and "፩" too, which ``int`` refuses: a button
payload, a query or a command from outside must never get that far."""

from __future__ import annotations


def is_number(text: str) -> bool:
    """``text`` is one or more of 0-9 and nothing else."""
    return text.isascii() and text.isdigit()


__all__ = ["is_number"]
