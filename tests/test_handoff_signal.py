"""The advocate desk with a person on Signal (the Signal half): the real App with the
SignalChannel against the loopback signal-cli-rest-api fake for the person, and the
TelegramChannel with the Telegram desk against the loopback Bot API fake for the advocates.

Everything the person does is typed (numbers or words), as on Signal. Waits poll the fakes;
nothing depends on a fixed sleep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpline.app import App
from helpline.channels.signal import SignalChannel, SignalOptions
from helpline.channels.telegram import TelegramChannel, TelegramOptions
from helpline.config import Delivery, Handoff
from helpline.events import Message
from helpline.flow.loader import load_flows
from helpline.handoff.relay import HandoffService
from helpline.handoff.telegram_desk import install_telegram_desk
from helpline.i18n import CatalogTranslator
from helpline.payloads import Kind, encode
from helpline.privacy import Vault
from helpline.store import Store
from tests.conftest import SECRET, make_settings
from tests.fakes.signal_cli_api import FakeSignalAPI
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI
from tests.test_handoff import parts

# NANP 555-01xx numbers are reserved for fiction.
PERSON = "+12025550123"
NAME = "Quillon Vexworth"  # the person's Signal profile name
FORUM = -1001234567890
ADVOCATE, OTHER_ADVOCATE, STRANGER = 111, 222, 999
NOTE = "canary-note: I left last week and my boss keeps my passport"

MAIN_MENU = (
    "What would you like to do?\nType exit at any time to clear this chat.\n"
    "1. I need help right now\n2. Staying safe\n3. Find a service (none listed yet)\n"
    "4. Talk to a person\n5. Check in with me later"
)  # no directory imported here
CLAIMED = "An advocate has joined. They can read what you write here."
PERSON_LEFT = "The person left the chat. The case is closed; nothing more is relayed."
IS_CLOSED = "This case is closed. Nothing was sent."


class RecordingSignal(SignalChannel):
    """The real channel, remembering the timestamps its sends returned (for the deletes)."""

    def __init__(self, options: SignalOptions) -> None:
        super().__init__(options)
        self.sent_ids: list[str] = []

    async def send(self, address: str, message: Message) -> list[str]:
        ids = await super().send(address, message)
        self.sent_ids.extend(ids)
        return ids


@dataclass
class Rig:
    signal: FakeSignalAPI
    tg: FakeBotAPI
    app: App
    service: HandoffService
    channel: RecordingSignal
    seen: int = 0
    topic_seen: int = 0

    # ---- the person, on Signal

    @property
    def uuid(self) -> str:
        return self.signal.uuid_of(PERSON)

    @property
    def pid(self) -> str:
        return self.app.vault.pseudonym("signal", self.uuid)

    def person_texts(self) -> list[str]:
        return self.signal.sent_texts(PERSON)

    def new_for_person(self) -> list[str]:
        """What the person got since the last look."""
        texts = self.person_texts()
        out, self.seen = texts[self.seen:], len(texts)
        return out

    async def person_gets(self, count: int) -> list[str]:
        await self.signal.wait_for_send(PERSON, self.seen + count)
        return self.new_for_person()

    async def person(self, text: str, count: int) -> list[str]:
        """The person types ``text``; wait for ``count`` replies and return what came."""
        self.signal.person_sends(PERSON, text, source_name=NAME)
        return await self.person_gets(count)

    async def request(self) -> str:
        """Ask for an advocate through the bundled flow, typing as on Signal."""
        # A turn's replies come as one message, its parts a blank line apart; the numbered
        # choices end the message.
        [hello] = await self.person("hi", 1)
        assert parts(hello, "Hi, thanks for your message.",
                     "Is it safe for you to talk")[1].endswith("1. Yes\n2. Not now")
        [welcome] = await self.person("yes", 1)
        assert parts(welcome, "Here you can read", "Quick exit:", "On Signal, exit removes",
                     "What is kept:", "What would you like to do?")[-1] == MAIN_MENU
        [said] = await self.person("talk to a person", 1)
        assert parts(said, "A trained advocate can chat with you here.", "They only see",
                     "Replies can take a while")[2].endswith("1. Yes\n2. Not now")
        [said] = await self.person("1", 1)
        assert said.startswith("What would you like the advocate")
        [said] = await self.person(NOTE, 1)
        assert said.startswith("When is it usually safer")
        [said] = await self.person("evenings", 1)
        opened, _on_shift, _while_waiting, menu = parts(
            said, "Your request is in. Your case number is ",
            "Advocates are on shift now. You are number 1 in the queue.",
            "Anything you write here now goes to the advocate.", "What would you like to do?")
        assert menu == MAIN_MENU
        await self.tg.wait_until(lambda: bool(self.tg.topics(FORUM)), what="a topic")
        return opened.split("case number is ")[1][:4]

    # ---- the desk, on Telegram

    @property
    def topic(self) -> int:
        return int(next(iter(self.tg.topics(FORUM))))

    def topic_texts(self) -> list[str]:
        return [str(m.get("text")) for m in self.tg.bot_messages(FORUM)
                if m.get("message_thread_id") == self.topic]

    async def topic_gets(self, count: int) -> list[str]:
        """Wait for ``count`` new bot posts in the topic since the last look; return them."""
        want = self.topic_seen + count
        await self.tg.wait_until(lambda: len(self.topic_texts()) >= want,
                                 what=f"{want} posts in the topic")
        texts = self.topic_texts()
        out, self.topic_seen = texts[self.topic_seen:], len(texts)
        return out

    def card(self) -> dict[str, Any]:
        card_id = self.tg.bot_messages(FORUM)[0]["message_id"]
        card = self.tg.message(FORUM, card_id)
        assert card is not None
        return card

    async def claim(self, user: int) -> str:
        data = encode(Kind.CLAIM, "claim", self.card()["text"].split()[1])
        query = self.tg.person_presses(FORUM, self.card()["message_id"], data, user_id=user,
                                       strict=False)
        await self.tg.wait_until(lambda: query in self.tg.callback_answers,
                                 what="the answer to a press of Claim")
        return str(self.tg.callback_answers[query].get("text"))

    def advocate(self, text: str, user: int = ADVOCATE) -> None:
        self.tg.person_sends(FORUM, text, user_id=user, message_thread_id=self.topic,
                             first_name="Sam")


Starter = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Starter]:
    running: list[tuple[App, Store]] = []
    async with FakeSignalAPI() as signal, FakeBotAPI() as tg:

        async def build(**handoff: Any) -> Rig:
            settings = make_settings(
                tmp_path,
                handoff=Handoff(staff_chat=FORUM, advocates=[ADVOCATE, OTHER_ADVOCATE],
                                **handoff),
                delivery=Delivery(retry_first_seconds=0.05, retry_max_seconds=0.2))
            vault = Vault(SECRET)
            store = await Store.open(settings.db, vault)
            person_channel = RecordingSignal(SignalOptions(
                service=signal.service, number=signal.number, retry_first_seconds=0.05,
                retry_max_seconds=0.2, exit_reply_delete_after_seconds=0.1))
            desk_channel = TelegramChannel(TelegramOptions(
                token=TOKEN, api_url=tg.root, poll_timeout_seconds=1,
                exit_reply_delete_after_seconds=0.2, rate_limit=False))
            app = App(settings, load_flows(settings.flows), store, vault,
                      CatalogTranslator(settings.locales), [person_channel, desk_channel])
            service = install_telegram_desk(app, desk_channel)
            running.append((app, store))
            await app.start()
            await signal.wait_connected()
            return Rig(signal, tg, app, service, person_channel)

        yield build
        for app, store in running:
            await app.stop()
            await store.close()


async def eventually(probe: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 5.0) -> None:
    """Poll an async ``probe`` (every 20 ms) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def kept(rig: Rig, count: int) -> bool:
    return len(await rig.app.store.operations(rig.pid)) >= count


