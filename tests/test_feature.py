"""Features plug into the app through one interface (helpline.feature): a feature made in
the tests alone, with its own table, a hook before the engine, a leave hook, a timed job
and its own values in the person's state; typed effect handlers, one feature an effect
unless they chain; a pick of a feature's menu goes to the feature that showed it; and
values older releases kept in flow variables move to their feature's place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpline.app import App
from helpline.channels.terminal import TerminalChannel
from helpline.events import Handoff, Inbound, Lookup, Message, OverlayPick
from helpline.feature import Feature, FeatureConflict, Plugs, Services, Turn
from helpline.flow.loader import load_flows
from helpline.handoff import HandoffFeature
from helpline.i18n import CatalogTranslator
from helpline.parts import ALL
from helpline.privacy import Vault
from helpline.resources import browse, import_directory
from helpline.scheduler import build_scheduler
from helpline.state import State
from helpline.store import Store
from helpline.store.schema import Migration, Part
from tests.conftest import SECRET, Clock, Harness, HarnessFactory, make_settings
from tests.test_handoff import ADVOCATE, MemoryDesk
from tests.test_resources_browse import DIRECTORY, labels, search

# ---------------------------------------------------------------- a feature, whole

PINGS = Part("pings", [Migration(1, "pings: a feature's own table",
                                 "CREATE TABLE pings (pid TEXT NOT NULL, at REAL NOT NULL);")],
             person_tables=("pings",))


class Pings:
    """The feature's repository."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, pid: str, at: float) -> None:
        async with self.store.transaction() as db:
            await db.execute("INSERT INTO pings (pid, at) VALUES (?, ?)", (pid, at))


# FEATURE-START (the lines a new feature needs to plug in)
class PingFeature(Feature[Pings]):
    name, part = "ping", PINGS

    def repository(self, store: Store) -> Pings:
        return Pings(store)

    def plug(self, services: Services[Pings], plugs: Plugs) -> None:
        self.s, self.left, self.swept = services, list[bool](), 0
        plugs.before_engine(self.on_inbound)
        plugs.on_leave(self.on_leave)
        plugs.every("ping-sweep", self.sweep)

    async def on_inbound(self, turn: Turn, inbound: Inbound, command: str | None
                         ) -> list[Message] | None:
        if command is not None or inbound.text.strip().lower() != "ping":
            return None  # not ours: the next hook, then the engine
        mine = self.s.private(turn.state)
        mine["count"] = count = int(str(mine.get("count") or 0)) + 1
        await self.s.repository.add(turn.pid, turn.now)
        return [Message(f"pong {count}")]

    async def on_leave(self, pid: str, now: float, erased: bool) -> None:
        self.left.append(erased)

    async def sweep(self) -> None:
        self.swept += 1
# FEATURE-END


def feature_lines() -> int:
    """The lines between the markers, blank ones left out."""
    text = Path(__file__).read_text(encoding="utf-8")
    body = text.split("# FEATURE-START", 1)[1].split("# FEATURE-END", 1)[0]
    return sum(1 for line in body.splitlines()[1:] if line.strip())


@pytest.fixture
async def pinged(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[Harness, PingFeature]]:
    settings = make_settings(tmp_path, Path(__file__).parent / "flows_basic")
    vault = Vault(SECRET)
    store = await Store.open(settings.db, vault, parts=(*ALL, PINGS))
    channel = TerminalChannel()
    feature = PingFeature()
    app = App(settings, load_flows(settings.flows), store, vault,
              CatalogTranslator(settings.locales), [channel], clock=clock, features=[feature])
    await app.start()
    yield Harness(app, channel, clock), feature
    await app.stop()
    await store.close()


async def rows(h: Harness, table: str) -> int:
    return await h.app.store.count(table)


