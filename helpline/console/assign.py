"""Automatic assignment (``[console] auto_assign``): the oldest waiting case goes to the
least-loaded advocate on shift with room. A pure rule, so that it can be tested alone;
the console desk carries it out as each advocate's own claim."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Advocate:
    staff: str  # the relay's id (console:<name>)
    on_shift: bool
    capacity: int  # cases at once
    load: int  # open cases they have now


def choose(waiting: Sequence[int], staff: Sequence[Advocate]) -> list[tuple[int, str]]:
    """Which advocate takes which of the ``waiting`` cases (oldest first): each in turn to
    the advocate on shift with the fewest cases who has room (on a tie, the first by
    name), until no one has room."""
    loads = {a.staff: a.load for a in staff}
    ready = sorted((a for a in staff if a.on_shift and a.capacity > 0), key=lambda a: a.staff)
    given: list[tuple[int, str]] = []
    for case in waiting:
        room = [a for a in ready if loads[a.staff] < a.capacity]
        if not room:
            break
        pick = min(room, key=lambda a: loads[a.staff])
        loads[pick.staff] += 1
        given.append((case, pick.staff))
    return given
