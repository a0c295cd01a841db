"""The advocate desk: office hours, the unclaimed timeout, and end to end over the loopback
Telegram Bot API fake with the real App, store, flows and python-telegram-bot."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from helpline.app import App
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.config import Delivery, Handoff, load_settings
from helpline.events import Inbound, combined
from helpline.flow.loader import load_flows
from helpline.handoff import install
from helpline.handoff.cases import Cases
from helpline.handoff.desk import DeskEvent, DeskHandler
from helpline.handoff.office_hours import OfficeHours, parse_shift
from helpline.handoff.relay import HandoffService
from helpline.handoff.telegram_desk import install_telegram_desk
from helpline.i18n import CatalogTranslator
from helpline.payloads import Kind, encode
from helpline.privacy import Vault
from helpline.store import Store
from tests.conftest import (
    BASIC_FLOWS,
    SECRET,
    Harness,
    HarnessFactory,
    eventually,
    make_settings,
)
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI
from tests.postgres import stored_bytes
from tests.telegram_person import CHAT, presses, says, until

FORUM = -1001234567890
ADVOCATE, OTHER_ADVOCATE, STRANGER = 111, 222, 999
NOTE = "I left last week and I need somewhere safe"
MAIN_MENU = "What would you like to do?\nType exit at any time to clear this chat."
# No directory imported here: the menu says so, and keeps its numbers.
MENU_BUTTONS = ["I need help right now", "Staying safe", "Find a service (none listed yet)",
                "Talk to a person", "Check in with me later"]

# ------------------------------------------------------------------ office hours


def at(text: str, zone: str = "Europe/Madrid") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_office_hours_in_the_organisations_time_zone() -> None:
    hours = OfficeHours(["mon-fri 09:00-17:00", "sat 10:00-14:00"], [], "Europe/Madrid")
    assert hours.is_open(at("2027-01-18 09:00"))  # a Monday
    assert not hours.is_open(at("2027-01-18 08:59"))
    assert not hours.is_open(at("2027-01-18 17:00"))
    assert hours.is_open(at("2027-01-23 11:00"))  # Saturday
    assert not hours.is_open(at("2027-01-24 11:00"))  # Sunday
    # 08:30 UTC is 09:30 in Madrid in winter: on shift.
    assert hours.is_open(at("2027-01-18 08:30", "UTC"))
    assert not OfficeHours(["mon-fri 09:00-17:00"], [], "UTC").is_open(
        at("2027-01-18 08:30", "UTC"))


def test_holidays_overnight_shifts_and_no_schedule() -> None:
    hours = OfficeHours(["fri-sun 20:00-02:00"], ["2027-01-22"], "Europe/Madrid")
    assert not hours.is_open(at("2027-01-22 21:00"))  # Friday, a holiday
    assert not hours.is_open(at("2027-01-23 01:30"))  # the end of Friday's (holiday) shift
    assert hours.is_open(at("2027-01-23 21:00"))
    assert hours.is_open(at("2027-01-25 01:00"))  # Monday morning, from Sunday's shift
    assert not hours.is_open(at("2027-01-25 02:00"))
    assert OfficeHours([], [], "UTC").is_open(0.0)
    with pytest.raises(ValueError, match="not a shift"):
        parse_shift("weekdays 9-5")
    assert parse_shift("sun-mon 00:00-24:00").days == frozenset({6, 0})


def test_handoff_settings_and_short_environment_names(tmp_path: Path) -> None:
    settings = load_settings(None, {"HELPLINE_STAFF_CHAT": str(FORUM),
                                    "HELPLINE_ADVOCATES": f"{ADVOCATE}, {OTHER_ADVOCATE}",
                                    "HELPLINE_HANDOFF_UNCLAIMED_MINUTES": "5"})
    assert settings.handoff.staff_chat == FORUM
    assert settings.handoff.advocates == [ADVOCATE, OTHER_ADVOCATE]
    assert settings.handoff.unclaimed_minutes == 5
    toml = tmp_path / "h.toml"
    toml.write_text('[handoff]\nhours = ["weekdays 9-5"]\n')
    with pytest.raises(Exception, match="not a shift"):
        load_settings(toml, {})


# ------------------------------------------------------------------ an in-memory desk


@dataclass
class MemoryDesk:
    threads: dict[str, list[str]] = field(default_factory=dict)
    answers: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    handler: DeskHandler | None = None

    def listen(self, handler: DeskHandler) -> None:
        self.handler = handler

    async def create_thread(self, name: str) -> str:
        thread = str(len(self.threads) + 1)
        self.threads[thread] = []
        return thread

    async def post(self, thread: str, text: str, claim: str | None = None) -> str:
        self.threads[thread].append(text)
        return str(len(self.threads[thread]))

    async def edit(self, thread: str, message_id: str, text: str, claim: str | None = None
                   ) -> None:
        self.threads[thread][int(message_id) - 1] = text

    async def answer(self, query: str, text: str) -> None:
        self.answers.append((query, text))

    async def close_thread(self, thread: str) -> None:
        return None

    async def delete_thread(self, thread: str) -> bool:
        self.deleted.append(thread)
        return True


async def ask_for_advocate(h: Harness) -> list[str]:
    await h.send("hi")
    await h.press("Yes")
    said = await h.send("4")
    # Off shift, the flow says so first and asks whether to leave a message.
    await h.press("Leave a message" if said[0].text.startswith("No advocates") else "Yes")
    await h.send(NOTE)
    return [m.text for m in await h.press("Evenings")]


async def desk_harness(factory: HarnessFactory, tmp_path: Path, **handoff: Any
                       ) -> tuple[Harness, MemoryDesk, HandoffService]:
    settings = make_settings(tmp_path, handoff=Handoff(advocates=[ADVOCATE], **handoff))
    h = await factory(settings=settings)
    desk = MemoryDesk()
    return h, desk, install(h.app, desk)


async def test_off_shift_the_flow_says_so_first_and_a_message_waits_for_the_next_shift(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, desk, service = await desk_harness(harness_factory, tmp_path,
                                          hours=["mon 00:00-00:01"])
    await h.send("hi")
    menu = (await h.press("Yes"))[-1]
    assert [c.label for c in menu.choices][3] == "Leave a message for an advocate"
    # Up front, before any question: no one is on shift, the numbers to call, then what
    # leaving a message means; one message a turn as Telegram and Signal send it.
    said = await h.send("4")
    assert [m.text for m in said[:1]] == ["No advocates are on shift right now."]
    assert "0800 000 000" in said[1].text and "112" in said[1].text
    assert said[2].text.startswith("You can leave a message for the next advocate on shift")
    assert [c.label for c in said[2].choices] == ["Leave a message", "Not now"]
    assert len(combined(said, 4096)) == 1
    await h.press("Leave a message")
    await h.send(NOTE)
    # The honest words, the numbers and the case handle in one text, then the menu: a
    # text without choices, so the channels join the two into one message (one a turn).
    done, home = await h.press("Evenings")
    assert not done.choices
    assert done.text.startswith("No advocates are on shift right now.")
    assert "0800 000 000" in done.text and "112" in done.text  # the emergency flow's numbers
    assert "Your message is in. Your case number is " in done.text
    assert home.text == MAIN_MENU and [c.label for c in home.choices] == [
        *MENU_BUTTONS[:3], "Leave a message for an advocate", MENU_BUTTONS[4]]
    assert len(combined([done, home], 4096)) == 1  # as Telegram and Signal send it
    case = await service.cases.open_for(h.pid)
    assert case is not None and case.later == "yes" and case.handle in done.text
    thread = desk.threads["1"]
    assert "Case " in thread[0] and NOTE in thread[0]
    assert thread[1] == "The person would like a reply when an advocate is on shift."
    await h.send("I will be free tomorrow")
    assert desk.threads["1"][-1] == "Person: I will be free tomorrow"


async def test_off_shift_not_now_opens_no_case(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, desk, service = await desk_harness(harness_factory, tmp_path,
                                          hours=["mon 00:00-00:01"])
    await h.send("hi")
    await h.press("Yes")
    await h.send("4")
    later, _menu = await h.press("Not now")
    assert later.text.startswith("That's OK. You can ask for this from the menu at any time.")
    assert await service.cases.open_for(h.pid) is None
    assert desk.threads == {}


async def test_a_flow_that_does_not_ask_first_gets_the_question_in_one_message(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    """A handoff step without ``for_next_shift`` off shift: the app asks, in one message
    (its own menu in front of the step), and nothing reaches the desk, nor is a case
    opened, unless the person says yes (tests/test_handoff_one_turn.py has the rest)."""
    settings = make_settings(tmp_path, BASIC_FLOWS, handoff=Handoff(
        advocates=[ADVOCATE], hours=["mon 00:00-00:01"]))
    h = await harness_factory(BASIC_FLOWS, settings)
    desk = MemoryDesk()
    service = install(h.app, desk)
    await h.send("hi")
    await h._inbound(Inbound(kind="start", at=0.0, payload="advocate"), None)
    [asked] = await h.send(NOTE)
    assert asked.text.startswith("No advocates are on shift right now.")
    assert "Would you like to leave a message for the next advocate on shift?" in asked.text
    assert [c.label for c in asked.choices] == ["Yes, leave a message", "No, thanks"]
    assert await service.cases.open_for(h.pid) is None
    assert desk.threads == {}
    [no] = await h.send("no")
    assert no.text == "That's OK. You can ask for this from the menu at any time."
    assert await service.cases.open_for(h.pid) is None
    assert desk.threads == {}
    after = await h.send("hello?")  # no case: the flows answer as usual
    assert after and not desk.threads


async def test_unclaimed_case_times_out_with_numbers_and_a_choice(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, desk, service = await desk_harness(harness_factory, tmp_path, unclaimed_minutes=10)
    said = await ask_for_advocate(h)
    assert said[0].startswith("Your request is in. Your case number is")
    assert said[1].startswith("Advocates are on shift now. You are number 1 in the queue.")
    assert desk.threads["1"][0].startswith("Case ")
    h.clock.advance(9 * 60)
    assert await service.check_unclaimed() == 0
    h.clock.advance(2 * 60)
    assert await h.app.timed_jobs["handoff-unclaimed"]() == 1
    [told] = h.new_messages()  # one message: what happened, the numbers, the question
    assert told.text.startswith("I'm sorry, no advocate has been free to reply yet.")
    assert "0800 000 000" in told.text
    assert [c.payload for c in told.choices] == ["h:later:yes", "h:later:no"]
    assert "No one claimed this case in 10 minutes" in desk.threads["1"][-1]
    assert await service.check_unclaimed() == 0  # told once
    await h.press_payload("h:later:no")
    assert await service.cases.open_for(h.pid) is None
    assert desk.threads["1"][-1] == "The person chose not to wait. The case is closed."
    assert "Closed." in desk.threads["1"][0]


async def test_a_second_request_while_waiting_keeps_the_one_case(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, desk, _service = await desk_harness(harness_factory, tmp_path)
    await ask_for_advocate(h)
    await h.send("menu")
    await h.send("4")
    await h.press("Yes")
    await h.send("skip")
    said = [m.text for m in await h.press("Any time")]
    assert said[0].startswith("You are already in the queue (case ")
    assert len(desk.threads) == 1
    # The typed answers after "menu" went to the menu and the flow, not to the desk.
    assert not any(t.startswith("Person:") for t in desk.threads["1"])


async def test_the_database_alone_reveals_no_content(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, _desk, _service = await desk_harness(harness_factory, tmp_path)
    await ask_for_advocate(h)
    await h.send("my name is Maria")
    raw = await stored_bytes(h.app.store)
    assert b"Maria" not in raw and NOTE.encode() not in raw and b"person-1" not in raw


async def test_retention_purge_deletes_closed_cases_and_their_audit_log(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, _desk, service = await desk_harness(harness_factory, tmp_path)
    day = 86400.0
    assert h.app.settings.retention.case_days == 365
    await ask_for_advocate(h)
    await h.send("exit")  # case 1: closed (the person left)
    h.clock.advance(200 * day)
    h.platform_id = "person-2"
    await ask_for_advocate(h)
    await h.send("exit")  # case 2: closed 200 days after case 1
    h.platform_id = "person-3"
    await ask_for_advocate(h)  # case 3: open
    h.clock.advance(166 * day)
    await h.send("still waiting")  # person 3 is not idle
    assert [e for e, _, _ in await service.cases.events(1)] == ["opened", "person_left"]

    counts = await h.app.purge()
    assert counts["cases"] == 1 and counts["case_events"] == 2
    assert await service.cases.get(1) is None and await service.cases.events(1) == []
    kept = await service.cases.get(2)
    assert kept is not None and kept.status == "closed"
    assert [e for e, _, _ in await service.cases.events(2)] == ["opened", "person_left"]
    still = await service.cases.get(3)
    assert still is not None and still.is_open and await service.cases.events(3)
    assert (await h.app.purge())["cases"] == 0
    h.clock.advance(200 * day)
    await h.send("still waiting")
    counts = await h.app.purge()  # case 2 is past a year now; an open case never goes
    assert counts["cases"] == 1 and await service.cases.get(2) is None
    assert await service.cases.get(3) is not None
    assert await h.app.store.count("case_events") == len(await service.cases.events(3))


async def test_an_idle_person_with_an_open_case_is_not_purged(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h, _desk, service = await desk_harness(harness_factory, tmp_path)
    await ask_for_advocate(h)  # case 1 stays open while the person says nothing for months
    h.clock.advance((h.app.settings.retention.conversation_days + 30) * 86400.0)
    await h.app.deliver_pending(force=True)
    assert (await h.app.purge())["people"] == 0
    case = await service.cases.get(1)
    assert case is not None and case.is_open
    assert await h.app.store.person(h.pid) is not None


# ------------------------------------------------------------------ Telegram end to end


class Desk:
    """The person's private chat and the staff forum on one fake Bot API."""

    def __init__(self, api: FakeBotAPI, app: App, service: HandoffService) -> None:
        self.api, self.app, self.service = api, app, service

    def person_texts(self) -> list[str]:
        """The whole texts of the messages the bot sent the person, in order."""
        return self.api.sent_texts(CHAT)

    def buttons(self) -> list[list[str]]:
        """The button labels of each message the bot sent the person, in order."""
        return [[b["text"] for row in m.get("reply_markup", {}).get("inline_keyboard", [])
                 for b in row] for m in self.api.bot_messages(CHAT)]

    async def person(self, text: str, count: int = 1) -> list[str]:
        """The person writes; returns what the bot says back (``count`` messages)."""
        return await says(self.api, text, count)

    async def press(self, label: str, count: int = 1) -> list[str]:
        return await presses(self.api, label, count)

    async def request(self) -> str:
        # A turn's replies come as one message, its parts a blank line apart.
        [hello] = await self.person("hi")
        assert parts(hello, "Hi, thanks for your message.", "Is it safe for you to talk")
        [welcome] = await self.press("Yes")
        assert parts(welcome, "Here you can read", "Quick exit:", "What is kept:",
                     "What would you like to do?")[-1] == MAIN_MENU
        [consent] = await self.person("4")
        assert parts(consent, "A trained advocate can chat with you here.", "They only see",
                     "Replies can take a while")
        [first_note] = await self.press("Yes")
        assert first_note.startswith("What would you like the advocate to know first?")
        [safe_time] = await self.person(NOTE)
        assert safe_time == "When is it usually safer for you to get a message here?"
        [said] = await self.press("Evenings")
        opened, _on_shift, _while_waiting, menu = parts(
            said, "Your request is in. Your case number is ",
            "Advocates are on shift now. You are number 1 in the queue.",
            "Anything you write here now goes to the advocate.", "What would you like to do?")
        assert menu == MAIN_MENU
        assert self.buttons()[-1] == MENU_BUTTONS  # the menu's buttons stay with its text
        handle = opened.split("case number is ")[1][:4]
        await until(lambda: bool(self.api.topics(FORUM)))
        return handle

    @property
    def topic(self) -> int:
        return int(next(iter(self.api.topics(FORUM))))

    def topic_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.api.bot_messages(FORUM)
                if m.get("message_thread_id") == self.topic]

    def topic_texts(self) -> list[str]:
        return [m["text"] for m in self.topic_messages()]

    def card(self) -> dict[str, Any]:
        card = self.api.message(FORUM, self.topic_messages()[0]["message_id"])
        assert card is not None
        return card

    async def claim(self, user: int) -> str:
        data = encode(Kind.CLAIM, "claim", self.card()["text"].split()[1])
        query = self.api.person_presses(FORUM, self.card()["message_id"], data,
                                        user_id=user, strict=False)
        await until(lambda: query in self.api.callback_answers)
        return str(self.api.callback_answers[query].get("text"))

    async def advocate(self, text: str, user: int = ADVOCATE) -> None:
        self.api.person_sends(FORUM, text, user_id=user, message_thread_id=self.topic)
        await self.api.wait_confirmed()
        await asyncio.sleep(0.05)

    async def advocate_to_person(self, text: str, count: int = 1) -> list[str]:
        before = len(self.person_texts())
        self.api.person_sends(FORUM, text, user_id=ADVOCATE, message_thread_id=self.topic)
        await until(lambda: len(self.person_texts()) >= before + count)
        return self.person_texts()[before:]

    async def topic_gets(self, count: int) -> list[str]:
        await until(lambda: len(self.topic_texts()) >= count)
        return self.topic_texts()



