"""What outreach does while the bot runs: it sends campaign messages, paced, one at a
time, and listens for what comes back.

Sending (``tick``, a timed job). A recipient is claimed (marked ``sending``) in one
transaction before the message is handed to the Signal bridge, and its outcome written
after: a restart finds a send that was under way marked ``sending`` and never sends it
again (``unknown``): at most once, because a second unasked message to a phone someone
else may read is worse than a missing one. The bridge's answers:

* taken: ``sent`` (counted ``outreach_delivered``);
* refused for good (not on Signal): ``failed``;
* a rate limit or a captcha challenge: the message goes back to wait, and the campaign is
  paused with what to do (``helpline outreach status``); ``resume`` goes on;
* the bridge unreachable: it goes back to wait and is tried again a minute later.

Replies (a hook before the engine, Signal only, by the number the bridge gives beside
the sender's UUID): the first message from a number a campaign wrote to is counted
(``outreach_replied``), the recipient row is deleted (nothing ties the conversation to the
campaign any more), and the person's pseudonym is kept with the number's suppression hash
only (``outreach_people``: their quick exit or erasure then suppresses it). Someone on
Signal who said when a message is safe (the flow variable ``safe_time``) is written to by
campaigns only then, and not at all after "only after I write first". An opt-out
word then or later puts the number on the suppression list, with one neutral reply.
Otherwise the campaign's flow starts (or the welcome, as for anyone new).

Campaigns that do not write first: ``/start <code>`` on Telegram (a deep link) and a
campaign's keyword as a Signal first message are counted (``outreach_attributed``) and
start the campaign's flow; nothing is kept of who came.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from helpline.channels.base import Channel
from helpline.errors import RateLimited, Rejected, Unreachable
from helpline.events import Inbound, Message
from helpline.feature import Happening, Services, Turn
from helpline.flow.words import normalize
from helpline.i18n import N_
from helpline.office_hours import OfficeHours
from helpline.outreach.pacing import Load, Pacing
from helpline.outreach.store import Answered, Campaign, Campaigns, Claimed
from helpline.outreach.words import is_opt_out
from helpline.state import Value

log = logging.getLogger("helpline.outreach")

OWNER = "outreach"
T_OPTED_OUT = N_("OK. We won't write to this number again.")
UNREACHABLE_WAIT = 60.0
IDLE_WAIT = 60.0
# Private values in a person's state: the suppression hash of their number (for the
# desk's "do not contact"), and the campaign whose engaged flows are watched (with when).
SKEY, SAID, WATCH, WATCH_SINCE = "sk", "st", "c", "cs"
SAFE_TIMES = "safe_time"  # the flow variable (helpline.app.SAFE_TIMES)
WATCH_DAYS = 30.0


class OutreachService:
    def __init__(self, services: Services[Campaigns], signal: Channel | None,
                 pacing: Pacing) -> None:
        self.services = services
        self.repo = services.repository
        self.signal = signal
        self.pacing = pacing
        self.clock: Callable[[], float] = services.clock
        self._recovered = False
        self._next_at = 0.0
        self._waiting: bool | None = None  # any campaign message waiting for a reply
        self.holding: str = ""  # why the last tick sent nothing (pacing), for status
        self._windows: dict[str, OfficeHours] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # deletes under way
        self._keywords: dict[str, str] | None = None  # open campaigns' keywords

    @property
    def next_at(self) -> float:
        """When the next pass may send (the clock's time)."""
        return self._next_at

    # ------------------------------------------------------------- sending

    async def tick(self) -> int:
        """One pass of the timed job: at most one message goes out. Returns how many did
        (0 or 1)."""
        if not self._recovered:
            gone = await self.repo.recover()
            if gone:
                log.warning("%d outreach sends were under way at the last stop; they are "
                            "not sent again", gone)
            last = await self.repo.last_send()
            self._next_at = 0.0 if last is None else last + self.pacing.gap()
            self._recovered = True
        self._keywords = await self.repo.keywords()  # a campaign made since is seen now
        now = self.clock()
        if self.signal is None or now < self._next_at:
            return 0
        for campaign in await self.repo.all(("running",)):
            hour, day, unanswered, cases = await self.repo.load(
                now, self.pacing.day_start(now), self.pacing.options.reply_hours)
            why = self.pacing.why_not(now, Load(hour, day, unanswered, cases))
            if why is not None:
                self.holding = why
                self._next_at = self.pacing.next_try(now, why)
                return 0
            claimed = await self.repo.claim(campaign, now, self._safe_moment)
            if claimed is None:
                if not await self.repo.left_to_send(campaign, now):
                    await self.repo.set_state(campaign.id, "done")
                    log.info("outreach campaign %s has nothing left to send", campaign.name)
                continue
            self.holding = ""
            return await self._send(campaign, claimed, now)
        self._next_at = now + IDLE_WAIT  # nothing due now (a safe time to wait for, say)
        return 0

    def _safe_moment(self, choice: str, now: float) -> float | None:
        """For someone who said when a message is safe (the flow variable safe_time), the
        next moment a campaign may write to them: a window of ``[conversation]
        safe_windows``; None for "after_i_write" or a choice the settings do not know
        (the safe side: they are not written to first)."""
        if choice == "any":
            return now
        shifts = self.services.settings.conversation.safe_windows.get(choice)
        if not shifts:
            return None
        hours = self._windows.get(choice)
        if hours is None:
            hours = self._windows[choice] = OfficeHours(
                shifts, (), self.services.settings.timezone)
        return hours.next_open(now)

    async def _send(self, campaign: Campaign, claimed: Claimed, now: float) -> int:
        assert self.signal is not None
        text = campaign.followup if claimed.followup else campaign.message
        detail = "followup" if claimed.followup else ""
        try:
            ids = await self.signal.send(claimed.number, Message(text or "…"))
        except RateLimited as exc:
            await self.repo.finish(claimed, "pending", now)
            why = "captcha" if exc.proof else "rate_limit"
            await self.repo.set_state(campaign.id, "paused", why, exc.challenge)
            log.warning("outreach campaign %s paused: Signal asked the bot to slow down (%s); "
                        "helpline outreach status %s says what to do", campaign.name, why,
                        campaign.name)
            return 0
        except Rejected:
            await self.repo.finish(claimed, "failed", now)
            await self._count("outreach_failed", campaign, now, detail)
            await self._count("outreach_sent", campaign, now, detail)
            self._next_at = now + self.pacing.gap()
            return 1
        except Unreachable:
            await self.repo.finish(claimed, "pending", now)
            self._next_at = now + UNREACHABLE_WAIT
            log.warning("outreach: the Signal bridge could not be reached; trying again in "
                        "%.0fs", UNREACHABLE_WAIT)
            return 0
        except Exception as exc:  # it may have gone out: never again
            await self.repo.finish(claimed, "unknown", now)
            log.error("an outreach send failed (%s); it is not tried again",
                      type(exc).__name__)
            await self._count("outreach_sent", campaign, now, detail)
            self._next_at = now + self.pacing.gap()
            return 1
        await self.repo.finish(claimed, "sent", now, ids)
        self._waiting = True
        await self._count("outreach_sent", campaign, now, detail)
        self._next_at = now + self.pacing.gap()
        return 1

    async def on_delivered(self, ids: list[str]) -> None:
        """Signal's delivery receipts (the Signal channel's ``on_delivery``): a campaign
        message that reached the phone is counted delivered, once."""
        now = self.clock()
        for campaign_id, followup in await self.repo.delivered(ids):
            campaign = await self.repo.by_id(campaign_id)
            if campaign is not None:
                await self._count("outreach_delivered", campaign, now,
                                  "followup" if followup else "")

    async def _count(self, event: str, campaign: Campaign, at: float, detail: str = "",
                     channel: str = "signal", language: str | None = None) -> None:
        await self.services.happened(Happening(event, at, channel,
                                               language or campaign.language, detail,
                                               campaign.name))

    # ------------------------------------------------------------- what comes in

    async def intercept(self, turn: Turn, inbound: Inbound, command: str | None
                        ) -> list[Message] | None:
        """Before the engine (see the module's note). Passes (None) unless the person
        opted out."""
        if inbound.kind == "start" and inbound.payload:
            await self._deep_link(turn, inbound)
            return None
        private = self.services.private(turn.state)
        await self._engaged(turn, private)
        number = inbound.number
        if not number or turn.channel != "signal":
            return None
        if SKEY not in private:
            private[SKEY] = await self.repo.skey(number)
        safe = turn.state.vars.get(SAFE_TIMES)
        safe = safe if isinstance(safe, str) else ""
        if private.get(SAID, "") != safe:  # what they said about safe times, for campaigns
            await self.repo.safe_time(turn.pid, str(private[SKEY]), safe, turn.now)
            private[SAID] = safe
        if self._waiting is None:
            self._waiting = await self.repo.any_waiting()
        if self._waiting:
            answered = await self.repo.answered(number)
            if answered:
                return await self._replied(turn, inbound, command, answered, private)
        said = inbound.text if inbound.kind == "text" else ""
        if command is None and said and is_opt_out(said) \
                and self.services.flows.at_home(turn.state) \
                and await self.repo.reached_key(turn.pid) is not None:
            return await self._opt_out(turn, str(private[SKEY]), None)
        if self._keywords is None:
            self._keywords = await self.repo.keywords()
        if command is None and said and turn.state.idle and normalize(said) in self._keywords:
            campaign = await self.repo.by_keyword(normalize(said))
            if campaign is not None and campaign.state != "closed":
                await self._count("outreach_attributed", campaign, turn.now, "keyword",
                                  turn.channel, turn.state.locale)
                self._watch(private, campaign, turn.now)
                if campaign.flow:
                    turn.start = campaign.flow
        return None

    async def _replied(self, turn: Turn, inbound: Inbound, command: str | None,
                       answered: list[Answered], private: dict[str, Value]
                       ) -> list[Message] | None:
        skey = answered[0].skey
        window = (self.signal.capabilities.delete_window_hours * 3600
                  if self.signal is not None else 0.0)
        ids = [i for a in answered for i in a.ids]
        sent = min((a.sent_at for a in answered if a.sent_at is not None), default=None)
        deletes = ((inbound.number, ids, sent + window)
                   if ids and sent is not None and sent + window > turn.now else None)
        await self.repo.reached(turn.pid, skey, turn.now, deletes)
        first: Campaign | None = None
        for one in answered:
            campaign = await self.repo.by_id(one.campaign)
            if campaign is None:
                continue
            first = first or campaign
            await self._count("outreach_replied", campaign, turn.now)
        said = inbound.text if inbound.kind == "text" else ""
        if command is None and said and is_opt_out(said):
            return await self._opt_out(turn, skey, first)
        if first is not None:
            self._watch(private, first, turn.now)
            if command is None and first.flow:
                turn.start = first.flow
        return None

    async def _opt_out(self, turn: Turn, skey: str, campaign: Campaign | None
                       ) -> list[Message]:
        added = await self.repo.suppress(skey, "opted_out", turn.now)
        if not added:
            return []  # at most one confirmation
        if campaign is not None:
            await self._count("outreach_opted_out", campaign, turn.now)
        log.info("a number was put on the outreach suppression list (opted out)")
        return [Message(self.services.gettext(turn.state.locale, T_OPTED_OUT))]

    async def _deep_link(self, turn: Turn, inbound: Inbound) -> None:
        campaign = await self.repo.by_code(inbound.payload)
        if campaign is None:
            return
        await self._count("outreach_attributed", campaign, turn.now, "link", turn.channel,
                          turn.state.locale)
        self._watch(self.services.private(turn.state), campaign, turn.now)
        if campaign.flow:
            turn.start = campaign.flow

    def _watch(self, private: dict[str, Value], campaign: Campaign, now: float) -> None:
        """Count the campaign's engaged flows when this person reaches one (a campaign
        name and a time in their encrypted state; gone with it, or after WATCH_DAYS)."""
        if campaign.engaged:
            private[WATCH], private[WATCH_SINCE] = campaign.name, now

    async def _engaged(self, turn: Turn, private: dict[str, Value]) -> None:
        name = private.get(WATCH)
        if not isinstance(name, str):
            return
        since = private.get(WATCH_SINCE)
        if not isinstance(since, (int, float)) or turn.now - since > WATCH_DAYS * 86400:
            private.pop(WATCH, None), private.pop(WATCH_SINCE, None)
            return
        if not turn.state.stack:
            return
        campaign = await self.repo.by_name(name)
        if campaign is None:
            private.pop(WATCH, None), private.pop(WATCH_SINCE, None)
            return
        if any(frame.flow in campaign.engaged for frame in turn.state.stack):
            await self._count("outreach_engaged", campaign, turn.now, "", turn.channel,
                              turn.state.locale)
            private.pop(WATCH, None), private.pop(WATCH_SINCE, None)

    async def on_leave(self, pid: str, now: float, erased: bool) -> None:
        """Quick exit or erasure by someone a campaign reached: their number is suppressed
        for good, and the campaign messages Signal can still delete are deleted, as the
        quick exit deletes the rest of the chat (best effort: a delete the bridge does not
        take now is not asked for again). Their row itself goes with the person."""
        skey, deletes = await self.repo.leaving(pid, now)
        if skey is not None and await self.repo.suppress(skey, "left", now):
            log.info("a number was put on the outreach suppression list (%s)",
                     "erased" if erased else "quick exit")
        if deletes is not None and self.signal is not None:
            # Not awaited here: the quick exit clears the conversation without waiting
            # for the bridge.
            task = asyncio.create_task(self._delete(self.signal, *deletes))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _delete(self, signal: Channel, to: str, ids: list[str]) -> None:
        try:
            left = await signal.delete(to, ids)
        except Exception as exc:
            log.warning("could not delete a campaign message (%s)", type(exc).__name__)
            return
        if left:
            log.warning("could not delete %d campaign messages", len(left))

    # ------------------------------------------------------------- do not contact

    async def do_not_contact(self, pid: str, now: float | None = None) -> bool:
        """An advocate's "do not contact" for the person of a conversation (the desk's
        /dnc; the console can call this too): their number goes on the suppression list.
        False when the bot does not know their number (they never wrote on Signal with
        it)."""
        moment = self.clock() if now is None else now
        skey = await self.repo.known_key(pid)
        if skey is None:
            person = await self.repo.store.person(pid)
            value = None if person is None else person.state.features.get(OWNER, {}).get(SKEY)
            skey = value if isinstance(value, str) else None
        if skey is None:
            return False
        await self.repo.suppress(skey, "advocate", moment)
        log.info("a number was put on the outreach suppression list (an advocate)")
        return True




__all__ = ["OWNER", "T_OPTED_OUT", "OutreachService"]
