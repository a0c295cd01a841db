"""The Signal channel end to end: the real App (temporary SQLite file, bundled flows), the
SignalChannel and the real signalbot code it uses, against the loopback fake of
signal-cli-rest-api. Backoffs are short so outages take a fraction of a second."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpline.app import App
from helpline.channels.base import Capabilities
from helpline.channels.signal import SignalChannel, SignalOptions
from helpline.config import ConfigError, Settings, load_settings
from helpline.errors import Unreachable
from helpline.events import Inbound, RawInbound
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.serve import build_channels
from helpline.state import State
from helpline.store import Store
from tests.conftest import SECRET, Harness, eventually, make_settings
from tests.fakes.signal_cli_api import RATE_LIMIT_RETRY, Call, FakeSignalAPI

# NANP 555-01xx numbers are reserved for fiction and pass phonenumbers validation.
PERSON = "+12025550123"
OTHER = "+12025550145"

HELLO = "Hi, thanks for your message."
SAFE_NOW = "Is it safe for you to talk right now?\n1. Yes\n2. Not now"
# A turn's replies go out as one Signal message, a blank line between them (events.combined).
GREETING = f"{HELLO}\n\n{SAFE_NOW}"
MAIN_MENU = (
    "What would you like to do?\nType exit at any time to clear this chat.\n"
    "1. I need help right now\n2. Staying safe\n3. Find a service (none listed yet)\n"
    "4. Talk to a person (not available)\n5. Check in with me later"
)  # no directory imported and no advocate desk here: the menu says so
SIGNAL_NOTE = "On Signal, exit removes my recent messages but not yours."
TIPS_MENU = (
    "What would you like to look at?\n1. Keeping your phone private\n"
    "2. Making this chat disappear\n3. Planning for a safe moment\n"
    "4. When it is safe to get a message\n5. Back to the main menu"
)
TIMER_MENU_END = "When should they disappear?\n1. After a day\n2. After a week\n3. Keep it as it is"
TEXT_ONLY = "I can only read text messages here."


@dataclass
class Rig:
    api: FakeSignalAPI
    app: App
    channel: SignalChannel
    store: Store

    async def say(self, text: str, count: int, number: str = PERSON, **kw: Any) -> list[str]:
        """Send as the person; wait for ``count`` replies and return them."""
        before = len(self.api.sent_texts(number))
        self.api.person_sends(number, text, **kw)
        return await self.replies(before, count, number)

    async def replies(self, before: int, count: int, number: str = PERSON) -> list[str]:
        await self.api.wait_for_send(number, before + count)
        await asyncio.sleep(0.05)  # nothing more should come
        texts = self.api.sent_texts(number)
        assert len(texts) == before + count, texts[before:]
        return texts[before:]

    def pid(self, number: str = PERSON) -> str:
        return self.app.vault.pseudonym("signal", self.api.uuid_of(number))


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalAPI]:
    async with FakeSignalAPI() as fake:
        yield fake


@pytest.fixture
async def make_rig(api: FakeSignalAPI, tmp_path: Path) -> AsyncIterator[RigFactory]:
    built: list[Rig] = []

    async def build(settings: Settings | None = None, connect: bool = True,
                    **options: Any) -> Rig:
        settings = settings or make_settings(tmp_path)
        vault = Vault(SECRET)
        store = await Store.open(settings.db, vault)
        opts = {"retry_first_seconds": 0.05, "retry_max_seconds": 0.4,
                "exit_reply_delete_after_seconds": 0.1, **options}
        channel = SignalChannel(SignalOptions(service=api.service, number=api.number, **opts))
        app = App(settings, load_flows(settings.flows), store, vault,
                  CatalogTranslator(settings.locales), [channel])
        rig = Rig(api, app, channel, store)
        built.append(rig)
        await app.start()
        if connect:
            await api.wait_connected()
        return rig

    yield build
    for rig in built:
        await rig.app.stop()
        await rig.store.close()


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()


def calls(api: FakeSignalAPI, method: str, path: str) -> list[Call]:
    return [c for c in api.calls if c.method == method and c.path == path]


def parts(text: str) -> list[str]:
    """The replies one send carries, in order (they are joined with a blank line)."""
    return text.split("\n\n")


# ------------------------------------------------------------------ a conversation


async def test_a_person_talks_with_numbered_lists_by_number_and_by_words(rig: Rig) -> None:
    assert await rig.say("hi", 1) == [GREETING]
    [sent] = await rig.say("1", 1)
    welcome = parts(sent)
    assert len(welcome) == 5, welcome
    assert welcome[0].startswith("Here you can read safety tips")
    assert welcome[1].startswith("Quick exit: type exit at any time")
    assert welcome[2].startswith(SIGNAL_NOTE)
    assert "delete this chat from your chat list" in welcome[2]
    assert welcome[3].startswith("What is kept:")
    assert welcome[4] == MAIN_MENU

    [sent] = await rig.say("2", 1)
    tips = parts(sent)
    assert len(tips) == 2, tips
    assert tips[0].startswith("Here are some ideas")
    assert tips[1] == TIPS_MENU
    assert await rig.say("back to the MAIN menu", 1) == [MAIN_MENU]
    # The words work too, whatever the case and accents.
    assert parts((await rig.say("  sTaYiNg SÄFÉ ", 1))[0])[1:] == [TIPS_MENU]

    # Replies go to the sender's uuid, as plain text.
    person_uuid = rig.api.uuid_of(PERSON)
    bodies = rig.api.sends_to(PERSON)
    assert {tuple(b["recipients"]) for b in bodies} == {(person_uuid,)}
    assert all(b["number"] == rig.api.number for b in bodies)


async def test_two_messages_sent_back_to_back_are_answered_in_order(rig: Rig) -> None:
    rig.api.person_sends(PERSON, "hi")
    rig.api.person_sends(PERSON, "yes")
    texts = await rig.replies(0, 2)
    assert texts[0] == GREETING
    welcome = parts(texts[1])
    assert len(welcome) == 5, welcome
    assert welcome[0].startswith("Here you can read safety tips")
    assert welcome[2].startswith(SIGNAL_NOTE)
    assert welcome[4] == MAIN_MENU


async def test_people_are_answered_separately(rig: Rig) -> None:
    rig.api.person_sends(PERSON, "hi")
    rig.api.person_sends(OTHER, "hello")
    assert await rig.replies(0, 1, PERSON) == [GREETING]
    assert await rig.replies(0, 1, OTHER) == [GREETING]
    assert rig.pid(PERSON) != rig.pid(OTHER)


async def test_a_turn_is_one_message_unless_combine_replies_is_off(
    api: FakeSignalAPI, make_rig: RigFactory, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, db=tmp_path / "separate.db")
    separate = await make_rig(settings.model_copy(update={
        "delivery": settings.delivery.model_copy(update={"combine_replies": False})}))
    assert await separate.say("hi", 2) == [HELLO, SAFE_NOW]
    steps = await separate.say("yes", 5)
    assert steps[0].startswith("Here you can read safety tips")
    assert steps[2].startswith(SIGNAL_NOTE)
    assert steps[-1] == MAIN_MENU
    assert not any("\n1. " in step for step in steps[:-1])  # the list is on the last only
    await separate.app.stop()
    await api.wait_until(lambda: api.connected == 0, what="the first app disconnected")

    settings = make_settings(tmp_path, db=tmp_path / "joined.db")
    assert settings.delivery.combine_replies  # the default
    joined = await make_rig(settings)
    assert await joined.say("hi", 1) == [f"{HELLO}\n\n{SAFE_NOW}"]
    [turn] = await joined.say("yes", 1)
    assert turn == "\n\n".join(steps)  # the same parts, in order, a blank line between
    assert turn.endswith(f"\n\n{MAIN_MENU}")  # the numbered list at the end
    assert len(api.sends_to(PERSON)) == 2 + 5 + 1 + 1


async def test_group_messages_are_ignored(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    group = rig.api.add_group("Peer support", members=[PERSON, OTHER])
    rig.api.person_sends(PERSON, "hi all", group_id=group.id)
    rig.api.person_types(PERSON, group_id=group.id)
    assert await rig.say("hi", 1) == [GREETING]
    assert rig.api.sends_to(group.id) == []
    assert "ignored a group message" in caplog.messages
    assert calls(rig.api, "PUT", f"/v1/contacts/{rig.api.number}")[0].json_body["recipient"] \
        == rig.api.uuid_of(PERSON)  # only the 1:1 chat was set up


async def test_attachments_and_stickers_without_text_get_the_text_only_answer(rig: Rig) -> None:
    await rig.say("hi", 1)
    before = len(rig.api.sent_texts(PERSON))
    rig.api.person_sends_attachment(PERSON, b"\x89PNG not really")
    assert await rig.replies(before, 1) == [f"{TEXT_ONLY}\n1. Yes\n2. Not now"]

    sticker = rig.api.envelope(PERSON, dataMessage={
        "timestamp": rig.api.next_timestamp(), "message": None,
        "sticker": {"packId": "abc", "stickerId": 3}})
    rig.api.push_envelope(sticker)
    assert await rig.replies(before + 1, 1) == [f"{TEXT_ONLY}\n1. Yes\n2. Not now"]

    # With text, the text counts and the file is left alone (never downloaded).
    rig.api.person_sends_attachment(PERSON, b"\x89PNG", text="1")
    [welcome] = await rig.replies(before + 2, 1)
    assert parts(welcome)[0].startswith("Here you can read safety tips")
    assert parts(welcome)[-1] == MAIN_MENU
    assert not [c for c in rig.api.calls if c.path.startswith("/v1/attachments")]


async def test_noise_and_garbage_never_block_later_messages(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = rig.api
    [hello_ts] = [int(b) for b in await sent_ids(rig, lambda: rig.say("hi", 1))]
    person_uuid = api.uuid_of(PERSON)
    api.person_reacts(PERSON, "❤️", hello_ts)
    api.person_types(PERSON)
    api.person_types(PERSON, started=False)
    api.receipt(PERSON, [hello_ts])
    api.receipt(PERSON, [hello_ts], kind="delivery")
    earlier = api.next_timestamp()
    api.person_edits(PERSON, "1", earlier)  # an edit is not a new answer
    api.person_deletes(PERSON, earlier)
    api.push_envelope("this is not json")
    api.push_envelope("{")
    frame: object
    for frame in ([], 42, None, "text", {"error": "signal-cli: connection lost"},
                  {"envelope": "nope"}, {"envelope": {"dataMessage": {"message": "no ts"}}},
                  {"envelope": {"source": PERSON, "timestamp": 1, "dataMessage": [1]}}):
        api.push_envelope(json.dumps(frame))
    # No sender of the right type; a text that is not a string.
    nobody = api.envelope(PERSON, dataMessage={"timestamp": 5, "message": "from nobody"})
    nobody["envelope"].update(source=5, sourceNumber=None, sourceUuid=["x"])
    api.push_envelope(nobody)
    api.push_envelope(api.envelope(PERSON, dataMessage={"timestamp": 5, "message": 5}))
    api.push_envelope(api.envelope(PERSON, dataMessage={
        "timestamp": 6, "message": None, "isExpirationUpdate": True, "expiresInSeconds": 60}))
    api.push_envelope(api.envelope(PERSON, callMessage={"offerMessage": {"id": 1}}))
    api.push_envelope(api.envelope(api.number, syncMessage={"sentMessage": {
        "timestamp": 7, "message": "sent from the bot's own phone",
        "destination": PERSON, "destinationNumber": PERSON, "destinationUuid": person_uuid}}))
    api.push_envelope(api.envelope(PERSON, syncMessage={"readMessages": []}))

    [welcome] = await rig.say("yes", 1)
    assert parts(welcome)[-1] == MAIN_MENU
    assert api.sent_texts(PERSON) == [GREETING, welcome]  # nothing answered the noise
    assert api.ws_connections == 1 and api.pending == 0
    assert any(m.startswith("skipped a frame that could not be read") for m in caplog.messages)


async def sent_ids(rig: Rig, action: Callable[[], Awaitable[object]]) -> list[str]:
    """The platform ids that ``rig.channel.send`` returned while ``action`` ran."""
    ids: list[str] = []
    send = rig.channel.send

    async def spy(address: str, message: Any) -> list[str]:
        got = await send(address, message)
        ids.extend(got)
        return got

    rig.channel.send = spy  # type: ignore[method-assign]
    try:
        await action()
    finally:
        del rig.channel.send
    return ids


async def first_two_replies(rig: Rig) -> list[str]:
    """The person says hi and yes; the platform ids of the bot's two replies."""
    async def talk() -> None:
        await rig.say("hi", 1)
        await rig.say("yes", 1)

    ids = await sent_ids(rig, talk)
    assert len(ids) == 2
    return ids


