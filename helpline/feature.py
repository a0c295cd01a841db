"""How a feature plugs into the app: one interface, the only one features reach the app by
(an import-linter contract keeps ``helpline.handoff`` and ``helpline.resources`` from
importing ``helpline.app``).

A feature (the advocate desk, the service directory; later the console, outreach,
statistics) is a ``Feature``: a name, the ``Part`` that keeps its tables (its numbered
migrations and what erase, quick exit and the purge clear of it), the repository it builds
from the store, and ``plug``. When the app adds it (``App(features=[...])`` or
``App.add``), it calls ``plug(services, plugs)`` once:

* ``services`` is all the feature may use: the settings, the translator, the clock, the
  per-person lock, ``tell`` (say something to a person outside their turn), the operations
  queue (``queue``/``deliver``/``drop_queue``), the few things of the flows a feature acts
  on (``flows``: a menu of its own in front of a waiting step, the handoff a step asks for,
  whether typed text picks an option, a command's words), each channel's capabilities, its
  own repository, and its own values in a person's state (``private``). Never the App.
* on ``plugs`` it declares what it does: typed effect handlers (``effect``: one feature an
  effect, unless both say ``chain=True``), the answers to picks of its own menus
  (``picks``: an ``OverlayPick`` goes to the feature its overlay's owner names), hooks
  before the engine (``before_engine``: an ordered chain; each takes the event or passes),
  leave hooks (quick exit, erase), facts for ``available:``, timed jobs and channels.

The app refuses a feature that clashes with one already added (the same name, effect,
fact, job or channel), or whose tables the store was not opened with, before anything of
it is joined in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from helpline.channels.base import Capabilities, Channel
from helpline.config import Settings
from helpline.errors import HelplineError
from helpline.events import (
    CancelSchedules,
    DeleteChat,
    EraseData,
    Handoff,
    Inbound,
    Message,
    OverlayPick,
    Schedule,
    SetDisappearing,
)
from helpline.flow.engine import Engine
from helpline.flow.loader import FlowSet
from helpline.i18n import Translator
from helpline.state import State, Value
from helpline.store import Store
from helpline.store.schema import Part

__all__ = [
    "APP_EFFECTS", "EffectHandler", "FactProvider", "Feature", "FeatureConflict",
    "FlowTools", "Happening", "Hook", "Host", "LeaveHook", "Observer", "Plugs", "Services",
    "Tell", "TimedJob", "Turn",
]

E = TypeVar("E")
R = TypeVar("R")


@dataclass
class Turn:
    """What an effect handler, a hook or a fact may use: who, where, their state and
    language, and when."""

    pid: str
    channel: str
    state: State
    now: float
    # Disappearing-message timers to set in this chat, queued before the turn's replies.
    timers: list[int] = field(default_factory=list)
    facts: frozenset[str] | None = None  # what the app knew this turn (flow.model.FACTS)
    # A hook that passes the event on may set this: the engine then starts this flow (as
    # a deep link does) instead of taking the event as an answer (outreach: a reply to a
    # campaign starts the campaign's flow).
    start: str | None = None


# Carries out one effect of a type ``E`` in a turn: what it says goes out with the turn.
# None: not this handler's to answer; the next in the chain (at last the app's own) is asked.
EffectHandler = Callable[[Turn, E], Awaitable[list[Message] | None]]
# Before the engine: takes a person's inbound (never a timer), with the global command it
# is (if any). Returns the replies to save and send (the engine does not run), or None to
# pass it on to the next hook and then the engine. It may change ``turn.state``.
Hook = Callable[[Turn, Inbound, str | None], Awaitable[list[Message] | None]]
# Told when a person quick-exits (erased=False) or erases their data (erased=True), before
# anything is cleared.
LeaveHook = Callable[[str, float, bool], Awaitable[None]]
# Answers one fact for ``available:`` conditions (flow.model.FACTS) at this turn.
FactProvider = Callable[[Turn], Awaitable[bool]]
# Periodic work the scheduler runs.
TimedJob = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Happening:
    """Something that happened, as statistics count it (helpline.stats.EVENTS): when, on
    which kind of channel, in which language, and a detail code (a kind of help, a flow, a
    time bucket). It names no one: no pseudonym, address or text ever goes in one."""

    event: str
    at: float
    channel: str
    language: str
    detail: str = ""
    campaign: str = ""


# Told of every Happening, in the order they happen (statistics). Never raises for one.
Observer = Callable[[Happening], Awaitable[None]]

# Effects the app carries out itself: no feature handles them.
APP_EFFECTS: frozenset[type] = frozenset(
    {DeleteChat, EraseData, Schedule, CancelSchedules, SetDisappearing})


class FeatureConflict(HelplineError):
    """Two features claim the same thing, or a feature does not fit this app."""


class Tell(Protocol):
    async def __call__(self, pid: str, messages: Sequence[Message], flow: str | None = None
                       ) -> bool:
        """Say something to a person outside a turn of theirs, through the queue, then
        optionally start ``flow``, and deliver. The caller holds the person's lock. False
        when the person can't be reached."""


