"""The statistics count what happens, as it happens: a scripted set of conversations (a
lookup with a service viewed and saved, then a quick exit; a handoff claimed, then an
erasure; a lookup nothing with an opening matched), and every count checked. The
statistics table holds no pseudonym, address or platform id of anyone."""

from __future__ import annotations

from pathlib import Path

from helpline.handoff.cases import Cases
from helpline.handoff.desk import DeskEvent
from helpline.resources import import_directory
from helpline.stats import Stats, week_of
from helpline.stats.feature import StatsFeature
from tests.conftest import HarnessFactory
from tests.test_handoff import ADVOCATE, ask_for_advocate, desk_harness
from tests.test_resources_browse import DIRECTORY, search


async def test_every_event_of_a_scripted_day_is_counted_and_nothing_names_anyone(
        harness_factory: HarnessFactory, tmp_path: Path) -> None:
    h, desk, _ = await desk_harness(harness_factory, tmp_path)
    h.app.add(StatsFeature())
    assert (await import_directory(h.app.store, DIRECTORY, h.clock.now)).applied

    # One person looks for a safe place, opens one, saves it, and leaves with quick exit.
    h.platform_id = "person-shelter"
    await search(h)
    await h.press("Women's House — openings: 2 beds (1 hour ago)")
    await h.press("Save for later")
    await h.send("exit")
    # Another asks for an advocate; it is claimed ten minutes later; then they erase.
    h.platform_id = "person-desk"
    await ask_for_advocate(h)
    h.clock.advance(600)
    [case] = await Cases(h.app.store).waiting()
    assert desk.handler is not None
    await desk.handler(DeskEvent("claim", case.topic or "", str(ADVOCATE), query="q"))
    await h.send("delete my data")
    await h.press("Yes, erase")
    # A third looks for legal help: nothing has a confirmed opening.
    h.platform_id = "person-legal"
    await search(h, need="Legal help")

    week = week_of(h.clock.now)
    counted = {(c.event, c.detail): c.count
               for c in await Stats(h.app.store.database).counts(week, week)}
    assert counted == {
        ("first_contact", ""): 3,
        ("conversation_started", ""): 3,
        ("flow_reached", "resources"): 2,
        ("flow_reached", "advocate"): 1,
        ("lookup", "shelter"): 1,
        ("lookup", "legal"): 1,
        ("lookup_unmet", "legal/any"): 1,
        ("service_viewed", ""): 1,
        ("service_saved", ""): 1,
        ("quick_exit", ""): 1,
        ("handoff_asked", "on-shift"): 1,
        ("handoff_claimed", ""): 1,
        ("claim_time", "5-15m"): 1,
        ("handoff_closed", "person-left"): 1,
        ("erasure", ""): 1,
    }
    rows = await h.app.store.database.rows("SELECT * FROM stats_counts")
    assert {(r["channel"], r["language"]) for r in rows} == {("terminal", "en")}
    # Nothing in the table is anyone's: no pseudonym, platform id or address.
    stored = " ".join(str(value) for r in rows for value in tuple(r))
    for who in ("person-shelter", "person-desk", "person-legal"):
        assert who not in stored
        assert h.app.vault.pseudonym("terminal", who)[:12] not in stored
    assert "addr" not in stored and case.handle not in stored