def with_exit_reply(settings: Settings, text: str = "OK.") -> Settings:
    """Quick exit answers with one neutral line (``commands.quick_exit_reply``)."""
    return settings.model_copy(update={"commands": settings.commands.model_copy(
        update={"quick_exit_reply": text})})


# ------------------------------------------------------------------ quick exit


async def test_quick_exit_remote_deletes_the_bot_messages_and_clears_state(rig: Rig) -> None:
    api = rig.api

    async def talk() -> None:
        await rig.say("hi", 1)
        await rig.say("1", 1)
        await rig.say("2", 1)

    ids = await sent_ids(rig, talk)
    assert len(ids) == 3 and len(set(ids)) == 3
    person = await rig.store.person(rig.pid())
    assert person is not None and person.state.stack

    api.person_sends(PERSON, "EXIT")
    deletes = await api.wait_for(f"DELETE /v1/remote-delete/{api.number}", count=3)
    await asyncio.sleep(0.05)
    assert len(calls(api, "DELETE", f"/v1/remote-delete/{api.number}")) == 3
    assert sorted(d.json_body["timestamp"] for d in deletes) == sorted(int(i) for i in ids)
    assert {d.json_body["recipient"] for d in deletes} == {api.uuid_of(PERSON)}
    assert all(d.status == 201 for d in deletes)
    assert len(api.sent_texts(PERSON)) == 3  # no reply to exit

    person = await rig.store.person(rig.pid())
    assert person is not None and person.state == State(turn=person.state.turn)
    assert await rig.store.message_ids(rig.pid(), 0) == []
    assert await rig.store.operations(rig.pid()) == []
    # Starting over works, and the first-contact set-up is not repeated.
    assert await rig.say("hi", 1) == [GREETING]
    assert len(calls(api, "PUT", f"/v1/contacts/{api.number}")) == 1


