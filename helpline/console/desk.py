"""The console as an advocate desk (``helpline.handoff.desk.Desk``): a thread is a case's
page in the browser.

The relay (``HandoffService``) stays the one owner of what a case is and does: it opens a
thread per case, posts the card and the person's words, edits the card, closes the
thread, and deletes it when the person erases their data. Here a post becomes a line of
the case's transcript (encrypted with the store's vault, in the console's own table) and
is pushed at once to the case's open pages (``hub``); what an advocate does in the browser
becomes the ``DeskEvent`` the Telegram desk would have made (a claim, a message, a
``/close``...). The card itself is not kept: a page shows the case from the desk's own
row (handle, language, channel, what the person chose to share, who claimed it).

Advocates are known to the relay by their staff id, ``console:<user name>``, which no
Telegram user id can be (those are digits). A transcript goes when its case closes, or
``[console] keep_transcript_hours`` later; at once, and from every open page, when the
person quick-exits or erases their data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from helpline.console.assign import Advocate, choose
from helpline.console.hub import QUEUE, Hub, thread_topic
from helpline.errors import Rejected
from helpline.events import TextUnit
from helpline.handoff.cases import Case, Cases
from helpline.handoff.desk import DeskEvent, DeskHandler
from helpline.store import Store
from helpline.store.sql import SyncConn

log = logging.getLogger("helpline.console")

STAFF_PREFIX = "console:"
Kind = Literal["desk", "advocate", "note"]
# What an advocate's message became: the person's platform took it; it waits in the queue
# (a safe time the person chose, or the platform is down); it was not sent (the case moved
# on); the person can no longer be reached.
State = Literal["sending", "sent", "waiting", "not sent", "not delivered"]
ANSWERS_KEPT = 1000


def staff_id(name: str) -> str:
    """The relay's id of a console user (``DeskEvent.user``, ``cases.advocate``)."""
    return STAFF_PREFIX + name


def staff_name(advocate: str | None) -> str:
    """How a case's advocate is shown: a console user by name, a Telegram one by id."""
    if advocate is None:
        return ""
    return advocate[len(STAFF_PREFIX):] if advocate.startswith(STAFF_PREFIX) else advocate


@dataclass(frozen=True)
class Line:
    id: int
    at: float
    kind: Kind
    author: str
    text: str
    state: str

    def data(self) -> dict[str, object]:
        return {"id": self.id, "at": self.at, "kind": self.kind,
                "author": staff_name(self.author), "text": self.text, "state": self.state}


@dataclass(frozen=True)
class Thread:
    id: int
    handle: str
    peer: str | None
    card: str | None
    status: str
    opened_at: float
    closed_at: float | None
    delete_after: float | None


@dataclass(frozen=True)
class Options:
    """The console's case settings (``[console]``)."""

    keep_transcript_hours: float = 0.0
    shared_reading: bool = False
    auto_assign: bool = False
    default_capacity: int = 3
    # An advocate is on shift while they say so and are signed in: a session used within
    # this long (``[console] idle_minutes``).
    idle_minutes: float = 20.0


def may_read(staff: str, case: Case, shared_reading: bool) -> bool:
    """Whether the advocate ``staff`` may read this case's page: a waiting case, any
    advocate; a claimed one, the advocate who has it (or anyone, with shared reading);
    a closed one, the one who had it last (while its transcript is kept)."""
    if case.status == "waiting":
        return True
    return case.advocate == staff or (shared_reading and case.status == "claimed")