def parts(text: str, *starts: str) -> list[str]:
    """Cut a message the bot joined from a turn's replies into those replies: one part
    for each of ``starts``, in order, each beginning with it; the first begins the
    message and each other after a blank line."""
    assert text.startswith(starts[0]), text
    cut, rest = [], text
    for start in starts[1:]:
        head, blank, tail = rest.partition(f"\n\n{start}")
        assert blank, f"no part beginning {start!r} after {head!r} in {text!r}"
        cut.append(head)
        rest = start + tail
    return [*cut, rest]


Starter = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def start_desk(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Starter]:
    running: list[App] = []

    async def start(hours: tuple[str, ...] = ()) -> Desk:
        settings = make_settings(
            tmp_path, handoff=Handoff(staff_chat=FORUM, advocates=[ADVOCATE, OTHER_ADVOCATE],
                                      hours=list(hours)),
            delivery=Delivery(retry_first_seconds=0.05, retry_max_seconds=0.2))
        vault = Vault(SECRET)
        store = await Store.open(settings.db, vault)
        channel = TelegramChannel(TelegramOptions(
            token=TOKEN, api_url=api.root, poll_timeout_seconds=1,
            exit_reply_delete_after_seconds=0.2, rate_limit=False))
        app = App(settings, load_flows(settings.flows), store, vault,
                  CatalogTranslator(settings.locales), [channel])
        service = install_telegram_desk(app, channel)
        await app.start()
        running.append(app)
        return Desk(api, app, service)

    yield start
    for app in running:
        await stop(app)


