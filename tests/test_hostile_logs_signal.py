"""The Signal channel at DEBUG, every library logging: no number, uuid, profile name,
text or pseudonym in any line (the privacy filter, helpline/logfilter.py)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import LIBRARY_LOGGERS, logged
from tests.test_signal_channel import (  # fixtures: api, make_rig, rig
    GREETING,
    PERSON,
    Rig,
    api,
    make_rig,
    rig,
)

TEXT = "canary words zq5 for the signal side"
NAME = "Canaryprofile"


async def test_signal_at_debug_logs_no_canary(
    rig: Rig, all_logs: pytest.LogCaptureFixture
) -> None:
    assert await rig.say("hi", 1, source_name=NAME) == [GREETING]
    await rig.say(TEXT, 1, source_name=NAME)
    logs = logged(all_logs)
    assert "signal:" in logs  # our own line, by short pseudonym
    # Every library logs at DEBUG here, through the filter (the conversation's own path no
    # longer goes through aiosqlite, whose statements were the lines seen before).
    assert all(logging.getLogger(name).isEnabledFor(logging.DEBUG) for name in LIBRARY_LOGGERS)
    for canary in (PERSON, PERSON[1:], rig.api.uuid_of(PERSON), NAME, TEXT, rig.pid()):
        assert canary not in logs, canary


_ = (api, make_rig, rig)
