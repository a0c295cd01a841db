"""The console's queue and case pages, when the console is a desk (``[console] desk``).

* ``/`` the live queue: waiting cases oldest first with their wait, claimed cases and by
  whom, each person's language and kind of channel; office hours, who is on shift, and
  the advocate's own presence and capacity. ``/events`` tells the page when to fetch
  ``/queue/part`` again (server-sent events; nothing about a case is in them).
* ``/case/<n>`` one case: what the person chose to share, the chat in order with what
  became of each message, notes, canned replies in the person's language, a directory
  search that sends a service card, openings; ``/case/<n>/events`` pushes each new line,
  and says when the case changed, closed, or its transcript was removed.

Who sees what (``desk.may_read``): a waiting case, any advocate; a claimed one, the
advocate who has it, unless ``[console] shared_reading``. Anyone else is refused (403,
with nothing of the case), and the refusal is in the audit log. Every action is a form
(it works without the script) carrying the CSRF token; the script sends the composer's
forms in the background and keeps the page live.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from helpline.console.accounts import Session
from helpline.console.desk import ConsoleDesk, may_read, staff_id, staff_name
from helpline.console.feature import Desking
from helpline.console.hub import QUEUE, Event, thread_topic
from helpline.digits import is_number
from helpline.handoff.cases import Case
from helpline.i18n import language_name

if TYPE_CHECKING:
    from helpline.console.web import Console

log = logging.getLogger("helpline.console")

KEEPALIVE_SECONDS = 15.0
NEEDS = (("shelter", "A safe place to stay"), ("legal", "Legal help"),
         ("medical", "Medical care"), ("counselling", "Counselling"),
         ("immigration", "Immigration or visa questions"),
         ("substance_use", "Help with alcohol or drugs"), ("food", "Food"),
         ("documents", "ID or other documents"), ("other", "Something else"))
SEARCH_SHOWN = 10


def add_routes(app: web.Application) -> None:
    app.router.add_get("/queue/part", queue_part)
    app.router.add_get("/events", queue_events)
    app.router.add_post("/presence", presence)
    app.router.add_get(r"/case/{n:\d+}", case_page)
    app.router.add_get(r"/case/{n:\d+}/head", case_head)
    app.router.add_get(r"/case/{n:\d+}/events", case_events)
    app.router.add_post(r"/case/{n:\d+}/{action:[a-z]+}", case_action)


def _console(request: web.Request) -> Console:
    from helpline.console.web import CONSOLE_KEY

    return request.app[CONSOLE_KEY]


def _desking(request: web.Request) -> Desking:
    desking = _console(request).desking
    if desking is None:
        raise web.HTTPNotFound()
    assert isinstance(desking, Desking)
    return desking


def _session(request: web.Request) -> Session | web.Response:
    from helpline.console.web import _signed_in

    return _signed_in(request)


def waited(seconds: float) -> str:
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def shared(case: Case, labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """What the person chose to share, as the card shows it (label, value)."""
    shown = []
    for name, value in case.summary.items():
        label = labels.get(name, name)
        shown.append((label, ", ".join(map(str, value)) if isinstance(value, list)
                      else str(value)))
    return shown


# ------------------------------------------------------------------ the queue


async def queue_values(request: web.Request, session: Session) -> dict[str, Any]:
    desking = _desking(request)
    desk = desking.desk
    now = desk.clock()
    me = staff_id(session.user.name)
    waiting: list[dict[str, Any]] = []
    claimed: list[dict[str, Any]] = []
    for case, thread in await desk.open_cases():
        row = {"thread": thread, "handle": case.handle, "language": language_name(
            case.locale or "en"), "channel": case.channel.capitalize(),
            "wait": waited(now - case.opened_at), "mine": case.advocate == me,
            "by": staff_name(case.advocate), "shared": shared(case, desking.share_labels),
            "readable": may_read(me, case, desk.options.shared_reading),
            "later": case.later == "yes"}
        (waiting if case.status == "waiting" else claimed).append(row)
    staff = await desk.staff()
    mine = next((a for a in staff if a.staff == me), None)
    return {"waiting": waiting, "claimed": claimed,
            "on_shift": [(staff_name(a.staff), a.load, a.capacity) for a in staff
                         if a.on_shift],
            "office_open": desking.hours.is_open(now),
            "me_on_shift": bool(mine and mine.on_shift),
            "capacity": mine.capacity if mine else desk.options.default_capacity,
            "auto_assign": desk.options.auto_assign}


async def queue_page(request: web.Request, session: Session) -> web.StreamResponse:
    values = await queue_values(request, session)
    return _console(request).page(request, "queue.html", **values)


async def queue_part(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    if not isinstance(session, Session):
        return session
    values = await queue_values(request, session)
    return _console(request).page(request, "queue_part.html", **values)


async def presence(request: web.Request) -> web.StreamResponse:
    from helpline.console.web import see_other

    session = _session(request)
    if not isinstance(session, Session):
        return session
    desk = _desking(request).desk
    form = await request.post()
    raw = str(form.get("capacity", "")).strip()
    capacity = min(int(raw), 50) if is_number(raw) and len(raw) <= 3 else None
    on_shift = str(form.get("presence", "")) == "on"
    await desk.set_presence(session.user.id, on_shift, capacity)
    await _console(request).accounts.audit(
        session.user.name, "on shift" if on_shift else "away", session.user.name,
        "" if capacity is None else f"capacity {capacity}")
    return see_other("/")


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    return response


async def _still_signed_in(request: web.Request) -> bool:
    from helpline.console.web import SESSION_COOKIE

    token = request.cookies.get(SESSION_COOKIE, "")
    found = await _console(request).accounts.session(token, touch=False) if token else None
    return isinstance(found, Session)


async def queue_events(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    if not isinstance(session, Session):
        return session
    hub = _desking(request).desk.hub
    async with hub.listen(QUEUE) as listener:
        response = await _stream(request)
        try:
            while True:
                event = await listener.next(KEEPALIVE_SECONDS)
                if event is None:
                    if listener.dropped or not await _still_signed_in(request):
                        break
                    await response.write(b": still here\n\n")
                    continue
                await response.write(event.frame())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
    return response


# ------------------------------------------------------------------ a case


async def _readable(request: web.Request, session: Session
                    ) -> tuple[ConsoleDesk, int, Case] | web.Response:
    """The case of this page, when this advocate may read it; else the refusal."""
    desk = _desking(request).desk
    number = int(request.match_info["n"])
    case = await desk.case_of(number)
    me = staff_id(session.user.name)
    if case is None:
        raise web.HTTPNotFound()
    if not may_read(me, case, desk.options.shared_reading):
        await _console(request).accounts.audit(session.user.name, "case refused", case.handle)
        log.info("console: a case page refused to an advocate who does not have it")
        return _console(request).page(request, "not_yours.html", 403)
    return desk, number, case


async def case_values(request: web.Request, session: Session, desk: ConsoleDesk,
                      number: int, case: Case) -> dict[str, Any]:
    desking = _desking(request)
    me = staff_id(session.user.name)
    locale = case.locale or desking.settings.default_language
    canned = [(key, desking.gettext(locale, text)) for key, text in
              sorted(desking.canned.items())]
    others = [a.staff for a in await desk.staff() if a.staff != me]
    others += [str(a) for a in desking.settings.handoff.advocates]
    return {"number": number, "case": case, "handle": case.handle,
            "language": language_name(locale), "channel": case.channel.capitalize(),
            "shared": shared(case, desking.share_labels), "mine": case.advocate == me,
            "by": staff_name(case.advocate), "case_status": case.status,
            "canned": canned, "others": [(o, staff_name(o)) for o in others],
            "wait": waited(desk.clock() - case.opened_at), "outreach": desking.outreach()}


async def _case(request: web.Request
                ) -> tuple[ConsoleDesk, int, Case, dict[str, Any]] | web.StreamResponse:
    """The case of this page with what its head shows, when this advocate may read it;
    else the refusal (or the sign-in page)."""
    session = _session(request)
    if not isinstance(session, Session):
        return session
    found = await _readable(request, session)
    if isinstance(found, web.Response):
        return found
    desk, number, case = found
    return desk, number, case, await case_values(request, session, desk, number, case)


async def case_page(request: web.Request) -> web.StreamResponse:
    found = await _case(request)
    if not isinstance(found, tuple):
        return found
    desk, number, case, values = found
    lines = [line.data() for line in await desk.lines(number)]
    need = request.query.get("need", "")
    place = request.query.get("place", "")[:200]
    results = await _search(request, case, need, place) if need or place else None
    return _console(request).page(request, "case.html", lines=lines, needs=NEEDS,
                                  need=need, place=place, results=results, **values)


async def case_head(request: web.Request) -> web.StreamResponse:
    found = await _case(request)
    if not isinstance(found, tuple):
        return found
    return _console(request).page(request, "case_head.html", **found[3])


async def _search(request: web.Request, case: Case, need: str, place: str
                  ) -> list[dict[str, Any]]:
    from helpline.resources.matching import Criteria

    desking = _desking(request)
    settings = desking.settings
    needs = (need,) if need in {n for n, _ in NEEDS} else ()
    outcome = await desking.directory.lookup(
        Criteria(needs=needs, area=place), desking.desk.clock(),
        settings.resources.openings_stale_hours, case.locale or settings.default_language,
        SEARCH_SHOWN)
    found = []
    for match in outcome.matches[:SEARCH_SHOWN]:
        s = match.service
        found.append({"id": s.id, "name": s.name, "organization": s.organization or "",
                      "areas": ", ".join(s.areas)})
    return found


async def case_events(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    if not isinstance(session, Session):
        return session
    found = await _readable(request, session)
    if isinstance(found, web.Response):
        return found
    desk, number, _ = found
    me = staff_id(session.user.name)
    after = request.query.get("after", "")
    async with desk.hub.listen(thread_topic(number)) as listener:
        response = await _stream(request)
        try:
            # What came between the page and this stream (the page says what it has).
            if is_number(after) and len(after) < 19:
                for line in await desk.lines(number):
                    if line.id > int(after):
                        await response.write(Event("line", line.data()).frame())
            while True:
                event = await listener.next(KEEPALIVE_SECONDS)
                if event is None:
                    if listener.dropped or not await _still_signed_in(request):
                        break
                    await response.write(b": still here\n\n")
                    continue
                if event.kind == "card":  # claimed, transferred: still this one's to read?
                    case = await desk.case_of(number)
                    if case is None or not may_read(me, case, desk.options.shared_reading):
                        await response.write(b"event: gone\ndata: {}\n\n")
                        break
                await response.write(event.frame())
                if event.kind == "cleared":
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
    return response


ACTIONS = ("claim", "unclaim", "transfer", "close", "send", "note", "canned", "resource",
           "openings", "dnc")
AUDITED = {"claim": "case claimed", "unclaim": "case unclaimed",
           "transfer": "case transferred", "close": "case closed", "send": "reply sent",
           "note": "note written", "canned": "canned reply sent",
           "resource": "service card sent", "openings": "openings recorded",
           "dnc": "marked do not contact"}


async def case_action(request: web.Request) -> web.StreamResponse:
    from helpline.console.web import see_other

    session = _session(request)
    if not isinstance(session, Session):
        return session
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    found = await _readable(request, session)
    if isinstance(found, web.Response):
        return found
    desk, number, case = found
    form = await request.post()
    me = staff_id(session.user.name)
    text = str(form.get("text", "")).strip()
    detail = ""
    if action == "claim":
        detail = await desk.claim(me, number)
    elif action in ("unclaim", "close"):
        await desk.command(me, number, f"/{action}")
    elif action == "transfer":
        target = str(form.get("to", "")).strip()
        offered = {o for o, _ in (await case_values(request, session, desk, number,
                                                    case))["others"]}
        if target not in offered:  # only an account there is, or a listed advocate
            return see_other(f"/case/{number}")
        detail = staff_name(target)
        await desk.command(me, number, f"/transfer {target}")
    elif action == "send":
        if not text:
            return _done(request, number)
        line = await desk.say(me, number, text)
        detail = line.state
    elif action == "note":
        if not text:
            return _done(request, number)
        await desk.note(me, number, text)
    elif action == "canned":
        key = str(form.get("key", "")).strip()
        detail = key
        await desk.command(me, number, f"/canned {key}")
    elif action == "dnc":  # outreach's "do not contact" (the relay's /dnc)
        await desk.command(me, number, "/dnc")
    elif action == "resource":
        service_id = str(form.get("service", "")).strip()
        detail = service_id
        await desk.command(me, number, f"/resource {service_id}")
    else:
        service_id = str(form.get("service", "")).strip()
        count = str(form.get("count", "")).strip()
        detail = service_id
        await desk.command(me, number, f"/openings {service_id} {count}")
    event = AUDITED[action]
    if action == "claim":  # someone else may have been faster
        now = await desk.case_of(number)
        event, detail = ("case claimed", "") if now is not None and now.advocate == me \
            else ("claim did not take", "")
    await _console(request).accounts.audit(session.user.name, event, case.handle, detail)
    if action == "claim":
        return see_other(f"/case/{number}")
    if action == "close" and "fetch" not in request.headers.get("X-Requested-With", ""):
        return see_other("/")
    return _done(request, number, {"answer": detail} if action == "claim" else None)


def _done(request: web.Request, number: int, body: dict[str, str] | None = None
          ) -> web.Response:
    """A background send (the script) gets a short answer; a form, the page again."""
    from helpline.console.web import see_other

    if "fetch" in request.headers.get("X-Requested-With", ""):
        return web.Response(text=json.dumps(body or {}), content_type="application/json")
    return see_other(f"/case/{number}")