async def stop(app: App) -> None:
    if app.store.database.closed:
        return
    await app.stop()
    await app.store.close()


async def test_request_claim_relay_notes_and_close(start_desk: Starter) -> None:
    d = await start_desk()
    handle = await d.request()
    assert d.api.topics(FORUM)[d.topic]["name"] == handle
    card = d.card()
    assert card["text"].startswith(f"Case {handle}\nLanguage: English\nChannel: Telegram")
    assert NOTE in card["text"] and "evenings" in card["text"]
    for secret in (str(CHAT), "Canary"):
        assert secret not in card["text"]
    assert card["reply_markup"]["inline_keyboard"][0][0]["text"] == "Claim"
    # The person writes before anyone claimed: it is queued in the topic.
    assert await d.person("Are you there?", 0) == []
    assert (await d.topic_gets(2))[1] == "Person: Are you there?"

    assert await d.claim(STRANGER) == "Only advocates on the list can do that."
    assert "reply_markup" in d.card()  # nothing changed
    assert await d.claim(ADVOCATE) == "You have this case."
    await until(lambda: "An advocate has joined. They can read what you write here."
                in d.person_texts())
    await until(lambda: "Claimed by advocate 111." in d.card()["text"])
    assert "reply_markup" not in d.card()
    assert await d.claim(OTHER_ADVOCATE) == "This case is already claimed."

    assert await d.advocate_to_person("Hi, I'm Sam. I'm here.") == [
        "Advocate: Hi, I'm Sam. I'm here."]
    await d.person("Thank you", 0)
    await d.person("I don't know where to start", 0)
    texts = await d.topic_gets(5)
    assert texts[-2:] == ["Person: Thank you", "Person: I don't know where to start"]
    before = len(d.person_texts())
    await d.advocate("! she sounds scared, going slowly")
    await d.advocate("I can also write to her", user=OTHER_ADVOCATE)
    await until(lambda: d.topic_texts()[-1].startswith("Only the advocate who claimed"))
    assert len(d.person_texts()) == before  # neither the note nor the other's message
    assert await d.advocate_to_person("/canned take_time") == [
        "Advocate: Take your time. You can write as much or as little as you like."]

    said = await d.advocate_to_person("/close", 2)
    assert said[0].startswith("The advocate has closed this chat.")
    assert said[1].startswith("What would you like to do?")
    await until(lambda: "Closed." in d.card()["text"])
    await until(lambda: bool(d.api.topics(FORUM)[d.topic]["closed"]))
    cases = await d.service.cases.waiting()
    assert cases == []
    events = [e for e, _, _ in await d.service.cases.events(1)]
    assert events == ["opened", "claimed", "closed"]
    # Typed text goes to the flows again.
    [menu] = await d.person("1")
    assert parts(menu, "This bot cannot send help", "If you are in danger",
                 "An advocate is a person")


