"""End to end on Telegram: simulated people against the loopback Bot API fake, for helpline
and for a bare python-telegram-bot echo bot, one after the other in the same run.

``python -m bench.telegram_e2e [--people N] [--messages M] [--quick] [--rate-limit]``

Two processes per bot, so that they don't share a core's time:

* this one (the driver) runs the fake (``tests/fakes/telegram_bot_api.py``) and the people,
  and measures: a person's message is timed from when it is queued to when the bot's first
  call for that chat (``sendMessage``, or ``deleteMessages`` for a quick exit) reaches the
  fake;
* the bot runs in a child process (``python -m bench.telegram_e2e bot --kind ...``):
  helpline exactly as ``helpline run`` serves it (``helpline.serve.serve``: the store on
  SQLite in WAL mode in a temporary folder, the sample service directory, the scheduler,
  logging at INFO), or the echo bot.

Fairness: both bots use the same PTB request settings (HTTPXRequest, 64 connections for
calls, 2 for getUpdates), the same long polling (``poll_interval=0``, ``timeout=30``; the
fake answers a waiting poll at once when an update comes), both handle different chats
concurrently (helpline: its KeyedSerializer; echo: PTB's ``concurrent_updates``), and both
run WITHOUT PTB's AIORateLimiter by default (it caps a bot at 30 messages/s); pass
``--rate-limit`` to run both with it (then use ``--quick``: 30 msg/s makes a big run slow).

The echo bot answers a text with the same text, a button press with the button's data,
each time with three inline buttons, so its people press buttons as often as helpline's do.

Phases for each bot: a short warm-up (not measured), the load (every person at once, each
answering as soon as the bot's question arrives: throughput and latency under load), then
a light load (``--light`` people at once: latency when the bot is not saturated).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, emit, peak_rss_mb, percentile, settings_for
from bench.people import Person, Prompt

TOKEN = "123456:TEST-TOKEN"
CHAT_BASE = 70_000_000
STUCK_AFTER = 60.0  # seconds without the bot's question: the person gives up on that turn


# ---------------------------------------------------------------------- the bots


async def run_helpline(api_root: str, folder: Path, rate_limit: bool, stop: asyncio.Event
                       ) -> None:
    from helpline.channels.telegram import TelegramChannel, TelegramOptions
    from helpline.config import Resources
    from helpline.i18n import CatalogTranslator
    from helpline.resources import SAMPLE_DIRECTORY
    from helpline.serve import serve

    settings = settings_for(folder, resources=Resources(seed=str(SAMPLE_DIRECTORY)))
    translator = CatalogTranslator(settings.locales, settings.default_language)
    options = TelegramOptions(token=TOKEN, api_url=api_root, poll_timeout_seconds=30,
                              rate_limit=rate_limit, languages=tuple(settings.languages))
    await serve(settings, [TelegramChannel(options, translator)], stop)


async def run_echo(api_root: str, rate_limit: bool, stop: asyncio.Event) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import (
        AIORateLimiter,
        Application,
        CallbackQueryHandler,
        ContextTypes,
        ExtBot,
        MessageHandler,
        filters,
    )
    from telegram.request import HTTPXRequest

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"echo:{label}")]
                                     for label in ("One", "Two", "Three")])

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None and update.effective_message is not None
        await context.bot.send_message(update.effective_chat.id,
                                       update.effective_message.text or "…",
                                       reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and update.effective_chat is not None
        await query.answer()
        await context.bot.send_message(update.effective_chat.id, str(query.data),
                                       reply_markup=keyboard)

    bot: ExtBot[Any] = ExtBot(
        TOKEN, base_url=f"{api_root}/bot", base_file_url=f"{api_root}/file/bot",
        request=HTTPXRequest(connection_pool_size=64),
        get_updates_request=HTTPXRequest(connection_pool_size=2),
        rate_limiter=AIORateLimiter(max_retries=5) if rate_limit else None,
    )
    app = Application.builder().bot(bot).concurrent_updates(True).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=30,
                                        allowed_updates=["message", "callback_query"])
        await stop.wait()
        await app.updater.stop()
        await app.stop()


def bot_main(args: argparse.Namespace) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        if args.kind == "helpline":
            await run_helpline(args.api, Path(args.folder), args.rate_limit, stop)
        else:
            await run_echo(args.api, args.rate_limit, stop)

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    asyncio.run(main())
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(json.dumps({"cpu_s": cpu_seconds(), "peak_rss_mb": peak_rss_mb()}), flush=True)


# ---------------------------------------------------------------------- the people


def question_texts() -> tuple[frozenset[str], tuple[str, ...]]:
    """Texts of the bundled flows that wait for a typed answer (no buttons): each ask, and
    the re-prompts that start the answer to a bad one."""
    from helpline.config import BUNDLED_FLOWS
    from helpline.flow import engine
    from helpline.flow.loader import load_flows
    from helpline.flow.model import AskStep

    asks: set[str] = set()
    retries = [engine.T_ASK_AGAIN, engine.T_ASK_NUMBER]
    for flow in load_flows(BUNDLED_FLOWS):
        for step in flow.steps.values():
            if isinstance(step, AskStep):
                asks.add(step.ask)
                if step.retry:
                    retries.append(step.retry)
    return frozenset(asks), tuple(retries)


@dataclass
class Chat:
    person: Person
    sent_at: float | None = None  # when the person's message went, until the first reply
    turn_started: float = 0.0
    message_id: int = 0  # the bot's message that holds the current buttons


@dataclass
class Phase:
    name: str
    chats: dict[int, Chat]
    latencies: list[float] = field(default_factory=list)
    finished: int = 0
    stuck: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0


class Driver:
    def __init__(self, api: Any, kind: str) -> None:
        self.api = api
        self.kind = kind
        self.asks, self.retries = question_texts()
        self.phase: Phase | None = None
        self.loop = asyncio.get_running_loop()
        api.observers.append(self._observe)

    # the bot did something in a chat
    def _observe(self, call: Any, result: Any) -> None:
        phase = self.phase
        if phase is None or call.method not in ("sendMessage", "deleteMessages"):
            return
        chat_id = call.params.get("chat_id")
        chat = phase.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            return
        now = self.loop.time()
        if chat.sent_at is not None:
            phase.latencies.append(now - chat.sent_at)
            chat.sent_at = None
        if call.method == "deleteMessages":  # a quick exit: nothing more to say
            if chat.person.done:
                self._finish(phase, chat)
            return
        prompt = self._prompt(result)
        if prompt is None:
            return  # more is coming: the turn ends with a question
        chat.message_id = int(result["message_id"])
        if chat.person.done:
            self._finish(phase, chat)
            return
        self._act(phase, chat_id, chat, prompt)

    def _prompt(self, message: dict[str, Any]) -> Prompt | None:
        text = str(message.get("text", ""))
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        choices = [(b["text"], b["callback_data"]) for row in rows for b in row
                   if "callback_data" in b]
        if choices:
            return Prompt(text, choices)
        if text in self.asks or text.startswith(self.retries):
            return Prompt(text)
        return None

    def _act(self, phase: Phase, chat_id: int, chat: Chat, prompt: Prompt | None) -> None:
        action = chat.person.answer(prompt) if chat.person.sent else chat.person.first()
        chat.sent_at = chat.turn_started = self.loop.time()
        phase.messages += 1
        if action.kind == "button":
            self.api.person_presses(chat_id, chat.message_id, action.value)
        else:
            self.api.person_sends(chat_id, action.value)

    def _finish(self, phase: Phase, chat: Chat) -> None:
        phase.finished += 1
        chat.turn_started = float("inf")
        if phase.finished == len(phase.chats):
            phase.done.set()

    async def run(self, name: str, first_chat: int, people: int, messages: int,
                  timeout: float) -> dict[str, Any]:
        chats = {first_chat + i: Chat(Person(first_chat + i, messages)) for i in range(people)}
        phase = self.phase = Phase(name, chats)
        start = self.loop.time()
        with self.api.bulk():
            for chat_id, chat in chats.items():
                self._act(phase, chat_id, chat, None)
        deadline = start + timeout
        while not phase.done.is_set() and self.loop.time() < deadline:
            try:
                await asyncio.wait_for(phase.done.wait(), 1.0)
            except TimeoutError:
                self._unstick(phase)
        elapsed = self.loop.time() - start
        self.phase = None
        handled = phase.messages - sum(1 for c in chats.values() if c.sent_at is not None)
        return {
            "people": people, "messages": phase.messages, "seconds": elapsed,
            "msgs_per_s": handled / elapsed if elapsed else 0.0,
            "p50_ms": percentile(phase.latencies, 50) * 1000,
            "p99_ms": percentile(phase.latencies, 99) * 1000,
            "stuck": phase.stuck, "unfinished": people - phase.finished,
        }

    def _unstick(self, phase: Phase) -> None:
        """A person who saw no question for a long time types 'menu' (counted as stuck)."""
        now = self.loop.time()
        for chat_id, chat in phase.chats.items():
            if now - chat.turn_started > STUCK_AFTER and chat.sent_at is None:
                phase.stuck += 1
                if chat.person.done:
                    self._finish(phase, chat)
                else:
                    self._act(phase, chat_id, chat, None)


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_bot(kind: str, people: int, messages: int, light: int, rate_limit: bool,
                    folder: Path, profile: Path | None = None) -> dict[str, Any]:
    from tests.fakes.telegram_bot_api import FakeBotAPI

    api = FakeBotAPI(long_poll_cap=30.0)
    await api.start()
    log = open(folder / f"{kind}.log", "w")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.telegram_e2e", "bot", "--kind", kind, "--api", api.root,
        "--folder", str(folder), *(["--rate-limit"] if rate_limit else []),
        *(["--profile", str(profile / f"{kind}.prof")] if profile else []),
        stdout=asyncio.subprocess.PIPE, stderr=log, cwd=str(Path(__file__).parent.parent))
    try:
        await api.wait_for_call("getUpdates", timeout=60)
        driver = Driver(api, kind)
        budget = max(120.0, people * messages / (5 if rate_limit else 50))
        await driver.run("warm-up", CHAT_BASE - 1000, min(20, people), 3, 60)
        cpu0, own0 = proc_cpu_seconds(proc.pid), cpu_seconds()
        load = await driver.run("load", CHAT_BASE, people, messages, budget)
        cpu1, own1 = proc_cpu_seconds(proc.pid), cpu_seconds()
        quiet = await driver.run("light", CHAT_BASE + people + 1000, light, messages, budget)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
        log.close()
        await api.stop()
    tail = out.decode().strip().splitlines()
    bot = json.loads(tail[-1]) if tail and tail[-1].startswith("{") else {}
    return {
        **load,
        "light_people": light, "light_p50_ms": quiet["p50_ms"], "light_p99_ms": quiet["p99_ms"],
        "bot_cpu_pct": 100 * (cpu1 - cpu0) / load["seconds"],
        "fake_cpu_pct": 100 * (own1 - own0) / load["seconds"],
        "bot_peak_rss_mb": bot.get("peak_rss_mb"),
        "bot_calls": len(api.calls),
    }


async def compare(people: int, messages: int, light: int, rate_limit: bool,
                  profile: Path | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"people": people, "messages_each": messages,
                              "rate_limiter": rate_limit}
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        for kind in ("helpline", "echo"):
            folder = Path(tmp) / kind
            folder.mkdir()
            figures = await bench_bot(kind, people, messages, light, rate_limit, folder,
                                      profile)
            result.update({f"{kind}_{k}": v for k, v in figures.items()})
    echo = result["echo_msgs_per_s"]
    result["ratio"] = result["helpline_msgs_per_s"] / echo if echo else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    bot = sub.add_parser("bot")
    bot.add_argument("--kind", choices=("helpline", "echo"), required=True)
    bot.add_argument("--api", required=True)
    bot.add_argument("--folder", required=True)
    bot.add_argument("--rate-limit", action="store_true")
    bot.add_argument("--profile", help="write a cProfile of the bot process here")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--light", type=int, default=20, help="people in the light phase")
    parser.add_argument("--quick", action="store_true", help="200 people x 5 messages")
    parser.add_argument("--rate-limit", action="store_true")
    parser.add_argument("--profile", metavar="DIR",
                        help="profile each bot process (cProfile) into DIR/KIND.prof")
    args = parser.parse_args()
    if args.command == "bot":
        bot_main(args)
        return
    people, messages = (200, 5) if args.quick else (args.people, args.messages)
    profile = Path(args.profile).resolve() if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    emit(asyncio.run(compare(people, messages, args.light, args.rate_limit, profile)))


if __name__ == "__main__":
    main()