async def test_failed_deletes_are_reported_and_a_failed_timer_raises(rig: Rig) -> None:
    api = rig.api
    person_uuid = api.uuid_of(PERSON)

    ids = await first_two_replies(rig)
    await api.go_down()
    # The channel says which deletes failed (the app keeps them) and never raises.
    assert sorted(await rig.channel.delete(person_uuid, [*ids, "not-a-number"])) == sorted(ids)
    with pytest.raises(Unreachable):  # the app keeps the timer queued and tries again
        await rig.channel.set_disappearing(person_uuid, 604800)


async def test_a_timer_queued_while_the_bridge_is_down_is_set_before_the_reply(
        make_rig: RigFactory) -> None:
    rig = await make_rig()
    api = rig.api
    person_uuid = api.uuid_of(PERSON)
    await api.go_down()
    # A first contact handled while the bridge is down: the day timer and the greeting
    # are queued together, the timer first.
    await rig.app.handle(RawInbound("signal", person_uuid, person_uuid,
                                    Inbound(kind="text", at=0.0, text="hi")))
    assert await rig.store.count_operations("timer") == 1
    api.reset()
    await api.come_back()
    await api.wait_for_send(PERSON, 1)
    done = [c for c in api.calls if c.path in (f"/v1/contacts/{api.number}", "/v2/send")
            and c.status is not None and c.status < 300]
    assert [c.path for c in done][:2] == [f"/v1/contacts/{api.number}", "/v2/send"]
    assert done[0].json_body == {"recipient": person_uuid, "expiration_in_seconds": 86400}
    await eventually(lambda: rig.store.count_operations(), 0)