async def test_a_feature_from_the_tests_alone_plugs_in(
    pinged: tuple[Harness, PingFeature]
) -> None:
    h, feature = pinged
    assert feature_lines() <= 30  # what it takes (the report quotes the count)
    welcome = await h.send("hi")
    assert welcome  # the engine answers what the hook passes on
    assert [m.text for m in await h.send("ping")] == ["pong 1"]
    assert [m.text for m in await h.send("PING ")] == ["pong 2"]
    person = await h.app.store.person(h.pid)
    assert person is not None
    assert person.state.features == {"ping": {"count": 2}}  # its own place...
    assert "count" not in person.state.vars  # ...not the flows' variables
    assert await rows(h, "pings") == 2  # its own table, through its repository
    await h.app.timed_jobs["ping-sweep"]()
    assert feature.swept == 1
    assert "ping-sweep" in {job.id for job in build_scheduler(h.app).get_jobs()}
    # Quick exit: the leave hook is told, and its values go with the conversation.
    await h.send("exit")
    assert feature.left == [False]
    person = await h.app.store.person(h.pid)
    assert person is None or person.state.features == {}
    assert [m.text for m in await h.send("ping")] == ["pong 1"]
    # "delete my data": told it was an erase; its table is cleared by its Part.
    await h.send("delete my data")
    await h.send("yes")
    assert feature.left == [False, True]
    assert await rows(h, "pings") == 0


async def test_a_feature_whose_tables_the_store_lacks_is_refused(harness: Harness) -> None:
    with pytest.raises(FeatureConflict, match="pings"):
        harness.app.add(PingFeature())  # the harness's store was opened without PINGS
    assert "ping" not in harness.app.features and "ping-sweep" not in harness.app.timed_jobs


# ---------------------------------------------------------------- effects and menus


class Finder(Feature[None]):
    """Answers lookups with a menu of its own (or passes, when told to)."""

    def __init__(self, name: str, chain: bool = False, passes: bool = False,
                 handles: bool = True) -> None:
        self.name = name
        self.chain, self.passes, self.handles = chain, passes, handles
        self.picked: list[str] = []

    def repository(self, store: Store) -> None:
        return None

    def plug(self, services: Services[None], plugs: Plugs) -> None:
        self.s = services
        if self.handles:
            plugs.effect(Lookup, self.on_lookup, chain=self.chain)
        plugs.picks(self.on_pick)

    async def on_lookup(self, turn: Turn, effect: Lookup) -> list[Message] | None:
        if self.passes:
            return None
        return [self.s.flows.show_overlay(turn.state, f"{self.name} found:",
                                          [("Alpha", "alpha"), ("Done", "next")])]

    async def on_pick(self, turn: Turn, effect: OverlayPick) -> list[Message]:
        self.picked.append(effect.value)
        return [Message(f"{self.name} shows {effect.value}")]


FLOWS = {
    "welcome.yaml": ("id: welcome\ntitle: Welcome\nstart: go\nsteps:\n  go:\n"
                     "    say: Hello.\n    flow: main\n"),
    "main.yaml": ("id: main\ntitle: Main\nstart: menu\nsteps:\n  menu:\n    choose: Pick one.\n"
                  "    options:\n      - label: Find\n        next: find\n"
                  "  find:\n    lookup: {needs: need}\n    next: done\n"
                  "  done:\n    end: Thanks.\n"),
}


