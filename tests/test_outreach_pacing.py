"""Outreach's pacing rules and what the Signal channel makes of the bridge's rate-limit
answers (the challenge token an admin answers with), without a clock or a network."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

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


async def test_the_suppression_list_and_campaigns_outlive_a_key_rotation(tmp_path: Path
                                                                         ) -> None:
    from helpline.outreach.store import Campaigns
    from helpline.parts import ALL
    from helpline.privacy import Vault
    from helpline.store import Store
    from helpline.store.rotate import rotate
    from tests.conftest import SECRET

    db = tmp_path / "helpline.db"
    old, new = Vault(SECRET), Vault("the-new-secret-key-after-a-suspected-compromise-0123")
    stopped, waiting = "+12025550123", "+12025550124"
    store = await Store.open(db, old)
    repo = Campaigns(store)
    assert await repo.create("before", "Hi.", [stopped, waiting], 1.0, language="en",
                             keep_days=30) == (2, 0)
    await repo.suppress_number(stopped, "opted_out", 2.0)
    campaign = await repo.by_name("before")
    assert campaign is not None
    await repo.set_state(campaign.id, "running")
    claimed = await repo.claim(campaign, 3.0)  # the suppressed one is passed over
    assert claimed is not None and claimed.number == waiting
    await repo.finish(claimed, "sent", 3.0)
    await store.close()

    rotate(db, old, new, ALL)
    store = await Store.open(db, new)
    try:
        repo = Campaigns(store)
        assert await repo.create("after", "Hi.", [stopped, waiting], 4.0, language="en",
                                 keep_days=30) == (1, 1)
        assert len(await repo.answered(waiting)) == 1  # a reply is still recognised
    finally:
        await store.close()


async def test_the_purge_deletes_a_campaign_s_numbers_keep_days_after_its_last_send(
        tmp_path: Path) -> None:
    from helpline.outreach.store import Campaigns
    from helpline.privacy import Vault
    from helpline.store import Store
    from tests.conftest import SECRET

    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        repo = Campaigns(store)
        day = 86400.0
        await repo.create("sent-long-ago", "Hi.", ["+12025550123", "+12025550124"], 0.0,
                          language="en", keep_days=30)
        await repo.create("never-started", "Hi.", ["+12025550125"], 0.0, language="en",
                          keep_days=30)
        campaign = await repo.by_name("sent-long-ago")
        assert campaign is not None
        claimed = await repo.claim(campaign, 10.0)
        assert claimed is not None
        await repo.finish(claimed, "sent", 10.0)
        await repo.suppress_number("+12025550199", "opted_out", 10.0)
        kept = await store.purge(10.0 + 29 * day, 90, 48)
        assert kept["outreach_recipients"] == 0
        assert kept["outreach_sends"] == 1  # the times of sends go after two days
        gone = await store.purge(10.0 + 31 * day, 90, 48)
        assert gone["outreach_recipients"] == 2
        assert await store.count("outreach_recipients") == 1  # the one never sent from
        assert await store.count("outreach_suppressed") == 1  # never purged
    finally:
        await store.close()


async def test_a_delivery_receipt_is_looked_up_by_key_and_marks_a_message_once(
        tmp_path: Path) -> None:
    """Signal sends a receipt for every message the bot sends: one that names no campaign
    message costs one read and writes nothing; a message sent in parts is delivered once;
    the ids awaiting receipts go with their recipient at the purge."""
    from helpline.outreach.store import Campaigns
    from helpline.privacy import Vault
    from helpline.store import Store
    from tests.conftest import SECRET

    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        repo = Campaigns(store)
        await repo.create("parts", "Hi.", ["+12025550123"], 0.0, language="en", keep_days=30)
        campaign = await repo.by_name("parts")
        assert campaign is not None
        claimed = await repo.claim(campaign, 10.0)
        assert claimed is not None
        await repo.finish(claimed, "sent", 10.0, ["1001", "1002"])  # a message in two parts
        db = store.database
        trips, write = db.trips, db.write

        async def no_write(*_: object) -> None:
            raise AssertionError("a receipt for no campaign message wrote")

        db.write = no_write  # type: ignore[method-assign,assignment]
        assert await repo.delivered(["777"]) == []  # a reply of the bot's: not a campaign's
        assert db.trips - trips == 1
        db.write = write  # type: ignore[method-assign]
        assert await repo.delivered(["1002", "1001"]) == [(campaign.id, False)]
        assert await repo.delivered(["1001"]) == []  # the same message again
        assert await store.count("outreach_sent_ids") == 0
        await repo.close(campaign.id, 20.0)
        assert await store.count("outreach_recipients") == 0
    finally:
        await store.close()
