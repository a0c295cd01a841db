"""The pure flow engine: ``step(state, inbound) -> (state, messages, effects)``.

No I/O, no clock, no platform: the app supplies the time in the inbound event and carries
out the effects. Global commands (quick exit first) are checked before any step, in every
state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from helpline import payloads
from helpline.events import (
    SHARED_LOCATION,
    CancelSchedules,
    Choice,
    DeleteChat,
    Effect,
    EraseData,
    Handoff,
    Inbound,
    Message,
    OverlayPick,
)
from helpline.flow import commands
from helpline.flow import steps as kinds
from helpline.flow.conditions import holds
from helpline.flow.loader import FlowSet
from helpline.flow.model import (
    AnyStep,
    AskStep,
    CallStep,
    ChooseStep,
    Condition,
    HandoffStep,
    LookupStep,
    Target,
)
from helpline.flow.paragraphs import Paragraph
from helpline.flow.paragraphs import render as render_notice
from helpline.flow.steps.handoff import handoff_of
from helpline.flow.words import normalize
from helpline.i18n import (
    N_,
    Nn_,
    NullTranslator,
    Translator,
    count_text,
    display_word,
    format_when,
    word_forms,
)
from helpline.payloads import Kind, decode, encode
from helpline.state import Frame, Overlay, State, Value

# Where the app keeps a booked check-in's due time (flows cannot write "_" variables), and
# the variables flows may show from it, formatted when shown (in the language of the moment).
CHECKIN_DUE = "_checkin_due"
CHECKIN_VARS = ("checkin_in", "checkin_date")

MAX_AUTO_STEPS = 100  # steps run for one inbound before the engine assumes a loop




@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in its own language, e.g. "Español"


@dataclass(frozen=True)
class EngineConfig:
    first_flow: str = "welcome"
    home_flow: str = "main"
    quick_exit_reply: str = ""
    # The words of each global command (``commands.COMMANDS``) and of the erase
    # confirmation's "yes", as configured.
    command_words: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {
        **{c.name: c.words for c in commands.COMMANDS}, "yes": commands.YES_WORDS})
    languages: tuple[Language, ...] = (Language("en", "English"),)
    default_locale: str = "en"
    resume_after_hours: float = 12.0
    # Extra words per command in other languages, already normalized (filled by i18n).
    extra_words: dict[str, frozenset[str]] = field(default_factory=dict)
    # What counts as available (model.FACTS) when an inbound does not say: a staffed
    # organisation with a directory, and no check-in booked. The app always says.
    default_facts: frozenset[str] = frozenset({"advocates", "desk", "directory"})
    timezone: str = "UTC"  # the organisation's, for dates shown to people
    # The privacy notice's paragraphs, made from the settings (helpline.privacy_notice),
    # shown for the "privacy" command.
    privacy_notice: tuple[Paragraph, ...] = ()

    def words(self, command: str) -> frozenset[str]:
        base = self.command_words.get(command, ())
        return frozenset(normalize(w) for w in base) | self.extra_words.get(command, frozenset())


@dataclass(slots=True)
class Result:
    state: State
    messages: list[Message] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    # For each effect, how many messages came before it: what an effect says (search
    # results, a case handle) belongs at that point of the conversation, not at its end.
    effect_at: list[int] = field(default_factory=list)
    # The flows whose first step ran this turn, in order (statistics count them).
    reached: list[str] = field(default_factory=list)
    # A location the person shared at an area question this turn: only the lookup of the
    # same turn gets it (Lookup.near); it is never put in the state.
    near: tuple[float, float] | None = field(default=None, repr=False)
    # What the app has this turn for ``available:`` conditions (see model.FACTS); a
    # booked or cancelled check-in updates it for what is shown later in the same turn.
    facts: frozenset[str] | None = None

    def add_effect(self, effect: Effect) -> None:
        self.effects.append(effect)
        self.effect_at.append(len(self.messages))

    def place(self, effect_messages: list[list[Message]]) -> list[Message]:
        """The engine's messages with each effect's messages put where the effect happened."""
        out: list[Message] = []
        cursor = 0
        positions = self.effect_at + [len(self.messages)] * (len(self.effects) -
                                                               len(self.effect_at))
        for position, extra in zip(positions, effect_messages, strict=True):
            out.extend(self.messages[cursor:position])
            cursor = max(cursor, position)
            out.extend(extra)
        out.extend(self.messages[cursor:])
        return out


# Built-in texts. Marked for extraction; translated at render time for the person.
T_STALE = N_("That button is from an earlier message. Here is where we are now:")
T_NOT_UNDERSTOOD = N_("Sorry, I didn't catch that. You can tap an option or type its number.")
T_ASK_AGAIN = N_("That doesn't quite fit. Could you try again?")
T_ASK_NUMBER = N_("Please answer with a number.")
T_TOO_LONG = Nn_(
    "That is a little long for me to keep: I can keep up to {n} character here. Could you "
    "make it shorter?",
    "That is a little long for me to keep: I can keep up to {n} characters here. Could you "
    "make it shorter?",
)
ASK_KEPT = 500  # characters an ask keeps when its step says nothing else
T_WAY_OUT = N_("You can type menu to go back, or help.")
T_WELCOME_BACK = N_("Welcome back. Here is where we left off:")
T_WELCOME_BACK_SHORT = N_("Welcome back.")
T_HELP = N_(
    "You can type {menu} at any time to see the options, or {exit} to leave and clear this "
    "chat. To erase what is stored about you here, type {erase}."
)
T_ERASE_CONFIRM = N_(
    "This erases everything stored about you here and clears this chat. It cannot be undone. "
    "Erase now?"
)
T_ERASE_YES = N_("Yes, erase")
T_ERASE_NO = N_("No, keep it")
T_ERASE_KEPT = N_("Nothing was erased.")
T_LANGUAGE = N_("Which language would you like?")
T_LANGUAGE_SET = N_("OK.")
T_TEXT_ONLY = N_("I can only read text messages here.")
T_LOOP = N_("Something went wrong on our side. Here is the menu again.")


class Engine:
    """Runs flows. Holds only immutable configuration; every call is independent."""

    def __init__(
        self,
        flows: FlowSet,
        config: EngineConfig | None = None,
        translator: Translator | None = None,
    ) -> None:
        self.flows = flows
        self.config = config or EngineConfig()
        self.tr = translator or NullTranslator()
        self._words = {
            name: self.config.words(name)
            for name in commands.TRANSLATED
        }
        # Skip words and option keywords, with their translations into every enabled
        # language (msgctxt "command"), normalized: "saltar" skips wherever "skip" does.
        codes = [lang.code for lang in self.config.languages]
        self._typed = {word: frozenset(normalize(f) for f in word_forms(self.tr, codes, word))
                       for word in _typed_words(flows)}
        # Variables that a lookup step uses as its area: an ask step saving one of them
        # takes a shared location as its answer.
        self._area_vars = frozenset(step.lookup.area for flow in flows
                                    for step in flow.steps.values()
                                    if isinstance(step, LookupStep) and step.lookup.area)
        # Translated option labels per (locale, step): a menu is rendered on most steps.
        self._labels: dict[tuple[str, int], tuple[ChooseStep, tuple[str, ...]]] = {}
        self._frames: dict[tuple[str, str], Frame] = {}
        self._steps = frozenset(Frame(flow.id, step) for flow in flows for step in flow.steps)
        # Menus with options shown only when their ``if:`` holds: each option's conditions.
        self._gated: dict[int, tuple[tuple[int, tuple[Condition, ...]], ...]] = {
            id(step): tuple((i, tuple(o.conditions)) for i, o in enumerate(step.options))
            for flow in flows for step in flow.steps.values()
            if isinstance(step, ChooseStep) and step.conditional}

    def _frame(self, flow: str, step: str) -> Frame:
        """The (immutable, so shareable) frame for a step: one per step, not one per move."""
        frame = self._frames.get((flow, step))
        if frame is None:
            frame = self._frames[(flow, step)] = Frame(flow=flow, step=step)
        return frame

    # ------------------------------------------------------------- entry point

    def step(self, state: State, inbound: Inbound) -> Result:
        """The next state, messages and effects: the first link of ``_CHAIN`` that takes
        the event answers it (quick exit first, in every state); otherwise the step the
        person is at takes it as its answer."""
        event = self._begin(state, inbound)
        for link in _CHAIN:
            answered = link(self, event)
            if answered is not None:
                return answered
        return self._answer(event)

    def _begin(self, state: State, inbound: Inbound) -> _Event:
        state = state.clone()
        gap = inbound.at - state.last_seen if state.last_seen else 0.0
        state.last_seen = inbound.at
        if inbound.locale_hint and state.locale is None:
            state.locale = self._known_locale(inbound.locale_hint)
        if state.turn == 0:
            # Buttons carry the turn: starting from the clock means a button left over from
            # an earlier, erased conversation never matches a question of this one.
            state.turn = max(1, int(inbound.at))
        said = normalize(inbound.text) if inbound.kind == "text" else ""
        payload = inbound.payload if inbound.kind == "button" else ""
        result = Result(state, facts=self.config.default_facts if inbound.facts is None
                        else inbound.facts)
        return _Event(inbound, result, said, payload, gap, self._global_command(said, payload))

    # The links of the chain, in order: each answers the event (a Result) or passes (None).

    def _on_quick_exit(self, event: _Event) -> Result | None:
        return self._quick_exit(event.state) if event.command == "quick_exit" else None

    def _on_edited_flows(self, event: _Event) -> Result | None:
        """Saved before the flows were edited (a step renamed or removed): go home."""
        state = event.state
        if self._stack_is_valid(state):
            return None
        event.result.messages.append(Message(self._t(state, T_LOOP)))
        state.pending = None
        return self._start_flow(event.result, self.config.home_flow)

    def _on_timer(self, event: _Event) -> Result | None:
        """A check-in that is due starts its flow."""
        if event.inbound.kind != "timer":
            return None
        event.state.pending = None
        if event.inbound.payload in self.flows:
            return self._start_flow(event.result, event.inbound.payload)
        return event.result

    def _on_pending(self, event: _Event) -> Result | None:
        """The answer to a confirmation the engine asked for (erase, language)."""
        state, result = event.state, event.result
        if event.inbound.channel:
            state.vars["channel"] = event.inbound.channel
        if state.pending == "erase":
            return self._erase_answer(result, event.said, event.payload)
        if state.pending == "language" and self._language_answer(result, event.said,
                                                                 event.payload):
            return result
        if state.pending == "language" and state.idle and state.locale is None:
            state.locale = self.config.default_locale  # first question unanswered: go on
        state.pending = None
        return None

    def _on_command(self, event: _Event) -> Result | None:
        """Erase, language, menu, help: anywhere, in the person's words or by button."""
        state, result, command = event.state, event.result, event.command
        if command == "erase":
            state.pending = "erase"
            result.messages.append(Message(
                self._t(state, T_ERASE_CONFIRM),
                (Choice(self._t(state, T_ERASE_YES), encode(Kind.GLOBAL, "erase", "yes")),
                 Choice(self._t(state, T_ERASE_NO), encode(Kind.GLOBAL, "erase", "no"))),
            ))
            return result
        if command == "language":
            return self._ask_language(result, everyone=False)
        if command == "menu":
            return self._start_flow(result, self._menu_flow(state))
        if command == "privacy":
            result.messages.append(Message(self.privacy_text(state)))
            if state.idle:
                return self._start_flow(result, self._menu_flow(state))
            self._rerender(result)
            return result
        if command == "help":
            result.messages.append(Message(self._help_text(state)))
            if state.idle:  # "help" is a likely first message: go on to the welcome
                return self._start_flow(result, self._menu_flow(state))
            self._rerender(result)
            return result
        return None

    def _on_location(self, event: _Event) -> Result | None:
        location = event.inbound.location
        if location is not None and self._answer_location(event.result, location):
            return event.result
        return None

    def _on_unsupported(self, event: _Event) -> Result | None:
        """A photo, a sticker, a voice note: only text is read."""
        if event.inbound.kind != "unsupported":
            return None
        state, result = event.state, event.result
        result.messages.append(Message(self._t(state, T_TEXT_ONLY)))
        if state.idle:
            return self._start_flow(result, self._menu_flow(state))
        self._rerender(result, quiet=True)
        return result

    def _on_start(self, event: _Event) -> Result | None:
        """A start (a deep link, /start), or anything from someone with no flow running."""
        state, result, inbound = event.state, event.result, event.inbound
        if inbound.kind == "start" and inbound.payload in self.flows:
            return self._start_flow(result, inbound.payload)
        if state.idle:
            first = not state.seen_welcome
            if not first and event.gap > self.config.resume_after_hours * 3600:
                result.messages.append(Message(self._t(state, T_WELCOME_BACK_SHORT)))
            return self._start_flow(result, self._menu_flow(state))
        if inbound.kind == "start":
            self._rerender(result)
            return result
        return None

    def _on_return_after_a_while(self, event: _Event) -> Result | None:
        """Back after ``resume_after_hours``: where we left off is shown again first (a
        press of the question on screen still counts)."""
        state = event.state
        fresh_press = payloads.is_(event.payload, Kind.CHOICE, state.turn)
        if event.gap <= self.config.resume_after_hours * 3600 or fresh_press:
            return None
        event.result.messages.append(Message(self._t(state, T_WELCOME_BACK)))
        self._rerender(event.result)
        return event.result

    def _answer(self, event: _Event) -> Result:
        """The step the person is at takes the event as its answer (its kind says how)."""
        current = self._current(event.state)
        if current is None:
            return self.advance(event.result)
        kinds.kind_of(current).answer(self, event.result, current, event.inbound, event.said,
                                      event.payload)
        return event.result

    def _menu_flow(self, state: State) -> str:
        """Where "menu" (and a first message) goes: home, or the welcome when it was never
        seen through."""
        return self.config.home_flow if state.seen_welcome else self.config.first_flow

    def advance(self, result: Result) -> Result:
        """Move on from a lookup or handoff step the app showed nothing for (no menu of its
        own in front of it); used by the app."""
        state = result.state
        top = self._current(state)
        if top is not None and kinds.kind_of(top).settled_by_app:
            state.overlay = None
            self.follow(result, cast(Target, top))
        self._run(result)
        return result

    def waits_for_app(self, state: State) -> bool:
        """Whether the person is at a lookup or handoff step the app has not settled yet:
        it shows a menu of its own there (``show_overlay``) or calls ``advance``."""
        step = self._current(state)
        return (state.overlay is None and step is not None
                and kinds.kind_of(step).settled_by_app)

    def show_overlay(self, state: State, owner: str, text: str,
                     choices: Sequence[tuple[str, str]],
                     words: Sequence[Iterable[str]] = ()) -> Message:
        """Put a menu of the app's own in front of the waiting lookup or handoff step, in
        place of the flow's next question (pure). ``words``: for each choice, other words
        that pick it when typed."""
        state.turn += 1
        state.overlay = Overlay(owner=owner, text=text, choices=tuple(choices),
                                words=tuple(frozenset(normalize(w) for w in group)
                                            for group in words))
        return self._render_overlay(state, state.overlay)

    def handoff_at(self, state: State) -> Handoff | None:
        """The Handoff the step the person is at asks for (None: not at a handoff step)."""
        step = self._current(state)
        return handoff_of(step, state.vars) if isinstance(step, HandoffStep) else None

    def _render_overlay(self, state: State, overlay: Overlay, question: bool = True) -> Message:
        return Message(overlay.text if question else "", tuple(
            Choice(label, encode(Kind.OVERLAY, state.turn, i))
            for i, (label, _) in enumerate(overlay.choices)))

    def answer_overlay(self, result: Result, overlay: Overlay, said: str,
                        payload: str) -> None:
        state = result.state
        index: int | None = None
        if payload:
            pressed = _pressed(payload, Kind.OVERLAY, state.turn)
            if pressed is not None and pressed < len(overlay.choices):
                index = pressed
            else:
                result.messages.append(Message(self._t(state, T_STALE)))
                self._rerender(result)
                return
        elif (number := _option_number(said, len(overlay.choices))) is not None:
            index = number
        elif said:
            index = next((i for i, (label, _) in enumerate(overlay.choices)
                          if normalize(label) == said), None)
            if index is None:
                index = next((i for i, words in enumerate(overlay.words) if said in words),
                             None)
        if index is None:
            result.messages.append(Message(self._t(state, T_NOT_UNDERSTOOD)))
            self._rerender(result, quiet=True)
            return
        value = overlay.choices[index][1]
        if value == "next":
            self.advance(result)
        elif value == "restart":
            state.overlay = None
            top = state.stack[-1]
            state.stack[-1] = Frame(flow=top.flow, step=self.flows[top.flow].start)
            self._run(result)
        elif value.startswith("flow:") and value[5:] in self.flows:
            state.overlay = None
            state.stack[-1] = Frame(flow=value[5:], step=self.flows[value[5:]].start)
            self._run(result)
        else:  # the owner answers with a new overlay, or the app moves on
            state.overlay = None
            result.add_effect(OverlayPick(overlay.owner, value))

    # ------------------------------------------------------------- globals

    def command(self, inbound: Inbound) -> str | None:
        """The global command (quick_exit, menu, help, language, erase) this inbound is."""
        said = normalize(inbound.text) if inbound.kind == "text" else ""
        payload = inbound.payload if inbound.kind == "button" else ""
        return self._global_command(said, payload)

    def _global_command(self, said: str, payload: str) -> str | None:
        pressed = decode(payload) if payload else None
        if (pressed is not None and pressed.kind is Kind.GLOBAL and len(pressed.fields) == 1
                and pressed.fields[0] in commands.BY_BUTTON):
            return commands.BY_BUTTON[pressed.fields[0]]
        for name in commands.NAMES:  # quick exit first
            if said and said in self._words[name]:
                return name
        return None

    def _stack_is_valid(self, state: State) -> bool:
        return all(frame in self._steps for frame in state.stack)

    def _quick_exit(self, state: State) -> Result:
        fresh = State(turn=state.turn)
        messages = []
        if self.config.quick_exit_reply:  # a msgid like every text: in their language
            messages.append(Message(self._t(state, self.config.quick_exit_reply),
                                    ephemeral=True))
        return Result(fresh, messages, [DeleteChat(), CancelSchedules()])

    def _erase_answer(self, result: Result, said: str, payload: str) -> Result:
        state = result.state
        state.pending = None
        yes_label = normalize(self._t(state, T_ERASE_YES))
        # "1" is "Yes, erase" where choices are a numbered list (Signal, the terminal).
        said_yes = bool(said) and (said in self._words["yes"] or said in ("1", yes_label))
        if payloads.is_(payload, Kind.GLOBAL, "erase", "yes") or said_yes:
            erased = self._quick_exit(state)
            erased.effects.insert(0, EraseData())
            return erased
        result.messages.append(Message(self._t(state, T_ERASE_KEPT)))
        self._rerender(result)
        return result

    def _language_answer(self, result: Result, said: str, payload: str) -> bool:
        state = result.state
        chosen: str | None = None
        pressed = decode(payload) if payload else None
        if pressed is not None and pressed.kind is Kind.GLOBAL and pressed.fields[:1] == (
                "lang",) and len(pressed.fields) == 2:
            chosen = self._known_locale(pressed.fields[1])
        elif said:
            for index, lang in enumerate(self.config.languages, start=1):
                if said in (normalize(lang.name), normalize(lang.code), str(index)):
                    chosen = lang.code
        if chosen is None:
            return False
        state.pending = None
        state.locale = chosen
        if state.seen_welcome or not state.idle:
            result.messages.append(Message(self._t(state, T_LANGUAGE_SET)))
        if state.idle:
            self._start_flow(result, self.config.first_flow if not state.seen_welcome
                             else self.config.home_flow)
        elif state.overlay is not None and _settled_by_app(self._current(state)):
            # The app's own menu (search results, a card, "leave a message?"): only its
            # owner can show it again in the new language.
            result.add_effect(OverlayPick(state.overlay.owner, "refresh"))
        else:
            self._rerender(result)
        return True

    def _ask_language(self, result: Result, everyone: bool) -> Result:
        """The language menu, each language named in itself. ``everyone``: the first
        screen of someone whose language is unknown, so the question is asked in every
        enabled language, one line each."""
        state = result.state
        state.pending = "language"
        question = self._t(state, T_LANGUAGE)
        if everyone:
            lines: list[str] = []
            for lang in self.config.languages:
                line = self.tr.gettext(lang.code, T_LANGUAGE)
                if line not in lines:
                    lines.append(line)
            question = "\n".join(lines)
        result.messages.append(Message(question, tuple(
            Choice(lang.name, encode(Kind.GLOBAL, "lang", lang.code))
            for lang in self.config.languages)))
        return result

    def _known_locale(self, hint: str) -> str | None:
        codes = {lang.code for lang in self.config.languages}
        hint = hint.replace("_", "-").lower()
        for candidate in (hint, hint.split("-")[0]):
            if candidate in codes:
                return candidate
        return None

    def _help_text(self, state: State) -> str:
        def first(words: tuple[str, ...]) -> str:  # the word for it in the person's language
            return display_word(self.tr, state.locale or self.config.default_locale,
                                words[0]) if words else ""

        words = self.config.command_words
        return self._t(state, T_HELP).replace("{menu}", first(words["menu"])).replace(
            "{exit}", first(words["quick_exit"])).replace("{erase}", first(words["erase"]))

    def privacy_text(self, state: State) -> str:
        """The privacy notice in the person's language (the privacy command)."""
        locale = state.locale or self.config.default_locale
        words = self.config.command_words

        def first(name: str) -> str:  # the word for it in the person's language
            return display_word(self.tr, locale, words[name][0]) if words[name] else ""

        said = {"exit": first("quick_exit"), "erase": first("erase")}
        return render_notice(self.tr, locale, self.config.privacy_notice, said)

    # ------------------------------------------------------------- answers

    def answer_choice(self, result: Result, step: ChooseStep, said: str, payload: str) -> None:
        state = result.state
        index: int | None = None
        if payload:
            index = _pressed(payload, Kind.CHOICE, state.turn)
            if index is not None and index not in self._visible(state, step, result.facts):
                index = None
            if index is None:
                result.messages.append(Message(self._t(state, T_STALE)))
                self._rerender(result)
                return
        elif said:
            index = self._match_option(state, step, said, result.facts)
        if index is None:
            state.retries += 1
            text = self._t(state, step.retry) if step.retry else self._t(state, T_NOT_UNDERSTOOD)
            if state.retries >= 2:
                text = f"{text} {self._t(state, T_WAY_OUT)}"
            result.messages.append(Message(text))
            self._rerender(result, quiet=True)
            return
        option = step.options[index]
        state.retries = 0
        if step.save:
            state.vars[step.save] = option.value if option.value is not None else option.label
        self.follow(result, option)
        self._run(result)

    def _visible(self, state: State, step: ChooseStep, facts: frozenset[str] | None
                 ) -> Sequence[int]:
        """The options shown now: those without ``if:``, or whose condition holds."""
        gated = self._gated.get(id(step))
        if gated is None:  # most menus: every option, always
            return range(len(step.options))
        return [i for i, conditions in gated
                if not conditions or all(holds(c, state.vars, facts) for c in conditions)]

    def _match_option(self, state: State, step: ChooseStep, said: str,
                      facts: frozenset[str] | None = None) -> int | None:
        visible = self._visible(state, step, facts)
        if (number := _option_number(said, len(visible))) is not None:
            return visible[number]
        for i in visible:
            option = step.options[i]
            names = {normalize(option.label), normalize(self._t(state, option.label))}
            names.update(form for k in option.keywords for form in self._forms(k))
            if said in names:
                return i
        return None

    def answer_ask(self, result: Result, step: AskStep, inbound: Inbound, payload: str) -> None:
        state = result.state
        if payload or inbound.kind != "text" or not inbound.text.strip():
            result.messages.append(Message(self._t(state, T_STALE) if payload else
                                           self._t(state, step.retry or T_ASK_AGAIN)))
            self._rerender(result, quiet=True)
            return
        answer = inbound.text.strip()
        if normalize(answer) in {form for w in step.skip for form in self._forms(w)}:
            state.vars.pop(step.save, None)
            state.retries = 0
            self.follow(result, step)
            self._run(result)
            return
        kept = step.validate_.max_length if step.validate_ is not None else ASK_KEPT
        if len(answer) > kept:  # never cut what someone wrote without saying so
            state.retries += 1
            text = count_text(self.tr, state.locale or self.config.default_locale,
                              T_TOO_LONG, kept)
            if state.retries >= 2:
                text = f"{text} {self._t(state, T_WAY_OUT)}"
            result.messages.append(Message(text))
            return
        value, problem = _validate(step, answer)
        if problem is not None:
            state.retries += 1
            text = self._t(state, step.retry) if step.retry else self._t(state, problem)
            if state.retries >= 2:
                text = f"{text} {self._t(state, T_WAY_OUT)}"
            result.messages.append(Message(text))
            return
        state.retries = 0
        state.vars[step.save] = value
        self.follow(result, step)
        self._run(result)

    def _answer_location(self, result: Result, point: tuple[float, float]) -> bool:
        """A location shared at an area question answers it: the variable says only that a
        location was shared; the point goes to the lookup of this turn, if there is one."""
        state = result.state
        step = None if state.idle else self._current(state)
        if not isinstance(step, AskStep) or step.save not in self._area_vars:
            return False
        state.retries = 0
        state.vars[step.save] = SHARED_LOCATION
        result.near = point
        self.follow(result, step)
        self._run(result)
        result.near = None  # used once (or not at all): forgotten
        return True

    # ------------------------------------------------------------- running

    def picks_option(self, state: State, text: str, facts: frozenset[str] | None = None
                     ) -> bool:
        """Whether typed ``text`` picks an option of the question the person is at."""
        step = self._current(state)
        said = normalize(text)
        return isinstance(step, ChooseStep) and bool(said) and (
            self._match_option(state, step, said, facts) is not None)

    def current_step(self, state: State) -> AnyStep | None:
        return self._current(state)

    def _current(self, state: State) -> AnyStep | None:
        top = state.top
        return None if top is None else self.flows[top.flow].steps[top.step]

    def _forms(self, word: str) -> frozenset[str]:
        return self._typed.get(word) or frozenset({normalize(word)})

    def _start_flow(self, result: Result, flow_id: str) -> Result:
        state = result.state
        if (flow_id == self.config.first_flow and state.locale is None
                and len(self.config.languages) > 1):
            state.stack = []  # language unknown: ask first; the answer starts this flow
            return self._ask_language(result, everyone=True)
        state.stack = [Frame(flow=flow_id, step=self.flows[flow_id].start)]
        state.retries = 0
        state.pending = None
        state.overlay = None
        self._run(result)
        return result

    def follow(self, result: Result, target: Target) -> bool:
        """Move the top frame along ``target``. Returns False when the flow just ended."""
        state = result.state
        if state.overlay is not None:
            state.overlay = None
        frame = state.stack[-1]
        if target.flow is not None:
            if frame.flow == self.config.first_flow:
                state.seen_welcome = True  # the welcome was seen through, not cut short
            state.stack[-1] = Frame(flow=target.flow, step=self.flows[target.flow].start)
            return True
        if target.next is not None:
            state.stack[-1] = self._frame(frame.flow, target.next)  # frames are immutable
            return True
        return self.leave_flow(result)

    def leave_flow(self, result: Result) -> bool:
        """The top flow ended: pop it and continue after the caller's call step."""
        state = result.state
        state.stack.pop()
        if not state.stack:
            return False
        caller = self.flows[state.stack[-1].flow].steps[state.stack[-1].step]
        if isinstance(caller, CallStep):
            return self.follow(result, caller)
        return True

    def _run(self, result: Result) -> None:
        """Run steps from the top frame until one waits for an answer or the stack empties;
        each step's kind says what it does (``helpline.flow.steps``)."""
        state = result.state
        steps_of = self.flows.flows
        kind_of = kinds.kind_of
        for _ in range(MAX_AUTO_STEPS):
            if not state.stack:
                return
            frame = state.stack[-1]
            flow = steps_of[frame.flow]
            if frame.step == flow.start:
                result.reached.append(flow.id)
            step = flow.steps[frame.step]
            then = kind_of(step).run(self, result, step)
            if then is kinds.Then.WAIT:
                return
            if then is kinds.Then.FOLLOW:
                self.follow(result, cast(Target, step))  # a kind that follows is a Target
        self.recover(result)

    def recover(self, result: Result) -> None:
        """A flow looped without waiting or nested too deep: go home rather than spin."""
        state = result.state
        result.messages.append(Message(self._t(state, T_LOOP)))
        home = self.flows[self.config.home_flow]
        state.stack = [Frame(flow=home.id, step=home.start)]
        step = home.steps[home.start]
        if isinstance(step, ChooseStep):
            state.turn += 1
            result.messages.append(self.render_choose(state, step, facts=result.facts))
        else:
            state.stack = []

    def _rerender(self, result: Result, quiet: bool = False) -> None:
        """Show the current question again (its options, or the question itself)."""
        state = result.state
        if state.idle:
            return
        step = self._current(state)
        if isinstance(step, ChooseStep):
            shown = self.render_choose(state, step, question=not quiet, facts=result.facts)
            last = result.messages[-1] if result.messages else None
            if quiet and last is not None and not last.choices:
                # "Sorry, I didn't catch that." and the options again, in one message.
                result.messages[-1] = Message(last.text, shown.choices)
            else:
                result.messages.append(shown)
        elif isinstance(step, AskStep) and not quiet:
            result.messages.append(Message(self.fmt(state, step.ask)))
        elif _settled_by_app(step) and state.overlay is not None:
            shown = self._render_overlay(state, state.overlay, not quiet)
            last = result.messages[-1] if result.messages else None
            if quiet and last is not None and not last.choices:
                result.messages[-1] = Message(last.text, shown.choices)
            else:
                result.messages.append(shown)

    # ------------------------------------------------------------- rendering

    def render_choose(self, state: State, step: ChooseStep, question: bool = True,
                       facts: frozenset[str] | None = None) -> Message:
        locale = state.locale or self.config.default_locale
        cached = self._labels.get((locale, id(step)))
        if cached is None or cached[0] is not step:
            cached = (step, tuple(self.tr.gettext(locale, o.label) for o in step.options))
            self._labels[(locale, id(step))] = cached
        prefix = encode(Kind.CHOICE, state.turn, 0)[:-1]  # "c:<turn>:", then the index
        labels = cached[1]
        if id(step) in self._gated:
            choices = tuple(Choice(labels[i], prefix + _INDEXES[i])
                            for i in self._visible(state, step, facts))
        else:
            choices = tuple(map(Choice, labels, [prefix + i for i in _INDEXES[:len(labels)]]))
        return Message(self.fmt(state, step.choose) if question else "", choices)

    def _t(self, state: State, message: str) -> str:
        return self.tr.gettext(state.locale or self.config.default_locale, message)

    def fmt(self, state: State, message: str) -> str:
        text = self._t(state, message)
        if "{" not in text:  # most texts show no variable
            return text
        return _PLACEHOLDER.sub(lambda m: self._show_var(state, m.group(1)), text)

    def _show_var(self, state: State, name: str) -> str:
        if name in CHECKIN_VARS:  # when the booked check-in comes, in their language now
            due = state.vars.get(CHECKIN_DUE)
            if not isinstance(due, (int, float)) or isinstance(due, bool):
                return ""
            when, date = format_when(state.locale or self.config.default_locale,
                                     state.last_seen, max(0.0, due - state.last_seen) / 3600,
                                     self.config.timezone)
            return when if name == "checkin_in" else date
        return _show(state.vars.get(name))