async def test_a_quick_exit_while_the_bridge_is_down_deletes_after_a_restart(
    make_rig: RigFactory, tmp_path: Path,
) -> None:
    rig = await make_rig()
    api = rig.api
    person_uuid = api.uuid_of(PERSON)

    ids = await first_two_replies(rig)
    await api.go_down()
    # A quick exit the app handles while the bridge is down (it had just come in) ...
    await rig.app.handle(RawInbound("signal", person_uuid, person_uuid,
                                    Inbound(kind="text", at=0.0, text="exit")))
    assert calls(api, "DELETE", f"/v1/remote-delete/{api.number}") == []
    assert await rig.store.count_operations("delete") == 1
    # ... survives a restart: the kept deletes go out when the new process sees the bridge.
    await rig.app.stop()
    await rig.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("helpline.db*"))
    assert person_uuid.encode() not in raw and all(i.encode() not in raw for i in ids)
    rig = await make_rig(connect=False)
    api.reset()
    await api.come_back()
    retried = await api.wait_for(f"DELETE /v1/remote-delete/{api.number}", count=2)
    assert sorted(d.json_body["timestamp"] for d in retried) == sorted(int(i) for i in ids)
    assert {d.json_body["recipient"] for d in retried} == {person_uuid}
    await asyncio.sleep(0.05)
    assert len(calls(api, "DELETE", f"/v1/remote-delete/{api.number}")) == 2  # done with
    assert await rig.store.count_operations("delete") == 0


