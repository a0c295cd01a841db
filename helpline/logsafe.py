"""Tracebacks that are safe to log.

An exception's message and arguments may quote what a person wrote, a phone number or a
platform's answer about them (``KeyError('+4915...')``, a pydantic error quoting a frame, a
Bot API description), and a traceback formatter with locals would print even more. Here an
unexpected exception is logged as its type and, for each frame, the file, line and function
only; chained causes (``raise ... from``) and contexts are shown the same way. Nothing the
exception carries is ever formatted.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

# Causes and contexts followed at most this deep (a cycle ends there too).
MAX_CHAIN = 8


def _frames(exc: BaseException) -> list[str]:
    out = []
    for frame in traceback.extract_tb(exc.__traceback__):
        out.append(f"  {_short(frame.filename)}:{frame.lineno} in {frame.name}")
    return out


def _short(filename: str) -> str:
    """The path from the package root on (``helpline/app.py``, ``telegram/_bot.py``), so
    logs name no home directory or virtualenv."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1:])
    if "helpline" in parts:
        at = len(parts) - 1 - parts[::-1].index("helpline")
        return "/".join(parts[at:])
    return Path(filename).name


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def safe_traceback(exc: BaseException) -> str:
    """``exc`` as lines of type and frames, its causes first as Python prints them, without
    any message, argument or local value."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "direct cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "context"
        else:
            current = None
    lines: list[str] = []
    for index, (item, _) in enumerate(reversed(chain)):
        if index:
            # The link is that of the exception printed before this one, read backwards.
            later_link = chain[len(chain) - index][1]
            lines.append("The above exception was the direct cause of:"
                         if later_link == "direct cause"
                         else "During handling of the above exception, another occurred:")
        lines.append(f"{_type_name(item)} (message withheld)")
        lines.extend(_frames(item))
    return "\n".join(lines)


def log_exception(logger: logging.Logger, what: str, exc: BaseException,
                  level: int = logging.ERROR) -> None:
    """Log ``what`` (a fixed phrase of the caller's) with ``exc``'s type, and its safe
    traceback on the lines below."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s (%s)\n%s", what, type(exc).__name__, safe_traceback(exc),
                   stacklevel=2)
