"""Where a profile's time went, by package: ``python -m bench.profile_report FILE.prof``.

Sums each function's own time (cProfile ``tottime``) by the package it lives in, so a
benchmark's profile says at a glance how much is helpline and how much is the platform
library, HTTP, asyncio or waiting (``select``/``epoll``: the event loop had nothing to do).
"""

from __future__ import annotations

import pstats
import sys
from collections import defaultdict

GROUPS = (
    ("helpline/", "helpline"), ("/telegram/", "python-telegram-bot"),
    ("/signalbot/", "signalbot"), ("/httpx/", "httpx"), ("/httpcore/", "httpcore"),
    ("/h11/", "h11"), ("/anyio/", "anyio"), ("/aiohttp/", "aiohttp"),
    ("/aiosqlite/", "aiosqlite"), ("/cryptography/", "cryptography"),
    ("/pydantic", "pydantic"), ("/asyncio/", "asyncio"), ("/json/", "json"),
    ("/logging/", "logging"), ("/tests/fakes/", "fake"), ("/bench/", "bench"),
)
WAITING = ("poll' of 'select.epoll", "method 'select'")


def group_of(filename: str, name: str) -> str:
    if any(w in name for w in WAITING):
        return "waiting (epoll)"
    for needle, label in GROUPS:
        if needle in filename:
            return label
    if filename == "~":
        return "builtins (C)"
    return "other"


def report(path: str, top: int = 12) -> str:
    stats = pstats.Stats(path)
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        totals[group_of(filename, name)] += tottime
    whole = sum(totals.values()) or 1.0
    lines = [f"{'package':<22} {'seconds':>8} {'share':>6}"]
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{label:<22} {seconds:8.2f} {100 * seconds / whole:5.1f}%")
    return "\n".join(lines)


if __name__ == "__main__":
    for file in sys.argv[1:]:
        print(file)
        print(report(file))