async def test_a_neutral_exit_reply_is_removed_after_a_moment(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    settings = with_exit_reply(make_settings(tmp_path))
    rig = await make_rig(settings)
    [hello] = await sent_ids(rig, lambda: rig.say("hi", 1))
    ids = await sent_ids(rig, lambda: rig.say("exit", 1))
    assert rig.api.sent_texts(PERSON)[-1] == "OK."
    deletes = await rig.api.wait_for(f"DELETE /v1/remote-delete/{rig.api.number}", count=2)
    assert deletes[0].json_body["timestamp"] == int(hello)
    assert deletes[-1].json_body["timestamp"] == int(ids[0])


async def test_a_neutral_exit_reply_is_removed_after_an_outage_and_a_restart(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    settings = with_exit_reply(make_settings(tmp_path))
    rig = await make_rig(settings, exit_reply_delete_after_seconds=0.3)
    api = rig.api
    person_uuid = api.uuid_of(PERSON)
    await rig.say("hi", 1)
    [reply] = await sent_ids(rig, lambda: rig.say("exit", 1))
    assert api.sent_texts(PERSON)[-1] == "OK."
    # The reply's delete is written down with its delivery, before it is due ...
    assert await rig.store.count_operations("delete") == 1
    await api.go_down()
    await rig.app.stop()  # ... and the bridge and the bot are gone before it is due.
    await rig.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("helpline.db*"))
    assert person_uuid.encode() not in raw and reply.encode() not in raw
    await asyncio.sleep(0.3)
    rig = await make_rig(settings, connect=False, exit_reply_delete_after_seconds=0.3)
    api.reset()
    await api.come_back()
    [delete] = await api.wait_for(f"DELETE /v1/remote-delete/{api.number}")
    assert delete.json_body == {"recipient": person_uuid, "timestamp": int(reply)}
    await asyncio.sleep(0.05)
    assert await rig.store.count_operations("delete") == 0


# ------------------------------------------------------------------ disappearing messages


async def test_first_contact_sets_a_day_and_safety_tips_can_set_a_week(rig: Rig) -> None:
    api = rig.api
    contacts = f"/v1/contacts/{api.number}"
    await rig.say("hi", 1)
    [first] = calls(api, "PUT", contacts)
    assert first.json_body == {"recipient": api.uuid_of(PERSON), "expiration_in_seconds": 86400}
    assert first.status == 204

    await rig.say("yes", 1)
    await rig.say("staying safe", 1)
    offer = await rig.say("Making this chat disappear", 1)
    assert offer[0].startswith("I can make new messages in this chat disappear")
    assert offer[0].endswith(TIMER_MENU_END)
    done = await rig.say("2", 1)
    assert done == [f"New messages here will now disappear after a week.\n\n{TIPS_MENU}"]
    assert [c.json_body for c in calls(api, "PUT", contacts)][1:] == [
        {"recipient": api.uuid_of(PERSON), "expiration_in_seconds": 604800}]

    await rig.say("2", 1)
    assert await rig.say("keep it as it is", 1) == [f"OK, nothing has changed.\n\n{TIPS_MENU}"]
    assert len(calls(api, "PUT", contacts)) == 2


async def test_no_default_timer_when_it_is_set_to_zero(make_rig: RigFactory) -> None:
    rig = await make_rig(disappearing_seconds=0)
    await rig.say("hi", 1)
    assert calls(rig.api, "PUT", f"/v1/contacts/{rig.api.number}") == []


async def test_other_channels_keep_the_auto_delete_tip(harness: Harness) -> None:
    await harness.send("hi")
    await harness.send("yes")
    await harness.send("2")
    [tip, _menu] = await harness.send("2")
    assert tip.text.startswith("Making this chat disappear:")
    assert not any("On Signal" in m.text for _, m in harness.channel.sent)
    assert harness.channel.disappearing is None


# ------------------------------------------------------------------ a fragile bridge


async def test_bridge_down_mid_conversation_loses_no_reply_and_keeps_order(rig: Rig) -> None:
    api = rig.api
    await rig.say("hi", 1)
    # The person's answer arrives, then the bridge fails to send and goes down.
    api.fail_sends(1, status=503)
    api.person_sends(PERSON, "yes")
    await api.wait_for(lambda c: c.path == "/v2/send" and c.status == 503)
    await api.go_down()
    await asyncio.sleep(0.3)
    assert len(api.sent_texts(PERSON)) == 1
    # Back up: the kept replies go out by themselves (on_ready), in order.
    await api.come_back()
    [sent] = await rig.replies(1, 1)
    kept = parts(sent)
    assert len(kept) == 5, kept
    assert kept[0].startswith("Here you can read safety tips")
    assert kept[2].startswith(SIGNAL_NOTE)
    assert kept[4] == MAIN_MENU

    # Down again; what the person writes meanwhile is answered after it, in order.
    await api.go_down("http_503")
    api.person_sends(PERSON, "2")
    api.person_sends(PERSON, "5")  # back to the main menu
    await asyncio.sleep(0.2)
    await api.come_back()
    later = await rig.replies(2, 2)
    tips = parts(later[0])
    assert len(tips) == 2, tips
    assert tips[0].startswith("Here are some ideas")
    assert [tips[1], later[1]] == [TIPS_MENU, MAIN_MENU]
    assert await rig.store.operations() == []


async def test_down_at_start_then_up(
    api: FakeSignalAPI, make_rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await api.go_down()
    rig = await make_rig(connect=False)  # start() does not fail
    await asyncio.sleep(0.3)
    assert any(m.startswith("signal bridge is not reachable") for m in caplog.messages)
    api.person_sends(PERSON, "hi")
    await api.come_back()
    assert await rig.replies(0, 1) == [GREETING]
    assert "signal bridge reachable again" in caplog.messages


@pytest.mark.parametrize("clean", [False, True])
async def test_a_dropped_or_closed_websocket_reconnects(rig: Rig, clean: bool) -> None:
    await rig.say("hi", 1)
    await rig.api.drop_websockets(clean=clean)
    await rig.api.wait_connected(total=2)
    assert parts((await rig.say("yes", 1))[0])[-1] == MAIN_MENU


async def test_an_unregistered_person_is_marked_unreachable(rig: Rig) -> None:
    await rig.say("hi", 1)
    rig.api.fail_sends(1, status=400, error="Failed to send message: Unregistered user")
    rig.api.person_sends(PERSON, "yes")
    await rig.api.wait_for(lambda c: c.path == "/v2/send" and c.status == 400)
    await asyncio.sleep(0.05)
    person = await rig.store.person(rig.pid())
    assert person is not None and person.unreachable
    assert await rig.store.operations() == []


async def test_both_send_answer_shapes_give_the_timestamp(rig: Rig) -> None:
    rig.api.send_response = "list"
    ids = await sent_ids(rig, lambda: rig.say("hi", 1))
    rig.api.send_response = "object"
    ids += await sent_ids(rig, lambda: rig.say("yes", 1))
    assert all(i.isdigit() for i in ids) and len(ids) == 2 and len(set(ids)) == 2


# ------------------------------------------------------------------ privacy


async def test_no_number_uuid_name_or_text_in_the_db_file_or_any_log(
    make_rig: RigFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rig = await make_rig()
    levels = _all_loggers_at_debug()
    caplog.set_level(logging.DEBUG)
    try:
        name = "Quillon Vexworth"
        note = "canary-note: my boss keeps my passport at 14 Elm Street"
        kw = {"source_name": name}

        async def on_shift(turn: object) -> bool:  # the advocate flow's note is free text
            return True

        rig.app.facts["advocates"] = on_shift
        await rig.say("hi", 1, **kw)
        await rig.say("yes", 1, **kw)
        await rig.say("Talk to a person", 1, **kw)
        assert (await rig.say("1", 1, **kw))[0].startswith("What would you like the advocate")
        assert (await rig.say(note, 1, **kw))[0].startswith("When is it usually safer")
        await rig.say("3", 1, **kw)
        rig.api.person_sends_attachment(PERSON, b"secret picture", text=None, **kw)
        await rig.replies(6, 1)
        group = rig.api.add_group("Peers", members=[PERSON])
        rig.api.person_sends(PERSON, note, group_id=group.id, **kw)
        rig.api.push_envelope({"error": note})
        rig.api.push_envelope(json.dumps({"envelope": {"dataMessage": {"message": note}}}))
        assert (await rig.say("menu", 1, **kw)) == [MAIN_MENU.replace(" (not available)", "")]
    finally:
        for logger, level in levels:
            logger.setLevel(level)

    person_uuid = rig.api.uuid_of(PERSON)
    canaries = [PERSON, PERSON.lstrip("+"), person_uuid, person_uuid.replace("-", ""), note,
                "14 Elm Street", name]
    db = Path(rig.app.settings.db)
    raw = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    assert raw, "the database file should exist"
    logged = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    printed = capsys.readouterr()
    for canary in canaries:
        assert canary.encode() not in raw, canary
        assert canary not in logged, canary
        assert canary not in printed.out + printed.err, canary
    assert caplog.records, "the logs should not be empty"


def _all_loggers_at_debug() -> Sequence[tuple[logging.Logger, int]]:
    """Every logger that exists now at DEBUG (for the canary check); returns the old levels."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    old = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    return old


# ------------------------------------------------------------------ configuration


def test_helpline_run_builds_the_signal_channel_from_the_environment() -> None:
    settings = load_settings(environ={"HELPLINE_SIGNAL_SERVICE": "127.0.0.1:8080",
                                      "HELPLINE_SIGNAL_NUMBER": "+15550000001"})
    [channel] = build_channels(settings)
    assert isinstance(channel, SignalChannel)
    assert channel.name == "signal"
    assert channel.capabilities == Capabilities(buttons=False, deletes_inbound=False,
                                                delete_window_hours=24, disappearing=True,
                                                max_text=2000, split_at=2000,
                                                text_unit="utf8")
    assert channel.options.disappearing_seconds == 86400
    assert build_channels(load_settings(environ={"HELPLINE_SIGNAL_SERVICE": "x:1"})) == []


@pytest.mark.parametrize(("service", "number", "wrong"), [
    ("127.0.0.1", "+15550000001", "signal.service"),
    ("http://127.0.0.1:8080/v1", "+15550000001", "signal.service"),
    ("127.0.0.1:8080", "15550000001", "signal.number"),
    ("127.0.0.1:8080", "+1 555 000", "signal.number"),
])
def test_bad_signal_settings_are_one_clear_line(service: str, number: str, wrong: str) -> None:
    settings = load_settings(environ={"HELPLINE_SIGNAL_SERVICE": service,
                                      "HELPLINE_SIGNAL_NUMBER": number})
    with pytest.raises(ConfigError, match=wrong):
        build_channels(settings)


# ------------------------------------------------------------------ what the bridge answers


async def test_a_rate_limited_reply_waits_as_long_as_signal_cli_says(rig: Rig) -> None:
    await rig.say("hi", 1)
    rig.api.fail_sends(1, status=400, error=RATE_LIMIT_RETRY)  # "retry after 42 seconds"
    before = rig.app.clock()
    rig.api.person_sends(PERSON, "yes")
    await rig.api.wait_for(lambda c: c.path == "/v2/send" and c.status == 400)
    await asyncio.sleep(0.05)
    [kept] = await rig.store.operations(rig.pid())
    assert kept.next_try_at >= before + 42
    person = await rig.store.person(rig.pid())
    assert person is not None and not person.unreachable


async def test_a_reply_the_bridge_refuses_is_dropped_and_the_next_arrive(rig: Rig) -> None:
    await rig.say("hi", 1)
    rig.api.fail_sends(1, status=400, error="Failed to send message")
    rig.api.person_sends(PERSON, "yes")
    await rig.api.wait_for(lambda c: c.path == "/v2/send" and c.status == 400)
    await asyncio.sleep(0.05)
    assert await rig.store.operations(rig.pid()) == []
    assert parts((await rig.say("menu", 1))[0])[-1] == MAIN_MENU
    person = await rig.store.person(rig.pid())
    assert person is not None and not person.unreachable


@pytest.mark.parametrize("text", ["hi", "Ünïcødé — here\n1. Yes\n2. No", 'a "quote" \\ and \t',
                                  "\U0001f600 " * 50, "…"])
async def test_the_send_body_is_what_signalbot_s_model_gives(text: str) -> None:
    """The body of a reply is built by hand (two pydantic models per reply cost about
    20 us); it must stay what signalbot's SendMessage gives."""
    from signalbot import SendMessage

    from helpline.channels.signal import send_body

    model = await SendMessage(text=text).to_generated("+15550000001", ["a-uuid"])
    expected = model.model_dump_json(exclude_none=True, by_alias=True)
    assert send_body("+15550000001", "a-uuid", text) == expected
