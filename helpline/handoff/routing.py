"""Where what a person does goes while their case is open: the desk's rule, as pure code
over plain data (``tests/test_desk_routing.py`` holds its properties).

* A global command (quick exit, menu, help, language, erase) stays global: the flows have
  it. After "menu", the person's next typed answer at the top of the menu is the menu's.
* A button press goes to the flows (the menu stays usable while they wait), except a press
  of "leave a message?" (yes or no) while the case asks it.
* Typed text goes to the advocate when the person is not inside a flow (idle, or at the
  top of the home menu) and no confirmation (erase, language) waits for an answer; unless
  it picks one of the menu's options as typed on a numbered list ("1", a label), which
  opens that flow: the flows, the emergency numbers first, stay one word away.
* While the case asks "leave a message?", typed text at the top answers it (yes or no), or
  the question is asked again.
* Anything else a person sends at the top (a photo, a voice note) is not passed on, and
  they are told only text is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from helpline.events import InboundKind

YesNo = Literal["yes", "no"]


class Route(Enum):
    FLOWS = "flows"  # the engine answers it, as if no case were open
    ADVOCATE = "advocate"  # relayed to the case's thread on the desk
    LATER_YES = "later_yes"  # "leave a message?" answered yes
    LATER_NO = "later_no"  # ... and no
    LATER_AGAIN = "later_again"  # "leave a message?" asked again: the answer was neither
    TEXT_ONLY = "text_only"  # told that only text is passed on


@dataclass(frozen=True)
class During:
    """One inbound of a person with an open case, and where they are, as plain data.

    ``later_pressed``: the inbound is a press of "leave a message?" (its yes or no);
    ``later_typed``: typed text that says yes or no to it (its buttons' words, their
    numbers, the command words for yes); either is None otherwise."""

    kind: InboundKind
    command: str | None = None  # the global command the inbound is, if any
    later_asked: bool = False  # the case asks "leave a message?" and has no answer yet
    later_pressed: YesNo | None = None
    later_typed: YesNo | None = None
    pending: bool = False  # the engine waits for a confirmation (erase, language)
    at_top: bool = True  # idle, or at the top of the home menu
    idle: bool = False  # no flow running at all
    menu_asked: bool = False  # the person typed "menu" since the last text at the top
    picks_option: bool = False  # the text picks an option of the question on screen


@dataclass(frozen=True)
class Routed:
    route: Route
    menu_asked: bool  # what "menu was asked" is after this inbound


def route(d: During) -> Routed:
    """Where ``d`` goes, and whether "menu was asked" stays set."""
    if d.command is not None:
        return Routed(Route.FLOWS, d.menu_asked or d.command == "menu")
    if d.kind == "button":
        if d.later_asked and d.later_pressed is not None:
            return Routed(_later(d.later_pressed), d.menu_asked)
        return Routed(Route.FLOWS, d.menu_asked)
    if d.kind not in ("text", "unsupported") or d.pending or not d.at_top:
        return Routed(Route.FLOWS, d.menu_asked)
    if d.menu_asked:  # they asked for the menu: this answer is the menu's
        return Routed(Route.FLOWS, False)
    if d.later_asked:
        typed = d.later_typed if d.kind == "text" else None  # a photo says neither
        return Routed(Route.LATER_AGAIN if typed is None else _later(typed), False)
    if d.kind == "text" and not d.idle and d.picks_option:
        return Routed(Route.FLOWS, False)
    return Routed(Route.TEXT_ONLY if d.kind == "unsupported" else Route.ADVOCATE, False)


def _later(answer: YesNo) -> Route:
    return Route.LATER_YES if answer == "yes" else Route.LATER_NO
