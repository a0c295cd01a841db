"""Browsing search results through the real pipeline (terminal channel): pages, details,
openings, confidential addresses, saving for later, the no-results fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline.events import Message
from helpline.i18n import CatalogTranslator
from helpline.resources import Directory, import_directory, set_openings
from helpline.resources.cards import Context, detail, label
from helpline.resources.matching import Openings
from helpline.resources.model import Capacity, Service
from tests.conftest import Harness, HarnessFactory
from tests.postgres import stored_bytes

DIRECTORY = Path(__file__).parent / "data" / "directory.yaml"
UNSAID = "Prefer not to say"


@pytest.fixture
async def person(harness: Harness) -> Harness:
    result = await import_directory(harness.app.store, DIRECTORY, harness.clock.now)
    assert result.applied
    return harness


async def search(h: Harness, need: str = "A safe place to stay", area: str = "skip",
                 age: str = UNSAID, gender: str = UNSAID, language: str = "skip",
                 documents: str = UNSAID) -> list[Message]:
    await h.send("hi")
    await h.press("Yes")
    await h.press("Find a service")
    await h.press(need)
    await h.press(age)
    await h.press(gender)
    await h.send(language)
    await h.press(documents)
    return await h.send(area)


def labels(messages: list[Message]) -> list[str]:
    return [c.label for c in messages[-1].choices]


async def test_empty_directory_says_so_up_front_and_asks_nothing(harness: Harness) -> None:
    await harness.send("hi")
    menu = (await harness.press("Yes"))[-1]
    assert [c.label for c in menu.choices][2] == "Find a service (none listed yet)"
    said = await harness.press("Find a service (none listed yet)")
    assert said[0].text.startswith("I'm sorry, there are no services I can search here yet.")
    assert any("0800 000 000" in m.text for m in said)  # the numbers, at once
    # No desk here either: no person is offered.
    assert [c.label for c in said[-1].choices] == ["Safety tips", "Back to the main menu"]


async def test_pages_more_previous_and_change_my_answers(person: Harness) -> None:
    first = await search(person)
    assert first[0].text.startswith("I found 6 services that may fit.\n"
                                    "These services are made up (sample data)")
    assert "Here are 1 to 3." in first[0].text
    assert labels(first) == [
        "Women's House — openings: 2 beds (1 hour ago)",
        "Easton Shelter", "National Line", "More", "Change my answers", "Done"]
    second = await person.press("More")
    assert second[0].text.startswith("Here are 4 to 6.")
    assert labels(second) == [
        "Southtown Shelter", "Youth Beds — call to confirm", "Men's Hostel — full (1 hour ago)",
        "Previous", "Change my answers", "Done"]
    assert labels(await person.press("Previous"))[0].startswith("Women's House")
    again = await person.press("Change my answers")
    assert again[0].text.startswith("I can look for services")
    assert again[-1].text == "What kind of help are you looking for?"


async def test_details_hide_confidential_addresses(person: Harness) -> None:
    await search(person, area="NT1", gender="A woman", documents="No")
    [card] = await person.press("Women's House — openings: 2 beds (1 hour ago)")
    assert card.text.splitlines()[:2] == ["Women's House", "For: women, ages 18 and over."]
    for line in ("Free.", "Openings: 2 beds, updated 1 hour ago.", "Open 24 hours today.",
                 "Phone: 555-0140 (24 hours)",
                 "The address is not shared, to keep the people staying there safe."):
        assert line in card.text
    assert "Hidden Road" not in card.text and "NT1 9ZZ" not in card.text
    assert labels([card]) == ["Save for later", "Back to the list", "Done"]
    database = await stored_bytes(person.app.store)
    assert b"Hidden Road" not in database and b"NT1 9ZZ" not in database


async def test_details_hours_today_and_what_to_bring(person: Harness) -> None:
    # The clock starts on Friday 15 January 2027, 08:00 UTC.
    results = await search(person, need="Legal help", area="Northtown", documents="No",
                           language="español")
    # speaking the language asked for outweighs asking for a passport
    assert labels(results)[:3] == ["Clinica Legal", "Attorneys Northtown",
                                   "Legal Aid Northtown"]
    [card] = await person.press("Legal Aid Northtown")
    assert "Open today: 09:00–17:00." in card.text
    await person.press("Back to the list")
    [card] = await person.press("Clinica Legal")
    assert "What to bring: Passport" in card.text
    assert "If you don't have these, call and ask" in card.text
    assert "Languages: Spanish" in card.text
    await person.press("Back to the list")
    [card] = await person.press("Attorneys Northtown")
    assert "Cost: 50 per hour" in card.text


async def test_stale_openings_say_call_to_confirm(person: Harness) -> None:
    results = await search(person, age="Under 18")
    assert "Youth Beds — call to confirm" in labels(results)
    [card] = await person.press("Youth Beds — call to confirm")
    assert "Openings: call to confirm (the last count was 4 days ago)." in card.text
    # a fresh count (the advocate desk will call the same function)
    await set_openings(person.app.store, "youth-shelter", 5, person.clock.now)
    [again] = await person.press("Back to the list")
    assert "Youth Beds — openings: 5 beds (1 second ago)" in labels([again])


async def on_shift(turn: object) -> bool:
    return True


async def test_no_results_offers_hotlines_and_a_person(person: Harness) -> None:
    person.app.facts["desk"] = person.app.facts["advocates"] = on_shift
    [fallback] = await search(person, need="Food", area="Easton")
    assert fallback.text.startswith("I couldn't find a service that fits all of that")
    assert "Emergency services: 112 (Europe) or 911 (US and Canada)" in fallback.text
    assert "National hotline (example): 0800 000 000" in fallback.text
    assert labels([fallback]) == ["Change my answers", "Talk to a person", "Done"]
    advocate = await person.press("Talk to a person")
    assert advocate[0].text.startswith("A trained advocate can chat with you here.")


async def test_save_for_later_then_delete_my_data_erases_it(person: Harness) -> None:
    await search(person)
    await person.press("Women's House — openings: 2 beds (1 hour ago)")
    [saved] = await person.press("Save for later")
    assert saved.text.startswith("Saved.")
    assert labels([saved])[0] == "Remove from saved"
    directory = Directory(person.app.store)
    assert await directory.saved(person.pid) == ["w-shelter"]
    async with person.app.store.db.execute("SELECT pid, service FROM saved_services") as cur:
        [(pid, stored)] = await cur.fetchall()
    assert pid == person.pid and b"w-shelter" not in stored  # encrypted
    listing = await person.press("Back to the list")
    assert "Saved services (1)" in labels(listing)
    [view] = await person.press("Saved services (1)")
    assert view.text == "Your saved services. Choose one to see it again."
    assert labels([view]) == ["Women's House — openings: 2 beds (1 hour ago)",
                              "Back to the list", "Done"]
    [card] = await person.press("Women's House — openings: 2 beds (1 hour ago)")
    assert labels([card]) == ["Remove from saved", "Back to saved services",
                              "Back to the list", "Done"]
    await person.send("delete my data")
    await person.press("Yes, erase")
    assert await directory.saved(person.pid) == []
    assert await person.app.store.count("saved_services") == 0


async def test_a_service_gone_since_the_search_is_said_kindly(
    person: Harness, tmp_path: Path
) -> None:
    await search(person)
    await person.press("More")
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(DIRECTORY.read_text().replace("  - id: south-shelter",
                                                     "  - id: south-shelter-new"))
    await import_directory(person.app.store, smaller, person.clock.now,
                           source=str(DIRECTORY.resolve()))
    replies = await person.press("Southtown Shelter")
    assert replies[0].text.startswith("That service is no longer listed.")
    assert "Southtown Shelter" not in labels(replies)


async def test_saved_view_reachable_from_the_fallback(person: Harness) -> None:
    await search(person)
    await person.press("More")
    await person.press("Southtown Shelter")
    await person.press("Save for later")
    await person.press("Done")
    await person.press("Search again")
    await person.press("Food")
    await person.press(UNSAID)
    await person.press(UNSAID)
    await person.send("skip")
    await person.press(UNSAID)
    [fallback] = await person.send("Easton")
    assert "Saved services (1)" in labels([fallback])
    [view] = await person.press("Saved services (1)")
    assert labels([view]) == ["Southtown Shelter", "Change my answers", "Done"]


def test_cards_are_rendered_in_the_persons_locale() -> None:
    tr = CatalogTranslator()
    now = 1_800_000_000.0
    ctx = Context(tr, "es", now, 72, "UTC")
    service = Service(id="s", name="Casa", needs=("shelter",))
    fresh = Openings("open", Capacity(service_id="s", unit="bed", available=2,
                                      updated=now - 7200))
    assert "hace 2 horas" in label(ctx, service, fresh)
    assert "hace 2 horas" in detail(ctx, service, fresh)
    english = Context(tr, "en", now, 72, "UTC")
    one = Openings("open", Capacity(service_id="s", unit="Family unit", available=1,
                                    updated=now - 60))
    assert label(english, service, one) == "Casa — openings: 1 (Family unit) (1 minute ago)"


async def test_logs_carry_no_search_text(person: Harness, all_logs: pytest.LogCaptureFixture
                                         ) -> None:
    await search(person, area="Northtown", language="Arabic")
    assert "Northtown" not in all_logs.text and "Arabic" not in all_logs.text
    assert "Women's House" not in all_logs.text


async def test_other_languages_of_the_app_still_reach_results(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    from tests.conftest import make_settings

    h = await harness_factory(settings=make_settings(tmp_path, languages=["en", "es"]))
    await import_directory(h.app.store, DIRECTORY, h.clock.now)
    await h.send("hola", locale_hint="es")
    for typed in ("1", "3", "1", "3", "4", "skip", "3", "skip"):
        replies = await h.send(typed)
    assert any("hace 1 hora" in c.label for c in replies[-1].choices)


async def test_quick_exit_forgets_saved_services(person: Harness) -> None:
    await search(person)
    await person.press("Women's House — openings: 2 beds (1 hour ago)")
    await person.press("Save for later")
    assert await person.app.store.count("saved_services") == 1
    assert await person.send("exit") == []
    assert await person.app.store.count("saved_services") == 0


async def test_no_results_offer_no_person_where_there_is_no_desk(person: Harness) -> None:
    [fallback] = await search(person, need="Food", area="Easton")
    assert "National hotline (example): 0800 000 000" in fallback.text
    assert labels([fallback]) == ["Change my answers", "Done"]