async def outbox_empty(rig: Rig) -> bool:
    return await rig.app.store.count_operations("send") == 0


def canaries(rig: Rig) -> list[str]:
    return [PERSON, PERSON.lstrip("+"), rig.uuid, rig.uuid.replace("-", ""), NAME]


# ------------------------------------------------------------------ the whole case


async def test_a_signal_person_requests_talks_and_is_closed_kindly(
    start: Starter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="helpline")
    rig = await start()
    handle = await rig.request()

    # The desk: a topic named by the handle and a card with only what the person shared.
    assert rig.tg.topics(FORUM)[rig.topic]["name"] == handle
    [card_text] = await rig.topic_gets(1)
    card = rig.card()
    assert card["text"] == card_text
    assert card_text.startswith(f"Case {handle}\nLanguage: English\nChannel: Signal\n")
    assert NOTE in card_text and "evenings" in card_text
    for secret in canaries(rig):
        assert secret not in card_text, secret
    assert card["reply_markup"]["inline_keyboard"][0][0]["text"] == "Claim"

    # Written before anyone claimed: queued in the topic.
    rig.signal.person_sends(PERSON, "Are you there?", source_name=NAME)
    assert await rig.topic_gets(1) == ["Person: Are you there?"]

    # Someone not on the list cannot claim; an advocate on the list can.
    assert await rig.claim(STRANGER) == "Only advocates on the list can do that."
    assert "reply_markup" in rig.card() and rig.new_for_person() == []
    assert await rig.claim(ADVOCATE) == "You have this case."
    assert await rig.person_gets(1) == [CLAIMED]
    assert await rig.topic_gets(1) == ["Claimed by advocate 111."]
    await rig.tg.wait_until(lambda: "Claimed by advocate 111." in rig.card()["text"])
    assert "reply_markup" not in rig.card()
    assert await rig.claim(OTHER_ADVOCATE) == "This case is already claimed."

    # Several messages both ways, in order; the advocate's go to the person's UUID.
    rig.advocate("Hi, I'm Sam. I'm here.")
    assert await rig.person_gets(1) == ["Advocate: Hi, I'm Sam. I'm here."]
    for text in ("Thank you", "I don't know where to start", "He took my phone once"):
        rig.signal.person_sends(PERSON, text, source_name=NAME)
    assert await rig.topic_gets(3) == [
        "Person: Thank you", "Person: I don't know where to start",
        "Person: He took my phone once"]
    for text in ("That sounds really hard.", "We can go at your pace.", "Is now a safe time?"):
        rig.advocate(text)
    assert await rig.person_gets(3) == [
        "Advocate: That sounds really hard.", "Advocate: We can go at your pace.",
        "Advocate: Is now a safe time?"]
    assert {tuple(b["recipients"]) for b in rig.signal.sends_to(PERSON)} == {(rig.uuid,)}
    rig.signal.person_sends(PERSON, "yes, for an hour", source_name=NAME)
    assert await rig.topic_gets(1) == ["Person: yes, for an hour"]

    # A note stays on the desk; another advocate's message is not sent (they are told).
    rig.advocate("! she sounds scared, going slowly")
    rig.advocate("I can also write to her", user=OTHER_ADVOCATE)
    [refused] = await rig.topic_gets(1)
    assert refused.startswith("Only the advocate who claimed this case can write")
    rig.advocate("Thank you for telling me.")
    # The next thing the person gets is this, so neither message before it was relayed.
    assert await rig.person_gets(1) == ["Advocate: Thank you for telling me."]
    assert not any("scared" in t or "also write" in t for t in rig.person_texts())

    # /close: the person is told kindly and has the menu again; the topic closes.
    rig.advocate("/close")
    said = await rig.person_gets(2)
    assert said[0].startswith("The advocate has closed this chat. Thank you for talking")
    assert said[1] == MAIN_MENU
    assert await rig.topic_gets(1) == [
        "Closed by advocate 111. The person was told and has the menu again."]
    await rig.tg.wait_until(lambda: "Closed." in rig.card()["text"]
                            and bool(rig.tg.topics(FORUM)[rig.topic]["closed"]))
    assert [e for e, _, _ in await rig.service.cases.events(1)] == [
        "opened", "claimed", "closed"]
    closed = await rig.service.cases.get(1)
    assert closed is not None and closed.pid == "" and closed.summary == {}
    # Typed text goes to the flows again, not to the desk.
    [menu] = await rig.person("1", 1)
    assert parts(menu, "This bot cannot send help", "If you are in danger",
                 "An advocate is a person")
    assert rig.topic_texts()[-1].startswith("Closed by advocate")

    # Nothing about who talked or what they said in the file or the logs.
    db = tmp_path / "helpline.db"
    raw = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    logged = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    for secret in [*canaries(rig), NOTE, "He took my phone once", "Sam. I'm here"]:
        assert secret.encode() not in raw, secret
        assert secret not in logged, secret
    assert any(r.name.startswith("helpline.handoff") for r in caplog.records)