async def test_quick_exit_mid_case_tells_the_desk_only_that_the_person_left(
    start_desk: Starter
) -> None:
    d = await start_desk()
    await d.request()
    await d.claim(ADVOCATE)
    await d.advocate_to_person("Hello")
    await d.person("I'm scared", 0)
    assert (await d.topic_gets(3))[-1] == "Person: I'm scared"
    d.api.person_sends(CHAT, "exit")
    await d.api.wait_for_call("deleteMessages")
    await until(lambda: d.topic_texts()[-1].startswith("The person left the chat."))
    assert d.api.live_message_ids(CHAT) == []
    assert "exit" not in " ".join(d.topic_texts())
    assert d.service.cases.store is d.app.store
    assert await d.service.cases.open_for(d.app.vault.pseudonym("telegram", str(CHAT))) is None
    events = [e for e, _, _ in await d.service.cases.events(1)]
    assert events[-1] == "person_left"
    before = len(d.person_texts())
    await d.advocate("Are you still there?")
    await until(lambda: d.topic_texts()[-1] == "This case is closed. Nothing was sent.")
    assert len(d.person_texts()) == before


async def test_an_outage_mid_relay_loses_nothing_and_keeps_order(start_desk: Starter) -> None:
    d = await start_desk()
    await d.request()
    await d.claim(ADVOCATE)
    await until(lambda: "Claimed by advocate 111." in d.topic_texts())
    d.api.fail_next("sendMessage", error_code=502, times=3)
    for text in ("one", "two", "three"):
        d.api.person_sends(CHAT, text)
    await d.api.wait_confirmed()
    for _ in range(100):
        await d.app.deliver_pending()
        if [t for t in d.topic_texts() if t.startswith("Person:")] == [
                "Person: one", "Person: two", "Person: three"]:
            break
        await asyncio.sleep(0.05)
    assert [t for t in d.topic_texts() if t.startswith("Person:")] == [
        "Person: one", "Person: two", "Person: three"]
    # And the other way.
    d.api.fail_next("sendMessage", error_code=502, times=2)
    for text in ("a", "b", "c"):
        d.api.person_sends(FORUM, text, user_id=ADVOCATE, message_thread_id=d.topic)
    await d.api.wait_confirmed()
    for _ in range(100):
        await d.app.deliver_pending()
        if d.person_texts()[-3:] == ["Advocate: a", "Advocate: b", "Advocate: c"]:
            break
        await asyncio.sleep(0.05)
    assert d.person_texts()[-3:] == ["Advocate: a", "Advocate: b", "Advocate: c"]
    # The fake records a message before the bot hears its answer and marks the row done
    # (its own commit, later on a busy machine): the queue empties soon after, not at once.
    await eventually(lambda: d.app.store.count_operations("send"), 0)
    assert d.person_texts()[-3:] == ["Advocate: a", "Advocate: b", "Advocate: c"]


