"""A logging filter that keeps what people wrote, and who they are, out of every log line.

Our own loggers (``helpline.*``) log pseudonyms (shortened), step names and kinds only.
Libraries do not: python-telegram-bot logs an update it cannot parse at CRITICAL with the
whole update (ids, names, text), httpx logs URLs (with the bot token), aiosqlite logs every
statement at DEBUG with its parameters (full pseudonyms, ciphertexts). Levels alone do not
hold that back, so this filter sits on the handlers: a library record passes whole only
if its message is one of a few fixed texts and its arguments are plain numbers; any other
is reduced to a fixed phrase (its logger and level stay, and an exception only by its type).
"""

from __future__ import annotations

import logging

OWN_PREFIX = "helpline"
WITHHELD = "(details withheld: a library's message may carry what people wrote)"

# Library messages known to carry nothing about anyone (no arguments, or numbers only).
SAFE_MESSAGES = frozenset({
    # python-telegram-bot
    "Webhook Server started.",
    "Webhook Server stopped",
    "Webhook triggered",
    "Request did not include the secret token",
    "Polling updates from Telegram started",
    "Updater started (polling)",
    "Updater started (webhook)",
    "Bootstrap done",
    "Shut down of Updater complete",
    "Network loop retry getting Updates was cancelled",
    # APScheduler
    "Scheduler started",
    "Scheduler has been shut down",
    "Looking for jobs to run",
    "No jobs; waiting until a job is added",
})


class PrivacyFilter(logging.Filter):
    """Reduces library records to what is known to be safe; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name == OWN_PREFIX or name.startswith(OWN_PREFIX + "."):
            return True
        if getattr(record, "_helpline_checked", False):
            return True  # another handler of ours has seen it already
        setattr(record, "_helpline_checked", True)  # noqa: B010
        if not _is_safe(record):
            exc = record.exc_info[1] if record.exc_info else None
            record.msg = WITHHELD if exc is None else f"{WITHHELD} [{type(exc).__name__}]"
            record.args = None
        record.exc_info = None  # a traceback quotes exception messages: never kept
        record.exc_text = None
        record.stack_info = None
        return True


def _is_safe(record: logging.LogRecord) -> bool:
    if not isinstance(record.msg, str) or record.msg not in SAFE_MESSAGES:
        return False
    args = record.args
    if not args:
        return True
    values = args.values() if isinstance(args, dict) else args
    return all(isinstance(v, (int, float, bool)) or v is None for v in values)


def install(handler: logging.Handler) -> None:
    """Put the filter on ``handler`` (once)."""
    if not any(isinstance(f, PrivacyFilter) for f in handler.filters):
        handler.addFilter(PrivacyFilter())


__all__ = ["SAFE_MESSAGES", "WITHHELD", "PrivacyFilter", "install"]
