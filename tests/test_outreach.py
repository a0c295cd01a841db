"""Outreach campaigns end to end: the real App with the SignalChannel against the loopback
signal-cli-rest-api fake, on a fake clock (pacing and quiet hours are driven by moving the
clock to the next moment a send may go out: nothing sleeps)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpline.app import App
from helpline.channels.signal import SignalChannel, SignalOptions
from helpline.config import Outreach, Settings
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.outreach import OutreachService, install
from helpline.outreach.pacing import Pacing
from helpline.outreach.store import Campaigns
from helpline.privacy import Vault
from helpline.stats import Stats
from helpline.stats.feature import StatsFeature
from helpline.store import Store
from tests.conftest import SECRET, Clock, make_settings
from tests.fakes.signal_cli_api import CHALLENGE_TOKEN, FakeSignalAPI

MESSAGE = "Hi. If you ever want to talk, you can write here any time. Reply STOP to stop."
FOLLOW_UP = "Hi again. You can write here whenever it suits you."
SAFETY_INTRO = "Here are some ideas other people have found useful."
OPTED_OUT = "OK. We won't write to this number again."


def numbers(n: int, start: int = 0) -> list[str]:
    """Valid, fictitious UK mobile numbers (+44 7700 900xxx is reserved for drama)."""
    return [f"+447700{900000 + i:06d}" for i in range(start, start + n)]


@dataclass
class Rig:
    signal: FakeSignalAPI
    app: App
    service: OutreachService
    clock: Clock
    store: Store
    sent_at: list[tuple[float, str]] = field(default_factory=list)

    @property
    def repo(self) -> Campaigns:
        return self.service.repo

    async def campaign(self, name: str, to: list[str], **options: object) -> int:
        kept, _ = await self.repo.create(name, str(options.pop("message", MESSAGE)), to,
                                         self.clock.now, language="en", keep_days=30,
                                         **options)  # type: ignore[arg-type]
        campaign = await self.repo.by_name(name)
        assert campaign is not None
        await self.repo.set_state(campaign.id, "running")
        return kept

    async def drive(self, until: Callable[[], bool], most: int = 20_000) -> None:
        """Move the clock to each moment a send may go out and let the job run."""
        for _ in range(most):
            if until():
                return
            self.clock.now = max(self.clock.now + 1.0, self.service.next_at)
            await self.service.tick()
        raise AssertionError("the campaign did not get there")

    def sends(self) -> list[str]:
        """Where campaign messages went (replies in a conversation go to the UUID)."""
        return [str(c.json_body["recipients"][0]) for c in self.signal.calls
                if c.path == "/v2/send" and c.status == 201
                and str(c.json_body["recipients"][0]).startswith("+")]

    async def counted(self, event: str, campaign: str) -> int:
        rows = await Stats(self.store.database).counts("2000-W01", "2100-W01")
        return sum(r.count for r in rows if r.event == event and r.campaign == campaign)


Starter = Callable[..., Awaitable[Rig]]


async def until(count: Callable[[], Awaitable[int]], wanted: int) -> None:
    """Wait (a few seconds at most) until ``count()`` is ``wanted``: a frame from the fake
    is read by the channel's receive task."""
    for _ in range(200):
        if await count() == wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still {await count()}, not {wanted}")


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Starter]:
    running: list[tuple[App, Store]] = []
    async with FakeSignalAPI() as signal:

        async def build(outreach: Outreach | None = None, clock: Clock | None = None,
                        settings: Settings | None = None) -> Rig:
            settings = settings or make_settings(
                tmp_path, outreach=outreach or Outreach(per_hour=60, daily_cap=1000))
            clock = clock or Clock()
            vault = Vault(SECRET)
            store = await Store.open(settings.db, vault)
            channel = SignalChannel(SignalOptions(
                service=signal.service, number=signal.number, retry_first_seconds=0.05,
                retry_max_seconds=0.2))
            app = App(settings, load_flows(settings.flows), store, vault,
                      CatalogTranslator(settings.locales), [channel], clock=clock,
                      features=[StatsFeature()])
            service = install(app, channel, Pacing(settings.outreach, settings.timezone,
                                                   random.Random(7)))
            running.append((app, store))
            await app.start()
            await signal.wait_connected()
            rig = Rig(signal, app, service, clock, store)
            signal.observers.append(
                lambda call: rig.sent_at.append((clock.now, str(call.json_body["recipients"][0])))
                if call.path == "/v2/send" and call.status == 201
                and str(call.json_body["recipients"][0]).startswith("+") else None)
            return rig

        yield build
        for app, store in running:
            await app.stop()
            await store.close()