# ------------------------------------------------------------------ quick exit mid-case


async def test_quick_exit_from_signal_mid_case(start: Starter) -> None:
    rig = await start()
    await rig.request()
    await rig.topic_gets(1)  # the card
    assert await rig.claim(ADVOCATE) == "You have this case."
    assert await rig.person_gets(1) == [CLAIMED]
    rig.advocate("Hello, I'm here.")
    assert await rig.person_gets(1) == ["Advocate: Hello, I'm here."]
    rig.signal.person_sends(PERSON, "I'm scared he will see this", source_name=NAME)
    assert (await rig.topic_gets(2))[-1] == "Person: I'm scared he will see this"

    sent = list(rig.channel.sent_ids)
    # One message a turn of the request (6), then the notice of the claim and the advocate's.
    assert len(sent) == len(rig.person_texts()) == 8
    rig.signal.person_sends(PERSON, "exit", source_name=NAME)
    # The desk is told only that the person left ...
    assert await rig.topic_gets(1) == [PERSON_LEFT]
    await rig.tg.wait_until(lambda: "Closed." in rig.card()["text"]
                            and bool(rig.tg.topics(FORUM)[rig.topic]["closed"]))
    assert not any("exit" in t for t in rig.topic_texts())
    # ... and every message the bot sent the person (the advocate's too) is remote-deleted.
    deletes = await rig.signal.wait_for(f"DELETE /v1/remote-delete/{rig.signal.number}",
                                        count=len(sent))
    assert sorted(d.json_body["timestamp"] for d in deletes) == sorted(int(i) for i in sent)
    assert {d.json_body["recipient"] for d in deletes} == {rig.uuid}
    assert all(d.status == 201 for d in deletes)
    assert rig.new_for_person() == []  # no reply to exit
    assert await rig.service.cases.open_for(rig.pid) is None
    assert [e for e, _, _ in await rig.service.cases.events(1)][-1] == "person_left"

    # Later topic messages are not relayed; the desk says so.
    rig.advocate("Are you still there?")
    assert await rig.topic_gets(1) == [IS_CLOSED]
    assert rig.new_for_person() == []
    assert await rig.app.store.operations(rig.pid) == []