FinderApp = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def finder_app(tmp_path: Path, clock: Clock) -> AsyncIterator[FinderApp]:
    """An app on two small flows (a menu, a lookup step) with the features given."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path, flows)
    vault = Vault(SECRET)
    store = await Store.open(settings.db, vault)
    apps: list[App] = []

    async def build(*features: Feature[None]) -> Harness:
        channel = TerminalChannel()
        app = App(settings, load_flows(flows), store, vault,
                  CatalogTranslator(settings.locales), [channel], clock=clock,
                  features=features)
        apps.append(app)
        await app.start()
        return Harness(app, channel, clock)

    yield build
    for app in apps:
        await app.stop()
    await store.close()


async def test_a_pick_goes_to_the_feature_that_showed_the_menu(
    finder_app: FinderApp
) -> None:
    shower, other = Finder("shower"), Finder("other", handles=False)
    h = await finder_app(other, shower)
    await h.send("hi")
    [found] = await h.press("Find")
    assert found.text == "shower found:"
    assert [m.text for m in await h.press("Alpha")] == ["shower shows alpha", "Thanks."]
    assert shower.picked == ["alpha"] and other.picked == []


async def test_two_features_for_one_effect_are_refused_unless_both_chain(
    finder_app: FinderApp
) -> None:
    h = await finder_app(Finder("first"))
    with pytest.raises(FeatureConflict, match="second and first both handle Lookup"):
        h.app.add(Finder("second"))
    assert "second" not in h.app.features  # nothing of it was joined
    with pytest.raises(FeatureConflict, match="plugged in already"):
        h.app.add(Finder("first"))


async def test_chained_handlers_are_asked_in_order_each_answering_or_passing(
    finder_app: FinderApp
) -> None:
    first = Finder("first", chain=True, passes=True)
    second = Finder("second", chain=True)
    h = await finder_app(first, second)
    await h.send("hi")
    [found] = await h.press("Find")
    assert found.text == "second found:"
    second.passes = True  # every feature passes: the app's own answer
    await h.press("Done")
    await h.send("menu")
    said = await h.press("Find")
    assert said[0].text.startswith("I can't search for services here yet.")


def test_handlers_are_typed_by_their_effect() -> None:
    """mypy checks a handler against the effect it is declared for; the app's own effects
    and OverlayPick are not a feature's to handle."""
    plugs = Plugs("x")
    if TYPE_CHECKING:  # mypy --strict (make test) fails if the ignore is not needed
        async def on_handoff(turn: Turn, effect: Handoff) -> list[Message]: ...
        plugs.effect(Lookup, on_handoff)  # type: ignore[arg-type]
    with pytest.raises(FeatureConflict, match=r"Plugs\.picks"):
        plugs.effect(OverlayPick, Finder("y").on_pick)
    from helpline.events import Schedule

    async def on_schedule(turn: Turn, effect: Schedule) -> list[Message]:
        return []

    with pytest.raises(FeatureConflict, match="the app itself"):
        plugs.effect(Schedule, on_schedule)