def hour_of(at: float) -> int:
    return datetime.fromtimestamp(at, UTC).hour


async def test_500_numbers_go_out_paced_outside_quiet_hours_each_once(start: Starter) -> None:
    rig = await start(Outreach(per_hour=40, daily_cap=1000, quiet_hours=["mon-sun 21:00-09:00"]))
    to = numbers(500)
    assert await rig.campaign("spring", to) == 500
    begin = rig.clock.now
    await rig.drive(lambda: len(rig.sent_at) == 500)
    assert sorted(rig.sends()) == sorted(to)  # each number once
    times = [t for t, _ in rig.sent_at]
    assert all(9 <= hour_of(t) < 21 for t in times), "a send inside quiet hours"
    for t in times:  # no hour holds more than per_hour
        assert sum(1 for u in times if t <= u < t + 3600) <= 40
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 45 and len(set(gaps)) > 100  # 90 s apart on average, with jitter
    assert times[0] - begin >= 3600  # the clock starts at 08:00, in quiet hours
    assert max(gaps) >= 12 * 3600  # 500 at 40 an hour do not fit in one day's 12 hours
    rig.clock.now = rig.service.next_at
    await rig.service.tick()
    campaign = await rig.repo.by_name("spring")
    assert campaign is not None and campaign.state == "done"
    assert await rig.counted("outreach_sent", "spring") == 500
    # Delivered is what Signal's delivery receipts say: none yet. Then a receipt for two
    # numbers (one of them twice), and a read receipt, which says nothing of delivery.
    assert await rig.counted("outreach_delivered", "spring") == 0
    first, second, third = numbers(3)
    for number in (first, second, first):
        rig.signal.receipt(number, rig.signal.stamps_sent_to(number), kind="delivery")
    rig.signal.receipt(third, rig.signal.stamps_sent_to(third), kind="read")
    await until(lambda: rig.counted("outreach_delivered", "spring"), 2)
    # Receipts the bot cannot use are passed over: no timestamps, odd values, one naming
    # a message that was not a campaign's.
    for odd in ({"isDelivery": True}, {"isDelivery": "yes", "timestamps": [1]},
                {"isDelivery": True, "timestamps": ["x", True, -1, 1.5e30, None, 7]}):
        rig.signal.push_envelope(rig.signal.envelope(third, receiptMessage=odd))
    await asyncio.sleep(0.2)  # the read receipt and the second one have been read too
    assert await rig.counted("outreach_delivered", "spring") == 2


async def test_daily_cap_holds_over_every_campaign(start: Starter) -> None:
    rig = await start(Outreach(per_hour=100, daily_cap=30, quiet_hours=[]))
    await rig.campaign("one", numbers(40))
    await rig.campaign("two", numbers(40, start=100))
    day = rig.clock.now
    await rig.drive(lambda: len(rig.sent_at) == 31)
    by_day: dict[int, int] = {}
    for t, _ in rig.sent_at:
        key = datetime.fromtimestamp(t, UTC).toordinal()
        by_day[key] = by_day.get(key, 0) + 1
    assert max(by_day.values()) <= 30
    assert rig.sent_at[30][0] - day > 3600  # the 31st waited for the next day


async def test_a_restart_mid_campaign_sends_nothing_twice(start: Starter, tmp_path: Path
                                                          ) -> None:
    clock = Clock()
    rig = await start(Outreach(per_hour=60, daily_cap=1000, quiet_hours=[]), clock)
    to = numbers(20)
    await rig.campaign("restart", to)
    await rig.drive(lambda: len(rig.sent_at) == 8)
    # The bot dies after taking the next recipient and before the bridge answered: that
    # send may or may not have gone out.
    campaign = await rig.repo.by_name("restart")
    assert campaign is not None
    claimed = await rig.repo.claim(campaign, clock.now)
    assert claimed is not None and claimed.number == to[8]
    await rig.app.stop()
    again = await start(Outreach(per_hour=60, daily_cap=1000, quiet_hours=[]), clock)
    await again.drive(lambda: len(again.sends()) == 19)
    for _ in range(5):
        clock.now = max(clock.now + 1, again.service.next_at)
        await again.service.tick()
    sent = again.sends()
    assert len(sent) == len(set(sent)) == 19  # none twice
    assert to[8] not in sent  # the one under way is never sent again
    assert (await again.repo.counts(campaign.id, clock.now, 0)).unknown == 1