_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
# Steps that wait for the app, which shows a menu of its own there or moves past them.


def _pressed(payload: str, kind: Kind, turn: int) -> int | None:
    """The option index a press of ``kind`` at this ``turn`` carries (None: another)."""
    found = decode(payload)
    if found is None or found.kind is not kind or len(found.fields) != 2:
        return None
    pressed_turn, index = found.number(0), found.number(1)
    return index if pressed_turn == turn and index is not None and index < 1000 else None
_NUMBER = re.compile(r"[0-9]{1,3}")
_INDEXES = tuple(str(i) for i in range(64))  # option indexes as payload text (12 at most)


@dataclass(slots=True)
class _Event:
    """What the engine works out once about an inbound event."""

    inbound: Inbound
    result: Result
    said: str  # the text, normalized ("" for a press)
    payload: str  # a button's payload ("" for text)
    gap: float  # seconds since the person was last seen
    command: str | None  # the global command it is, if any

    @property
    def state(self) -> State:
        return self.result.state


# Engine.step's chain: each link answers the event or passes it on, in this order.
_CHAIN: tuple[Callable[[Engine, _Event], Result | None], ...] = (
    Engine._on_quick_exit, Engine._on_edited_flows, Engine._on_timer, Engine._on_pending,
    Engine._on_command, Engine._on_location, Engine._on_unsupported, Engine._on_start,
    Engine._on_return_after_a_while)