class FlowTools:
    """What a feature may do with the flows and the engine: put a menu of its own in front
    of the step that waits for it (owned by the feature: its picks come back to it), and a
    few questions about where a person is. The engine stays pure: these change only the
    state they are given."""

    def __init__(self, engine: Engine, flows: FlowSet, owner: str, home_flow: str) -> None:
        self._engine = engine
        self._flows = flows
        self.owner = owner
        self.home_flow = home_flow

    def show_overlay(self, state: State, text: str, choices: Sequence[tuple[str, str]],
                     words: Sequence[Iterable[str]] = ()) -> Message:
        """``Engine.show_overlay`` with this feature as the owner."""
        return self._engine.show_overlay(state, self.owner, text, choices, words)

    def handoff_at(self, state: State) -> Handoff | None:
        return self._engine.handoff_at(state)

    def picks_option(self, state: State, text: str, facts: frozenset[str] | None = None
                     ) -> bool:
        return self._engine.picks_option(state, text, facts)

    def words(self, command: str) -> frozenset[str]:
        """The normalized words of a command (or "yes") in every enabled language."""
        return self._engine.config.words(command)

    def text_of(self, ref: str) -> str | None:
        return self._flows.text_of(ref)

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._flows

    def at_home(self, state: State) -> bool:
        """Idle, or at the first step of the home flow with nothing under it (the top of
        the main menu)."""
        if state.idle:
            return True
        home = self._flows.flows.get(self.home_flow)
        return (home is not None and len(state.stack) == 1
                and state.stack[0].flow == home.id and state.stack[0].step == home.start)


@dataclass(frozen=True)
class Services(Generic[R]):
    """What the app gives one feature (see the module's note). ``settings``: the feature
    reads its own section and the few shared ones (default language, time zone); it is
    configuration, not the app. ``capabilities``: how a person's channel measures text
    (an advocate's reply is split to fit it)."""

    feature: str
    settings: Settings
    tr: Translator
    clock: Callable[[], float]
    lock: Callable[[str], AbstractAsyncContextManager[None]]
    tell: Tell
    # Queue messages under a key (a desk case: "desk:<id>") for a channel and an address,
    # durable and in order, and carry them out now.
    queue: Callable[[str, str, str, Sequence[Message]], Awaitable[None]]
    deliver: Callable[[str], Awaitable[None]]  # carry out what is queued under a key, now
    drop_queue: Callable[[str], Awaitable[None]]  # forget what is queued under a key
    capabilities: Callable[[str], Capabilities | None]
    flows: FlowTools
    repository: R
    # Say that something happened (a lookup, a case claimed), for the observers
    # (statistics): ``happened(event, turn_or_channel_and_language, detail)``.
    happened: Callable[[Happening], Awaitable[None]]

    def happening(self, event: str, at: float, channel: str, locale: str | None,
                  detail: str = "") -> Happening:
        """A Happening in the person's language (or the organisation's default)."""
        return Happening(event, at, channel, locale or self.settings.default_language,
                         detail)

    def gettext(self, locale: str | None, msgid: str) -> str:
        """``msgid`` in ``locale`` (None: the organisation's default language)."""
        return self.tr.gettext(locale or self.settings.default_language, msgid)

    def private(self, state: State) -> dict[str, Value]:
        """This feature's own values in a person's state (changes stay with the state)."""
        return state.features.setdefault(self.feature, {})


