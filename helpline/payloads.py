"""Button payloads: what a button carries back when it is pressed, in one versioned codec.

Version 1 (every release so far, so every button already on a screen) is ``kind:field:...``
with the kinds below; a payload this codec cannot read is a stale or foreign press, never
an error. A later form must begin with its version and ``~`` (``2~...``), which version 1
never does, so that both can be read while old buttons are still on screens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from helpline.digits import is_number

VERSION = 1


class Kind(StrEnum):
    CHOICE = "c"  # an option of a flow's choose step: (turn, option index)
    OVERLAY = "o"  # an option of the app's own menu (results, a card...): (turn, index)
    GLOBAL = "g"  # a global command, the erase confirmation or a language: (name, ...)
    LATER = "h"  # the desk's "leave a message for the next shift?": ("later", yes|no)
    CLAIM = "hd"  # a case card's Claim button on the advocates' desk: ("claim", case)


# What a field may hold: no separator, no space, not long (a platform may have to keep
# it: Telegram's 64 bytes are kept by a digest, see channels.telegram.callback_data).
_FIELD = re.compile(r"[^:\s]{1,64}")
_KINDS = {kind.value: kind for kind in Kind}


@dataclass(frozen=True)
class Payload:
    kind: Kind
    fields: tuple[str, ...]

    def number(self, index: int) -> int | None:
        """Field ``index`` as a number (None: missing or not a number)."""
        if index >= len(self.fields) or not is_number(self.fields[index]):
            return None
        return int(self.fields[index])


def encode(kind: Kind, *fields: str | int) -> str:
    texts = [str(f) for f in fields]
    for text in texts:
        if not _FIELD.fullmatch(text):
            raise ValueError(f"a payload field must match {_FIELD.pattern}: {text!r}")
    return ":".join([kind.value, *texts])


def decode(payload: str) -> Payload | None:
    """The payload of a press, or None for one this codec does not know."""
    if len(payload) > 200:
        return None
    kind, *fields = payload.split(":")
    known = _KINDS.get(kind)
    if known is None or not fields or not all(_FIELD.fullmatch(f) for f in fields):
        return None
    return Payload(known, tuple(fields))


def is_(payload: str, kind: Kind, *fields: str | int) -> bool:
    """Whether ``payload`` is of ``kind`` and begins with ``fields``."""
    found = decode(payload)
    wanted = tuple(str(f) for f in fields)
    return found is not None and found.kind is kind and found.fields[:len(wanted)] == wanted