# ------------------------------------------------------------------ a bridge outage


async def test_a_signal_bridge_outage_mid_relay_loses_nothing_and_keeps_order(
    start: Starter,
) -> None:
    rig = await start()
    await rig.request()
    await rig.topic_gets(1)
    await rig.claim(ADVOCATE)
    assert await rig.person_gets(1) == [CLAIMED]
    rig.advocate("Before the outage")
    assert await rig.person_gets(1) == ["Advocate: Before the outage"]
    assert await rig.topic_gets(1) == ["Claimed by advocate 111."]

    await rig.signal.go_down()
    words = ["one", "two", "three", "four"]
    for word in words:
        rig.advocate(word)
    # All four are kept in the person's outbox while the bridge is down.
    await rig.tg.wait_confirmed()
    await eventually(lambda: kept(rig, len(words)), "the advocate's messages kept")
    assert rig.new_for_person() == []
    rig.signal.person_sends(PERSON, "are you still there?", source_name=NAME)

    await rig.signal.come_back()
    assert await rig.person_gets(len(words)) == [f"Advocate: {w}" for w in words]
    # What the person wrote while the bridge was down reaches the topic after it is back.
    assert await rig.topic_gets(1) == ["Person: are you still there?"]
    rig.advocate("After the outage")
    assert await rig.person_gets(1) == ["Advocate: After the outage"]
    await eventually(lambda: outbox_empty(rig), "an empty outbox")
    assert not any("can't be reached" in t for t in rig.topic_texts())


