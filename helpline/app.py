"""The pipeline: platform event -> pseudonym -> lock -> engine -> save -> effects -> deliver.

State and replies are written in one transaction *before* anything is sent, and replies go
out through a durable outbox, so a crash or a platform outage loses nothing. Logs carry
pseudonyms, step names and effect kinds, never content or platform ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from helpline.channels.base import Channel, Unreachable
from helpline.config import Settings
from helpline.events import (
    CancelSchedules,
    DeleteChat,
    Effect,
    EraseData,
    Handoff,
    Inbound,
    Lookup,
    Message,
    RawInbound,
    Schedule,
    SetDisappearing,
    combined,
    split_long,
)
from helpline.flow.engine import (
    CHECKIN_DUE,
    Engine,
    EngineConfig,
    Language,
    Result,
    normalize,
)
from helpline.flow.loader import FlowSet
from helpline.flow.model import BranchStep, ChooseStep, LookupStep
from helpline.flow.state import State
from helpline.i18n import N_, Translator, format_when, language_name, word_forms
from helpline.privacy import Vault
from helpline.store import OutboxItem, PendingDelete, Store

log = logging.getLogger("helpline.app")

T_NO_DIRECTORY = N_(
    "I can't search for services here yet. An advocate or a hotline can help you look. "
    "Type menu to see the options."
)
T_NO_ADVOCATES = N_(
    "I'm sorry, no one can chat here at the moment. If you need help now, type menu and "
    "choose the option for help right now to see numbers you can call."
)


@dataclass
class Turn:
    """What an effect handler may use: who, where, their state and language, and when."""

    pid: str
    channel: str
    state: State
    now: float
    facts: frozenset[str] | None = None  # what the app knew this turn (flow.model.FACTS)


EffectHandler = Callable[[Turn, Effect], Awaitable[list[Message]]]
# May take a person's inbound before the engine (the advocate desk relays text while a case
# is open). Gets the global command the inbound is, if any. Returns the replies to save
# and send, or None to let the engine run. It may change ``turn.state``.
Intercept = Callable[[Turn, Inbound, str | None], Awaitable[list[Message] | None]]
# Told when a person quick-exits (erased=False) or erases their data (erased=True), before
# anything is cleared.
LeaveHook = Callable[[str, float, bool], Awaitable[None]]
# Answers one fact for ``available:`` conditions (flow.model.FACTS) at this turn.
FactProvider = Callable[[Turn], Awaitable[bool]]


T_CHECKIN_WHEN = N_("The check-in will come {when}, on {date}.")

# Commands whose words are translated (msgctxt "command") into every enabled language.
TRANSLATED_COMMANDS = ("quick_exit", "menu", "help", "language", "erase", "yes")


def engine_config(settings: Settings, translator: Translator | None = None) -> EngineConfig:
    """The engine's settings. With a translator, every command word also works in its
    translation into each enabled language, whatever the person's own language (the
    configured words, often English, always keep working)."""
    c = settings.commands
    config = EngineConfig(
        first_flow=settings.conversation.first_flow,
        home_flow=settings.conversation.home_flow,
        quick_exit_words=tuple(c.quick_exit),
        quick_exit_reply=c.quick_exit_reply,
        menu_words=tuple(c.menu),
        help_words=tuple(c.help),
        language_words=tuple(c.language),
        erase_words=tuple(c.erase),
        languages=tuple(Language(code, language_name(code)) for code in settings.languages),
        default_locale=settings.default_language,
        resume_after_hours=settings.conversation.resume_after_hours,
        timezone=settings.timezone,
    )
    if translator is None:
        return config
    extra = {
        name: frozenset(normalize(form) for word in getattr(config, f"{name}_words")
                        for form in word_forms(translator, settings.languages, word))
        for name in TRANSLATED_COMMANDS
    }
    return replace(config, extra_words=extra)


class App:
    def __init__(
        self,
        settings: Settings,
        flows: FlowSet,
        store: Store,
        vault: Vault,
        translator: Translator,
        channels: Sequence[Channel] = (),
        engine: Engine | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.flows = flows
        self.store = store
        self.vault = vault
        self.tr = translator
        self.engine = engine or Engine(flows, engine_config(settings, translator), translator)
        self.channels: dict[str, Channel] = {c.name: c for c in channels}
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._exit_reply_timers: set[asyncio.Task[None]] = set()
        self.intercept: Intercept | None = None
        self.leave_hooks: list[LeaveHook] = []
        # Extra periodic work (name -> coroutine function) the scheduler runs.
        self.timed_jobs: dict[str, Callable[[], Awaitable[object]]] = {}
        # Facts nothing answers are unavailable: no desk installed, no directory.
        self.facts: dict[str, FactProvider] = {"checkin": self._checkin_booked}
        self._used_facts = _facts_used(flows)
        self.effect_handlers: dict[type, EffectHandler] = {
            Lookup: self._no_directory,
            Handoff: self._no_advocates,
            Schedule: self._schedule,
            CancelSchedules: self._cancel_schedules,
            SetDisappearing: self._set_disappearing,
        }

    # ------------------------------------------------------------- locking

    @asynccontextmanager
    async def conversation(self, pid: str) -> AsyncIterator[None]:
        """Serialise everything about one person; different people run concurrently."""
        lock = self._locks.setdefault(pid, asyncio.Lock())
        self._lock_users[pid] = self._lock_users.get(pid, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[pid] -= 1
            if self._lock_users[pid] == 0:
                del self._lock_users[pid]
                del self._locks[pid]

    # ------------------------------------------------------------- inbound

    async def handle(self, raw: RawInbound) -> None:
        """Entry point for channels. Never raises: one bad event must not block the rest."""
        try:
            pid = self.vault.pseudonym(raw.channel, raw.platform_id)
        except Exception:
            log.error("could not derive a pseudonym")
            return
        try:
            async with self.conversation(pid):
                queued = await self._process(pid, raw.channel, raw.address, raw.inbound,
                                             raw.message_id)
                await self._deliver(pid, force=True, fresh=None if queued is None
                                    else (raw.address, queued))
        except Exception as exc:
            log.error("failed to handle an event for %s:%s (%s)", raw.channel, pid[:10],
                      type(exc).__name__)

    async def _process(self, pid: str, channel: str, address: str, inbound: Inbound,
                       message_id: str | None) -> list[OutboxItem] | None:
        """One event of a person's: the new state and the replies are stored together.
        Returns the replies queued (None: older ones are queued too, read the outbox)."""
        now = self.clock()
        inbound = replace(inbound, at=now, channel=channel)
        person = await self.store.person(pid)
        state = person.state if person is not None else State()
        if person is None and inbound.kind != "timer":
            channel_obj = self.channels.get(channel)
            if channel_obj is not None:
                try:
                    await channel_obj.on_first_contact(address)
                except Exception as exc:
                    log.warning("first-contact setup failed on %s (%s)", channel,
                                type(exc).__name__)
        if self._used_facts:
            inbound = replace(inbound, facts=await self._facts(Turn(pid, channel, state, now)))
        if self.intercept is not None and inbound.kind != "timer":
            turn = Turn(pid, channel, state.clone(), now, inbound.facts)
            replies = await self.intercept(turn, inbound, self.engine.command(inbound))
            if replies is not None:
                turn.state.last_seen = now
                return await self.store.save_turn(pid, channel, address, turn.state,
                                                  self._joined(channel, replies), now,
                                                  message_id)
            state = turn.state
        result = self.engine.step(state, inbound)
        effects = result.effects
        top = result.state.top
        if log.isEnabledFor(logging.DEBUG):  # each message's step: DEBUG only (README)
            log.debug("%s:%s %s -> %s%s", channel, pid[:10], inbound.kind,
                      f"{top.flow}.{top.step}" if top else "idle",
                      "".join(f" +{type(e).__name__}" for e in effects))
        if any(isinstance(e, (EraseData, DeleteChat)) for e in effects):
            await self._left(pid, now, any(isinstance(e, EraseData) for e in effects))
        if any(isinstance(e, EraseData) for e in effects):
            await self._delete_chat(pid, channel, address, message_id, now)
            await self.store.erase_person(pid)
            await self._send_unstored(channel, address, result.messages)
            return []
        if any(isinstance(e, DeleteChat) for e in effects):
            await self._delete_chat(pid, channel, address, message_id, now)
            queued = await self.store.save_turn(pid, channel, address, result.state,
                                                result.messages, now)
            for effect in effects:
                if isinstance(effect, CancelSchedules):
                    await self._run_effect(Turn(pid, channel, result.state, now), effect)
            return queued
        # Effects run first so that what they say goes out in the same transaction as the
        # state; nothing is sent until both are on disk.
        turn = Turn(pid, channel, result.state, now, inbound.facts)
        messages = await self._apply_effects(turn, result)
        return await self.store.save_turn(pid, channel, address, turn.state,
                                          self._joined(channel, messages), now, message_id)

    def _joined(self, channel_name: str, messages: list[Message]) -> list[Message]:
        """A turn's messages joined into as few as the channel takes (events.combined),
        and any text too long for one message in parts (events.split_long)."""
        channel = self.channels.get(channel_name)
        if channel is None:
            return messages
        if self.settings.delivery.combine_replies:
            messages = combined(messages, channel.capabilities.max_text)
        return split_long(messages, channel.capabilities.split_at)

    async def _apply_effects(self, turn: Turn, result: Result) -> list[Message]:
        """Run the effects; what they say goes where they happened. A lookup step that the
        app showed nothing for is moved past (which may lead to more effects)."""
        messages: list[Message] = []
        for _ in range(8):
            said = [await self._run_effect(turn, effect) for effect in result.effects]
            messages.extend(result.place(said))
            waiting = self.engine.current_step(turn.state)
            if not isinstance(waiting, LookupStep) or turn.state.overlay is not None:
                break
            result = self.engine.advance(Result(turn.state, facts=turn.facts))
        return messages

    async def _run_effect(self, turn: Turn, effect: Effect) -> list[Message]:
        handler = self.effect_handlers.get(type(effect))
        if handler is None:
            return []
        try:
            return await handler(turn, effect)
        except Exception as exc:
            log.error("effect %s failed for %s:%s (%s)", type(effect).__name__, turn.channel,
                      turn.pid[:10], type(exc).__name__)
            return []

    async def _delete_chat(self, pid: str, channel_name: str, address: str,
                           message_id: str | None, now: float) -> None:
        """Quick exit: forget the conversation first, then delete what the platform allows."""
        channel = self.channels.get(channel_name)
        window = channel.capabilities.delete_window_hours if channel else 48.0
        bot_only = channel is not None and not channel.capabilities.deletes_inbound
        ids = await self.store.message_ids(pid, now - window * 3600, from_bot_only=bot_only)
        if message_id is not None and not bot_only:
            ids.append(message_id)
        # The deletes are written down with the forgetting, and crossed off once the
        # platform has done them: a bridge that is down, or a restart, loses none.
        pending = (PendingDelete(channel_name, address, tuple(ids), now + window * 3600)
                   if channel is not None and ids else None)
        row_id = await self.store.clear_conversation(pid, now, pending)
        if pending is not None and channel is not None:
            await self._try_deletes(channel, replace(pending, id=row_id))

    async def _try_deletes(self, channel: Channel, pending: PendingDelete) -> None:
        try:
            left = list(await channel.delete(pending.address, pending.ids) or [])
        except Exception as exc:
            log.warning("could not delete chat messages on %s (%s); trying again later",
                        pending.channel, type(exc).__name__)
            return
        if left != list(pending.ids):
            await self.store.deletes_left(pending.id, left)

    async def retry_deletes(self) -> None:
        """Ask the platforms again for the quick-exit deletes they have not done yet (when
        a platform is back, and with every outbox sweep)."""
        now = self.clock()
        for pending in await self.store.pending_deletes():
            channel = self.channels.get(pending.channel)
            if pending.until < now or channel is None:
                await self.store.deletes_left(pending.id, [])
            elif pending.due_at <= now:
                await self._try_deletes(channel, pending)

    async def _send_unstored(self, channel_name: str, address: str,
                             messages: Sequence[Message]) -> None:
        """After an erase nothing may be stored again, so these go out directly, best effort."""
        channel = self.channels.get(channel_name)
        if channel is None:
            return
        for message in messages:
            try:
                ids = await channel.send(address, message)
            except Exception as exc:
                log.warning("could not send on %s after erase (%s)", channel_name,
                            type(exc).__name__)
                continue
            pending = self._exit_reply_delete(channel, address, message, ids)
            if pending is not None:  # kept like the erase's own deletes: tied to no one
                self._delete_when_due(channel, replace(
                    pending, id=await self.store.keep_deletes(pending)))

    # ------------------------------------------------------------- outbox

    async def _deliver(self, pid: str, force: bool = False,
                       fresh: tuple[str, list[OutboxItem]] | None = None) -> None:
        """Send this person's queued messages in order; stop at the first failure.
        ``fresh``: the address and the replies just queued, when nothing older is queued
        (saves reading back what was just written)."""
        if fresh is not None:
            address: str | None = fresh[0]
            items = fresh[1]
            if not items:
                return
        else:
            items = await self.store.pending(pid)
            if not items:
                return
            address = await self.store.address(pid)
        now = self.clock()
        for index, item in enumerate(items):
            if not force and index == 0 and item.next_try_at > now:
                return  # the head of the queue is not due; what is behind it waits in order
            channel = self.channels.get(item.channel)
            target = item.address if item.address is not None else address
            if channel is None or target is None:
                return
            try:
                ids = await channel.send(target, item.message)
            except Unreachable:
                log.info("%s:%s is unreachable; dropping queued replies", item.channel, pid[:10])
                await self.store.mark_unreachable(pid)
                return
            except Exception as exc:
                delay = min(self.settings.delivery.retry_first_seconds * 2 ** item.attempts,
                            self.settings.delivery.retry_max_seconds)
                log.warning("send failed on %s for %s (%s); retry in %.0fs", item.channel,
                            pid[:10], type(exc).__name__, delay)
                await self.store.retry_later(item.id, self.clock() + delay)
                return
            # Only a person's chat keeps message ids (for quick exit), not the desk's; a
            # quick exit's reply is kept only as its own pending delete (tied to no one).
            pending = self._exit_reply_delete(channel, target, item.message, ids)
            kept = ids if item.address is None and pending is None else []
            row_id = await self.store.delivered(item.id, pid, kept, self.clock(), pending)
            if pending is not None:
                self._delete_when_due(channel, replace(pending, id=row_id))

    def _exit_reply_delete(self, channel: Channel, address: str, message: Message,
                           ids: Sequence[str]) -> PendingDelete | None:
        """A quick exit's neutral reply is deleted after a moment. The delete is written
        down with the delivery, so a restart or an outage in that moment loses it not."""
        delay = channel.exit_reply_delete_after
        if not message.ephemeral or delay is None or not ids:
            return None
        now = self.clock()
        return PendingDelete(channel.name, address, tuple(ids),
                             now + channel.capabilities.delete_window_hours * 3600,
                             due_at=now + delay)

    def _delete_when_due(self, channel: Channel, pending: PendingDelete) -> None:
        async def later() -> None:
            await asyncio.sleep(max(0.0, pending.due_at - self.clock()))
            await self._try_deletes(channel, pending)

        task = asyncio.create_task(later())
        self._exit_reply_timers.add(task)
        task.add_done_callback(self._exit_reply_timers.discard)

    async def deliver_now(self, key: str) -> None:
        """Send what is queued under ``key`` (a person or a desk case) now, in order."""
        async with self.conversation(key):
            await self._deliver(key, force=True)

    async def tell(self, pid: str, messages: Sequence[Message], flow: str | None = None
                   ) -> bool:
        """Say something to a person outside a turn of theirs (an advocate's reply, a
        notice), through the outbox, then optionally start ``flow``, and deliver. The
        caller holds the person's lock. False when the person can't be reached."""
        person = await self.store.person(pid)
        if person is None or person.unreachable:
            return False
        now = self.clock()
        channel = self.channels.get(person.channel)
        if channel is not None:
            messages = split_long(messages, channel.capabilities.split_at)
        await self.store.enqueue(pid, person.channel, messages, now)
        if flow is not None and flow in self.flows:
            await self._process(pid, person.channel, person.address,
                                Inbound(kind="start", at=now, payload=flow), None)
        await self._deliver(pid, force=True)
        # The platform may have said just now that the person is gone (their replies were
        # dropped): the caller must know this message did not reach them either.
        after = await self.store.person(pid)
        return after is not None and not after.unreachable

    async def _left(self, pid: str, now: float, erased: bool) -> None:
        for hook in self.leave_hooks:
            try:
                await hook(pid, now, erased)
            except Exception as exc:
                log.error("a leave hook failed for %s (%s)", pid[:10], type(exc).__name__)

    async def deliver_pending(self, force: bool = False) -> None:
        """Retry every queued message that is due (after a restart or an outage), and the
        quick-exit deletes not done yet."""
        await self.retry_deletes()
        for pid, _channel, next_try in await self.store.pids_with_pending():
            if force or next_try <= self.clock():
                async with self.conversation(pid):
                    await self._deliver(pid, force=force)

    # ------------------------------------------------------------- timers

    async def run_due_jobs(self) -> int:
        """Run check-ins that are due. Returns how many ran."""
        ran = 0
        for job in await self.store.due_jobs(self.clock()):
            async with self.conversation(job.pid):
                person = await self.store.person(job.pid)
                await self.store.delete_job(job.id)
                if person is None or person.unreachable:
                    continue
                inbound = Inbound(kind="timer", at=self.clock(), payload=str(job.body["flow"]))
                await self._process(job.pid, person.channel, person.address, inbound, None)
                await self._deliver(job.pid, force=True)
                ran += 1
        return ran

    async def purge(self) -> dict[str, int]:
        r = self.settings.retention
        counts = await self.store.purge(self.clock(), r.conversation_days, r.message_id_hours,
                                        r.case_days)
        if any(counts.values()):
            log.info("retention purge removed %s", counts)
        return counts

    # ------------------------------------------------------------- default effects

    def _t(self, turn: Turn, message: str) -> str:
        return self.tr.gettext(turn.state.locale or self.settings.default_language, message)

    async def _no_directory(self, turn: Turn, effect: Effect) -> list[Message]:
        return [Message(self._t(turn, T_NO_DIRECTORY))]

    async def _no_advocates(self, turn: Turn, effect: Effect) -> list[Message]:
        return [Message(self._t(turn, T_NO_ADVOCATES))]

    async def _facts(self, turn: Turn) -> frozenset[str]:
        """What the flows of this app test with ``available:``, answered now."""
        known: set[str] = set()
        for name in self._used_facts:
            provider = self.facts.get(name)
            try:
                if provider is not None and await provider(turn):
                    known.add(name)
            except Exception as exc:  # unknown counts as unavailable: never promise it
                log.warning("could not tell whether %s is available (%s)", name,
                            type(exc).__name__)
        return frozenset(known)

    async def _checkin_booked(self, turn: Turn) -> bool:
        due = turn.state.vars.get(CHECKIN_DUE)
        return isinstance(due, (int, float)) and due > turn.now

    async def _schedule(self, turn: Turn, effect: Effect) -> list[Message]:
        assert isinstance(effect, Schedule)
        await self.store.cancel_jobs(turn.pid, effect.kind)
        await self.store.add_job(turn.pid, effect.kind, turn.now + effect.after_hours * 3600,
                                 {"flow": effect.flow}, turn.now)
        turn.state.vars[CHECKIN_DUE] = turn.now + effect.after_hours * 3600
        when, date = format_when(turn.state.locale or self.settings.default_language, turn.now,
                                 effect.after_hours, self.settings.timezone)
        return [Message(self._t(turn, T_CHECKIN_WHEN).replace("{when}", when)
                        .replace("{date}", date))]

    async def _set_disappearing(self, turn: Turn, effect: Effect) -> list[Message]:
        assert isinstance(effect, SetDisappearing)
        channel = self.channels.get(turn.channel)
        address = await self.store.address(turn.pid)
        if channel is not None and address is not None:
            await channel.set_disappearing(address, effect.seconds)
        return []

    async def _cancel_schedules(self, turn: Turn, effect: Effect) -> list[Message]:
        await self.store.cancel_jobs(turn.pid)
        turn.state.vars.pop(CHECKIN_DUE, None)
        return []

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        for channel in self.channels.values():
            await channel.start(self.handle, self._on_ready)
        await self.deliver_pending(force=True)

    async def _on_ready(self) -> None:
        try:
            await self.deliver_pending(force=True)
        except Exception as exc:
            log.warning("delivering kept replies failed (%s)", type(exc).__name__)

    async def stop(self) -> None:
        # Exit-reply deletes not yet due stay written down: asked for after the restart.
        for task in list(self._exit_reply_timers):
            task.cancel()
        await asyncio.gather(*self._exit_reply_timers, return_exceptions=True)
        for channel in self.channels.values():
            try:
                await channel.stop()
            except Exception as exc:
                log.warning("channel %s did not stop cleanly (%s)", channel.name,
                            type(exc).__name__)


def _facts_used(flows: FlowSet) -> frozenset[str]:
    """The facts some condition of these flows tests (only those are asked for a turn)."""
    used: set[str] = set()
    for flow in flows:
        for step in flow.steps.values():
            if isinstance(step, BranchStep):
                used.update(c.fact for case in step.branch for c in case.conditions
                            if c.fact is not None)
            elif isinstance(step, ChooseStep):
                used.update(c.fact for o in step.options for c in o.conditions
                            if c.fact is not None)
    return frozenset(used)
