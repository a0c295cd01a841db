"""The pipeline: platform event -> inbox -> pseudonym -> lock -> engine -> save -> effects
-> operations queue -> platform.

* **The inbox.** What a platform hands the bot is written down (encrypted, keyed by
  pseudonym, with a keyed hash of the platform's own id of the event) before the channel
  acknowledges it; a re-delivered event is dropped. Each person's events are processed in
  order; the turn that processes one crosses it off in the same transaction. After a
  restart, what was not processed is processed first, in order.
* **One queue of platform operations** (sends, deletes, timers; the desk's posts too): the
  new state and what it causes are written in one transaction *before* anything is sent,
  and carried out in order per person (or desk case), each with ``not_before`` and
  ``expires_at``. A platform that cannot be reached or asks us to slow down: tried again
  with backoff. A platform that says no for good (``Rejected``): that operation ends,
  counted by kind, and the ones behind it go on. A platform's message ids are kept in the
  same commit that crosses a send off, so a duplicate can only come from a crash inside
  the platform call itself.

Logs carry pseudonyms (shortened), step names and kinds, never content or platform ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from helpline import privacy_notice
from helpline.channels.base import Capabilities, Channel, DeskReplayer
from helpline.channels.ordered import KeyedSerializer
from helpline.config import Settings
from helpline.errors import RateLimited, Rejected, Unreachable
from helpline.events import (
    CancelSchedules,
    DeleteChat,
    Effect,
    EraseData,
    Handoff,
    Inbound,
    Lookup,
    Message,
    OverlayPick,
    RawInbound,
    Schedule,
    SetDisappearing,
)
from helpline.feature import (
    APP_EFFECTS,
    EffectHandler,
    FactProvider,
    Feature,
    FeatureConflict,
    FlowTools,
    Happening,
    Hook,
    LeaveHook,
    Observer,
    Plugs,
    Services,
    TimedJob,
    Turn,
)
from helpline.flow import commands
from helpline.flow.engine import (
    CHECKIN_DUE,
    Engine,
    EngineConfig,
    Language,
    Result,
    normalize,
)
from helpline.flow.loader import FlowSet
from helpline.flow.model import BranchStep, ChooseStep
from helpline.i18n import N_, Translator, format_when, language_name, word_forms
from helpline.logsafe import log_exception
from helpline.office_hours import OfficeHours
from helpline.privacy import Vault, random_id
from helpline.state import State
from helpline.store import Operation, PendingDelete, PersonRow, Store
from helpline.store.database import settle
from helpline.store.jobs import ERASE_ON_REQUEST
from helpline.store.keylocks import KeyLocks
from helpline.store.sqlite import MAX_REPLAYS, Hold

log = logging.getLogger("helpline.app")

T_NO_DIRECTORY = N_(
    "I can't search for services here yet. An advocate or a hotline can help you look. "
    "Type menu to see the options."
)
T_NO_ADVOCATES = N_(
    "I'm sorry, no one can chat here at the moment. If you need help now, type menu and "
    "choose the option for help right now to see numbers you can call."
)

# The advocate flow's own words (already translated), then the numbers to call.
T_NO_ONE = N_("I'm sorry, there is no one here to chat with at the moment.")


@dataclass
class _Work:
    """An event written down in the inbox, waiting for its turn."""

    inbox_id: int | None
    pid: str
    raw: RawInbound
    done: asyncio.Future[None]


__all__ = ["App", "Turn", "engine_config"]  # Turn: helpline.feature's


# How long a person's row as this app saved it is used without reading it again (the turns
# of a conversation come seconds apart), and for how many people at most.
PERSON_KEPT_SECONDS = 30.0
PERSON_KEPT_MOST = 4096
# Serving together: events waiting this long were left by another worker (it stopped or
# died before their turn); every worker looks for them this often.
STRANDED_SECONDS = 3.0
SWEEP_SECONDS = 1.0
DELIVER_NOTICE = "deliver|"  # told to the leader: carry out this key's queue

T_CHECKIN_WHEN = N_("The check-in will come {when}, on {date}.")



def engine_config(settings: Settings, translator: Translator | None = None) -> EngineConfig:
    """The engine's settings. With a translator, every command word also works in its
    translation into each enabled language, whatever the person's own language (the
    configured words, often English, always keep working)."""
    c = settings.commands
    config = EngineConfig(
        first_flow=settings.conversation.first_flow,
        home_flow=settings.conversation.home_flow,
        quick_exit_reply=c.quick_exit_reply,
        command_words={**{name: tuple(getattr(c, name)) for name in commands.NAMES},
                       "yes": commands.YES_WORDS},
        languages=tuple(Language(code, language_name(code)) for code in settings.languages),
        default_locale=settings.default_language,
        resume_after_hours=settings.conversation.resume_after_hours,
        timezone=settings.timezone,
        privacy_notice=privacy_notice.notice(settings),
    )
    if translator is None:
        return config
    extra = {
        name: frozenset(normalize(form) for word in config.command_words[name]
                        for form in word_forms(translator, settings.languages, word))
        for name in commands.TRANSLATED
    }
    return replace(config, extra_words=extra)


# The flow variable a person's safe times are kept in (App._hold), and the inbound kinds
# of a turn the bot starts (a check-in's timer, a flow an advocate's reply starts).
SAFE_TIMES = "safe_time"
BOT_STARTED = frozenset({"timer", "start"})


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
        features: Iterable[Feature[Any]] = (),
    ) -> None:
        self.settings = settings
        self.flows = flows
        self.store = store
        store.reply_expiry = settings.retention.reply_days * 86400
        self.vault = vault
        self.tr = translator
        self.engine = engine or Engine(flows, engine_config(settings, translator), translator)
        self.channels: dict[str, Channel] = {c.name: c for c in channels}
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._wakeups: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._serial = KeyedSerializer()  # events in order per person
        # People's rows as this app last saved them, by pid (oldest first): see _person.
        self._people: dict[str, tuple[float, PersonRow]] = {}
        # Events accepted and not yet written down, and the task writing them (accept()).
        self._arriving: list[tuple[RawInbound, asyncio.Future[None]]] = []
        self._arrivals: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Several workers serving one PostgreSQL database at once (serve_together): each
        # person's lock is also taken across them, and channels only the leader runs wait.
        self.key_locks: KeyLocks | None = None
        self._idle: dict[str, Channel] = {}
        self._failed_rows: set[int] = set()  # events whose turn failed here (not again)
        self._pending: dict[str, int] = {}  # events queued or in a turn here, by pid
        # What the features plugged in (add): their hooks before the engine (in order),
        # leave hooks, periodic work, effect handlers and the answers to their menus.
        self._features: dict[str, Feature[Any]] = {}
        self._hooks: list[tuple[int, int, Hook]] = []
        self._leave_hooks: list[LeaveHook] = []
        self._jobs: dict[str, TimedJob] = {}
        self._observers: list[Observer] = []  # told of every Happening (statistics)
        self._counted_flows = frozenset(settings.stats.flows)
        # Facts nothing answers are unavailable: no desk installed, no directory.
        self.facts: dict[str, FactProvider] = {"checkin": self._checkin_booked}
        self._used_facts = _facts_used(flows)
        # By effect type: the features' handlers (a chain, asked in order), then the app's.
        self._effects: dict[type, list[tuple[str, EffectHandler[Any], bool]]] = {}
        self._own_effects: dict[type, EffectHandler[Any]] = {
            Lookup: self._no_directory,
            Handoff: self._no_advocates,
            Schedule: self._schedule,
            CancelSchedules: self._cancel_schedules,
            SetDisappearing: self._set_disappearing,
        }
        self._picks: dict[str, EffectHandler[OverlayPick]] = {}
        # Flow variables older releases kept features' values in: name -> (feature, key).
        self._legacy: dict[str, tuple[str, str]] = {}
        for feature in features:
            self.add(feature)

    # ------------------------------------------------------------- features

    def add(self, feature: Feature[Any]) -> None:
        """Plug a feature in (helpline.feature). Refused, with nothing of it joined, when
        it clashes with one added before or its tables are not in the store. Its channels
        are started with the app's (one added after ``start`` is not started: the desk's
        channel needs no start)."""
        name = feature.name
        if name in self._features:
            raise FeatureConflict(f"a feature called {name!r} is plugged in already")
        part = feature.part
        if part is not None and part.name not in {p.name for p in self.store.database.parts}:
            raise FeatureConflict(f"{name}: the store was opened without its tables (the "
                                  f"part {part.name!r}; helpline.parts lists them)")
        services = Services(
            feature=name, settings=self.settings, tr=self.tr, clock=self.clock,
            lock=self.conversation, tell=self.tell, queue=self._queue,
            deliver=self.deliver_now, drop_queue=self.store.drop_outbox,
            capabilities=self._capabilities,
            flows=FlowTools(self.engine, self.flows, name, self.settings.conversation.home_flow),
            repository=feature.repository(self.store), happened=self.happened)
        plugs = Plugs(name)
        feature.plug(services, plugs)
        self._check(plugs)
        self._features[name] = feature
        for kind, handler, chain in plugs.effects:
            self._effects.setdefault(kind, []).append((name, handler, chain))
        if plugs.pick is not None:
            self._picks[name] = plugs.pick
        for order, hook in plugs.hooks:
            self._hooks.append((order, len(self._hooks), hook))
        self._hooks.sort(key=lambda h: (h[0], h[1]))
        self._leave_hooks.extend(plugs.leave_hooks)
        self._observers.extend(plugs.observers)
        self.facts.update(plugs.facts)
        self._jobs.update(plugs.jobs)
        for channel in plugs.channels:
            self.channels[channel.name] = channel
        for old, key in feature.legacy_vars.items():
            self._legacy[old] = (name, key)
        feature.added()

    def _check(self, plugs: Plugs) -> None:
        name = plugs.feature
        for kind, _, chain in plugs.effects:
            assert kind not in APP_EFFECTS  # Plugs.effect refuses them
            for other, _, other_chain in self._effects.get(kind, []):
                if not (chain and other_chain):
                    raise FeatureConflict(
                        f"{name} and {other} both handle {kind.__name__}; only one may, "
                        "unless both chain (Plugs.effect(..., chain=True))")
        for fact in plugs.facts:
            if fact in self.facts:
                raise FeatureConflict(f"{name}: the fact {fact!r} is answered already")
        for job in plugs.jobs:
            if job in self._jobs:
                raise FeatureConflict(f"{name}: a timed job {job!r} is there already")
        for channel in plugs.channels:
            if channel.name in self.channels:
                raise FeatureConflict(f"{name}: a channel {channel.name!r} is there already")

    @property
    def features(self) -> Mapping[str, Feature[Any]]:
        return MappingProxyType(self._features)

    @property
    def timed_jobs(self) -> Mapping[str, TimedJob]:
        """The features' periodic work, by name, that the scheduler runs."""
        return MappingProxyType(self._jobs)

    def _capabilities(self, channel: str) -> Capabilities | None:
        found = self.channels.get(channel)
        return None if found is None else found.capabilities

    async def _queue(self, key: str, channel: str, address: str,
                     messages: Sequence[Message]) -> None:
        await self.store.enqueue_to(key, channel, address, list(messages), self.clock())
        await self.deliver_now(key)

    def _adopt_legacy(self, state: State) -> None:
        """Values an older release kept in flow variables go to their feature's place."""
        for old in [name for name in state.vars if name in self._legacy]:
            feature, key = self._legacy[old]
            state.features.setdefault(feature, {}).setdefault(key, state.vars.pop(old))

    # ------------------------------------------------------------- locking

    @asynccontextmanager
    async def conversation(self, pid: str) -> AsyncIterator[None]:
        """Serialise everything about one person; different people run concurrently. With
        several workers serving together, across all of them."""
        async with self._conversation(pid, wait=True):
            yield

    @asynccontextmanager
    async def _conversation(self, pid: str, wait: bool) -> AsyncIterator[bool]:
        """``conversation``; ``wait=False``: yields False at once, having waited for
        nothing, when another worker holds the person (their queue is theirs now)."""
        lock = self._locks.setdefault(pid, asyncio.Lock())
        self._lock_users[pid] = self._lock_users.get(pid, 0) + 1
        try:
            async with lock:
                if self.key_locks is None:
                    yield True
                else:
                    async with self.key_locks.hold(pid, wait) as held:
                        yield held
        finally:
            self._lock_users[pid] -= 1
            if self._lock_users[pid] == 0:
                del self._lock_users[pid]
                del self._locks[pid]

    # ------------------------------------------------------------- inbound

    def accept(self, raw: RawInbound) -> asyncio.Future[None]:
        """What channels call for each event: write it down in the inbox. The returned
        future is done once the event is on disk (acknowledge it to the platform only
        then); it is processed afterwards, in order with the person's other events. Events
        accepted one after another (a getUpdates batch, frames read together) are written
        by one call, in one commit."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arriving.append((raw, future))
        if self._arrivals is None:
            self._arrivals = asyncio.create_task(self._accept_arrivals())
        return future

    async def _accept_arrivals(self) -> None:
        """Write down every event accepted meanwhile, as one batch; if the batch fails,
        each event on its own, so that only an event that cannot be written fails."""
        batch: list[tuple[RawInbound, asyncio.Future[None]]] = []
        try:
            while self._arriving:
                batch, self._arriving = self._arriving, []
                try:
                    await self._accept([raw for raw, _ in batch])
                except Exception as exc:
                    if len(batch) == 1:
                        settle(batch[0][1], exc)
                    else:
                        for raw, future in batch:
                            try:
                                await self._accept([raw])
                            except Exception as alone:
                                settle(future, alone)
                            else:
                                settle(future, None)
                for _, future in batch:
                    settle(future, None)
                batch = []
        finally:
            self._arrivals = None
            left, self._arriving = [*batch, *self._arriving], []
            for _, future in left:  # cancelled: the app is stopping
                settle(future, RuntimeError("the app is stopping"))

    async def _accept(self, raws: Sequence[RawInbound]) -> list[_Work]:
        events: list[tuple[str, str, str, RawInbound]] = []
        for raw in raws:
            try:
                pid = self.vault.pseudonym(raw.channel, raw.platform_id)
            except Exception:
                log.error("could not derive a pseudonym")
                continue
            event = (self.vault.pseudonym(f"inbox:{raw.channel}", raw.event_id)[:32]
                     if raw.event_id else random_id())
            events.append((pid, raw.channel, event, raw))
        if not events:
            return []
        ids = await self.store.accept(events, self.clock())
        loop = asyncio.get_running_loop()
        works: list[_Work] = []
        for (pid, channel, _, raw), row_id in zip(events, ids, strict=True):
            if row_id is None:
                log.info("dropped an event %s delivered again", channel)
                continue
            work = _Work(row_id, pid, raw, loop.create_future())
            self._submit(work)
            works.append(work)
        return works

    async def handle(self, raw: RawInbound) -> None:
        """Write one event down and process it; returns when its turn is done and its
        replies were tried (the terminal channel and tests). Never raises for the event."""
        try:
            works = await self._accept([raw])
        except Exception as exc:
            log.error("could not write an event down on %s (%s)", raw.channel,
                      type(exc).__name__)
            return
        for work in works:
            await asyncio.shield(work.done)

    def _submit(self, work: _Work) -> None:
        """Queue an event behind the person's earlier ones (different people concurrently)."""
        self._line_up(work.pid, lambda: self._run(work))

    def _line_up(self, pid: str, job: Callable[[], Awaitable[None]]) -> None:
        """``job`` behind the person's earlier ones, counted in ``_pending`` meanwhile."""
        self._pending[pid] = self._pending.get(pid, 0) + 1

        async def counted() -> None:
            try:
                await job()
            finally:
                self._pending[pid] -= 1
                if not self._pending[pid]:
                    del self._pending[pid]

        self._serial.submit(pid, counted)

    async def _run(self, work: _Work) -> None:
        try:
            await self._ready.wait()  # the channels are started: replies can go out
            await self._turn(work)
        except Exception as exc:
            log.error("failed to handle an event for %s:%s (%s)", work.raw.channel,
                      work.pid[:10], type(exc).__name__)
        finally:
            if not work.done.done():
                work.done.set_result(None)

    async def _turn(self, work: _Work) -> None:
        raw = work.raw
        if self.key_locks is not None:
            await self._drain(work.pid)
            return
        if raw.inbound.kind == "desk":  # an advocate's update, in order per desk topic
            await self._desk_turn(work)
            return
        # An event whose turn fails stays in the inbox (its turn wrote nothing): it is tried
        # again at the next start, at most MAX_REPLAYS times; the person's next message goes
        # on meanwhile.
        async with self.conversation(work.pid):
            queued = await self._process(work.pid, raw.channel, raw.address, raw.inbound,
                                         raw.message_id, work.inbox_id)
            # The turn's commit wrote raw.address as the person's address: not read back.
            await self._deliver(work.pid, force=True, fresh=queued, address=raw.address)

    async def _drain(self, pid: str, swept: bool = False) -> None:
        """Serving together: a person's (or desk topic's) events, whichever worker wrote
        them down, in the order they were written, under their lock across the workers.
        Whatever another worker processed meanwhile is crossed off already: not again."""
        async with self.conversation(pid):
            for row in await self.store.unprocessed_of(pid):
                if row.id in self._failed_rows:
                    continue
                if swept and self.clock() - row.received_at > STRANDED_SECONDS and \
                        await self.store.turn_failed(row.id, MAX_REPLAYS + 1):
                    # Left waiting again and again: the workers that had it died, maybe of
                    # it (counted like a failure; given up as a start gives one up).
                    log.warning("gave up an event on %s that workers kept dying on",
                                row.raw.channel)
                    continue
                work = _Work(row.id, pid, row.raw, asyncio.get_running_loop().create_future())
                try:
                    if row.raw.inbound.kind == "desk":
                        await self._desk_turn(work)
                        continue
                    raw = row.raw
                    queued = await self._process(pid, raw.channel, raw.address, raw.inbound,
                                                 raw.message_id, row.id)
                    await self._deliver(pid, force=True, fresh=queued, address=raw.address)
                except Exception as exc:
                    # Its turn wrote nothing: left in the inbox, not tried again here; the
                    # person's next events go on meanwhile. After MAX_REPLAYS failures on
                    # any workers it is given up (counted), as at starts on one worker.
                    self._failed_rows.add(row.id)
                    log.error("failed to handle an event for %s:%s (%s)", row.raw.channel,
                              pid[:10], type(exc).__name__)
                    with contextlib.suppress(Exception):
                        if await self.store.turn_failed(row.id):
                            log.warning("gave up an event on %s whose turn kept failing",
                                        row.raw.channel)

    async def _sweep_inbox(self) -> None:
        """Serving together, until stopped: events another worker wrote down and left (it
        stopped or died before their turn) are processed here, in order, a person at a
        time; at the start, everything waiting. Only their ids are read: the person's
        turn reads the events themselves."""
        before = math.inf  # at the start: everything written down so far
        while True:
            try:
                for pid, channel, ids in await self.store.left_waiting(before):
                    if pid not in self._pending and channel in self.channels \
                            and channel not in self._idle and not ids <= self._failed_rows:
                        self._line_up(pid, functools.partial(self._take_up, pid))
            except Exception as exc:
                log.warning("looking for events left waiting failed (%s)", type(exc).__name__)
            before = self.clock() - STRANDED_SECONDS
            await asyncio.sleep(SWEEP_SECONDS)

    async def _take_up(self, pid: str) -> None:
        """Serving together: a person's events another worker left waiting."""
        try:
            await self._ready.wait()
            await self._drain(pid, swept=True)
        except Exception as exc:
            log.error("failed to take up events left waiting for %s (%s)", pid[:10],
                      type(exc).__name__)

    async def _desk_turn(self, work: _Work) -> None:
        channel = self.channels.get(work.raw.channel)
        if isinstance(channel, DeskReplayer):
            await channel.replay_desk(work.raw.inbound.payload)
        if work.inbox_id is not None:
            await self.store.inbox_done(work.inbox_id)

    async def _process(self, pid: str, channel: str, address: str, inbound: Inbound,
                       message_id: str | None, inbox_id: int | None = None,
                       hold: Hold | None = None) -> list[Operation] | None:
        """One event of a person's: the new state and what it causes are stored together,
        with the inbox row crossed off. Returns the operations queued (None: older ones are
        queued too, read the queue). ``hold``: a turn the bot started (a check-in), whose
        replies wait for a safe time; a person's own message lets what was held go."""
        now = self.clock()
        channel_obj = self.channels.get(channel)
        if message_id is not None and channel_obj is not None \
                and not channel_obj.capabilities.deletes_inbound:
            message_id = None  # quick exit cannot delete it here: its id is not kept
        person = await self._person(pid)
        state = person.state if person is not None else State()
        if self._legacy and state.vars:
            self._adopt_legacy(state)
        # Only someone who said when a message is safe can have messages held for them.
        # What a platform handed over (it is in the inbox: a /start too) is theirs.
        release = ((inbox_id is not None or inbound.kind not in BOT_STARTED)
                   and SAFE_TIMES in state.vars)
        if self._observers and inbound.kind != "timer":
            await self._arrived(channel, state, person is None, now)
        timers: list[int] = []
        if person is None and inbound.kind != "timer":
            seconds = channel_obj.first_contact_timer if channel_obj is not None else 0
            if seconds > 0:
                timers.append(seconds)
        facts = (await self._facts(Turn(pid, channel, state, now)) if self._used_facts
                 else inbound.facts)
        inbound = replace(inbound, at=now, channel=channel, facts=facts)
        if self._hooks and inbound.kind != "timer":
            turn = Turn(pid, channel, state.clone(), now, timers, inbound.facts)
            command = self.engine.command(inbound)
            for _, _, hook in self._hooks:  # the first that answers takes the event
                replies = await hook(turn, inbound, command)
                if replies is not None:
                    turn.state.last_seen = now
                    return await self._save_turn(pid, channel, address, turn.state,
                                                 self._joined(channel, replies), now,
                                                 message_id, inbox_id, turn.timers, hold,
                                                 release)
            state = turn.state
            if turn.start is not None and turn.start in self.flows:
                inbound = replace(inbound, kind="start", payload=turn.start, text="")
        result = self.engine.step(state, inbound)
        effects = result.effects
        top = result.state.top
        if self._observers:
            await self._turned(channel, result, now)
        if log.isEnabledFor(logging.DEBUG):  # each message's step: DEBUG only (README)
            log.debug("%s:%s %s -> %s%s", channel, pid[:10], inbound.kind,
                      f"{top.flow}.{top.step}" if top else "idle",
                      "".join(f" +{type(e).__name__}" for e in effects))
        if any(isinstance(e, (EraseData, DeleteChat)) for e in effects):
            await self._left(pid, now, any(isinstance(e, EraseData) for e in effects))
        if any(isinstance(e, EraseData) for e in effects):
            pending = await self._chat_deletes(pid, channel, address, message_id, now)
            self._people.pop(pid, None)
            key = await self.store.erase_person(pid, pending, inbox_id)
            if key is not None:
                await self._deliver(key, force=True)
            await self._send_unstored(channel, address, result.messages)
            return []
        if any(isinstance(e, DeleteChat) for e in effects):
            pending = await self._chat_deletes(pid, channel, address, message_id, now)
            self._people.pop(pid, None)
            key = await self.store.clear_conversation(pid, now, pending)
            if key is not None:
                await self._deliver(key, force=True)
            queued = await self._save_turn(pid, channel, address, result.state,
                                           result.messages, now, inbox_id=inbox_id)
            for effect in effects:
                if isinstance(effect, CancelSchedules):
                    await self._run_effect(Turn(pid, channel, result.state, now), effect)
            return queued
        # Effects run first so that what they say goes out in the same transaction as the
        # state; nothing is sent until both are on disk.
        turn = Turn(pid, channel, result.state, now, timers, inbound.facts)
        messages = await self._apply_effects(turn, result)
        return await self._save_turn(pid, channel, address, turn.state,
                                     self._joined(channel, messages), now, message_id, inbox_id,
                                     turn.timers, hold, release)

    # ------------------------------------------------------------- people, as last saved

    async def _person(self, pid: str) -> PersonRow | None:
        """The person's row: as this app saved it a moment ago (kept in memory, never on
        disk, for PERSON_KEPT_SECONDS), else read from the store. The state is the
        caller's to change: a kept row is handed over and forgotten (the turn's
        ``_save_turn`` keeps the next; a turn that fails before it leaves the store to be
        read), so it is not copied."""
        kept = self._people.pop(pid, None) if self.key_locks is None else None
        if kept is not None:
            saved_at, row = kept
            if 0.0 <= self.clock() - saved_at < PERSON_KEPT_SECONDS:
                return row
        return await self.store.person(pid)

    async def _save_turn(self, pid: str, channel: str, address: str, state: State,
                         messages: Sequence[Message], now: float,
                         message_id: str | None = None, inbox_id: int | None = None,
                         timers: Sequence[int] = (), hold: Hold | None = None,
                         release_held: bool = False) -> list[Operation] | None:
        """``Store.save_turn``; once it is committed, the row is kept as saved (a copy of
        the state: the caller may go on changing its own)."""
        self._people.pop(pid, None)  # whatever happens below, nothing older is trusted
        queued = await self.store.save_turn(pid, channel, address, state, messages, now,
                                            message_id, inbox_id, timers, hold, release_held)
        self._people[pid] = (now, PersonRow(pid, channel, address, state.clone(), now, False))
        while len(self._people) > PERSON_KEPT_MOST:
            self._people.pop(next(iter(self._people)))
        return queued

    def _joined(self, channel_name: str, messages: list[Message]) -> list[Message]:
        """A turn's messages as the channel takes them (Capabilities.prepare): choices
        within its buttons, joined into as few messages as it takes (events.combined),
        and any text too long for one message in parts (events.split_long)."""
        channel = self.channels.get(channel_name)
        if channel is None:
            return messages
        return channel.capabilities.prepare(messages, self.settings.delivery.combine_replies)

    async def _apply_effects(self, turn: Turn, result: Result) -> list[Message]:
        """Run the effects; what they say goes where they happened. A lookup or handoff
        step that the app showed no menu of its own for is moved past (which may lead to
        more effects)."""
        messages: list[Message] = []
        for _ in range(8):
            said = [await self._run_effect(turn, effect) for effect in result.effects]
            messages.extend(result.place(said))
            if not self.engine.waits_for_app(turn.state):
                break
            result = self.engine.advance(Result(turn.state, facts=turn.facts))
            if self._observers:
                await self._reached(turn.channel, result, turn.now)
        return messages

    # ------------------------------------------------------------- what happened

    async def happened(self, happening: Happening) -> None:
        """Tell every observer (statistics); one that fails is logged, never the turn's."""
        for observer in self._observers:
            try:
                await observer(happening)
            except Exception as exc:
                log_exception(log, f"an observer failed on {happening.event}", exc)

    def _happening(self, event: str, at: float, channel: str, state: State,
                   detail: str = "") -> Happening:
        return Happening(event, at, channel, state.locale or self.settings.default_language,
                         detail)

    async def _arrived(self, channel: str, state: State, new: bool, now: float) -> None:
        """A person's message: someone new, or a conversation begun after a long quiet."""
        quiet = self.settings.conversation.resume_after_hours * 3600
        if new:
            await self.happened(self._happening("first_contact", now, channel, state))
        if new or state.last_seen is None or now - state.last_seen >= quiet:
            await self.happened(self._happening("conversation_started", now, channel, state))

    async def _turned(self, channel: str, result: Result, now: float) -> None:
        state = result.state
        if any(isinstance(e, EraseData) for e in result.effects):
            await self.happened(self._happening("erasure", now, channel, state))
        elif any(isinstance(e, DeleteChat) for e in result.effects):
            await self.happened(self._happening("quick_exit", now, channel, state))
        await self._reached(channel, result, now)

    async def _reached(self, channel: str, result: Result, now: float) -> None:
        for flow in result.reached:
            if flow in self._counted_flows:
                await self.happened(self._happening("flow_reached", now, channel,
                                                    result.state, flow))

    async def _run_effect(self, turn: Turn, effect: Effect) -> list[Message]:
        """The feature that handles the effect's type (or the chain of them, each answering
        or passing), else the app's own; a pick of a feature's menu goes to that feature."""
        if isinstance(effect, OverlayPick):
            pick = self._picks.get(effect.owner)
            handlers: list[EffectHandler[Any]] = [] if pick is None else [pick]
        else:
            handlers = [h for _, h, _ in self._effects.get(type(effect), ())]
            own = self._own_effects.get(type(effect))
            if own is not None:
                handlers.append(own)
        try:
            for handler in handlers:
                said = await handler(turn, effect)
                if said is not None:
                    return said
        except Exception as exc:
            log.error("effect %s failed for %s:%s (%s)", type(effect).__name__, turn.channel,
                      turn.pid[:10], type(exc).__name__)
        return []

    async def _chat_deletes(self, pid: str, channel_name: str, address: str,
                            message_id: str | None, now: float) -> PendingDelete | None:
        """Quick exit: what to ask the platform to delete of this chat. The deletes are
        written down with the forgetting (tied to no one) and crossed off once the
        platform has done them: a platform that is down, or a restart, loses none."""
        channel = self.channels.get(channel_name)
        if channel is None:
            return None
        window = channel.capabilities.delete_window_hours
        bot_only = not channel.capabilities.deletes_inbound
        ids = await self.store.message_ids(pid, now - window * 3600, from_bot_only=bot_only)
        if message_id is not None and not bot_only:
            ids.append(message_id)
        if not ids:
            return None
        return PendingDelete(channel_name, address, tuple(ids), now + window * 3600, now)

    async def _send_unstored(self, channel_name: str, address: str,
                             messages: Sequence[Message]) -> None:
        """After an erase nothing may be stored again, so these go out directly, best effort."""
        channel = self.channels.get(channel_name)
        if channel is None:
            return
        for message in channel.capabilities.shape(messages):
            try:
                ids = await channel.send(address, message)
            except Exception as exc:
                log.warning("could not send on %s after erase (%s)", channel_name,
                            type(exc).__name__)
                continue
            pending = self._exit_reply_delete(channel, address, message, ids)
            if pending is not None:  # kept like the erase's own deletes: tied to no one
                key = await self.store.keep_deletes(pending)
                self._wake_at(key, pending.due_at)

    # ------------------------------------------------------------- operations

    async def _deliver(self, key: str, force: bool = False,
                       fresh: list[Operation] | None = None,
                       address: str | None = None) -> None:
        """Carry out what is queued under ``key`` (a person, a desk case, or deletes tied
        to no one) in order, until the queue is empty or must wait. ``fresh``: the
        operations just queued, when nothing older is queued (saves reading back what was
        just written). ``address``: the person's address as the caller just stored it
        (saves reading it back; None: read it when an operation needs it)."""
        ops = fresh if fresh is not None else await self.store.operations(key)
        if not ops:
            return
        looked_up = address is not None
        for index, op in enumerate(ops):
            now = self.clock()
            if op.expires_at is not None and op.expires_at < now:
                log.info("a %s operation on %s expired undone", op.kind, op.channel)
                await self.store.operation_ended(op, "expired")
                continue
            if op.not_before > now:
                self._wake_at(key, op.not_before)
                return  # what is behind it waits, in order
            if not force and index == 0 and op.next_try_at > now:
                return  # the head of the queue is not due; what is behind it waits in order
            channel = self.channels.get(op.channel)
            if op.channel in self._idle and self.key_locks is not None:
                # Serving together, a channel only the leader runs (Signal): it is told
                # to carry the queue out now (else its sweep does, within seconds).
                self._spawn(self._tell_leader(key))
                return
            if channel is None:
                return  # that channel is not running: kept until it is, or until it expires
            target = op.address
            if target is None:
                if not looked_up:
                    address, looked_up = await self.store.address(key), True
                target = address
            if target is None:  # the person's row is gone: there is no one to send to
                await self.store.operation_ended(op, "failed")
                continue
            try:
                if not await self._carry_out(channel, target, op):
                    return
            except RateLimited as exc:
                log.warning("%s asked to slow down (%s for %s); retry in %.0fs", op.channel,
                            op.kind, key[:10], exc.retry_after)
                await self.store.retry_later(op.id, self.clock() + exc.retry_after)
                return
            except Rejected as exc:
                if exc.gone and op.address is None and not key.startswith("x:"):
                    log.info("%s:%s can no longer be reached; their queue ends", op.channel,
                             key[:10])
                    self._people.pop(key, None)
                    await self.store.mark_unreachable(key)
                    return
                log.warning("%s refused a %s for good (%s); going on with the next",
                            op.channel, op.kind, key[:10])
                await self.store.operation_ended(op, "gone" if exc.gone else "rejected")
                continue
            except (UnicodeError, ValueError, TypeError) as exc:
                # What the platform library refuses to even send (a lone surrogate, a value
                # it cannot encode) would fail the same way every time: it ends.
                log.warning("a %s on %s could not be sent at all (%s); going on with the next",
                            op.kind, op.channel, type(exc).__name__)
                await self.store.operation_ended(op, "rejected")
                continue
            except Exception as exc:  # Unreachable, or a failure we don't know: try again
                delay = self._backoff(op.attempts)
                log.warning("%s failed on %s for %s (%s); retry in %.0fs", op.kind, op.channel,
                            key[:10], type(exc).__name__ if not isinstance(exc, Unreachable)
                            else "unreachable", delay)
                await self.store.retry_later(op.id, self.clock() + delay)
                return

    def _backoff(self, attempts: int) -> float:
        d = self.settings.delivery
        return float(min(d.retry_first_seconds * 2 ** min(attempts, 30), d.retry_max_seconds))

    async def _carry_out(self, channel: Channel, target: str, op: Operation) -> bool:
        """One operation. True when it is done (crossed off) and the next may follow."""
        if op.kind == "send":
            ids = await channel.send(target, op.message)
            # Only a person's chat keeps message ids (for quick exit), not the desk's; a
            # quick exit's reply is kept only as its own delete (tied to no one).
            follow_up = self._exit_reply_delete(channel, target, op.message, ids)
            person = op.address is None and follow_up is None and not op.key.startswith("x:")
            key = await self.store.operation_done(op, op.key if person else None, ids,
                                                  self.clock(), follow_up)
            if key is not None and follow_up is not None:
                self._wake_at(key, follow_up.due_at)
            return True
        if op.kind == "delete":
            left = list(await channel.delete(target, op.body) or [])
            if left:
                await self.store.retry_later(op.id, self.clock() + self._backoff(op.attempts),
                                             tuple(left))
                return False
            await self.store.operation_done(op, None, [], self.clock())
            return True
        await channel.set_disappearing(target, int(op.body))
        await self.store.operation_done(op, None, [], self.clock())
        return True

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

    def _wake_at(self, key: str, when: float) -> None:
        """Carry out ``key``'s queue again at ``when`` (the queue itself is on disk: the
        periodic sweep and a restart find it too; this only makes it prompt)."""
        if key in self._wakeups:
            return
        loop = asyncio.get_running_loop()

        def wake() -> None:
            self._wakeups.pop(key, None)
            self._spawn(self.deliver_now(key))

        self._wakeups[key] = loop.call_later(max(0.0, when - self.clock()), wake)

    async def deliver_now(self, key: str) -> None:
        """Carry out what is queued under ``key`` (a person or a desk case) now, in order."""
        try:
            async with self.conversation(key):
                await self._deliver(key, force=True)
        except Exception as exc:
            log.error("delivering failed for %s (%s)", key[:10], type(exc).__name__)

    def _hold(self, state: State, now: float) -> Hold | None:
        """When a message the bot starts may reach this person: None, at once; else (not
        before, dropped after), by what they chose (the flow variable ``safe_time``): a
        window of ``[conversation] safe_windows`` in the organisation's time zone, or
        "after_i_write". Either way their next message lets it go at once; a window that
        does not come within ``hold_hours``, or a choice this configuration does not know,
        keeps it until they write, and it is dropped at ``hold_hours``."""
        c = self.settings.conversation
        choice = state.vars.get(SAFE_TIMES)
        if choice is None or choice == "any":
            return None
        until = now + c.hold_hours * 3600
        never = (until + 1, until)  # not before it is dropped: only their message frees it
        shifts = c.safe_windows.get(choice) if isinstance(choice, str) else None
        if not shifts:  # "after_i_write", or a window no longer configured: the safe side
            return never
        opens = OfficeHours(shifts, (), self.settings.timezone).next_open(now)
        if opens is None or opens >= until:
            return never
        return None if opens <= now else (opens, until)

    async def tell(self, pid: str, messages: Sequence[Message], flow: str | None = None
                   ) -> bool:
        """Say something to a person outside a turn of theirs (an advocate's reply, a
        notice), through the queue, then optionally start ``flow``, and deliver. The caller
        holds the person's lock. False when the person can't be reached."""
        person = await self.store.person(pid)
        if person is None or person.unreachable:
            return False
        now = self.clock()
        channel = self.channels.get(person.channel)
        if channel is not None:
            messages = channel.capabilities.prepare(messages, combine=False)
        # Once the person has gone quiet, what the bot starts waits for a safe time.
        seen = person.state.last_seen
        quiet = seen is None or now - seen > self.settings.conversation.quiet_minutes * 60
        hold = self._hold(person.state, now) if quiet else None
        await self.store.enqueue(pid, person.channel, messages, now, hold)
        if flow is not None and flow in self.flows:
            await self._process(pid, person.channel, person.address,
                                Inbound(kind="start", at=now, payload=flow), None, hold=hold)
        await self._deliver(pid, force=True)
        # The platform may have said just now that the person is gone (their replies were
        # dropped): the caller must know this message did not reach them either.
        after = await self.store.person(pid)
        return after is not None and not after.unreachable

    async def _left(self, pid: str, now: float, erased: bool) -> None:
        for hook in self._leave_hooks:
            try:
                await hook(pid, now, erased)
            except Exception as exc:
                log.error("a leave hook failed for %s (%s)", pid[:10], type(exc).__name__)

    async def deliver_pending(self, force: bool = False) -> None:
        """Carry out every queued operation that is due (after a restart or an outage)."""
        now = self.clock()
        for key, due in await self.store.keys_with_operations():
            if force or due <= now:
                async with self._conversation(key, wait=False) as ours:
                    if ours:  # else another worker is carrying it out
                        await self._deliver(key, force=force)

    # ------------------------------------------------------------- timers

    async def run_due_jobs(self) -> int:
        """Run check-ins that are due. Returns how many ran."""
        ran = 0
        for job in await self.store.jobs.due(self.clock()):
            async with self.conversation(job.pid):
                if not await self.store.jobs.delete(job.id):
                    continue  # claimed by another worker meanwhile: it ran there
                person = await self.store.person(job.pid)
                if person is not None and job.kind == ERASE_ON_REQUEST:
                    await self._erase_on_request(job.pid, person)
                    ran += 1
                    continue
                if person is None or person.unreachable:
                    continue
                inbound = Inbound(kind="timer", at=self.clock(), payload=str(job.body["flow"]))
                await self.happened(self._happening("checkin_sent", self.clock(), person.channel,
                                                    person.state))
                await self._process(job.pid, person.channel, person.address, inbound, None,
                                    hold=self._hold(person.state, self.clock()))
                await self._deliver(job.pid, force=True)
                ran += 1
        return ran

    async def _erase_on_request(self, pid: str, person: PersonRow) -> None:
        """A request made to staff (``helpline erase HANDLE``): the person is erased as
        "delete my data" erases them (their case closed and its thread deleted, the chat's
        deletes asked for), and nothing is said to them: the bot does not write first."""
        now = self.clock()
        await self._left(pid, now, erased=True)
        pending = await self._chat_deletes(pid, person.channel, person.address, None, now)
        self._people.pop(pid, None)
        key = await self.store.erase_person(pid, pending)
        if key is not None:
            await self._deliver(key, force=True)
        await self.happened(self._happening("erasure", now, person.channel, person.state,
                                            "on-request"))
        log.info("erased on a request made to staff (%s:%s)", person.channel, pid[:10])

    async def purge(self) -> dict[str, int]:
        r = self.settings.retention
        self._people.clear()  # what the purge removes must not come back from memory
        counts = await self.store.purge(self.clock(), r.conversation_days, r.message_id_hours,
                                        r.model_dump())  # every part reads its own period
        if any(counts.values()):
            log.info("retention purge removed %s", counts)
        return counts

    # ------------------------------------------------------------- default effects

    def _t(self, turn: Turn, message: str) -> str:
        return self.tr.gettext(turn.state.locale or self.settings.default_language, message)

    async def _no_directory(self, turn: Turn, effect: Lookup) -> list[Message]:
        return [Message(self._t(turn, T_NO_DIRECTORY))]

    async def _no_advocates(self, turn: Turn, effect: Handoff) -> list[Message]:
        numbers = self.flows.text_of(self.settings.resources.hotline_step)
        if numbers is None:
            return [Message(self._t(turn, T_NO_ADVOCATES))]
        return [Message(f"{self._t(turn, T_NO_ONE)}\n\n{self._t(turn, numbers)}")]

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

    async def _schedule(self, turn: Turn, effect: Schedule) -> list[Message]:
        await self.happened(self._happening("checkin_booked", turn.now, turn.channel,
                                            turn.state))
        await self.store.jobs.cancel(turn.pid, effect.kind)
        await self.store.jobs.add(turn.pid, effect.kind, turn.now + effect.after_hours * 3600,
                                 {"flow": effect.flow}, turn.now)
        turn.state.vars[CHECKIN_DUE] = turn.now + effect.after_hours * 3600
        when, date = format_when(turn.state.locale or self.settings.default_language, turn.now,
                                 effect.after_hours, self.settings.timezone)
        return [Message(self._t(turn, T_CHECKIN_WHEN).replace("{when}", when)
                        .replace("{date}", date))]

    async def _set_disappearing(self, turn: Turn, effect: SetDisappearing) -> list[Message]:
        """Queued with the turn, before its replies (so they disappear too)."""
        channel = self.channels.get(turn.channel)
        if channel is not None and channel.capabilities.disappearing:
            turn.timers.append(max(0, effect.seconds))
        return []

    async def _cancel_schedules(self, turn: Turn, effect: CancelSchedules) -> list[Message]:
        await self.store.jobs.cancel(turn.pid)
        turn.state.vars.pop(CHECKIN_DUE, None)
        return []

    # ------------------------------------------------------------- lifecycle

    def serve_together(self, locks: KeyLocks) -> None:
        """Serve with other workers on the same PostgreSQL database at once (before
        ``start``): people's locks are taken across the workers with ``locks``, people's
        rows are always read afresh, and each worker processes its own events and what
        another left waiting (``_sweep_inbox``)."""
        self.key_locks = locks

    async def start(self, leading: bool = True) -> None:
        """Events written down but not processed (a crash, a stop) are queued first, in
        order; then the channels start, and everything waiting is processed and sent.
        Serving together and not ``leading``: only the channels that take events on any
        worker (Telegram's webhook) start; ``lead`` starts the others."""
        loop = asyncio.get_running_loop()
        if self.key_locks is None:
            kept = await self.store.replay_at_start()
            for row in kept:
                self._submit(_Work(row.id, row.pid, row.raw, loop.create_future()))
            if kept:
                log.info("processing %d events received before the restart", len(kept))
        elif not leading:
            self._idle = {name: c for name, c in self.channels.items()
                          if not getattr(c, "receives_anywhere", False)}
        for name, channel in self.channels.items():
            if name not in self._idle:
                await channel.start(self.accept, self._on_ready)
        if self.key_locks is None:
            await self.store.processing_began()
        else:
            self._spawn(self._sweep_inbox())
            if leading:
                await self.key_locks.hear(self._heard)
        self._ready.set()
        await self.deliver_pending(force=True)

    async def lead(self) -> list[str]:
        """Serving together, this worker became the leader: the channels only one worker
        runs (Signal's socket, Telegram's polling) start here, and what waited for them
        goes out. Returns their names."""
        idle, self._idle = self._idle, {}
        if self.key_locks is not None:
            await self.key_locks.hear(self._heard)
        for channel in idle.values():
            await channel.start(self.accept, self._on_ready)
        await self.deliver_pending(force=True)
        return sorted(idle)

    async def _tell_leader(self, key: str) -> None:
        assert self.key_locks is not None
        try:
            await self.key_locks.tell(f"{DELIVER_NOTICE}{key}")
        except Exception as exc:
            log.warning("could not tell the leader of a queued reply (%s)", type(exc).__name__)

    def _heard(self, notice: str) -> None:
        """The leader: another worker queued something for a channel only it runs."""
        if notice.startswith(DELIVER_NOTICE):
            self._spawn(self.deliver_now(notice.removeprefix(DELIVER_NOTICE)))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_ready(self) -> None:
        try:
            await self.deliver_pending(force=True)
        except Exception as exc:
            log.warning("delivering kept replies failed (%s)", type(exc).__name__)

    async def stop(self) -> None:
        # Queued operations not yet due stay written down: carried out after the restart.
        for handle in self._wakeups.values():
            handle.cancel()
        self._wakeups.clear()
        for name, channel in self.channels.items():
            if name in self._idle:
                continue
            try:
                await channel.stop()
            except Exception as exc:
                log.warning("channel %s did not stop cleanly (%s)", channel.name,
                            type(exc).__name__)
        # Turns under way finish (their events are crossed off); the rest stay in the inbox.
        if self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._serial.join()), 5.0)
        await self._serial.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