class ConsoleDesk:
    # What one post may hold (the relay splits the person's words to fit); the console
    # has no platform's limit, and 16,384 characters is what any message can be.
    max_text = 16384
    text_unit: TextUnit = "utf16"

    def __init__(self, store: Store, hub: Hub | None = None, options: Options | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.vault = store.vault
        self.hub = hub or Hub()
        self.options = options or Options()
        self.clock = clock
        self.cases = Cases(store)
        self._handler: DeskHandler | None = None
        self._answers: OrderedDict[str, str] = OrderedDict()
        self._queries = itertools.count(1)
        self._assigning = asyncio.Lock()
        self._known: set[str] = set()  # active accounts' staff ids (is_staff)
        self._tasks: set[asyncio.Task[object]] = set()

    # ------------------------------------------------------------- the Desk protocol

    def listen(self, handler: DeskHandler) -> None:
        self._handler = handler

    def is_staff(self, user: str) -> bool:
        """Whether ``user`` is a console advocate: an active account, as last read (every
        poll, every queue page), or one that acted just now (only this desk makes events
        with such ids, and only for a signed-in, active account). So a ``/transfer`` typed
        on another desk names a real account."""
        return user in self._known

    def has_staff(self) -> bool:
        """The console takes cases (its accounts are made on the server; ``helpline
        doctor`` warns when there is none)."""
        return True

    async def create_thread(self, name: str) -> str:
        """A thread for the case ``name``; one opened before for it and not used yet (the
        queue tried again) is given again."""
        now = self.clock()
        async with self.store.transaction() as db:
            async with db.execute(
                    "SELECT id FROM console_threads WHERE handle = ? AND status = 'open' "
                    "AND card IS NULL ORDER BY id DESC LIMIT 1", (name,)) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                return str(found[0])
            cursor = await db.execute(
                "INSERT INTO console_threads (handle, opened_at) VALUES (?, ?)", (name, now))
            return str(cursor.lastrowid)

    async def post(self, thread: str, text: str, claim: str | None = None) -> str:
        found = await self.thread(_number(thread))
        if found is None:
            raise Rejected("console: no such thread")
        if found.card is None:  # the relay's first post is the case's card
            await self.store.database.write(lambda db: db.execute(
                "UPDATE console_threads SET card = 'card' WHERE id = ?", (found.id,)))
            self.hub.publish(QUEUE, "queue")
            self._soon(self.assign())
            return "card"
        if found.status != "open":
            # After closing (an advocate acted on a closed case): said to the open pages,
            # kept nowhere.
            self.hub.publish(thread_topic(found.id), "line", {
                "id": 0, "at": self.clock(), "kind": "desk", "author": "", "text": text,
                "state": ""})
            return "0"
        line = await self._add(found.id, "desk", "", text)
        return str(line.id)

    async def edit(self, thread: str, message_id: str, text: str, claim: str | None = None
                   ) -> None:
        """The card changed (claimed, unclaimed, closed): pages show it again."""
        number = _number(thread)
        self.hub.publish(thread_topic(number), "card")
        self.hub.publish(QUEUE, "queue")
        self._soon(self.assign())

    async def answer(self, query: str, text: str) -> None:
        if query in self._answers:
            self._answers[query] = text

    async def close_thread(self, thread: str) -> None:
        number = _number(thread)
        case = await self.cases.by_topic(thread)
        left = case is not None and await self._person_left(case)
        keep = self.options.keep_transcript_hours
        now = self.clock()
        if left or keep <= 0:
            await self._clear(number, now)
            return
        await self.store.database.write(lambda db: db.execute(
            "UPDATE console_threads SET status = 'closed', closed_at = ?, delete_after = ? "
            "WHERE id = ?", (now, now + keep * 3600, number)))
        self.hub.publish(thread_topic(number), "closed")
        self.hub.publish(QUEUE, "queue")

    async def delete_thread(self, thread: str) -> bool:
        await self._clear(_number(thread), self.clock())
        return True

    # ------------------------------------------------------------- reading

    async def thread(self, number: int) -> Thread | None:
        row = await self.store.database.row(
            "SELECT id, handle, peer, card, status, opened_at, closed_at, delete_after "
            "FROM console_threads WHERE id = ?", (number,))
        return None if row is None else Thread(**dict(row))

    async def by_peer(self, peer: str) -> Thread | None:
        row = await self.store.database.row(
            "SELECT id FROM console_threads WHERE peer = ? ORDER BY id DESC LIMIT 1", (peer,))
        return None if row is None else await self.thread(int(row["id"]))

    async def set_peer(self, number: int, peer: str) -> None:
        await self.store.database.write(lambda db: db.execute(
            "UPDATE console_threads SET peer = ? WHERE id = ?", (peer, number)))

    async def case_of(self, number: int) -> Case | None:
        return await self.cases.by_topic(str(number))

    async def lines(self, number: int) -> list[Line]:
        rows = await self.store.database.rows(
            "SELECT id, at, kind, author, body, state FROM console_lines WHERE thread = ? "
            "ORDER BY id", (number,))
        return [Line(int(r["id"]), float(r["at"]), r["kind"], str(r["author"]),
                     self.vault.decrypt_text(r["body"]), str(r["state"])) for r in rows]

    async def open_cases(self) -> list[tuple[Case, int]]:
        """The open cases that have a console thread, oldest first, with the thread (one
        query: the queue page reads it at every change)."""
        columns = ", ".join(f"c.{f.name}" for f in dataclasses.fields(Case))
        rows = await self.store.database.rows(
            f"SELECT {columns}, t.id AS console_thread FROM cases c JOIN console_threads t "
            "ON c.topic = CAST(t.id AS TEXT) WHERE c.status IN ('waiting', 'claimed') "
            "AND t.card IS NOT NULL ORDER BY c.opened_at, c.id")
        found = []
        for row in rows:
            fields = dict(row)
            thread = int(fields.pop("console_thread"))
            summary = fields.pop("summary")
            found.append((Case(**fields, summary={} if summary is None else json.loads(
                self.vault.decrypt(summary))), thread))
        return found

    # ------------------------------------------------------------- what advocates do

    def _event_answer(self) -> str:
        query = f"console-{next(self._queries)}"
        self._answers[query] = ""
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
        return query

    async def claim(self, staff: str, number: int) -> str:
        """A press of Claim; returns what the relay answered ("You have this case.")."""
        query = self._event_answer()
        await self._emit(DeskEvent("claim", str(number), staff, query=query))
        return self._answers.pop(query, "")

    async def command(self, staff: str, number: int, text: str) -> None:
        """A desk command (``/close``, ``/unclaim``, ``/transfer ID``, ``/canned KEY``,
        ``/resource ID``, ``/openings ID N``), as the Telegram desk takes them."""
        await self._emit(DeskEvent("message", str(number), staff, text=text))

    async def note(self, staff: str, number: int, text: str) -> Line:
        """A note for the desk: kept in the transcript, never sent."""
        return await self._add(number, "note", staff, text)

    async def say(self, staff: str, number: int, text: str) -> Line:
        """An advocate's message to the person: in the transcript at once, then through
        the relay; its line then says what became of it."""
        line = await self._add(number, "advocate", staff, text, "sending")
        await self._emit(DeskEvent("message", str(number), staff, text=text))
        return await self._settle(number, line, staff)

    async def record(self, number: int, staff: str, text: str) -> Line:
        """An advocate's message written on another desk (Telegram, with both on): in the
        transcript with what became of it (the relay has handled it already)."""
        line = await self._add(number, "advocate", staff, text, "sending")
        return await self._settle(number, line, staff)

    async def _emit(self, event: DeskEvent) -> None:
        if self._handler is None:
            raise RuntimeError("the console desk is not listened to")
        self._known.add(event.user)
        await self._handler(event)

    async def _settle(self, number: int, line: Line, staff: str) -> Line:
        state = await self._delivery(number, staff)
        await self._set_state(line.id, state)
        self.hub.publish(thread_topic(number), "state", {"id": line.id, "state": state})
        return Line(line.id, line.at, line.kind, line.author, line.text, state)

    async def _set_state(self, line: int, state: str) -> None:
        await self.store.database.write(lambda db: db.execute(
            "UPDATE console_lines SET state = ? WHERE id = ?", (state, line)))

    async def _delivery(self, number: int, staff: str | None) -> State:
        case = await self.case_of(number)
        if case is None or not case.is_open or (staff is not None and case.advocate != staff):
            return "not sent"
        person = await self.store.person(case.pid)
        if person is None or person.unreachable:
            return "not delivered"
        return "waiting" if await self.store.operations(case.pid, 1) else "sent"

    # ------------------------------------------------------------- presence, assignment

    async def staff(self) -> list[Advocate]:
        """Every active console account with its presence (on shift: they said so and
        are signed in), capacity and open cases."""
        signed_in_since = self.clock() - self.options.idle_minutes * 60
        rows = await self.store.database.rows(
            "SELECT u.id, u.name, s.presence, s.capacity, EXISTS (SELECT 1 FROM "
            "console_sessions c WHERE c.user_id = u.id AND c.seen_at > ?) AS signed_in "
            "FROM console_users u LEFT JOIN console_staff s ON s.user_id = u.id "
            "WHERE u.status = 'active' ORDER BY u.name", (signed_in_since,))
        loads = {str(r["advocate"]): int(r["n"]) for r in await self.store.database.rows(
            "SELECT advocate, COUNT(*) AS n FROM cases WHERE status = 'claimed' "
            "GROUP BY advocate")}
        found = []
        for r in rows:
            staff = staff_id(str(r["name"]))
            capacity = self.options.default_capacity if r["capacity"] is None \
                else int(r["capacity"])
            found.append(Advocate(staff, r["presence"] == "on" and bool(r["signed_in"]),
                                  capacity, loads.get(staff, 0)))
        self._known = {a.staff for a in found}
        return found

    async def set_presence(self, user_id: int, on_shift: bool, capacity: int | None = None
                           ) -> None:
        now = self.clock()
        presence = "on" if on_shift else "away"
        default = self.options.default_capacity
        await self.store.database.write(lambda db: db.execute(
            "INSERT INTO console_staff (user_id, presence, capacity, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET presence = excluded."
            "presence, capacity = COALESCE(?, console_staff.capacity), updated_at = ?",
            (user_id, presence, default if capacity is None else capacity, now, capacity,
             now)))
        self.hub.publish(QUEUE, "queue")
        self._soon(self.assign())

    async def assign(self) -> int:
        """With ``auto_assign``: the oldest waiting cases, each to the least-loaded
        advocate on shift with room, as a claim of theirs. Returns how many were given."""
        if not self.options.auto_assign or self._handler is None:
            return 0
        given = 0
        async with self._assigning:
            waiting = [thread for case, thread in await self.open_cases()
                       if case.status == "waiting"]
            if not waiting:
                return 0
            for thread, staff in choose(waiting, await self.staff()):
                await self.claim(staff, thread)
                case = await self.case_of(thread)
                if case is not None and case.advocate == staff:
                    given += 1
                    log.info("case %s given to an advocate on shift", case.id)
                else:  # the case moved on meanwhile (claimed by hand, closed)
                    log.info("an automatic assignment did not take")
        return given

    # ------------------------------------------------------------- upkeep

    async def tidy(self) -> int:
        """Every poll: transcripts past their time go; an advocate's message that waited
        says whether it has gone. Returns how many lines were removed."""
        now = self.clock()
        numbers = [int(r["id"]) for r in await self.store.database.rows(
            "SELECT id FROM console_threads WHERE delete_after IS NOT NULL AND "
            "delete_after <= ?", (now,))]
        removed = 0
        for number in numbers:
            removed += await self._clear(number, now)
        for row in await self.store.database.rows(
                "SELECT l.id, l.thread FROM console_lines l JOIN console_threads t ON "
                "t.id = l.thread WHERE l.state = 'waiting' AND t.status = 'open'"):
            state = await self._delivery(int(row["thread"]), None)
            if state != "waiting":
                line_id = int(row["id"])
                await self._set_state(line_id, state)
                self.hub.publish(thread_topic(int(row["thread"])), "state",
                                 {"id": line_id, "state": state})
        await self.assign()
        return removed

    # ------------------------------------------------------------- helpers

    async def _add(self, number: int, kind: Kind, author: str, text: str, state: str = ""
                   ) -> Line:
        now = self.clock()
        body = self.vault.encrypt_text(text)
        cursor_id = await self.store.database.write(lambda db: db.execute(
            "INSERT INTO console_lines (thread, at, kind, author, body, state) "
            "VALUES (?, ?, ?, ?, ?, ?)", (number, now, kind, author, body, state)).lastrowid)
        line = Line(int(cursor_id or 0), now, kind, author, text, state)
        self.hub.publish(thread_topic(number), "line", line.data())
        return line

    async def _clear(self, number: int, now: float) -> int:
        """The transcript goes, from the table and from every open page."""
        def clear(db: SyncConn) -> int:
            gone = db.execute("DELETE FROM console_lines WHERE thread = ?", (number,)).rowcount
            db.execute("UPDATE console_threads SET status = 'closed', closed_at = "
                       "COALESCE(closed_at, ?), delete_after = NULL WHERE id = ?",
                       (now, number))
            return int(gone)

        removed = await self.store.database.write(clear)
        self.hub.publish(thread_topic(number), "cleared")
        self.hub.publish(QUEUE, "queue")
        return removed

    async def _person_left(self, case: Case) -> bool:
        events = await self.cases.events(case.id)
        return bool(events) and events[-1][0] == "person_left"

    def _soon(self, work: object) -> None:
        """Run ``work`` (a coroutine) after this, outside the caller's locks."""
        if not inspect.iscoroutine(work):
            return
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait for the work started in the background (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _number(thread: str) -> int:
    try:
        return int(thread)
    except ValueError:
        raise Rejected("console: not a thread of the console") from None