def _settled_by_app(step: object) -> bool:
    return step is not None and kinds.kind_of(step).settled_by_app


def _option_number(said: str, count: int) -> int | None:
    """The 0-based option for a typed number like "2" (ASCII digits only), if in range."""
    if _NUMBER.fullmatch(said) and 1 <= int(said) <= count:
        return int(said) - 1
    return None


def _show(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _validate(step: AskStep, answer: str) -> tuple[Value, str | None]:
    rules = step.validate_
    if rules is None:
        return answer[:ASK_KEPT], None
    answer = answer[: rules.max_length]
    # Compiled at load by RE2: linear in the answer, never a stall for everyone else.
    if rules.compiled is not None and rules.compiled.fullmatch(answer) is None:
        return None, T_ASK_AGAIN
    if rules.one_of is not None:
        wanted = {normalize(o): o for o in rules.one_of}
        if normalize(answer) not in wanted:
            return None, T_ASK_AGAIN
        return wanted[normalize(answer)], None
    if rules.min is not None or rules.max is not None:
        try:
            number = float(answer.replace(",", "."))
        except ValueError:
            return None, T_ASK_NUMBER
        if number != number or number in (float("inf"), float("-inf")):
            return None, T_ASK_NUMBER
        if (rules.min is not None and number < rules.min) or (
            rules.max is not None and number > rules.max
        ):
            return None, T_ASK_AGAIN
        return (int(number) if number.is_integer() else number), None
    return answer, None


def _typed_words(flows: FlowSet) -> set[str]:
    """Every skip word and option keyword in the flows."""
    words: set[str] = set()
    for flow in flows:
        for step in flow.steps.values():
            if isinstance(step, AskStep):
                words.update(step.skip)
            elif isinstance(step, ChooseStep):
                words.update(k for option in step.options for k in option.keywords)
    return words


__all__: Sequence[str] = ["Engine", "EngineConfig", "Language", "Result", "normalize"]