async def test_the_desk_and_the_directory_plug_in_once(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    from helpline.config import Handoff as HandoffSettings

    h = await harness_factory(settings=make_settings(
        tmp_path, handoff=HandoffSettings(advocates=[ADVOCATE])))
    desk, refused = MemoryDesk(), MemoryDesk()
    h.app.add(HandoffFeature(desk))
    assert set(h.app.features) == {"resources", "handoff"}
    assert {"desk", "handoff-unclaimed", "directory-index"} <= {
        *h.app.channels, *h.app.timed_jobs}
    assert desk.handler is not None  # listening once it is in
    with pytest.raises(FeatureConflict):
        h.app.add(HandoffFeature(refused))
    assert refused.handler is None  # a feature refused starts nothing
    with pytest.raises(FeatureConflict):
        browse.install(h.app)


class Echo(Feature[None]):
    """A hook that answers a word, or passes after noting that it saw the inbound."""

    def __init__(self, name: str, word: str, order: int) -> None:
        self.name, self.word, self.order = name, word, order

    def repository(self, store: Store) -> None:
        return None

    def plug(self, services: Services[None], plugs: Plugs) -> None:
        self.s = services
        plugs.before_engine(self.hook, self.order)

    async def hook(self, turn: Turn, inbound: Inbound, command: str | None
                   ) -> list[Message] | None:
        seen = self.s.private(turn.state)
        seen["n"] = int(str(seen.get("n") or 0)) + 1
        if inbound.text != self.word:
            return None
        others = sorted(k for k in turn.state.features if k != self.name)
        return [Message(f"{self.name} {seen['n']} after {others}")]


async def test_hooks_run_in_order_and_the_first_that_answers_takes_the_event(
    finder_app: FinderApp
) -> None:
    late, early = Echo("late", "both", 200), Echo("early", "early", 50)
    h = await finder_app(late, early, Echo("later", "both", 300))
    assert await h.send("hi")  # all pass (what they noted is kept); the engine answers
    # "early" runs first and passes; "late" answers; "later" does not see it.
    assert [m.text for m in await h.send("both")] == ["late 2 after ['early', 'later']"]
    # "early" answers before the others see it.
    assert [m.text for m in await h.send("early")] == ["early 3 after ['late', 'later']"]
    person = await h.app.store.person(h.pid)
    assert person is not None
    assert person.state.features == {"early": {"n": 3}, "late": {"n": 2}, "later": {"n": 1}}


class Claims(Feature[None]):
    """Claims a fact, a timed job or a channel by name."""

    name = "claims"

    def __init__(self, fact: str = "", job: str = "", channel: str = "") -> None:
        self.fact, self.job, self.channel = fact, job, channel

    def repository(self, store: Store) -> None:
        return None

    def plug(self, services: Services[None], plugs: Plugs) -> None:
        async def never(turn: Turn) -> bool:
            return False

        async def nothing() -> None:
            return None

        if self.fact:
            plugs.fact(self.fact, never)
        if self.job:
            plugs.every(self.job, nothing)
        if self.channel:
            plugs.channel(TerminalChannel(name=self.channel))


@pytest.mark.parametrize(("claim", "said"), [
    ({"fact": "directory"}, "the fact 'directory' is answered already"),
    ({"fact": "checkin"}, "the fact 'checkin' is answered already"),  # the app's own
    ({"job": "directory-index"}, "a timed job 'directory-index' is there already"),
    ({"channel": "terminal"}, "a channel 'terminal' is there already"),
])
async def test_a_feature_claiming_what_another_has_is_refused(
    harness: Harness, claim: dict[str, str], said: str
) -> None:
    with pytest.raises(FeatureConflict, match=said):
        harness.app.add(Claims(**claim))
    assert "claims" not in harness.app.features
    harness.app.add(Claims(fact="desk", job="claims-job"))  # what no one has: joined
    assert "claims-job" in harness.app.timed_jobs


# ---------------------------------------------------------------- private values


async def test_the_directory_keeps_its_values_out_of_the_flow_variables(
    harness: Harness
) -> None:
    await import_directory(harness.app.store, DIRECTORY, harness.clock.now)
    await search(harness)
    person = await harness.app.store.person(harness.pid)
    assert person is not None
    assert not [name for name in person.state.vars if name.startswith("_resources")]
    mine = person.state.features["resources"]
    assert mine["page"] == 0 and mine["view"] == "page:0" and len(mine["found"]) == 6  # type: ignore[arg-type]
    await harness.send("exit")  # quick exit drops them with the conversation
    person = await harness.app.store.person(harness.pid)
    assert person is None or "resources" not in person.state.features


async def older(h: Harness, move: dict[str, str]) -> State:
    """The person's stored state as an older release wrote it: the feature's values in
    flow variables (``move``: key in the feature's place -> variable)."""
    person = await h.app.store.person(h.pid)
    assert person is not None
    state = person.state.clone()
    for feature in list(state.features):
        for key, value in state.features.pop(feature).items():
            state.vars[move[key]] = value
    await h.app.store.save_turn(h.pid, person.channel, person.address, state, [],
                                h.clock.now)
    h.app._people.clear()  # what an older release wrote is read from the store
    return state


async def test_an_older_state_with_the_directorys_values_in_variables_still_pages(
    harness: Harness
) -> None:
    await import_directory(harness.app.store, DIRECTORY, harness.clock.now)
    await search(harness)
    state = await older(harness, {k: f"_resources_{k}" for k in browse.KEYS})
    assert state.vars["_resources_page"] == 0 and not state.features
    second = await harness.press("More")
    assert second[0].text.startswith("Here are 4 to 6.")
    assert labels(second)[0] == "Southtown Shelter"
    person = await harness.app.store.person(harness.pid)
    assert person is not None
    assert not [name for name in person.state.vars if name.startswith("_resources")]
    assert person.state.features["resources"]["page"] == 1


async def test_an_older_state_with_the_desks_menu_mark_in_a_variable_is_read(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    from tests.test_handoff import NOTE, ask_for_advocate, desk_harness

    h, desk, _service = await desk_harness(harness_factory, tmp_path)
    await ask_for_advocate(h)
    await h.send("menu")  # the next typed answer is the menu's
    person = await h.app.store.person(h.pid)
    assert person is not None and person.state.features["handoff"] == {"menu": True}
    await older(h, {"menu": "_case_menu"})
    posts = len(desk.threads["1"])
    said = await h.send(NOTE)  # the menu's, as the old mark says: not the advocate's
    assert said and len(desk.threads["1"]) == posts
    person = await h.app.store.person(h.pid)
    assert person is not None and "_case_menu" not in person.state.vars
    assert "handoff" not in person.state.features  # the mark was used
    await h.send(NOTE)
    assert desk.threads["1"][-1] == f"Person: {NOTE}"
