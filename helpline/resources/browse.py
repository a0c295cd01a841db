"""Self-paced browsing of search results, as overlay menus in front of a lookup step.

A lookup finds the matching services and keeps only their ids (in the encrypted
conversation state) for paging. The person then moves at their own pace: a page of
results, "More", a detail card, "Save for later", their saved services, "Change my
answers" (the engine restarts the flow) and "Done" (the engine carries on after the step).
Overlay values the engine does not handle come back here as ``OverlayPick``:

    page:N            a page of results
    svc:ORIGIN:ID     a detail card (ORIGIN is list or saved: where "Back" goes)
    save:ORIGIN:ID    save it, then show the card again
    unsave:ORIGIN:ID  forget it, then show the card again
    saved             the saved services
    list              the current page again
    refresh           what is on screen again (after a language switch), from VIEW
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType

from helpline.digits import is_number
from helpline.events import Lookup, Message, OverlayPick
from helpline.feature import Feature, Host, Plugs, Services, Turn
from helpline.flow.words import normalize
from helpline.i18n import N_, Nn_
from helpline.resources import cards
from helpline.resources.matching import Criteria, Openings, Outcome, openings
from helpline.resources.model import Service
from helpline.resources.schema import RESOURCES
from helpline.resources.store import Directory
from helpline.state import Value
from helpline.store import Store

OWNER = "resources"  # the feature's name: the owner of its menus
# Its values in the person's state (Services.private; flows cannot see them). Older
# releases kept them in flow variables "_resources_<key>" (see ResourcesFeature).
FOUND = "found"
PAGE = "page"
LIMIT = "limit"
NOTE = "note"
NO_DOCUMENTS = "no_documents"
VIEW = "view"  # what is on screen: page:N, saved, svc:ORIGIN:ID or nothing
READ_AS = "read_as"
ASKED = "asked"  # what the lookup was asked, while the person picks a place
PLACES = "places"  # the places offered for an unknown one
KEYS = (FOUND, PAGE, LIMIT, NOTE, NO_DOCUMENTS, VIEW, READ_AS, ASKED, PLACES)
MAX_KEPT = 100
HAS_SERVICES_SECONDS = 5.0
ADVOCATE_FLOW = "advocate"

T_FOUND = Nn_("I found {n} service that may fit.", "I found {n} services that may fit.")
T_SHOWING = N_("Here are {first} to {last}. Choose one to see more about it.")
T_SHOWING_ONE = N_("Choose it to see more about it.")
T_UNKNOWN_AREA = N_(
    "I don't know the place you gave, so these are from every area. Services that work "
    "anywhere are included."
)
# NOTE: {place} is a place of the directory; the person typed something spelt nearly so.
T_READ_AS = N_(
    "I took the place you gave to mean {place}. If that's not right, choose Change my "
    "answers."
)
T_DID_YOU_MEAN = N_("I don't know the place you gave. Did you mean one of these?")
T_EVERY_AREA = N_("Search every area")
T_NEAR = N_(
    "Nearest first, from the location you sent. I used it only for this list and did not "
    "keep it."
)
T_FICTIONAL = N_("These services are made up (sample data), for trying the bot.")
T_MORE = N_("More")
T_PREVIOUS = N_("Previous")
T_CHANGE = N_("Change my answers")
T_DONE = N_("Done")
# NOTE: a button label; {n} is how many services the person saved.
T_SAVED_BUTTON = N_("Saved services ({n})")
T_SAVE = N_("Save for later")
T_UNSAVE = N_("Remove from saved")
T_BACK_LIST = N_("Back to the list")
T_BACK_SAVED = N_("Back to saved services")
T_SAVED_NOW = N_("Saved. You'll find it under Saved services in the list of results.")
T_UNSAVED_NOW = N_("Removed from your saved services.")
T_SAVED_TITLE = N_("Your saved services. Choose one to see it again.")
T_SAVED_NONE = N_("You haven't saved any services yet.")
T_SAVED_GONE = N_("Some services you saved are no longer listed, so I took them off.")
T_GONE = N_("That service is no longer listed.")
T_NONE_FOUND = N_(
    "I couldn't find a service that fits all of that right now. That doesn't mean there's "
    "no help for you."
)
T_NONE_NEXT = N_("You can change your answers, or talk to a person who can help you look.")
T_TALK = N_("Talk to a person")


class ResourceBrowser:
    def __init__(self, services: Services[Directory]) -> None:
        self.s = services
        self.directory = services.repository
        self._has_services: tuple[float, bool | None] = (0.0, None)

    def _mine(self, turn: Turn) -> dict[str, Value]:
        return self.s.private(turn.state)

    # ------------------------------------------------------------- effects

    async def on_lookup(self, turn: Turn, effect: Lookup) -> list[Message] | None:
        """The services that fit; None (the app's own answer) when the directory is empty."""
        if not await self.directory.any():
            return None
        # A location shared this turn ranks by distance; it goes no further than this call
        # (the state keeps the ranked ids, so More and Back never need it).
        mine = self._mine(turn)
        mine.pop(ASKED, None)
        mine.pop(PLACES, None)
        return await self._search(turn, dict(effect.criteria), effect.limit, effect.near)

    async def _search(self, turn: Turn, asked: dict[str, object], limit: int,
                      near: tuple[float, float] | None = None, ask_place: bool = True
                      ) -> list[Message]:
        criteria = replace(Criteria.from_lookup(asked), near=near)
        ctx = self._ctx(turn)
        outcome = await self.directory.lookup(criteria, turn.now, ctx.stale_hours,
                                              ctx.locale)
        mine = self._mine(turn)
        if ask_place and outcome.area_suggestions:
            # Several known places are spelt nearly like the one typed: ask which. What
            # was asked waits in the (encrypted) state until the person picks.
            mine[ASKED] = json.dumps(asked, default=str)
            mine[LIMIT] = limit
            mine[PLACES] = list(outcome.area_suggestions)
            choices = [(place, f"area:{i}") for i, place in enumerate(
                outcome.area_suggestions)]
            choices += [(ctx.t(T_EVERY_AREA), "area:"), (ctx.t(T_CHANGE), "restart")]
            return [self._show(turn, ctx.t(T_DID_YOU_MEAN), choices)]
        await self._count_lookup(turn, criteria, outcome)
        mine[FOUND] = [m.service.id for m in outcome.matches[:MAX_KEPT]]
        mine[PAGE] = 0
        mine[LIMIT] = limit
        mine[NOTE] = "unknown_area" if outcome.unknown_area else ""
        mine[READ_AS] = outcome.area_read_as
        mine[NO_DOCUMENTS] = criteria.documents == "none"
        mine[VIEW] = "page:0"
        if not outcome.matches:
            return [await self._nothing(turn)]
        if criteria.near is None:
            return [await self._page(turn, 0)]
        km = {m.service.id: m.km for m in outcome.matches if m.km is not None}
        return [await self._page(turn, 0, ctx.t(T_NEAR), km=km)]

    async def on_pick(self, turn: Turn, effect: OverlayPick) -> list[Message]:
        value = effect.value
        mine = self._mine(turn)
        if value == "refresh":  # the same view again, in the person's language now
            value = str(mine.get(VIEW) or "list")
        else:
            mine[VIEW] = _view(value)
        kind, _, rest = value.partition(":")
        origin, _, sid = rest.partition(":")
        if kind == "page" and is_number(rest):
            return [await self._page(turn, int(rest))]
        if kind == "saved":
            return [await self._saved(turn)]
        if kind == "area":
            return await self._picked_place(turn, rest)
        if kind == "save" and sid:
            if await self.directory.save(turn.pid, sid):
                await self._count(turn, "service_saved")
            return [await self._detail(turn, sid, origin, cards_note=T_SAVED_NOW)]
        if kind == "unsave" and sid:
            await self.directory.unsave(turn.pid, sid)
            return [await self._detail(turn, sid, origin, cards_note=T_UNSAVED_NOW)]
        if kind == "svc" and sid:
            await self._count(turn, "service_viewed")
            return [await self._detail(turn, sid, origin)]
        return [await self._page(turn, _int(mine.get(PAGE)))]

    # ------------------------------------------------------------- statistics

    async def _count(self, turn: Turn, event: str, detail: str = "") -> None:
        await self.s.happened(self.s.happening(event, turn.now, turn.channel,
                                               turn.state.locale, detail))

    async def _count_lookup(self, turn: Turn, criteria: Criteria, outcome: Outcome) -> None:
        """A lookup, by the kinds of help asked for; and an unmet need when nothing with a
        confirmed opening matched, by those kinds and the area (a place the directory
        knows, never what was typed otherwise)."""
        needs = "+".join(sorted(criteria.needs)) or "any"
        await self._count(turn, "lookup", needs)
        if not any(m.openings.kind == "open" for m in outcome.matches):
            known = "" if outcome.unknown_area else (outcome.area_read_as or criteria.area)
            await self._count(turn, "lookup_unmet", f"{needs}/{_slug(known) or 'any'}")

    async def has_services(self, turn: Turn) -> bool:
        """``available: directory``: at least one service to search. Asked at every turn, so
        the answer is kept for a few seconds (an import shows within them; a lookup itself
        always reads the directory afresh)."""
        kept_at, kept = self._has_services
        if kept is None or not 0 <= turn.now - kept_at < HAS_SERVICES_SECONDS:
            kept = await self.directory.any()  # one row read, not the directory
            self._has_services = (turn.now, kept)
        return kept

    async def _picked_place(self, turn: Turn, pick: str) -> list[Message]:
        mine = self._mine(turn)
        kept = mine.pop(ASKED, None)
        places = _ids(mine.pop(PLACES, None))
        asked = json.loads(kept) if isinstance(kept, str) else None
        if not isinstance(asked, dict):
            return [await self._page(turn, _int(mine.get(PAGE)))]
        if is_number(pick) and int(pick) < len(places):
            asked = {**asked, "area": places[int(pick)]}
        return await self._search(turn, asked, _int(mine.get(LIMIT)) or 3,
                                  ask_place=False)

    # ------------------------------------------------------------- views

    async def _page(self, turn: Turn, page: int, note: str | None = None,
                    km: dict[str, float] | None = None) -> Message:
        """A page of results; ``km`` (distances to a location shared this turn) only for the
        first showing: it is not kept, so later pages show no distances."""
        ctx = self._ctx(turn)
        mine = self._mine(turn)
        found = _ids(mine.get(FOUND))
        if not found:
            return await self._nothing(turn)
        limit = max(1, _int(mine.get(LIMIT)) or 3)
        last_page = (len(found) - 1) // limit
        page = min(max(page, 0), last_page)
        mine[PAGE] = page
        chunk = found[page * limit:(page + 1) * limit]
        listed, states = await self._load(ctx, chunk)
        lines = [note] if note else []
        if page == 0:
            lines.append(ctx.count(T_FOUND, len(found)))
            if mine.get(NOTE) == "unknown_area":
                lines.append(ctx.t(T_UNKNOWN_AREA))
            read_as = mine.get(READ_AS)
            if isinstance(read_as, str) and read_as:
                lines.append(ctx.t(T_READ_AS, place=read_as))
            if await self._fictional():
                lines.append(ctx.t(T_FICTIONAL))
        first = page * limit + 1
        last = first + len(chunk) - 1
        lines.append(ctx.t(T_SHOWING_ONE) if len(found) == 1 else
                     ctx.t(T_SHOWING, first=first, last=last))
        choices = [(cards.label(ctx, listed[sid], states[sid], (km or {}).get(sid)),
                    f"svc:list:{sid}") for sid in chunk if sid in listed]
        if page < last_page:
            choices.append((ctx.t(T_MORE), f"page:{page + 1}"))
        if page > 0:
            choices.append((ctx.t(T_PREVIOUS), f"page:{page - 1}"))
        saved = len(await self.directory.saved(turn.pid))
        if saved:
            choices.append((ctx.t(T_SAVED_BUTTON, n=saved), "saved"))
        choices += [(ctx.t(T_CHANGE), "restart"), (ctx.t(T_DONE), "next")]
        return self._show(turn, "\n".join(lines), choices)

    async def _detail(self, turn: Turn, sid: str, origin: str,
                      cards_note: str | None = None) -> Message:
        ctx = self._ctx(turn)
        listed, states = await self._load(ctx, [sid])
        service = listed.get(sid)
        if service is None:
            if origin == "saved":
                await self.directory.unsave(turn.pid, sid)
                return await self._saved(turn, ctx.t(T_GONE))
            return await self._page(turn, _int(self._mine(turn).get(PAGE)), ctx.t(T_GONE))
        text = cards.detail(ctx, service, states[sid],
                            no_documents=self._mine(turn).get(NO_DOCUMENTS) is True)
        if cards_note:
            text = f"{ctx.t(cards_note)}\n\n{text}"
        is_saved = sid in await self.directory.saved(turn.pid)
        origin = "saved" if origin == "saved" else "list"
        choices = [(ctx.t(T_UNSAVE), f"unsave:{origin}:{sid}") if is_saved
                   else (ctx.t(T_SAVE), f"save:{origin}:{sid}")]
        if origin == "saved":
            choices.append((ctx.t(T_BACK_SAVED), "saved"))
        if _ids(self._mine(turn).get(FOUND)):
            choices.append((ctx.t(T_BACK_LIST), "list"))
        choices.append((ctx.t(T_DONE), "next"))
        return self._show(turn, text, choices)

    async def _saved(self, turn: Turn, note: str | None = None) -> Message:
        ctx = self._ctx(turn)
        ids = await self.directory.saved(turn.pid)
        listed, states = await self._load(ctx, ids)
        gone = [sid for sid in ids if sid not in listed]
        for sid in gone:
            await self.directory.unsave(turn.pid, sid)
        lines = [note] if note else []
        if gone:
            lines.append(ctx.t(T_SAVED_GONE))
        kept = [sid for sid in ids if sid in listed]
        lines.append(ctx.t(T_SAVED_TITLE) if kept else ctx.t(T_SAVED_NONE))
        choices = [(cards.label(ctx, listed[sid], states[sid]), f"svc:saved:{sid}")
                   for sid in kept]
        if _ids(self._mine(turn).get(FOUND)):
            choices.append((ctx.t(T_BACK_LIST), "list"))
        else:
            choices.append((ctx.t(T_CHANGE), "restart"))
        choices.append((ctx.t(T_DONE), "next"))
        return self._show(turn, "\n".join(lines), choices)

    async def _nothing(self, turn: Turn) -> Message:
        """No results: kind words, the hotline numbers, and ways on."""
        ctx = self._ctx(turn)
        lines = [ctx.t(T_NONE_FOUND)]
        hotline = self._hotline_text(ctx)
        if hotline:
            lines.append(hotline)
        lines.append(ctx.t(T_NONE_NEXT))
        choices = [(ctx.t(T_CHANGE), "restart")]
        # Offered only where a desk takes messages (when the app was told this turn).
        if ADVOCATE_FLOW in self.s.flows and (turn.facts is None or "desk" in turn.facts):
            choices.append((ctx.t(T_TALK), f"flow:{ADVOCATE_FLOW}"))
        saved = len(await self.directory.saved(turn.pid))
        if saved:
            choices.append((ctx.t(T_SAVED_BUTTON, n=saved), "saved"))
        choices.append((ctx.t(T_DONE), "next"))
        return self._show(turn, "\n\n".join(lines), choices)

    # ------------------------------------------------------------- helpers

    def _show(self, turn: Turn, text: str, choices: list[tuple[str, str]]) -> Message:
        return self.s.flows.show_overlay(turn.state, text, choices)

    def _ctx(self, turn: Turn) -> cards.Context:
        settings = self.s.settings
        return cards.Context(self.s.tr, turn.state.locale or settings.default_language,
                             turn.now, settings.resources.openings_stale_hours,
                             settings.timezone)

    async def _load(self, ctx: cards.Context, ids: list[str]
                    ) -> tuple[dict[str, Service], dict[str, Openings]]:
        listed = await self.directory.by_ids(ids)
        caps = await self.directory.capacities(ids)
        states = {sid: openings(caps.get(sid, []), ctx.now, ctx.stale_hours) for sid in listed}
        return listed, states

    async def _fictional(self) -> bool:
        return any(s.fictional for s in await self.directory.sources())

    def _hotline_text(self, ctx: cards.Context) -> str | None:
        """The text of the configured step (the numbers flow's), translated."""
        text = self.s.flows.text_of(self.s.settings.resources.hotline_step)
        return None if text is None else ctx.t(text)


def _view(value: str) -> str:
    """The view a pick leads to, to show again after a language switch."""
    kind, _, rest = value.partition(":")
    if kind in ("save", "unsave"):
        return f"svc:{rest}"
    return value if kind in ("page", "svc", "saved") else "list"


def _ids(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


class ResourcesFeature(Feature[Directory]):
    """The service directory in the conversation: lookups, browsing its results (menus of
    its own in front of the lookup step), ``available: directory``, and the ranking index
    kept ready by a timed job."""

    name = OWNER
    part = RESOURCES
    legacy_vars = MappingProxyType({f"_resources_{key}": key for key in KEYS})

    def __init__(self) -> None:
        self.browser: ResourceBrowser | None = None  # once plugged in

    def repository(self, store: Store) -> Directory:
        return Directory(store)

    def plug(self, services: Services[Directory], plugs: Plugs) -> None:
        self.browser = browser = ResourceBrowser(services)
        plugs.effect(Lookup, browser.on_lookup)
        plugs.picks(browser.on_pick)
        plugs.fact("directory", browser.has_services)
        plugs.every("directory-index", browser.directory.prepare)  # ready before it is asked


def install(app: Host) -> ResourceBrowser:
    """Answer the app's Lookup effects, and the picks of the results' menus, from the
    directory in its store."""
    feature = ResourcesFeature()
    app.add(feature)
    assert feature.browser is not None
    return feature.browser


def _slug(place: str) -> str:
    """A place as a statistics code: "North Town" -> "north-town"."""
    return "-".join(normalize(place).split())[:40]
