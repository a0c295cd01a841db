"""Unexpected exceptions are logged as their type and frames, never their message,
arguments or locals (helpline.logsafe), wherever the channels catch everything."""

from __future__ import annotations

import logging

import pytest

from helpline.channels.ordered import KeyedSerializer
from helpline.logsafe import log_exception, safe_traceback

CANARY = "+4915112345678 canary words"


def _inner(secret: str) -> None:
    raise KeyError(secret)


def _outer() -> None:
    local_secret = CANARY  # a local: never shown either
    try:
        _inner(local_secret)
    except KeyError as exc:
        raise RuntimeError(f"while handling {local_secret}") from exc


async def test_a_failing_event_logs_frames_and_causes_but_no_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    serial = KeyedSerializer()

    async def job() -> None:
        _outer()

    caplog.set_level(logging.DEBUG)
    serial.submit("chat", job)
    await serial.join()
    text = caplog.text
    assert CANARY not in text and "canary" not in text
    assert "an event failed (RuntimeError)" in text
    # The frames of both exceptions, innermost cause first, with file, line and function.
    assert "KeyError (message withheld)" in text
    assert "RuntimeError (message withheld)" in text
    assert text.index("KeyError") < text.index("RuntimeError (message withheld)")
    assert "The above exception was the direct cause of:" in text
    assert "test_logsafe.py:23 in _outer" in text and "helpline/channels/ordered.py:" in text
    for function in ("in _inner", "in _outer", "in job"):
        assert function in text


def test_contexts_and_cycles_are_shown_the_same_way() -> None:
    try:
        try:
            raise ValueError(CANARY)
        except ValueError:
            raise OSError(CANARY)  # noqa: B904 - an implicit context, on purpose
    except OSError as exc:
        err = exc
    text = safe_traceback(err)
    assert CANARY not in text
    assert "During handling of the above exception, another occurred:" in text
    assert text.startswith("ValueError (message withheld)")
    # A cause that points back at the exception itself ends the chain.
    loop = RuntimeError(CANARY)
    loop.__cause__ = loop
    assert safe_traceback(loop) == "RuntimeError (message withheld)"


def test_log_exception_names_the_type_of_a_library_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class PlatformError(Exception):
        pass

    log = logging.getLogger("helpline.test")
    with caplog.at_level(logging.INFO):
        log_exception(log, "a send failed", PlatformError(CANARY), logging.INFO)
    assert caplog.records[0].levelno == logging.INFO
    assert "a send failed (PlatformError)" in caplog.text and CANARY not in caplog.text