async def test_a_restart_mid_case_continues_the_case(start_desk: Starter, tmp_path: Path
                                                     ) -> None:
    d = await start_desk()
    handle = await d.request()
    await d.claim(ADVOCATE)
    await d.advocate_to_person("Before the restart")
    await stop(d.app)
    d2 = await start_desk()
    assert await d2.advocate_to_person("After the restart") == ["Advocate: After the restart"]
    await d2.person("still here", 0)
    await until(lambda: d2.topic_texts()[-1] == "Person: still here")
    assert handle in d2.card()["text"]
    # The file holds no note, no chat id.
    with sqlite3.connect(tmp_path / "helpline.db") as db:
        rows = db.execute("SELECT * FROM cases").fetchall()
    assert NOTE not in repr(rows) and str(CHAT) not in repr(rows)


async def test_the_desk_only_listens_to_its_own_topics(start_desk: Starter) -> None:
    d = await start_desk()
    await d.request()
    # A message in the General topic and one from a bystander in another group are ignored.
    d.api.person_sends(FORUM, "hello all", user_id=ADVOCATE)
    d.api.person_sends(-100555, "other group")
    await d.api.wait_confirmed()
    await asyncio.sleep(0.1)
    assert len(d.topic_texts()) == 1
    assert not [c for c in d.api.calls_to("sendMessage") if c.params["chat_id"] == -100555]


