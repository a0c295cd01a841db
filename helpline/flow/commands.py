"""The global commands, enumerated once: what each is called (in config, in the engine, in
the catalogues), its default words, its button payload and its entry in a platform's
command menu. Quick exit comes first: it outranks everything, in every state.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpline.i18n import N_


@dataclass(frozen=True)
class GlobalCommand:
    name: str  # its key in ``[commands]`` and in the catalogues' "command" context
    words: tuple[str, ...]  # what a person types for it (config may change them)
    button: str  # the name a button's payload gives it (``g:<button>``)
    menu: str | None = None  # its entry in a command menu (Telegram's "/" list), a msgid


COMMANDS: tuple[GlobalCommand, ...] = (
    GlobalCommand("quick_exit", ("exit", "/exit", "quit", "/quit"), "exit",
                  N_("Clear this chat")),
    GlobalCommand("menu", ("menu", "/menu", "/start"), "menu", N_("Show the menu")),
    GlobalCommand("help", ("help", "/help"), "help", N_("Help")),
    GlobalCommand("language", ("language", "/language"), "language", N_("Language")),
    GlobalCommand("erase", ("delete my data", "/delete"), "erase"),
    GlobalCommand("privacy", ("privacy", "/privacy"), "privacy",
                  N_("How this chat keeps your data")),
)
NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS)
BY_BUTTON: dict[str, str] = {c.button: c.name for c in COMMANDS}
# The erase confirmation's answer: not a command of its own, but translated like them.
YES_WORDS: tuple[str, ...] = ("yes", "y")
TRANSLATED: tuple[str, ...] = (*NAMES, "yes")  # with words in every enabled language


def default_words(name: str) -> tuple[str, ...]:
    return next(c.words for c in COMMANDS if c.name == name)


def menu_entries() -> list[tuple[str, str]]:
    """(slash command without its slash, description msgid) for a command menu, in the
    order shown: the menu first, quick exit last (easy to find, hard to hit by mistake)."""
    shown = [c for c in COMMANDS if c.menu is not None]
    shown.sort(key=lambda c: c.name == "quick_exit")
    return [(c.button, c.menu) for c in shown if c.menu is not None]
