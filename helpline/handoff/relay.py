"""Queue -> claim -> two-way relay -> close, between a person and the advocate desk.

* A handoff step opens a case with only what the person chose to share; the desk gets one
  thread per case with a card and a Claim button (allow-listed advocates only).
* While a case is open, global commands stay global and button presses go to the flows.
  Typed text goes to the desk when the person is not inside a flow (idle, or at the top of
  the home menu), unless it picks one of the menu's options (a number or a label, as typed
  on a numbered list): the flows, the emergency numbers first, stay one word away. After
  the person types "menu", their next typed answer goes to the menu, and inside any flow
  they picked from it typed text answers that flow; back at the top of the menu, typed
  text goes to the desk again.
* What the claiming advocate writes in the thread reaches the person; notes starting with
  the note prefix stay on the desk; others' messages are not relayed (they are told).
* Everything either side says goes through the app's durable operations queue: the person's words to
  the desk are queued under ``desk:<case id>`` for the "desk" channel (``DeskChannel``).
* Quick exit or "delete my data" closes the case; the desk is told only that the person
  left. Nothing is relayed to a closed case. "delete my data" also deletes the case's
  thread on the desk, with every message in it (the person's words among them).
* Outside office hours, or when nobody claims a case in time, the person gets an honest
  message with the emergency numbers and the choice to leave a message for the next shift.
  At a handoff step (the flow did not ask itself: no ``for_next_shift``) that choice is a
  menu of the app's own (an overlay, owner ``handoff``) in place of the flow's next
  question, so the turn is one message; no case is opened unless the person says yes,
  and either answer takes the flow on to its next step.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from helpline.channels.base import BaseChannel, Capabilities
from helpline.digits import is_number
from helpline.events import (
    Choice,
    Handoff,
    Inbound,
    Message,
    OverlayPick,
    TextUnit,
    split_framed,
    split_text,
)
from helpline.feature import Services, Turn
from helpline.flow.engine import normalize
from helpline.handoff.cases import Case, Cases
from helpline.handoff.desk import Desk, DeskEvent
from helpline.handoff.routing import During, Route, YesNo, route
from helpline.i18n import N_, language_name
from helpline.office_hours import OfficeHours
from helpline.payloads import Kind, decode, encode
from helpline.resources.store import Directory
from helpline.stats.counts import claim_time_bucket

log = logging.getLogger("helpline.handoff")

DESK = "desk"  # the channel name of the desk in the operations queue
ERASE_ADDRESS = "erase:"  # queued address "erase:<case id>": delete the case's thread
# In the desk's own place in a person's state: they typed "menu" during a case, so their
# next typed answer is the menu's (older releases kept it in the flow variable "_case_menu").
MENU_ASKED = "menu"
LEGACY_MENU_VAR = "_case_menu"
OWNER = "handoff"  # the feature's name: the owner of "leave a message?" at a handoff step
LATER_YES, LATER_NO = "later:yes", "later:no"  # its values
ALL = ("waiting", "claimed", "closed")

# ---- to the person (their language)
T_OPENED = N_("Your request is in. Your case number is {handle}. The advocate sees this "
              "number, not your name or phone number.")
T_ON_SHIFT = N_("Advocates are on shift now. You are number {place} in the queue. A reply "
                "can still take a while.")
T_WHILE_WAITING = N_("Anything you write here now goes to the advocate. You can still use "
                     "the menu, or type exit to leave and clear this chat.")
T_ALREADY = N_("You are already in the queue (case {handle}). Anything you write here goes "
               "to the advocate.")
T_OFF_SHIFT = N_("No advocates are on shift right now.")
T_FOR_NEXT_SHIFT = N_("Your message is in. Your case number is {handle}. An advocate will "
                      "read it when they are on shift and reply here. Anything you write "
                      "here until then is passed on too.")
T_UNCLAIMED = N_("I'm sorry, no advocate has been free to reply yet.")
T_LATER_ASK = N_("Would you like to leave a message for the next advocate on shift? They "
                 "would reply here, and it may take a while.")
T_LATER_YES_BUTTON = N_("Yes, leave a message")
T_LATER_NO_BUTTON = N_("No, thanks")
T_LATER_AGAIN = N_("Please choose one of these.")
T_LATER_YES = N_("OK. Your case number is {handle}. Write what you would like them to "
                 "know. An advocate will read it when they are on shift and reply here.")
T_LATER_NO = N_("OK. Nothing more will be passed on, and no one will write to you about "
                "this. You can ask for an advocate again from the menu.")
# Declined at the handoff step, where nothing had been passed on yet (the advocate flow's
# own words for "Not now").
T_NOT_NOW = N_("That's OK. You can ask for this from the menu at any time.")
T_CLAIMED = N_("An advocate has joined. They can read what you write here.")
T_FROM_ADVOCATE = N_("Advocate: {text}")
T_CLOSED = N_("The advocate has closed this chat. Thank you for talking with us. You can ask "
              "for an advocate again from the menu at any time.")
T_BACK_IN_QUEUE = N_("Your advocate had to step away. Your case is back in the queue, and "
                     "another advocate can pick it up.")
T_TRANSFERRED = N_("Another advocate is taking over this chat. They can read what was "
                   "written here.")
T_TEXT_ONLY = N_("I can only pass on text messages to the advocate.")

# ---- to the desk (the organisation's default language)
D_CARD = N_("Case {handle}")
D_LANGUAGE = N_("Language: {language}")
D_CHANNEL = N_("Channel: {channel}")
D_SHARED = N_("What the person chose to share:")
D_NOTHING_SHARED = N_("The person chose not to share anything else yet.")
D_WAITING = N_("Waiting for an advocate. Press Claim to take it.")
D_CLAIMED_BY = N_("Claimed by advocate {advocate}.")
D_CLOSED = N_("Closed.")
D_CLAIM = N_("Claim")
D_PERSON = N_("Person: {text}")
D_PERSON_LEFT = N_("The person left the chat. The case is closed; nothing more is relayed.")
D_NOT_ALLOWED = N_("Only advocates on the list can do that.")
D_ALREADY_CLAIMED = N_("This case is already claimed.")
D_YOU_HAVE_IT = N_("You have this case.")
D_IS_CLOSED = N_("This case is closed. Nothing was sent.")
D_CLAIM_FIRST = N_("Claim this case first. Nothing was sent.")
D_NOT_CLAIMER = N_("Only the advocate who claimed this case can write to the person. Nothing "
                   "was sent. Start with {prefix} for a note to other advocates.")
D_UNCLAIMED = N_("Advocate {advocate} unclaimed the case. It is waiting again.")
D_TRANSFERRED = N_("Transferred to advocate {advocate}.")
D_TRANSFER_HOW = N_("Write /transfer and the user id of an advocate on the list.")
D_CLOSED_BY = N_("Closed by advocate {advocate}. The person was told and has the menu again.")
D_CANNED_UNKNOWN = N_("No canned reply called {key}. Known: {keys}")
D_CANNED_SENT = N_("Sent the canned reply {key}.")
D_RESOURCE_UNKNOWN = N_("No service {id} in the directory.")
D_OPENINGS_HOW = N_("Write /openings, the service id and how many places are free now, for "
                    "example: /openings svc-12 3")
D_OPENINGS_SET = N_("Openings of {name} set: {count} {unit} free, as of now.")
D_RESOURCE_SENT = N_("Sent the card of {name}.")
D_COMMANDS = N_("Commands: /close, /unclaim, /transfer ID, /canned KEY, /resource ID, "
                "/openings ID N. Start with {prefix} for a note to other advocates.")
D_COMMANDS_DNC = N_("/dnc: no outreach campaign writes to this person's number again.")
D_DNC_DONE = N_("Marked do not contact: no outreach campaign will write to this number again.")
D_DNC_UNKNOWN = N_("The bot does not know this person's number, so it cannot be marked do "
                   "not contact.")
D_OFFLINE_TIMEOUT = N_("No one claimed this case in {minutes} minutes. The person was given "
                       "the emergency numbers and asked whether to leave a message.")
D_LATER_YES = N_("The person would like a reply when an advocate is on shift.")
D_LATER_NO = N_("The person chose not to wait. The case is closed.")
D_UNREACHABLE = N_("The person can't be reached on their app any more.")

# Labels of the share variables of the bundled advocate flow; others show their name.
SHARE_LABELS = {
    "advocate_note": N_("First note"),
    "safe_time": N_("Safer time for messages"),
    "needs": N_("Kind of help"),
}


# What one desk post may hold when the desk does not say (``max_text``/``text_unit`` on
# the desk; a Telegram topic takes 4,096 UTF-16 code units).
DESK_MAX_TEXT = 4096


def desk_key(case: Case | int) -> str:
    return f"desk:{case if isinstance(case, int) else case.id}"


def _fill(template: str, **values: object) -> str:
    """Put values into a translated text (never ``str.format``: values may hold braces)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def load_canned(path: Path) -> dict[str, str]:
    """Keyed canned replies (English msgids) from YAML; none if the file is missing."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: canned replies must be a mapping of key: text")
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


class DeskChannel(BaseChannel):
    """The desk as a channel of the operations queue: address = case id; an empty text only
    makes sure the case's thread and card exist (created on first delivery, retried like any
    send)."""

    name = DESK
    capabilities = Capabilities(buttons=True, deletes_inbound=False, delete_window_hours=0)

    def __init__(self, service: HandoffService) -> None:
        self.service = service  # the desk's events arrive through Desk.listen

    async def send(self, address: str, message: Message) -> list[str]:
        if address.startswith(ERASE_ADDRESS):
            return await self.service.desk_erase(int(address[len(ERASE_ADDRESS):]))
        return await self.service.desk_send(int(address), message)


@dataclass(frozen=True)
class DeskRecords:
    """The desk's repository: its cases, and the directory (for ``/resource`` and
    ``/openings``)."""

    cases: Cases
    directory: Directory


class HandoffService:
    def __init__(self, services: Services[DeskRecords], desk: Desk) -> None:
        self.s = services
        self.desk = desk
        self.cases = services.repository.cases
        self.settings = settings = services.settings
        h = settings.handoff
        self.advocates = {str(a) for a in h.advocates}
        self.prefix = h.note_prefix
        self.hours = OfficeHours(h.hours, h.holidays, h.timezone or settings.timezone)
        self.canned = load_canned(h.canned)
        self.channel = DeskChannel(self)
        # An advocate's "do not contact" (/dnc): outreach's, when it is installed
        # (helpline.serve joins them); True when the person's number was marked.
        self.do_not_contact: Callable[[str], Awaitable[bool]] | None = None

    # ------------------------------------------------------------- availability

    async def desk_takes_messages(self, turn: Turn) -> bool:
        """``available: desk``: a desk with advocates listed, on shift or not."""
        return self._has_advocates()

    async def advocates_on_shift(self, turn: Turn) -> bool:
        """``available: advocates``: advocates listed and on shift now."""
        return self._has_advocates() and self.hours.is_open(turn.now)

    def _has_advocates(self) -> bool:
        """Advocates listed, or a desk that knows its own (the console's accounts)."""
        has_staff = getattr(self.desk, "has_staff", None)
        return bool(self.advocates) or (has_staff is not None and bool(has_staff()))

    def is_advocate(self, user: str) -> bool:
        """A listed advocate's Telegram id, or one the desk says is its own staff (a
        console account: ``console:<name>``, which no Telegram id can be)."""
        is_staff = getattr(self.desk, "is_staff", None)
        return user in self.advocates or (is_staff is not None and bool(is_staff(user)))

    # ------------------------------------------------------------- helpers

    def _t(self, locale: str | None, msgid: str, **values: object) -> str:
        return _fill(self.s.gettext(locale, msgid), **values)

    def _d(self, msgid: str, **values: object) -> str:
        return self._t(self.settings.default_language, msgid, **values)

    def _desk_limit(self) -> tuple[int, TextUnit]:
        limit = getattr(self.desk, "max_text", DESK_MAX_TEXT)
        unit: TextUnit = getattr(self.desk, "text_unit", "utf16")
        return limit, unit

    def _for_desk(self, msgid: str, text: str) -> list[str]:
        """A person's words in the desk's template (``msgid``, "Person: {text}"), in as
        many posts as they need, each with the template and a "(1/3)" mark: whole."""
        limit, unit = self._desk_limit()
        return split_framed(text, limit, lambda part: self._d(msgid, text=part), unit)

    def _to_person(self, case: Case, msgid: str, text: str) -> list[str]:
        """An advocate's words for the person, in the person's channel's measure, each
        part with the template (``msgid``, "Advocate: {text}") and a "(1/3)" mark."""
        caps = self.s.capabilities(case.channel)
        if caps is None or caps.split_at <= 0:
            return [self._t(case.locale, msgid, text=text)]
        return split_framed(text, caps.split_at,
                            lambda part: self._t(case.locale, msgid, text=part), caps.text_unit)

    async def _to_desk(self, case: Case, texts: Sequence[str]) -> None:
        """Queue texts for the case's thread (durable, in order) and try to send now. A
        text too long for one post (none should be: the person's words come through
        ``_for_desk``) goes in parts rather than being cut."""
        limit, unit = self._desk_limit()
        parts = [part for t in texts for part in (split_text(t, limit, unit) if t else [t])]
        await self.s.queue(desk_key(case), DESK, str(case.id), [Message(t) for t in parts])

    def _card(self, case: Case) -> tuple[str, str | None]:
        lines = [self._d(D_CARD, handle=case.handle),
                 self._d(D_LANGUAGE, language=language_name(case.locale or "en")),
                 self._d(D_CHANNEL, channel=case.channel.capitalize())]
        if case.summary:
            lines.append(self._d(D_SHARED))
            for name, value in case.summary.items():
                label = self._d(SHARE_LABELS[name]) if name in SHARE_LABELS else name
                shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                lines.append(f"• {label}: {shown}")
        elif case.is_open:
            lines.append(self._d(D_NOTHING_SHARED))
        if case.status == "waiting":
            lines.append(self._d(D_WAITING))
            return "\n".join(lines), case.handle
        if case.status == "claimed":
            lines.append(self._d(D_CLAIMED_BY, advocate=case.advocate))
        else:
            lines.append(self._d(D_CLOSED))
        return "\n".join(lines), None

    async def _refresh_card(self, case_id: int) -> None:
        case = await self.cases.get(case_id)
        if case is None or case.topic is None or case.card is None:
            return
        text, claim = self._card(case)
        try:
            await self.desk.edit(case.topic, case.card, text, claim)
        except Exception as exc:
            log.info("could not update the card of case %s (%s)", case.id, type(exc).__name__)

    async def _close_thread(self, case: Case) -> None:
        if case.topic is None:
            return
        try:
            await self.desk.close_thread(case.topic)
        except Exception as exc:
            log.info("could not close the thread of case %s (%s)", case.id, type(exc).__name__)

    def _hotline(self, locale: str | None) -> str | None:
        text = self.s.flows.text_of(self.settings.resources.hotline_step)
        return None if text is None else self._t(locale, text)

    def _offline(self, locale: str | None, why: str) -> list[Message]:
        text = [self._t(locale, why)]
        if (hotline := self._hotline(locale)) is not None:
            text.append(hotline)
        # One message: the honest words, the numbers and the question with its buttons.
        question = self._later_question(locale)
        text.append(question.text)
        return [Message("\n\n".join(text), question.choices)]

    def _ask_later(self, turn: Turn) -> Message:
        """Off shift at a handoff step: the honest words, the numbers and "leave a
        message?" as the app's own menu in place of the flow's next question."""
        locale = turn.state.locale or self.settings.default_language
        text = [self._t(locale, T_OFF_SHIFT)]
        if (hotline := self._hotline(locale)) is not None:
            text.append(hotline)
        text.append(self._t(locale, T_LATER_ASK))
        yes = self.s.flows.words("yes")
        return self.s.flows.show_overlay(
            turn.state, "\n\n".join(text),
            [(self._t(locale, T_LATER_YES_BUTTON), LATER_YES),
             (self._t(locale, T_LATER_NO_BUTTON), LATER_NO)],
            words=[yes, ("no", "n")])

    def _later_question(self, locale: str | None, again: bool = False) -> Message:
        return Message(self._t(locale, T_LATER_AGAIN if again else T_LATER_ASK), (
            Choice(self._t(locale, T_LATER_YES_BUTTON), encode(Kind.LATER, "later", "yes")),
            Choice(self._t(locale, T_LATER_NO_BUTTON), encode(Kind.LATER, "later", "no"))))

    # ------------------------------------------------------------- the person's side

    async def _count(self, case: Case, event: str, at: float, detail: str = "") -> None:
        """For the statistics: by the case's channel and language, never the case."""
        await self.s.happened(self.s.happening(event, at, case.channel, case.locale, detail))

    async def on_handoff(self, turn: Turn, effect: Handoff) -> list[Message]:
        locale = turn.state.locale or self.settings.default_language
        existing = await self.cases.open_for(turn.pid)
        if existing is not None:
            return [Message(self._t(locale, T_ALREADY, handle=existing.handle))]
        on_shift = self.hours.is_open(turn.now)
        if not on_shift and not effect.for_next_shift:
            # The app asks, in place of the flow's next question; no case unless yes.
            return [self._ask_later(turn)]
        if not on_shift:  # the flow asked, and they chose to leave a message
            case = await self._open_for_next_shift(turn, effect, locale)
            text = [self._t(locale, T_OFF_SHIFT)]
            if (hotline := self._hotline(locale)) is not None:
                text.append(hotline)
            text.append(self._t(locale, T_FOR_NEXT_SHIFT, handle=case.handle))
            return [Message("\n\n".join(text))]
        case = await self.cases.open(turn.pid, turn.channel, dict(effect.summary), locale,
                                     turn.now)
        log.info("case %s opened (on shift)", case.id)
        await self._count(case, "handoff_asked", turn.now, "on-shift")
        await self._to_desk(case, [""])
        place = await self.cases.place_in_queue(case)
        return [Message(self._t(locale, T_OPENED, handle=case.handle)),
                Message(self._t(locale, T_ON_SHIFT, place=place)),
                Message(self._t(locale, T_WHILE_WAITING))]

    async def _open_for_next_shift(self, turn: Turn, effect: Handoff, locale: str) -> Case:
        case = await self.cases.open(turn.pid, turn.channel, dict(effect.summary), locale,
                                     turn.now, later="yes")
        log.info("case %s opened (off shift)", case.id)
        await self._count(case, "handoff_asked", turn.now, "for-next-shift")
        await self.cases.update(case, "wants_reply_later", "person", turn.now, later="yes")
        await self._to_desk(case, ["", self._d(D_LATER_YES)])
        return case

    async def on_pick(self, turn: Turn, effect: OverlayPick) -> list[Message]:
        """An answer to "leave a message?" at a handoff step. Whatever is said here, the
        app then takes the flow on to the handoff step's next step, in the same reply."""
        handoff = self.s.flows.handoff_at(turn.state)
        if handoff is None:
            return []
        if effect.value == "refresh":  # the language changed: the same question in it
            return [self._ask_later(turn)]
        locale = turn.state.locale or self.settings.default_language
        if effect.value != LATER_YES:
            return [Message(self._t(locale, T_NOT_NOW))]
        if self.hours.is_open(turn.now):  # a shift began meanwhile: the usual request
            return await self.on_handoff(turn, handoff)
        existing = await self.cases.open_for(turn.pid)
        if existing is not None:
            return [Message(self._t(locale, T_ALREADY, handle=existing.handle))]
        case = await self._open_for_next_shift(turn, handoff, locale)
        # What they wrote in the flow is in; with nothing shared, they write it now.
        said = T_FOR_NEXT_SHIFT if handoff.summary else T_LATER_YES
        return [Message(self._t(locale, said, handle=case.handle))]

    async def intercept(self, turn: Turn, inbound: Inbound, command: str | None
                        ) -> list[Message] | None:
        """Before the engine, while the person has an open case: where the inbound goes
        is ``routing.route``'s rule; this gathers what it reads and does what it says."""
        case = await self.cases.open_for(turn.pid)
        if case is None:
            return None
        state = turn.state
        private = self.s.private(state)
        routed = route(self._during(turn, case, inbound, command,
                                    private.get(MENU_ASKED) is True))
        if routed.menu_asked:
            private[MENU_ASKED] = True
        else:
            private.pop(MENU_ASKED, None)
        if routed.route is Route.FLOWS:
            return None
        if routed.route in (Route.LATER_YES, Route.LATER_NO):
            return await self._later_answer(turn, case, routed.route is Route.LATER_YES)
        if routed.route is Route.LATER_AGAIN:
            return [self._later_question(case.locale, again=True)]
        if routed.route is Route.TEXT_ONLY:
            return [Message(self._t(case.locale, T_TEXT_ONLY))]
        await self._to_desk(case, self._for_desk(D_PERSON, inbound.text))
        return []

    def _during(self, turn: Turn, case: Case, inbound: Inbound, command: str | None,
                menu_asked: bool) -> During:
        """What the rule reads, as plain data (only what it can reach is worked out)."""
        state = turn.state
        later_asked = case.later == "asked"
        pressed: YesNo | None = None
        if inbound.kind == "button" and later_asked and command is None:
            answer = decode(inbound.payload)
            if (answer is not None and answer.kind is Kind.LATER
                    and answer.fields in (("later", "yes"), ("later", "no"))):
                pressed = "yes" if answer.fields[1] == "yes" else "no"
        at_top = self.s.flows.at_home(state)
        typed: YesNo | None = None
        picks = False
        if inbound.kind == "text" and command is None and at_top and not menu_asked:
            if later_asked:
                said = normalize(inbound.text)
                locale = case.locale
                if said in self.s.flows.words("yes") | {
                        "1", normalize(self._t(locale, T_LATER_YES_BUTTON))}:
                    typed = "yes"
                elif said in {"no", "n", "2", normalize(self._t(locale, T_LATER_NO_BUTTON))}:
                    typed = "no"
            elif not state.idle and state.pending is None:
                picks = self.s.flows.picks_option(state, inbound.text, inbound.facts)
        return During(kind=inbound.kind, command=command, later_asked=later_asked,
                      later_pressed=pressed, later_typed=typed,
                      pending=state.pending is not None, at_top=at_top, idle=state.idle,
                      menu_asked=menu_asked, picks_option=picks)

    async def _later_answer(self, turn: Turn, case: Case, yes: bool) -> list[Message]:
        locale = case.locale
        if yes:
            await self.cases.update(case, "wants_reply_later", "person", turn.now, later="yes")
            case = await self.cases.get(case.id) or case
            await self._to_desk(case, ["", self._d(D_LATER_YES)])
            return [Message(self._t(locale, T_LATER_YES, handle=case.handle))]
        await self.cases.update(case, "closed", "person", turn.now, status="closed")
        await self._count(case, "handoff_closed", turn.now, "person")
        if case.topic is not None:
            await self._to_desk(case, [self._d(D_LATER_NO)])
            await self._refresh_card(case.id)
            await self._close_thread(case)
        return [Message(self._t(locale, T_LATER_NO))]

    async def on_leave(self, pid: str, now: float, erased: bool) -> None:
        """Quick exit or erase: close the case; the desk learns only that the person left."""
        case = await self.cases.open_for(pid)
        if case is None:
            return
        if erased:  # their words not yet delivered go with everything else of theirs
            await self.s.drop_queue(desk_key(case))
        await self.cases.update(case, "person_left", "person", now, status="closed")
        log.info("case %s closed: the person left", case.id)
        await self._count(case, "handoff_closed", now, "person-left")
        if erased and case.topic is not None:
            # Their words already on the desk go too: the whole thread is deleted (queued,
            # so that it is retried until the desk has done it).
            await self.s.queue(desk_key(case), DESK, f"{ERASE_ADDRESS}{case.id}",
                               [Message("")])
            return
        if case.topic is not None or not erased:
            await self._to_desk(case, [self._d(D_PERSON_LEFT)])
        await self._refresh_card(case.id)
        await self._close_thread(case)

    # ------------------------------------------------------------- the desk's side

    async def desk_send(self, case_id: int, message: Message) -> list[str]:
        """Deliver one queued post to the desk (called by DeskChannel, retried on failure)."""
        case = await self.cases.get(case_id)
        if case is None or (case.topic is None and not case.is_open):
            return []  # closed before the desk ever saw it: nothing to tell
        now = self.s.clock()
        topic = case.topic
        if topic is None:
            topic = await self.desk.create_thread(case.handle)
            await self.cases.update(case, None, "system", now, when_status=ALL, topic=topic)
            case = await self.cases.get(case_id) or case
        if case.card is None and case.is_open:
            text, claim = self._card(case)
            card = await self.desk.post(topic, text, claim)
            await self.cases.update(case, None, "system", now, when_status=ALL, card=card)
        if not message.text:
            return []
        return [await self.desk.post(topic, message.text)]

    async def desk_erase(self, case_id: int) -> list[str]:
        """Delete the thread of an erased person's case (DeskChannel, retried on failure).
        The case keeps only its handle, status and audit log, with no thread."""
        case = await self.cases.get(case_id)
        if case is None or case.topic is None:
            return []
        deleted = await self.desk.delete_thread(case.topic)
        await self.cases.update(case, "desk_erased" if deleted else "desk_erase_refused",
                                "system", self.s.clock(), when_status=ALL,
                                **({"topic": None, "card": None} if deleted else {}))
        log.info("case %s: %s", case.id, "its thread was deleted" if deleted
                 else "the desk refused to delete its thread")
        return []

    async def on_desk_event(self, event: DeskEvent) -> None:
        try:
            case = await self.cases.by_topic(event.thread)
            if case is None:
                if event.kind == "claim":
                    await self._answer(event, self._d(D_IS_CLOSED))
                return
            if event.kind == "claim":
                await self._claim(case, event)
            else:
                await self._desk_message(case, event)
        except Exception as exc:
            log.error("a desk event failed (%s)", type(exc).__name__)

    async def _answer(self, event: DeskEvent, text: str) -> None:
        try:
            await self.desk.answer(event.query, text)
        except Exception as exc:
            log.info("could not answer a press (%s)", type(exc).__name__)

    async def _claim(self, case: Case, event: DeskEvent) -> None:
        if not self.is_advocate(event.user):
            log.info("case %s: a press of Claim by someone not on the list", case.id)
            await self._answer(event, self._d(D_NOT_ALLOWED))
            return
        if not case.is_open:
            await self._answer(event, self._d(D_IS_CLOSED))
            return
        now = self.s.clock()
        async with self.s.lock(case.pid):
            claimed = await self.cases.update(
                case, "claimed", event.user, now, when_status=("waiting",), status="claimed",
                advocate=event.user, claimed_at=now, later=None)
            if claimed:
                await self.s.tell(case.pid, [Message(self._t(case.locale, T_CLAIMED))])
        if not claimed:
            fresh = await self.cases.get(case.id)
            await self._answer(event, self._d(
                D_IS_CLOSED if fresh is None or not fresh.is_open else D_ALREADY_CLAIMED))
            return
        log.info("case %s claimed", case.id)
        await self._count(case, "handoff_claimed", now)
        await self._count(case, "claim_time", now, claim_time_bucket(now - case.opened_at))
        await self._answer(event, self._d(D_YOU_HAVE_IT))
        await self._to_desk(case, [self._d(D_CLAIMED_BY, advocate=event.user)])
        await self._refresh_card(case.id)

    async def _desk_message(self, case: Case, event: DeskEvent) -> None:
        text = event.text.strip()
        if not text or (self.prefix and text.startswith(self.prefix)):
            return  # a note between advocates
        if text.startswith("/"):
            word, _, rest = text.partition(" ")
            await self._command(case, event, word[1:].split("@", 1)[0].lower(), rest.strip())
            return
        problem = self._why_not(case, event)
        if problem is not None:
            await self._to_desk(case, [problem])
            return
        await self._relay(case, self._to_person(case, T_FROM_ADVOCATE, text))

    def _why_not(self, case: Case, event: DeskEvent) -> str | None:
        """Why this advocate can't act for the person on this case now (None: they can)."""
        if not case.is_open:
            return self._d(D_IS_CLOSED)
        if case.status == "waiting":
            return self._d(D_CLAIM_FIRST)
        if event.user != case.advocate:
            return self._d(D_NOT_CLAIMER, prefix=self.prefix)
        return None

    async def _relay(self, case: Case, texts: Sequence[str], flow: str | None = None,
                     **change: Any) -> bool:
        """Tell the person (under their lock, only if the case is still open with the same
        advocate), optionally changing the case first. False if it had moved on."""
        async with self.s.lock(case.pid):
            fresh = await self.cases.get(case.id)
            if fresh is None or not fresh.is_open or fresh.advocate != case.advocate:
                await self._to_desk(case, [self._d(D_IS_CLOSED)])
                return False
            event = change.pop("event", None)
            actor = change.pop("actor", "system")
            if change and not await self.cases.update(fresh, event, actor, self.s.clock(),
                                                      **change):
                return False
            reached = await self.s.tell(case.pid, [Message(t) for t in texts], flow)
        if not reached:
            await self._to_desk(case, [self._d(D_UNREACHABLE)])
        return True

    async def _command(self, case: Case, event: DeskEvent, name: str, arg: str) -> None:
        if not self.is_advocate(event.user):
            await self._to_desk(case, [self._d(D_NOT_ALLOWED)])
            return
        if name == "openings":  # about a service, not this case: any listed advocate
            await self._set_openings(case, arg)
            return
        if name == "dnc" and self.do_not_contact is not None:  # any listed advocate
            marked = bool(case.pid) and await self.do_not_contact(case.pid)
            await self._to_desk(case, [self._d(D_DNC_DONE if marked else D_DNC_UNKNOWN)])
            if marked:
                log.info("case %s: do not contact, by the desk", case.id)
            return
        if name not in ("close", "unclaim", "transfer", "canned", "resource"):
            how = self._d(D_COMMANDS, prefix=self.prefix)
            if self.do_not_contact is not None:
                how += "\n" + self._d(D_COMMANDS_DNC)
            await self._to_desk(case, [how])
            return
        # Any advocate on the list may close a case nobody claimed; the rest is the claimer's.
        waiting_close = name == "close" and case.status == "waiting"
        problem = None if waiting_close else self._why_not(case, event)
        if problem is not None:
            await self._to_desk(case, [problem])
            return
        locale = case.locale
        if name == "close":
            home = self.settings.conversation.home_flow
            if await self._relay(case, [self._t(locale, T_CLOSED)], home, status="closed",
                                 event="closed", actor=event.user):
                log.info("case %s closed by the desk", case.id)
                await self._count(case, "handoff_closed", self.s.clock(), "desk")
                await self._to_desk(case, [self._d(D_CLOSED_BY, advocate=event.user)])
                await self._refresh_card(case.id)
                await self._close_thread(case)
        elif name == "unclaim":
            if await self._relay(case, [self._t(locale, T_BACK_IN_QUEUE)], status="waiting",
                                 advocate=None, event="unclaimed", actor=event.user):
                await self._to_desk(case, [self._d(D_UNCLAIMED, advocate=event.user)])
                await self._refresh_card(case.id)
        elif name == "transfer":
            target = arg.split()[0] if arg else ""
            if not self.is_advocate(target) or target == event.user:
                await self._to_desk(case, [self._d(D_TRANSFER_HOW)])
            elif await self._relay(case, [self._t(locale, T_TRANSFERRED)], advocate=target,
                                   event="transferred", actor=event.user):
                await self._to_desk(case, [self._d(D_TRANSFERRED, advocate=target)])
                await self._refresh_card(case.id)
        elif name == "canned":
            key = arg.split()[0] if arg else ""
            if key not in self.canned:
                await self._to_desk(case, [self._d(D_CANNED_UNKNOWN, key=key or "?",
                                                   keys=", ".join(sorted(self.canned)))])
            elif await self._relay(case, self._to_person(
                    case, T_FROM_ADVOCATE, self._t(locale, self.canned[key]))):
                await self._to_desk(case, [self._d(D_CANNED_SENT, key=key)])
        else:
            await self._send_resource(case, arg.split()[0] if arg else "")

    async def _set_openings(self, case: Case, arg: str) -> None:
        """``/openings SERVICE_ID N``: the same update as ``helpline resources openings``."""
        from helpline.resources.store import OpeningsError

        parts = arg.split()
        if len(parts) != 2 or not is_number(parts[1]) or len(parts[1]) > 6:
            await self._to_desk(case, [self._d(D_OPENINGS_HOW)])
            return
        try:
            capacity = await self.s.repository.directory.set_openings(
                parts[0], int(parts[1]), self.s.clock())
        except OpeningsError as exc:
            await self._to_desk(case, [str(exc)])
            return
        await self._to_desk(case, [self._d(D_OPENINGS_SET, name=parts[0],
                                           count=capacity.available, unit=capacity.unit)])

    async def _send_resource(self, case: Case, service_id: str) -> None:
        from helpline.resources import cards
        from helpline.resources.matching import openings
        directory = self.s.repository.directory
        found = (await directory.by_ids([service_id])).get(service_id) if service_id else None
        if found is None:
            await self._to_desk(case, [self._d(D_RESOURCE_UNKNOWN, id=service_id or "?")])
            return
        settings = self.settings
        now = self.s.clock()
        ctx = cards.Context(self.s.tr, case.locale or settings.default_language, now,
                            settings.resources.openings_stale_hours, settings.timezone)
        caps = (await directory.capacities([service_id])).get(service_id, [])
        card = cards.detail(ctx, found, openings(caps, now, ctx.stale_hours))
        if await self._relay(case, [card]):
            await self._to_desk(case, [self._d(D_RESOURCE_SENT, name=found.name)])

    # ------------------------------------------------------------- timers

    async def check_unclaimed(self) -> int:
        """Cases waiting longer than ``unclaimed_minutes``: the person gets the honest
        message and the choice to leave a message. Returns how many were told."""
        minutes = self.settings.handoff.unclaimed_minutes
        told = 0
        for case in await self.cases.waiting():
            now = self.s.clock()
            if case.later is not None or case.timeout_at is not None \
                    or now - case.opened_at < minutes * 60:
                continue
            async with self.s.lock(case.pid):
                changed = await self.cases.update(
                    case, "unclaimed_timeout", "system", now, when_status=("waiting",),
                    later="asked", timeout_at=now)
                if changed:
                    await self.s.tell(case.pid, self._offline(case.locale, T_UNCLAIMED))
            if changed:
                told += 1
                await self._to_desk(case, [self._d(D_OFFLINE_TIMEOUT,
                                                   minutes=f"{minutes:g}")])
        return told