def test_the_desk_reads_advocates_words_and_claims_from_telegram_updates() -> None:
    from telegram import Update

    from helpline.handoff.telegram_desk import TelegramDesk

    channel = TelegramChannel(TelegramOptions(token=TOKEN, api_url="http://127.0.0.1:9",
                                              rate_limit=False))
    desk = TelegramDesk(channel, FORUM)
    chat = {"id": FORUM, "type": "supergroup", "title": "desk", "is_forum": True}
    advocate = {"id": ADVOCATE, "is_bot": False, "first_name": "A"}

    def message(**fields: Any) -> Update:
        base = {"message_id": 9, "date": 0, "chat": chat, "from": advocate, "text": "hello",
                "message_thread_id": 77, "is_topic_message": True}
        return Update.de_json({"update_id": 1, "message": {**base, **fields}}, None)

    def press(data: str, thread: int | None = 77) -> Update:
        posted: dict[str, Any] = {"message_id": 3, "date": 0, "chat": chat, "text": "card"}
        if thread is not None:
            posted.update(message_thread_id=thread, is_topic_message=True)
        return Update.de_json({"update_id": 2, "callback_query": {
            "id": "q1", "from": advocate, "chat_instance": "c", "data": data,
            "message": posted}}, None)

    assert desk.event_of(message()) == DeskEvent("message", "77", str(ADVOCATE), text="hello")
    lone = desk.event_of(message(text="a \ud800 b"))  # cleaned at the edge
    assert lone is not None and lone.text == "a \ufffd b"
    assert desk.event_of(message(**{"from": {"id": 5, "is_bot": True, "first_name": "b"}})
                         ) is None  # the bot's own post
    assert desk.event_of(message(is_topic_message=False, message_thread_id=None)) is None
    assert desk.event_of(message(text=None, sticker=None)) is None
    assert desk.event_of(press(encode(Kind.CLAIM, "claim", 7))) == DeskEvent(
        "claim", "77", str(ADVOCATE), query="q1")
    assert desk.event_of(press("o:3:1")) is None  # not the desk's button
    not_in_a_topic = press(encode(Kind.CLAIM, "claim", 7), thread=None)
    assert desk.event_of(not_in_a_topic) is None
    assert callable(Cases)  # imported for the type


