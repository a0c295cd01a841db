"""The console as the advocate desk, without a browser: a person on the Telegram fake asks
for an advocate, the case reaches the console's queue live (server-sent events), an
advocate claims it, both sides write, and it closes; who may read what; the transcript
encrypted at rest and gone at closing; a quick exit that empties an open case page;
automatic assignment; and both desks at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpline.console.assign import Advocate as Staff
from helpline.console.assign import choose
from tests.console_rig import FORUM, NOTE, TELEGRAM_ADVOCATE, DeskRig, advocate, desk_rig
from tests.fakes.telegram_bot_api import FakeBotAPI
from tests.telegram_person import CHAT, until, until_async


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def rig(tmp_path: Path, api: FakeBotAPI) -> AsyncIterator[DeskRig]:
    async with desk_rig(tmp_path, api) as found:
        yield found


async def test_a_case_arrives_live_is_claimed_talked_in_both_ways_and_closed(
        rig: DeskRig) -> None:
    async with advocate(rig, "amira") as amira:
        async with amira.events("/events") as queue:
            assert queue.status == 200
            handle = await rig.ask_for_advocate()
            await queue.next("queue")  # the page is told to fetch itself again
        status, page = await amira.get("/")
        assert status == 200 and f"Case {handle}" in page and NOTE in page
        thread = await rig.thread_of(handle)
        assert (await amira.post(f"/case/{thread}/claim"))[0] == 303
        await until(lambda: "An advocate has joined. They can read what you write here."
                    in rig.person_texts())
        status, page = await amira.get("/")
        assert "yours" in page
        async with amira.events(f"/case/{thread}/events") as live:
            status, answer = await amira.post(f"/case/{thread}/send", text="Hi, I'm here.")
            assert status == 200 and answer == "{}"
            _, line = await live.next("line")
            assert (line["kind"], line["author"], line["text"]) == (
                "advocate", "amira", "Hi, I'm here.")
            assert (await live.next("state"))[1]["state"] == "sent"
            assert rig.person_texts()[-1] == "Advocate: Hi, I'm here."
            await rig.person("Thank you", 0)
            _, line = await live.next("line")
            assert (line["kind"], line["text"]) == ("desk", "Person: Thank you")
            await amira.post(f"/case/{thread}/note", text="sounds calmer now")
            _, line = await live.next("line")
            assert (line["kind"], line["text"]) == ("note", "sounds calmer now")
        assert "sounds calmer now" not in " ".join(rig.person_texts())  # never sent
        _, page = await amira.get(f"/case/{thread}")
        assert page.index("Hi, I&#39;m here.") < page.index("Person: Thank you")
        assert "(never sent)" in page
        before = len(rig.person_texts())
        assert (await amira.post(f"/case/{thread}/close"))[0] == 200
        await until(lambda: len(rig.person_texts()) > before)
        assert rig.person_texts()[before].startswith("The advocate has closed this chat.")
        rows = await rig.store.database.rows("SELECT * FROM console_lines")
        assert rows == []  # keep_transcript_hours = 0: gone at closing
        events = [e for _, e, target, _ in await rig.audit() if target == handle]
        assert events == ["case claimed", "reply sent", "note written", "case closed"]


async def test_the_transcript_is_encrypted_at_rest(rig: DeskRig) -> None:
    async with advocate(rig, "bea") as bea:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await bea.post(f"/case/{thread}/claim")
        await bea.post(f"/case/{thread}/send", text="Canary-advocate words")
        await rig.person("Canary-person words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary-person words"))
        rows = await rig.store.database.rows("SELECT body FROM console_lines")
        for row in rows:
            body = bytes(row["body"])
            assert b"Canary" not in body and b"words" not in body
        db = Path(rig.app.settings.db)
        for path in (db, db.with_name(db.name + "-wal")):  # the file and its write-ahead log
            raw = path.read_bytes() if path.exists() else b""
            assert b"Canary-person" not in raw and b"Canary-advocate" not in raw


async def test_a_second_advocate_cannot_open_or_act_on_the_first_ones_case(
        rig: DeskRig) -> None:
    async with advocate(rig, "chen") as chen, advocate(rig, "dana") as dana:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await rig.person("Canary words before the claim", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words before the "
                                            "claim"))
        status, page = await dana.get(f"/case/{thread}")  # waiting: any advocate reads it
        assert status == 200 and "Canary words before the claim" in page
        await chen.post(f"/case/{thread}/claim")
        await rig.person("Canary words after the claim", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words after the "
                                            "claim"))
        before = len(rig.person_texts())
        for path in (f"/case/{thread}", f"/case/{thread}/head", f"/case/{thread}/events"):
            status, page = await dana.get(path)
            assert status == 403, path
            assert "Canary" not in page and NOTE not in page
        status, page = await dana.post(f"/case/{thread}/send", text="let me in")
        assert status == 403 and "Canary" not in page
        status, page = await dana.post(f"/case/{thread}/close")
        assert status == 403
        _, queue = await dana.get("/")
        assert f"Case {handle}" in queue and "with chen" in queue
        assert f'href="/case/{thread}"' not in queue  # no link to what they cannot open
        assert len(rig.person_texts()) == before
        case = await rig.desk.case_of(thread)
        assert case is not None and case.status == "claimed" and case.advocate == \
            "console:chen"
        assert ("dana", "case refused", handle, "") in await rig.audit()
        status, _ = await chen.get(f"/case/{thread}")
        assert status == 200


async def test_shared_reading_lets_another_advocate_read_but_not_write(
        tmp_path: Path, api: FakeBotAPI) -> None:
    async with desk_rig(tmp_path, api, shared_reading=True) as rig, \
            advocate(rig, "emre") as emre, advocate(rig, "femi") as femi:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await emre.post(f"/case/{thread}/claim")
        await rig.person("Canary words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words"))
        status, page = await femi.get(f"/case/{thread}")
        assert status == 200 and "Canary words" in page
        before = len(rig.person_texts())
        await femi.post(f"/case/{thread}/send", text="not mine to send")
        lines = await rig.desk.lines(thread)
        assert [line.state for line in lines if line.kind == "advocate"] == ["not sent"]
        assert len(rig.person_texts()) == before


@pytest.mark.parametrize("keep_hours", [0, 2])
async def test_a_quick_exit_empties_the_open_case_page_at_once(
        tmp_path: Path, api: FakeBotAPI, keep_hours: float) -> None:
    """Whatever ``keep_transcript_hours`` says: the person chose to leave no trace."""
    async with desk_rig(tmp_path, api, keep_transcript_hours=keep_hours) as rig, \
            advocate(rig, "gwen") as gwen:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await gwen.post(f"/case/{thread}/claim")
        await rig.person("Canary words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words"))
        async with gwen.events(f"/case/{thread}/events") as live:
            rig.api.person_sends(CHAT, "exit")
            kind, _ = await live.next("cleared")
            assert kind == "cleared"
        assert await rig.store.database.rows("SELECT * FROM console_lines") == []
        _, page = await gwen.get(f"/case/{thread}")
        assert "Canary" not in page


async def test_erasing_ones_data_empties_the_page_too(rig: DeskRig) -> None:
    async with advocate(rig, "hana") as hana:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await rig.person("Canary words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words"))
        async with hana.events(f"/case/{thread}/events") as live:
            await rig.person("delete my data")
            await rig.press("Yes, erase", 0)
            await live.next("cleared")
        assert await rig.store.database.rows("SELECT * FROM console_lines") == []


async def test_a_closed_case_keeps_its_transcript_only_as_long_as_configured(
        tmp_path: Path, api: FakeBotAPI) -> None:
    async with desk_rig(tmp_path, api, keep_transcript_hours=2) as rig, \
            advocate(rig, "ines") as ines:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await ines.post(f"/case/{thread}/claim")
        await rig.person("Canary words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words"))
        await ines.post(f"/case/{thread}/close")
        assert len(await rig.desk.lines(thread)) >= 1  # kept, encrypted, for 2 hours
        status, _ = await ines.get(f"/case/{thread}")
        assert status == 200
        assert await rig.desk.tidy() == 0
        real = rig.desk.clock
        rig.desk.clock = lambda: real() + 2 * 3600 + 1
        assert await rig.desk.tidy() >= 1
        assert await rig.desk.lines(thread) == []


# ------------------------------------------------------------------ assignment


def test_the_oldest_case_goes_to_the_least_loaded_advocate_on_shift_with_room() -> None:
    staff = [Staff("console:a", True, 2, 1), Staff("console:b", True, 2, 0),
             Staff("console:c", False, 5, 0), Staff("console:d", True, 0, 0)]
    assert choose([10, 11, 12, 13], staff) == [
        (10, "console:b"), (11, "console:a"), (12, "console:b")]  # then no one has room
    assert choose([10], [Staff("console:a", False, 3, 0)]) == []


async def test_automatic_assignment_gives_a_new_case_to_an_advocate_on_shift(
        tmp_path: Path, api: FakeBotAPI) -> None:
    async with desk_rig(tmp_path, api, auto_assign=True) as rig, \
            advocate(rig, "jo") as jo, advocate(rig, "kim") as kim:
        # kim said they are on shift, then their session ended (idle, or the browser
        # closed): they are not given cases.
        assert (await kim.post("/presence", presence="on", capacity="2"))[0] == 303
        await rig.store.database.write(lambda db: db.execute(
            "DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users "
            "WHERE name = 'kim')"))
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await rig.desk.settled()
        case = await rig.desk.case_of(thread)
        assert case is not None and case.status == "waiting"
        status, _ = await jo.post("/presence", presence="on", capacity="2")
        assert status == 303
        await until_async(lambda: _claimed_by(rig, thread, "console:jo"))
        await until(lambda: "An advocate has joined. They can read what you write here."
                    in rig.person_texts())
        _, page = await jo.get("/")
        assert "jo: 1 of 2 cases" in page and "kim:" not in page


async def _claimed_by(rig: DeskRig, thread: int, staff: str) -> bool:
    case = await rig.desk.case_of(thread)
    return case is not None and case.advocate == staff


# ------------------------------------------------------------------ both desks


async def test_with_both_desks_a_claim_in_one_shows_as_claimed_in_the_other(
        tmp_path: Path, api: FakeBotAPI) -> None:
    async with desk_rig(tmp_path, api, "both") as rig, advocate(rig, "lena") as lena:
        handle = await rig.ask_for_advocate()
        await until(lambda: bool(api.topics(FORUM)))
        topic = int(next(iter(api.topics(FORUM))))
        thread = await rig.thread_of(handle)
        card = api.bot_messages(FORUM)[0]
        assert card["message_thread_id"] == topic and handle in card["text"]
        # Claimed on the console: the Telegram card says so and loses its button.
        await lena.post(f"/case/{thread}/claim")
        await until(lambda: "Claimed by advocate console:lena." in str(
            api.message(FORUM, card["message_id"])))
        assert "reply_markup" not in (api.message(FORUM, card["message_id"]) or {})
        # The person's words are on both.
        await rig.person("Canary words", 0)
        await until(lambda: "Person: Canary words" in api.sent_texts(FORUM))
        await until_async(lambda: _has_line(rig, thread, "Person: Canary words"))
        # Unclaimed on the console, claimed on Telegram: the console shows who has it.
        await lena.post(f"/case/{thread}/unclaim")
        await until(lambda: "reply_markup" in (api.message(FORUM, card["message_id"]) or {}))
        message = api.message(FORUM, card["message_id"]) or {}
        data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        query = api.person_presses(FORUM, card["message_id"], data,
                                   user_id=TELEGRAM_ADVOCATE, strict=False)
        await until(lambda: query in api.callback_answers)
        _, page = await lena.get("/")
        assert f"with {TELEGRAM_ADVOCATE}" in page
        # What the Telegram advocate writes joins the console's transcript.
        api.person_sends(FORUM, "Hello from Telegram", user_id=TELEGRAM_ADVOCATE,
                         message_thread_id=topic)
        await until(lambda: "Advocate: Hello from Telegram" in rig.person_texts())
        await until_async(lambda: _has_line(rig, thread, "Hello from Telegram"))


async def _has_line(rig: DeskRig, thread: int, text: str) -> bool:
    return any(line.text == text for line in await rig.desk.lines(thread))


async def test_a_page_that_connects_late_is_given_what_came_after_it(rig: DeskRig) -> None:
    """Between a page's HTML and its stream a line may come: the page says the last line
    it has, and the stream begins with the ones after it."""
    async with advocate(rig, "mo") as mo:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await mo.post(f"/case/{thread}/claim")
        await rig.person("first words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: first words"))
        [seen] = [line.id for line in await rig.desk.lines(thread)
                  if line.text == "Person: first words"]
        await rig.person("second words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: second words"))
        async with mo.events(f"/case/{thread}/events?after={seen}") as live:
            _, line = await live.next("line")
            assert line["text"] == "Person: second words"


async def test_helpline_run_serves_the_queue_when_the_console_is_the_desk(
        tmp_path: Path, api: FakeBotAPI) -> None:
    import asyncio
    import socket

    import aiohttp

    from helpline.channels.telegram import TelegramChannel, TelegramOptions
    from helpline.config import Console
    from helpline.console.accounts import Accounts
    from helpline.console.web import SESSION_COOKIE
    from helpline.privacy import Vault
    from helpline.serve import serve
    from helpline.store import Store
    from tests.conftest import BASIC_FLOWS, SECRET, Clock, make_settings
    from tests.console_rig import CHEAP, PASSWORD

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(tmp_path, BASIC_FLOWS, console=Console(
        enabled=True, listen=f"127.0.0.1:{port}", desk="console"))
    store = await Store.open(settings.db, Vault(SECRET))
    try:
        import pyotp

        accounts = Accounts(store.database, store.vault, hasher=CHEAP, clock=Clock())
        link = await accounts.add_user("nia", "advocate")
        enrolment = await accounts.choose_password(link.token, PASSWORD)
        assert not isinstance(enrolment, str)
        code = pyotp.TOTP(enrolment.secret).at(Clock().now)
        await accounts.confirm_code(link.token, code)
        real = Accounts(store.database, store.vault, hasher=CHEAP)
        result = await real.login("nia", PASSWORD, pyotp.TOTP(enrolment.secret).now())
        assert result.session is not None
    finally:
        await store.close()
    channel = TelegramChannel(TelegramOptions(token="123:console-test-token-abcdefghij",
                                              api_url=api.root))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings, [channel], stop))
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/", headers={
                            "Cookie": f"{SESSION_COOKIE}={result.session}"},
                            allow_redirects=False) as response:
                        page = await response.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the console did not start")
        assert response.status == 200 and "<h1>Queue</h1>" in page
        assert "No one is waiting." in page
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def test_transfer_canned_replies_and_openings_from_the_case_page(rig: DeskRig) -> None:
    from helpline.resources.importer import import_directory
    from helpline.resources.store import Directory
    from tests.conftest import ROOT

    await import_directory(rig.store, ROOT / "data" / "sample-directory.yaml", rig.app.clock())
    async with advocate(rig, "oli") as oli, advocate(rig, "pia") as pia:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await oli.post(f"/case/{thread}/claim")
        _, page = await oli.get(f"/case/{thread}")
        assert "Take your time. You can write as much or as little as you like." in page
        await oli.post(f"/case/{thread}/canned", key="take_time")
        await until(lambda: rig.person_texts()[-1] == "Advocate: Take your time. You can "
                    "write as much or as little as you like.")
        await oli.post(f"/case/{thread}/openings", service="harbour-house", count="4")
        caps = (await Directory(rig.store).capacities(["harbour-house"]))["harbour-house"]
        assert [c.available for c in caps] == [4]
        assert (await pia.get(f"/case/{thread}"))[0] == 403
        await oli.post(f"/case/{thread}/transfer", to="console:pia")
        await until(lambda: any(t.startswith("Another advocate is taking over this chat.")
                                for t in rig.person_texts()))
        assert (await pia.get(f"/case/{thread}"))[0] == 200
        assert (await oli.get(f"/case/{thread}"))[0] == 403
        await pia.post(f"/case/{thread}/send", text="Hello, I'm Pia.")
        await until(lambda: rig.person_texts()[-1] == "Advocate: Hello, I'm Pia.")
        events = [(who, e) for who, e, target, _ in await rig.audit() if target == handle]
        assert ("oli", "case transferred") in events and ("pia", "reply sent") in events


def test_the_privacy_notice_says_where_advocates_read_and_how_long_it_stays(
        tmp_path: Path) -> None:
    from helpline.config import Console, Handoff, Telegram
    from tests.test_privacy_notice import shown

    def desk_paragraphs(locale: str = "en", **console: object) -> list[str]:
        said = shown(tmp_path, locale, languages=["en", "es"], telegram=Telegram(
            token="123:abc"), handoff=Handoff(staff_chat=-100123),
            console=Console(enabled=True, **console))
        return [p for p in said if "advocates" in p or "defensoras" in p]

    [console] = desk_paragraphs(desk="console")
    assert "on the organisation's own server" in console and "Telegram" not in console
    assert "removed when the case closes, or at once when you type exit or delete my " \
           "data" in console
    [kept] = desk_paragraphs(desk="console", keep_transcript_hours=6)
    assert "removed 6 hours after the case closes" in kept
    telegram, own = desk_paragraphs(desk="both")
    assert "staff group on Telegram" in telegram and "own server" in own
    [only_telegram] = desk_paragraphs(desk="telegram")
    assert "staff group on Telegram" in only_telegram
    [spanish] = desk_paragraphs("es", desk="console")
    assert spanish.startswith("Si pides hablar con una persona") and "servidor propio" in \
        spanish


async def test_canned_replies_are_shown_and_sent_in_the_persons_language(
        tmp_path: Path, api: FakeBotAPI) -> None:
    async with desk_rig(tmp_path, api) as rig, advocate(rig, "quinn") as quinn:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await rig.store.database.write(lambda db: db.execute(
            "UPDATE cases SET locale = 'es' WHERE handle = ?", (handle,)))
        await quinn.post(f"/case/{thread}/claim")
        _, page = await quinn.get(f"/case/{thread}")
        assert "Canned reply (in Español)" in page
        assert "Tómate tu tiempo. Puedes escribir tanto o tan poco como quieras." in page
        await quinn.post(f"/case/{thread}/canned", key="take_time")
        await until(lambda: rig.person_texts()[-1].endswith(
            "Tómate tu tiempo. Puedes escribir tanto o tan poco como quieras."))


async def test_with_both_desks_a_telegram_outage_delays_the_topic_not_the_console(
        tmp_path: Path, api: FakeBotAPI) -> None:
    async with desk_rig(tmp_path, api, "both") as rig, advocate(rig, "rae") as rae:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await rae.post(f"/case/{thread}/claim")
        await until(lambda: "Claimed by advocate console:rae." in api.sent_texts(FORUM))
        api.fail_next("sendMessage", error_code=502, times=3)
        async with rae.events(f"/case/{thread}/events") as live:
            for text in ("one", "two"):
                api.person_sends(CHAT, text)
            _, line = await live.next("line")
            assert line["text"] == "Person: one"  # at once, Telegram down or not
        for _ in range(100):
            await rig.app.deliver_pending()
            if [t for t in api.sent_texts(FORUM) if t.startswith("Person:")] == [
                    "Person: one", "Person: two"]:
                break
            await asyncio.sleep(0.05)
        assert [t for t in api.sent_texts(FORUM) if t.startswith("Person:")] == [
            "Person: one", "Person: two"]
        texts = [line.text for line in await rig.desk.lines(thread)]
        assert texts.count("Person: one") == 1 and texts.count("Person: two") == 1


async def test_no_words_of_either_side_reach_the_log(
        rig: DeskRig, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    async with advocate(rig, "sam") as sam:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await sam.post(f"/case/{thread}/claim")
        await sam.post(f"/case/{thread}/send", text="Canary-advocate reply")
        await sam.post(f"/case/{thread}/note", text="Canary-note")
        await rig.person("Canary-person words", 0)
        await until_async(lambda: _has_line(rig, thread, "Person: Canary-person words"))
        async with advocate(rig, "tess") as tess:
            assert (await tess.get(f"/case/{thread}"))[0] == 403
        await sam.post(f"/case/{thread}/close")
    # helpline's own lines (a library's are reduced to a fixed phrase by the privacy
    # filter on every handler: tests/test_hostile_logs.py)
    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records
                       if r.name.startswith("helpline"))
    assert "case 1 closed by the desk" in logged
    for secret in ("Canary", str(CHAT), NOTE, handle, "sam", "tess"):
        assert secret not in logged, secret


async def test_a_case_is_transferred_only_to_an_account_there_is(rig: DeskRig) -> None:
    async with advocate(rig, "uma") as uma:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await uma.post(f"/case/{thread}/claim")
        for target in ("console:nobody", "console:uma two", "12345"):
            await uma.post(f"/case/{thread}/transfer", to=target)
        # Typed as a desk command (as on Telegram with both desks) it is refused too.
        await rig.desk.command("console:uma", thread, "/transfer console:nobody")
        case = await rig.desk.case_of(thread)
        assert case is not None and case.advocate == "console:uma"
        assert not any(t.startswith("Another advocate") for t in rig.person_texts())


def test_the_doctor_knows_the_console_is_the_desk(tmp_path: Path) -> None:
    from helpline.config import Console, Handoff, Telegram
    from helpline.doctor import check_desk
    from tests.conftest import BUNDLED_FLOWS, make_settings

    def said(**updates: object) -> list[str]:
        return [str(f) for f in check_desk(make_settings(tmp_path, BUNDLED_FLOWS, **updates))]

    assert said(console=Console(enabled=True, desk="console")) == [
        "ok       desk: the console is the advocate desk ([console] desk)"]
    assert said()[0].startswith("warning  desk: no advocate desk")
    both = said(console=Console(enabled=True, desk="both"), telegram=Telegram(token="1:a"),
                handoff=Handoff(staff_chat=FORUM))
    assert both == ["ok       desk: no Telegram advocates listed: cases are claimed in the "
                    "console ([console] desk = both)"]


async def test_an_advocate_marks_the_person_do_not_contact_from_the_case_page(
        rig: DeskRig) -> None:
    """With outreach on, the case page has "Do not contact (outreach)": the relay's /dnc
    for the case's person, audited; without it, no such button."""
    from helpline.handoff import HandoffFeature

    feature = rig.app.features["handoff"]
    assert isinstance(feature, HandoffFeature) and feature.service is not None
    marked: list[str] = []

    async def do_not_contact(pid: str) -> bool:
        marked.append(pid)
        return True

    async with advocate(rig, "quin") as quin:
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        assert "Do not contact" not in (await quin.get(f"/case/{thread}/head"))[1]
        feature.service.do_not_contact = do_not_contact
        assert "Do not contact (outreach)" in (await quin.get(f"/case/{thread}/head"))[1]
        assert (await quin.post(f"/case/{thread}/dnc"))[0] == 200
        await until(lambda: len(marked) == 1)
        case = await rig.desk.case_of(int(thread))
        assert case is not None and marked == [case.pid]
        _, page = await quin.get(f"/case/{thread}")
        assert "Marked do not contact: no outreach campaign will write to this number " \
               "again." in page
        assert ("quin", "marked do not contact", handle) in [
            (who, e, target) for who, e, target, _ in await rig.audit()]
