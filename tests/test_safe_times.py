"""Safe times: a message the bot starts (a check-in; an advocate's reply once the person
has gone quiet) waits for the time the person said is safe, or for their next message, and
is dropped if that time does not come within [conversation] hold_hours."""

from __future__ import annotations

from helpline.config import Conversation, Settings
from helpline.office_hours import OfficeHours
from helpline.state import State
from tests.conftest import Harness, HarnessFactory, make_settings

HOUR = 3600.0
CHECKIN = "Hi, this is the check-in you asked for"


async def choose_safe_time(h: Harness, label: str) -> None:
    """The bundled safety flow's question, then a check-in in a day (from the menu)."""
    await h.send("hi")
    await h.press("Yes")
    await h.press("Staying safe")
    await h.press("When it is safe to get a message")
    said = await h.press(label)
    assert said[0].text.startswith("Thank you. A message this chat starts")
    await h.send("menu")
    await h.press("Check in with me later")
    await h.press("In 1 day")


def texts(h: Harness) -> list[str]:
    return [m.text for m in h.new_messages()]


async def check_in_comes_due(h: Harness, label: str, hours: float = 24) -> None:
    """The person chooses ``label`` and books a check-in in a day; ``hours`` later the
    bot runs it (what it says is sent or held)."""
    await choose_safe_time(h, label)
    h.new_messages()
    h.clock.advance(hours * HOUR)
    assert await h.app.run_due_jobs() == 1


async def test_a_check_in_due_outside_the_safe_window_goes_out_when_it_opens(
        harness: Harness) -> None:
    # Friday 08:00 UTC: the check-in comes due on Saturday at 08:00, the person said
    # evenings (17:00-21:00): it waits until 17:00.
    h = harness
    await check_in_comes_due(h, "Evenings")
    assert texts(h) == []  # held
    h.clock.advance(8 * HOUR + 59 * 60)  # 16:59
    await h.app.deliver_pending()
    assert texts(h) == []
    h.clock.advance(2 * 60)  # 17:01
    await h.app.deliver_pending()
    assert texts(h)[0].startswith(CHECKIN)


async def test_only_after_i_write_a_check_in_waits_for_them_and_is_dropped_at_last(
        harness: Harness) -> None:
    h = harness
    await check_in_comes_due(h, "Only after I write first")
    h.clock.advance(71 * HOUR)  # within hold_hours (72): still held, still nothing
    await h.app.deliver_pending()
    assert texts(h) == []
    h.clock.advance(2 * HOUR)  # past it: dropped, counted as expired
    await h.app.deliver_pending()
    assert texts(h) == []
    assert await h.app.store.count("operations") == 0
    assert await h.app.store.outcomes() == {("send", "expired"): 1}
    # When they write, the conversation carries on where the check-in left it: a reply to
    # their message, which the bot may send.
    reply = await h.send("hello")
    assert reply[0].text == "Welcome back. Here is where we left off:"


async def test_their_next_message_lets_what_was_held_go_first(harness: Harness) -> None:
    h = harness
    await check_in_comes_due(h, "Only after I write first", hours=25)
    assert texts(h) == []
    reply = await h.send("hello")
    assert reply[0].text.startswith(CHECKIN)  # what was held goes first, then the reply
    assert len(reply) == 2


async def test_pressing_start_again_is_their_message_too(harness: Harness) -> None:
    """A Telegram /start (or a deep link) comes from the person, not from the bot: what
    was held for them goes first."""
    from helpline.events import Inbound, RawInbound

    h = harness
    await check_in_comes_due(h, "Only after I write first", hours=25)
    assert texts(h) == []
    h.clock.advance(1)
    await h.app.handle(RawInbound("terminal", h.platform_id, f"addr-{h.platform_id}",
                                  Inbound(kind="start", at=0.0), message_id="m-start"))
    assert texts(h)[0].startswith(CHECKIN)


async def test_any_time_sends_at_once(harness: Harness) -> None:
    h = harness
    await check_in_comes_due(h, "Any time")
    assert texts(h)[0].startswith(CHECKIN)


async def test_a_window_this_configuration_does_not_know_waits_for_them(
        harness_factory: HarnessFactory, tmp_path: object) -> None:
    from pathlib import Path
    settings = make_settings(Path(str(tmp_path)), conversation=Conversation(
        safe_windows={"evenings": ["mon-sun 17:00-21:00"]}))
    h = await harness_factory(settings=settings)
    hold = h.app._hold(State(vars={"safe_time": "mornings"}), h.clock.now)
    assert hold is not None and hold[0] > hold[1]  # never before it is dropped
    assert h.app._hold(State(vars={"safe_time": "any"}), h.clock.now) is None


def test_the_next_opening_of_a_window() -> None:
    friday_8 = 1_800_000_000.0  # Friday 2027-01-15 08:00 UTC
    evenings = OfficeHours(["mon-sun 17:00-21:00"], (), "UTC")
    assert evenings.next_open(friday_8) == friday_8 + 9 * HOUR
    assert evenings.next_open(friday_8 + 10 * HOUR) == friday_8 + 10 * HOUR  # open now
    weekdays = OfficeHours(["mon-fri 10:00-14:00"], (), "UTC")
    assert weekdays.next_open(friday_8 + 7 * HOUR) == friday_8 + (72 + 2) * HOUR  # Monday
    madrid = OfficeHours(["mon-sun 17:00-21:00"], (), "Europe/Madrid")
    assert madrid.next_open(friday_8) == friday_8 + 8 * HOUR  # 17:00 in Madrid is 16:00 UTC
    assert Settings().conversation.hold_hours == 72


async def test_an_advocates_reply_after_a_quiet_while_waits_for_the_safe_window(
        harness_factory: HarnessFactory, tmp_path: object) -> None:
    from pathlib import Path

    from helpline.handoff.cases import Cases
    from helpline.handoff.desk import DeskEvent
    from tests.test_handoff import ADVOCATE, ask_for_advocate, desk_harness

    h, desk, _ = await desk_harness(harness_factory, Path(str(tmp_path)))
    await ask_for_advocate(h)  # says "Evenings" when asked when a message is safer
    [case] = await Cases(h.app.store).waiting()
    assert desk.handler is not None
    await desk.handler(DeskEvent("claim", case.topic or "", str(ADVOCATE), query="q"))
    assert texts(h)[-1].startswith("An advocate")  # at once: the person is writing now
    h.clock.advance(20 * 60)  # 08:20, quiet for less than quiet_minutes (30)
    await desk.handler(DeskEvent("message", case.topic or "", str(ADVOCATE), text="Hello"))
    assert texts(h) == ["Advocate: Hello"]
    h.clock.advance(40 * 60)  # 09:00, quiet for an hour: the reply waits for 17:00
    await desk.handler(DeskEvent("message", case.topic or "", str(ADVOCATE),
                                 text="Are you safe?"))
    assert texts(h) == []
    h.clock.advance(8 * HOUR + 60)
    await h.app.deliver_pending()
    assert texts(h) == ["Advocate: Are you safe?"]
