"""The two forms a log line takes: text for a person reading a terminal or a journal, and
JSON (one object a line) for a log collector.

The JSON form carries four fields, named here and nothing else: ``time`` (UTC, ISO 8601),
``level``, ``logger`` and ``message``, and ``exception`` (a type name) when a record has one.
A JSON formatter that copies every attribute of a record (python-json-logger does, for
whatever a library passes as ``extra``) would carry a library's extras past the privacy
filter, which reduces a record's message and drops its traceback but cannot know a
library's own attribute names; so this one names its fields.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the fields named in this module's docstring."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__  # never its message
        return json.dumps(line, ensure_ascii=False)


def formatter(form: LogFormat) -> logging.Formatter:
    return JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT)


__all__ = ["TEXT_FORMAT", "JsonFormatter", "LogFormat", "formatter"]
