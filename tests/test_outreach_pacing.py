"""Outreach's pacing rules and what the Signal channel makes of the bridge's rate-limit
answers (the challenge token an admin answers with), without a clock or a network."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from helpline.channels.signal import CHALLENGE_SECONDS, bridge_error
from helpline.config import Outreach
from helpline.errors import RateLimited
from helpline.outreach.numbers import normalise
from helpline.outreach.pacing import Load, Pacing
from helpline.outreach.words import is_opt_out, revealing
from tests.fakes.signal_cli_api import (
    CHALLENGE_TOKEN,
    PROOF_REQUIRED,
    RATE_LIMIT_RETRY,
    RATE_LIMITED,
)

NOON = datetime(2027, 1, 15, 12, tzinfo=UTC).timestamp()
IDLE = Load(last_hour=0, today=0, unanswered=0, open_cases=0)


def pacing(**options: object) -> Pacing:
    return Pacing(Outreach(**options), "UTC", random.Random(3))


def test_each_cap_says_why_a_message_waits() -> None:
    p = pacing(per_hour=20, daily_cap=50, quiet_hours=["mon-sun 21:00-09:00"])
    assert p.why_not(NOON, IDLE) is None
    assert p.why_not(NOON + 10 * 3600, IDLE) == "quiet_hours"  # 22:00
    assert p.next_try(NOON + 10 * 3600, "quiet_hours") == NOON + 21 * 3600  # 09:00
    assert p.why_not(NOON, Load(20, 20, 0, 0)) == "per_hour"
    assert p.why_not(NOON, Load(3, 50, 0, 0)) == "daily_cap"
    assert p.next_try(NOON, "daily_cap") == NOON + 12 * 3600  # midnight


def test_the_desk_cap_keeps_sends_to_what_advocates_can_answer() -> None:
    p = pacing(desk_capacity=4, reply_rate=0.1, quiet_hours=[])
    assert p.why_not(NOON, Load(0, 0, unanswered=29, open_cases=0)) is None
    # 3 cases open, and 10 unanswered sends may bring one more: room for no other.
    assert p.why_not(NOON, Load(0, 0, unanswered=10, open_cases=3)) == "desk_cap"
    assert p.why_not(NOON, Load(0, 0, unanswered=40, open_cases=0)) == "desk_cap"
    assert pacing(quiet_hours=[]).why_not(NOON, Load(0, 0, 10_000, 500)) is None  # off


def test_gaps_have_jitter_around_the_hourly_rate() -> None:
    p = pacing(per_hour=20)
    gaps = [p.gap() for _ in range(200)]
    assert 90 <= min(gaps) < max(gaps) <= 270 and len(set(gaps)) == 200
    assert 160 < sum(gaps) / len(gaps) < 200


@pytest.mark.parametrize(("status", "body", "proof", "token"), [
    (429, {"error": RATE_LIMITED, "challenge_tokens": [CHALLENGE_TOKEN]}, True, CHALLENGE_TOKEN),
    (400, {"error": PROOF_REQUIRED.format(recipient="+12025550123")}, True,
     "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"),
    (400, {"error": RATE_LIMIT_RETRY.format(recipient="+12025550123")}, False, ""),
    (429, {"error": RATE_LIMITED, "challenge_tokens": ["<script>"]}, True, ""),
])
def test_the_bridge_s_rate_limits_carry_their_challenge(status: int, body: dict[str, object],
                                                        proof: bool, token: str) -> None:
    found = bridge_error(status, json.dumps(body).encode())
    assert isinstance(found, RateLimited)
    assert (found.proof, found.challenge) == (proof, token)
    assert "+1202" not in str(found)
    if proof and "retry after" not in str(body):
        assert found.retry_after in (CHALLENGE_SECONDS, 86400.0)


def test_numbers_words_and_revealing_words() -> None:
    assert normalise("+1 (202) 555-0123") == "+12025550123"
    assert normalise("202 555 0123", "US") == "+12025550123"
    assert normalise("0034 612 345 678") == "+34612345678"
    with pytest.raises(ValueError, match="country code"):
        normalise("202 555 0123")
    for word in ("STOP", "Stop.", "unsubscribe", "BAJA", "arrêt", "СТОП", "Відписатися"):
        assert is_opt_out(word), word
    assert not is_opt_out("please stop by tomorrow")
    assert revealing("Hola, la línea de ayuda contra la TRATA") == ["trata"]
    assert revealing("Hi, you can write here any time.") == []