async def test_an_advocate_updates_openings_from_the_desk(start_desk: Starter) -> None:
    from helpline.resources.importer import import_directory
    from helpline.resources.store import Directory
    from tests.conftest import ROOT

    d = await start_desk()
    await import_directory(d.app.store, ROOT / "data" / "sample-directory.yaml", d.app.clock())
    await d.request()
    await d.advocate("/openings harbour-house 4")
    await until(lambda: d.topic_texts()[-1].startswith("Openings of harbour-house set: 4 "))
    caps = (await Directory(d.app.store).capacities(["harbour-house"]))["harbour-house"]
    assert [c.available for c in caps] == [4]
    await d.advocate("/openings no-such-service 2")
    await until(lambda: "no service with id 'no-such-service'" in d.topic_texts()[-1])
    await d.advocate("/openings harbour-house lots")
    await until(lambda: d.topic_texts()[-1].startswith("Write /openings"))
    await d.advocate("/openings harbour-house 9", user=STRANGER)
    await until(lambda: d.topic_texts()[-1] == "Only advocates on the list can do that.")
    caps = (await Directory(d.app.store).capacities(["harbour-house"]))["harbour-house"]
    assert [c.available for c in caps] == [4]


async def test_long_messages_reach_the_desk_and_the_person_whole_in_marked_parts(
    start_desk: Starter,
) -> None:
    d = await start_desk()
    await d.request()
    assert await d.claim(ADVOCATE) == "You have this case."
    await until(lambda: "An advocate has joined. They can read what you write here."
                in d.person_texts())
    await until(lambda: f"Claimed by advocate {ADVOCATE}." in d.topic_texts())  # posted last
    # As much as Telegram lets a person send: 4,096 characters; with "Person: " it is more
    # than one post takes.
    words = ("I need to tell you everything that happened. " * 100)[:4085] + " LAST WORDS"
    assert len(words) == 4096
    before = len(d.topic_texts())
    await d.person(words, 0)
    posts = (await d.topic_gets(before + 2))[before:]
    assert len(posts) == 2
    assert [p.split(" Person: ")[0] for p in posts] == ["(1/2)", "(2/2)"]
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in posts)
    assert " ".join(p.split(" Person: ", 1)[1] for p in posts).split() == words.split()
    # An advocate's long reply the same way, each part saying who wrote it.
    reply = "Here is what we can do together. " * 124
    got = await d.advocate_to_person(reply.strip(), 2)
    assert [g.split(" Advocate: ")[0] for g in got] == ["(1/2)", "(2/2)"]
    assert " ".join(g.split(" Advocate: ", 1)[1] for g in got).split() == reply.split()