# ------------------------------------------------------------------ a person gone from Signal


async def test_a_person_gone_from_signal_is_reported_to_the_desk_at_once(
    start: Starter,
) -> None:
    rig = await start()
    await rig.request()
    await rig.topic_gets(1)
    await rig.claim(ADVOCATE)
    assert await rig.person_gets(1) == [CLAIMED]
    assert await rig.topic_gets(1) == ["Claimed by advocate 111."]
    rig.signal.fail_sends(1, status=400, error="Failed to send message: Unregistered user")
    rig.advocate("Are you safe?")
    # The very message that found the person gone is reported, not only the ones after it.
    assert await rig.topic_gets(1) == ["The person can't be reached on their app any more."]
    assert rig.new_for_person() == []
    assert await rig.app.store.operations(rig.pid) == []


async def test_a_menu_number_typed_mid_case_opens_the_flow_not_the_desk(start: Starter) -> None:
    # On Signal the menu is a numbered list: "1" (help right now) while waiting for an
    # advocate must give the emergency numbers, not go to the desk as "Person: 1".
    rig = await start()
    await rig.request()
    await rig.topic_gets(1)  # the card
    [said] = await rig.person("1", 1)
    cannot, numbers, _next = parts(said, "This bot cannot send help",
                                   "If you are in danger", "An advocate is a person")
    assert cannot == "This bot cannot send help or call anyone for you."
    assert "112" in numbers and "0800 000 000" in numbers
    assert said.endswith("1. Talk to a person\n2. Safety tips\n3. Back to the main menu")
    assert await rig.person("3", 1) == [MAIN_MENU]  # back to the menu
    rig.signal.person_sends(PERSON, "I am still here", source_name=NAME)
    assert await rig.topic_gets(1) == ["Person: I am still here"]
    assert not any(t == "Person: 1" for t in rig.topic_texts())


async def test_a_shift_that_ends_before_the_handoff_is_one_signal_message_a_turn(
    start: Starter,
) -> None:
    """On Signal the desk's question is a numbered list at the end of the one message, in
    place of the menu; typing its number answers it, and the menu comes with the answer."""
    from helpline.handoff.office_hours import OfficeHours

    rig = await start()
    await rig.person("hi", 1)
    await rig.person("yes", 1)
    await rig.person("talk to a person", 1)
    await rig.person("1", 1)
    await rig.person(NOTE, 1)
    rig.service.hours = OfficeHours(["mon 00:00-00:01"], [], "UTC")  # the shift ends
    [asked] = await rig.person("evenings", 1)
    _off, numbers, question = parts(asked, "No advocates are on shift right now.",
                                    "If you are in danger", "Would you like to leave a message")
    assert "0800 000 000" in numbers
    assert question.endswith("\n1. Yes, leave a message\n2. No, thanks")
    [done] = await rig.person("1", 1)
    left, menu = parts(done, "Your message is in. Your case number is ",
                       "What would you like to do?")
    assert menu == MAIN_MENU.replace("4. Talk to a person", "4. Leave a message for an advocate")
    assert rig.new_for_person() == []  # one message each turn, nothing after it
    [card, wants] = await rig.topic_gets(2)
    assert card.startswith(f"Case {left.split('case number is ')[1][:4]}\n") and NOTE in card
    assert wants == "The person would like a reply when an advocate is on shift."
