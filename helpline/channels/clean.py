"""What a platform hands us, made safe at the channel's edge, before anything reads it.

Platforms (and whoever stands between them and us) can deliver anything: a number where a
string belongs, lone UTF-16 surrogates from a JSON ``"\\ud800"`` escape (which cannot be
encoded, so the state could not be saved and the desk could not be told), NULs and other
control characters, megabytes of text. Each channel passes what it read through these
before building an ``Inbound``: the event still goes through (never dropped, never
blocking the queue behind it), with text that every later step can handle.
"""

from __future__ import annotations

import re

MAX_TEXT = 16_384  # characters kept of one message (Telegram sends 4096, Signal 2000)
MAX_PAYLOAD = 64  # a button's data (Telegram's callback_data limit, in bytes)
MAX_HINT = 35  # a language tag ("pt-br"; BCP 47 tags are rarely longer)

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls other than tab and newline (and carriage return, folded below).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """A string that can be encoded, stored and shown: ``""`` for anything not a string,
    lone surrogates as U+FFFD, control characters dropped, at most ``limit`` characters."""
    if not isinstance(value, str):
        return ""
    text = value[: limit * 2] if len(value) > limit * 2 else value
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text[:limit]


def clean_payload(value: object) -> str:
    """A button's data: a short string, or ``""`` (which no question takes as an answer)."""
    text = clean_text(value, MAX_PAYLOAD * 4)
    while len(text.encode("utf-8")) > MAX_PAYLOAD:
        text = text[:-1]
    return text


def clean_hint(value: object) -> str | None:
    """A language tag from the platform, or None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > MAX_HINT:
        return None
    return value if re.fullmatch(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*", value) else None


def clean_id(value: object) -> str | None:
    """A platform id (a chat id, a uuid, a number) as a string, or None when it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value and len(value) <= 256 and value.isprintable() \
            and not _SURROGATE.search(value):
        return value
    return None


__all__ = ["MAX_PAYLOAD", "MAX_TEXT", "clean_hint", "clean_id", "clean_payload", "clean_text"]