async def test_a_captcha_challenge_pauses_until_the_admin_answers_it(
        start: Starter, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from helpline.cli import main

    rig = await start(Outreach(per_hour=60, daily_cap=1000, quiet_hours=[]))
    rig.signal.limit_new_recipients(5)
    to = numbers(12)
    await rig.campaign("poster", to)
    await rig.drive(lambda: len(rig.sent_at) == 5)
    for _ in range(3):  # the sixth is refused: the campaign pauses
        rig.clock.now = max(rig.clock.now + 1, rig.service.next_at)
        await rig.service.tick()
    campaign = await rig.repo.by_name("poster")
    assert campaign is not None
    assert (campaign.state, campaign.paused, campaign.challenge) == (
        "paused", "captcha", CHALLENGE_TOKEN)
    refused = [c for c in rig.signal.calls if c.path == "/v2/send" and c.status == 429]
    assert len(refused) == 1  # paused at the first refusal: no hammering
    for _ in range(5):
        rig.clock.advance(3600)
        await rig.service.tick()
    assert len(rig.sends()) == 5

    monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HELPLINE_DB", str(tmp_path / "helpline.db"))
    monkeypatch.setenv("HELPLINE_SIGNAL_SERVICE", rig.signal.service)
    monkeypatch.setenv("HELPLINE_SIGNAL_NUMBER", rig.signal.number)
    assert await asyncio.to_thread(main, ["outreach", "status", "poster"]) == 0
    out = capsys.readouterr().out
    assert "poster: paused" in out and "signalcaptchas.org/challenge/generate.html" in out
    assert "helpline outreach resume poster --captcha" in out
    assert not any(n in out for n in to)
    assert await asyncio.to_thread(main, ["outreach", "resume", "poster"]) == 2
    assert "captcha" in capsys.readouterr().err
    assert await asyncio.to_thread(
        main, ["outreach", "resume", "poster", "--captcha", "signalcaptcha://solved"]) == 0
    assert rig.signal.challenges == [{"challenge_token": CHALLENGE_TOKEN,
                                      "captcha": "signalcaptcha://solved"}]
    await rig.drive(lambda: len(rig.sends()) == 10)
    assert rig.sends() == to[:10]  # the refused one went when it could, once
    # A rate limit without a captcha pauses too, and says to wait.
    rig.signal.fail_sends(1, status=429, error="Failed to send message: Rate limit failure "
                          'for "{recipient}", retry after 42 seconds')
    for _ in range(3):
        rig.clock.now = max(rig.clock.now + 1, rig.service.next_at)
        await rig.service.tick()
    campaign = await rig.repo.by_name("poster")
    assert campaign is not None and (campaign.state, campaign.paused) == ("paused", "rate_limit")


async def test_stop_suppresses_the_number_in_every_campaign_for_good(start: Starter) -> None:
    rig = await start()
    alice, bob = numbers(2)
    await rig.campaign("first", [alice, bob])
    await rig.drive(lambda: len(rig.sent_at) == 2)
    rig.signal.person_sends(alice, "STOP")
    await rig.signal.wait_for_send(alice, 2)
    assert rig.signal.sent_texts(alice) == [MESSAGE, OPTED_OUT]
    rig.signal.person_sends(alice, "stop!")  # at most one confirmation
    rig.signal.person_sends(alice, "hello")
    await rig.signal.wait_for_send(alice, 3)
    assert OPTED_OUT not in rig.signal.sent_texts(alice)[2:]
    assert await rig.counted("outreach_opted_out", "first") == 1
    assert await rig.counted("outreach_replied", "first") == 1
    kept, suppressed = await rig.repo.create("second", MESSAGE, [alice, bob], rig.clock.now,
                                             language="en", keep_days=30)
    assert (kept, suppressed) == (1, 1)
    second = await rig.repo.by_name("second")
    assert second is not None
    await rig.repo.set_state(second.id, "running")
    await rig.drive(lambda: len(rig.sent_at) == 3)
    assert rig.sends() == [alice, bob, bob]
    # Suppressed after the campaign was made: passed over before the send.
    carol = numbers(1, start=50)[0]
    await rig.campaign("third", [carol, bob])
    await rig.repo.suppress_number(carol, "admin", rig.clock.now)
    await rig.drive(lambda: len(rig.sent_at) == 4)
    assert rig.sends()[-1] == bob and carol not in rig.sends()


async def test_a_late_reply_starts_the_campaign_flow_and_is_counted_not_linked(
        start: Starter) -> None:
    rig = await start()
    person, other = numbers(2)
    await rig.campaign("late", [person, other], flow="safety_tips", engaged=["safety_tips"])
    await rig.drive(lambda: len(rig.sent_at) == 2)
    rig.clock.advance(25 * 86400)  # weeks later, when it is safe
    rig.signal.person_sends(person, "hi")
    [_, reply] = await rig.signal.wait_for_send(person, 2)
    assert str(reply["message"]).startswith(SAFETY_INTRO)
    assert await rig.counted("outreach_replied", "late") == 1
    # The recipient row is gone; only the suppression hash stays with the person.
    rows = await rig.store.database.rows("SELECT status FROM outreach_recipients")
    assert [r["status"] for r in rows] == ["sent"]  # the other one
    pid = rig.app.vault.pseudonym("signal", rig.signal.uuid_of(person))
    assert await rig.repo.reached_key(pid) == await rig.repo.skey(person)
    assert await rig.counted("outreach_engaged", "late") == 0
    rig.signal.person_sends(person, "1")  # a second message is not a second reply
    await rig.signal.wait_for_send(person, 3)
    assert await rig.counted("outreach_replied", "late") == 1
    assert await rig.counted("outreach_engaged", "late") == 1  # seen in the flow it named
    rig.signal.person_sends(person, "2")
    await rig.signal.wait_for_send(person, 4)
    assert await rig.counted("outreach_engaged", "late") == 1  # once


async def test_a_quick_exit_after_a_reply_suppresses_the_number(start: Starter) -> None:
    rig = await start()
    person = numbers(1)[0]
    await rig.campaign("exit", [person])
    await rig.drive(lambda: len(rig.sent_at) == 1)
    [row] = await rig.store.database.rows("SELECT ids FROM outreach_recipients")
    campaign_message = int(row["ids"])
    rig.signal.person_sends(person, "hello")
    await rig.signal.wait_for_send(person, 2)
    rig.signal.person_sends(person, "exit")
    # The campaign's message goes with the rest of the chat (Signal's remote delete).
    await rig.signal.wait_until(lambda: any(
        c.path.startswith("/v1/remote-delete/") and c.json_body == {
            "recipient": person, "timestamp": campaign_message} for c in rig.signal.calls),
        what="the campaign message deleted")
    pid = rig.app.vault.pseudonym("signal", rig.signal.uuid_of(person))
    for _ in range(250):
        if await rig.repo.reached_key(pid) is None:  # gone with the person
            break
        await asyncio.sleep(0.02)
    assert await rig.repo.reached_key(pid) is None
    assert await rig.repo.is_suppressed(await rig.repo.skey(person))
    assert await rig.repo.create("again", MESSAGE, [person], rig.clock.now, language="en",
                                 keep_days=30) == (0, 1)


async def test_a_signal_keyword_attributes_a_new_conversation(start: Starter) -> None:
    rig = await start()
    await rig.campaign("bus-poster", [], keyword="bluebird", flow="safety_tips")
    stranger = numbers(1, start=300)[0]
    rig.signal.person_sends(stranger, "Bluebird!")
    [reply] = await rig.signal.wait_for_send(stranger, 1)
    assert str(reply["message"]).startswith(SAFETY_INTRO)
    assert await rig.counted("outreach_attributed", "bus-poster") == 1
    rows = await Stats(rig.store.database).counts("2000-W01", "2100-W01")
    assert {r.detail for r in rows if r.event == "outreach_attributed"} == {"keyword"}
    assert await rig.store.database.rows("SELECT * FROM outreach_people") == []


async def test_a_follow_up_goes_once_to_those_who_did_not_reply(start: Starter) -> None:
    rig = await start()
    quiet, replier = numbers(2)
    await rig.campaign("twice", [quiet, replier], followup=FOLLOW_UP, followup_days=7)
    await rig.drive(lambda: len(rig.sent_at) == 2)
    rig.signal.person_sends(replier, "hello")
    await rig.signal.wait_for_send(replier, 2)
    rig.clock.advance(3 * 86400)
    await rig.service.tick()
    assert len(rig.sent_at) == 2  # not yet due
    rig.clock.advance(5 * 86400)
    await rig.drive(lambda: len(rig.sent_at) == 3)
    assert rig.sent_at[-1][1] == quiet
    assert rig.signal.sent_texts(quiet) == [MESSAGE, FOLLOW_UP]
    for _ in range(5):
        rig.clock.advance(86400)
        await rig.service.tick()
    assert len(rig.sent_at) == 3
    rig.signal.receipt(quiet, rig.signal.stamps_sent_to(quiet)[-1:], kind="delivery")
    await until(lambda: rig.counted("outreach_delivered", "twice"), 1)
    rows = await Stats(rig.store.database).counts("2000-W01", "2100-W01")
    assert [(r.detail, r.count) for r in rows if r.event == "outreach_delivered"] == [
        ("followup", 1)]


async def person_says_safe_time(rig: Rig, number: str, choice: str) -> None:
    """The person wrote on Signal before and chose when a message is safe (the flow
    variable the advocate and safety flows save); their next message lets outreach know."""
    rig.signal.person_sends(number, "hi")
    await rig.signal.wait_for_send(number, 1)
    pid = rig.app.vault.pseudonym("signal", rig.signal.uuid_of(number))
    rig.clock.advance(60)  # past the app's memory of the row
    person = await rig.store.person(pid)
    assert person is not None
    person.state.vars["safe_time"] = choice
    await rig.store.save_turn(pid, "signal", person.address, person.state, [], rig.clock.now)
    rig.signal.person_sends(number, "menu")
    await rig.signal.wait_for_send(number, 2)


async def test_campaigns_keep_to_the_safe_time_a_person_gave(start: Starter) -> None:
    rig = await start(Outreach(per_hour=60, daily_cap=1000, quiet_hours=[]))
    only_after, evenings, anyone = numbers(3)
    await person_says_safe_time(rig, only_after, "after_i_write")
    await person_says_safe_time(rig, evenings, "evenings")  # 17:00-21:00
    assert hour_of(rig.clock.now) == 8
    await rig.campaign("careful", [only_after, evenings, anyone])
    await rig.drive(lambda: len(rig.sent_at) == 2)
    assert [n for _, n in rig.sent_at] == [anyone, evenings]
    assert 17 <= hour_of(rig.sent_at[1][0]) < 21
    for _ in range(5):
        rig.clock.advance(86400)
        await rig.service.tick()
    assert only_after not in rig.sends()
    campaign = await rig.repo.by_name("careful")
    assert campaign is not None
    assert (await rig.repo.counts(campaign.id, rig.clock.now, 0)).skipped == 1


async def test_no_number_or_message_reaches_the_logs(
        start: Starter, all_logs: pytest.LogCaptureFixture) -> None:
    from tests.conftest import logged

    rig = await start()
    rig.signal.limit_new_recipients(2)
    to = numbers(3)
    await rig.campaign("quiet", to)
    await rig.drive(lambda: len(rig.sent_at) == 2)
    for _ in range(3):
        rig.clock.now = max(rig.clock.now + 1, rig.service.next_at)
        await rig.service.tick()
    rig.signal.person_sends(to[0], "STOP")
    await rig.signal.wait_for_send(to[0], 2)
    text = logged(all_logs)
    assert "paused" in text and "suppression list" in text
    for secret in [*to, *(n.removeprefix("+") for n in to), MESSAGE, OPTED_OUT,
                   rig.signal.uuid_of(to[0])]:
        assert secret not in text