class Plugs:
    """What one feature declares when it is plugged in; the app checks it against every
    other feature's and joins it."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        self.effects: list[tuple[type, EffectHandler[Any], bool]] = []
        self.pick: EffectHandler[OverlayPick] | None = None
        self.hooks: list[tuple[int, Hook]] = []
        self.leave_hooks: list[LeaveHook] = []
        self.facts: dict[str, FactProvider] = {}
        self.jobs: dict[str, TimedJob] = {}
        self.channels: list[Channel] = []
        self.observers: list[Observer] = []

    def effect(self, kind: type[E], handler: EffectHandler[E], *, chain: bool = False
               ) -> None:
        """``handler`` carries out every effect of type ``kind``. Only one feature may,
        unless every feature that does says ``chain=True``: they are then asked in the
        order they were added, each answering or passing (None)."""
        if kind is OverlayPick:
            raise FeatureConflict(f"{self.feature}: the picks of a feature's own menus go "
                                  "to Plugs.picks, by the overlay's owner")
        if kind in APP_EFFECTS:
            raise FeatureConflict(f"{self.feature}: {kind.__name__} is carried out by the "
                                  "app itself")
        if any(k is kind for k, _, _ in self.effects):
            raise FeatureConflict(f"{self.feature} handles {kind.__name__} twice")
        self.effects.append((kind, handler, chain))

    def picks(self, handler: EffectHandler[OverlayPick]) -> None:
        """``handler`` answers the picks of the menus this feature shows
        (``FlowTools.show_overlay``)."""
        self.pick = handler

    def before_engine(self, hook: Hook, order: int = 100) -> None:
        """``hook`` sees each of a person's inbounds before the engine, lower ``order``
        first (then in the order features were added)."""
        self.hooks.append((order, hook))

    def on_leave(self, hook: LeaveHook) -> None:
        self.leave_hooks.append(hook)

    def fact(self, name: str, provider: FactProvider) -> None:
        """``provider`` answers ``available: <name>`` at each turn."""
        self.facts[name] = provider

    def every(self, name: str, job: TimedJob) -> None:
        """``job`` runs with the scheduler, every poll."""
        self.jobs[name] = job

    def observe(self, observer: Observer) -> None:
        """``observer`` is told of every Happening (the app's and every feature's)."""
        self.observers.append(observer)

    def channel(self, channel: Channel) -> None:
        """A channel of the operations queue (the desk: what is queued for it is carried
        out, in order, retried, like a person's replies)."""
        self.channels.append(channel)


class Feature(ABC, Generic[R]):
    """A feature of the app (see the module's note). ``part``: its tables, which the store
    must have been opened with (``helpline.parts``). ``legacy_vars``: flow variables older
    releases kept its values in, by the key they now have in ``Services.private``: the
    app moves them there when it reads such a state."""

    name: str
    part: Part | None = None
    legacy_vars: ClassVar[Mapping[str, str]] = MappingProxyType({})

    @abstractmethod
    def repository(self, store: Store) -> R:
        """The feature's own reading and writing of its tables."""

    @abstractmethod
    def plug(self, services: Services[R], plugs: Plugs) -> None:
        """Declare on ``plugs`` what the feature does; keep ``services`` for doing it.
        Nothing else yet: the app may still refuse the feature (see ``added``)."""

    def added(self) -> None:
        """The app has joined the feature in: start what it does on its own (listen to a
        desk, say)."""


class Host(Protocol):
    """What a feature's install helper needs of the app: add the feature (and the settings
    and translator a desk is made with)."""

    settings: Settings
    tr: Translator

    def add(self, feature: Feature[Any]) -> None: ...