async def test_off_shift_on_telegram_every_turn_is_one_message(start_desk: Starter) -> None:
    """Off shift, from the menu to the message left for the next shift: each turn is one
    Telegram message (one notification), buttons last; the desk gets the case."""
    rig = await start_desk(hours=("mon 00:00-00:01",))
    await rig.person("hi")
    await rig.press("Yes")
    assert rig.buttons()[-1][3] == "Leave a message for an advocate"
    [first] = await rig.person("4")
    assert first.startswith("No advocates are on shift right now.\n\nIf you are in danger")
    assert "0800 000 000" in first and "\n\nYou can leave a message" in first
    assert rig.buttons()[-1] == ["Leave a message", "Not now"]
    [note] = await rig.press("Leave a message")
    assert note.startswith("They only see what you choose to share")
    [safe_time] = await rig.person(NOTE)
    assert safe_time == "When is it usually safer for you to get a message here?"
    before = len(rig.api.bot_messages(CHAT))
    [done] = await rig.press("Evenings")
    await asyncio.sleep(0.2)  # nothing else follows
    assert len(rig.api.bot_messages(CHAT)) == before + 1
    _off, numbers, left, menu = parts(done, "No advocates are on shift right now.",
                                      "If you are in danger", "Your message is in.",
                                      "What would you like to do?")
    assert "0800 000 000" in numbers and menu == MAIN_MENU
    assert left.startswith("Your message is in. Your case number is ")
    assert rig.buttons()[-1][3] == "Leave a message for an advocate"
    await until(lambda: bool(rig.api.topics(FORUM)))
    assert any("would like a reply when an advocate is on shift" in t
               for t in rig.topic_texts())


async def test_a_shift_that_ends_before_the_handoff_is_one_telegram_message_a_turn(
    start_desk: Starter,
) -> None:
    """The flow saw advocates on shift; the shift ended before its handoff. The desk's
    question takes the place of the menu in that turn (one Telegram message, its buttons
    last), and the menu comes with the answer."""
    rig = await start_desk()
    await rig.person("hi")
    await rig.press("Yes")
    [consent] = await rig.person("4")
    assert consent.startswith("A trained advocate can chat with you here.")
    await rig.press("Yes")
    await rig.person(NOTE)
    rig.service.hours = OfficeHours(["mon 00:00-00:01"], [], "UTC")  # the shift ends
    before = len(rig.api.bot_messages(CHAT))
    [asked] = await rig.press("Evenings")
    await asyncio.sleep(0.2)  # nothing else follows
    assert len(rig.api.bot_messages(CHAT)) == before + 1
    parts(asked, "No advocates are on shift right now.", "If you are in danger",
          "Would you like to leave a message for the next advocate on shift?")
    assert rig.buttons()[-1] == ["Yes, leave a message", "No, thanks"]
    assert await rig.service.cases.open_for(rig.app.vault.pseudonym("telegram", str(CHAT))
                                            ) is None
    [done] = await rig.press("Yes, leave a message")
    left, menu = parts(done, "Your message is in. Your case number is ",
                       "What would you like to do?")
    assert menu == MAIN_MENU
    assert rig.buttons()[-1][3] == "Leave a message for an advocate"
    await until(lambda: bool(rig.api.topics(FORUM)))
    texts = await rig.topic_gets(2)
    handle = left.split("case number is ")[1][:4]
    assert NOTE in texts[0] and texts[0].startswith(f"Case {handle}\n")
    assert texts[1] == "The person would like a reply when an advocate is on shift."
