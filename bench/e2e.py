"""What the end-to-end benchmarks share: people driving a bot through a loopback fake.

A platform module (bench.telegram_e2e, bench.signal_e2e) supplies the fake, the way a person
sends (``Driver.deliver``), and the bot processes; this module runs the phases and measures.

A person's message is timed from when it is queued at the fake to when the bot's first call
for that person (a reply, or a delete for a quick exit) reaches the fake. A turn ends with a
question (buttons, a numbered list, or a known free-text question); the person answers it at
once, so under load the bot always has work waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from array import array
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, percentile, profiling
from bench.people import Action, Person, Prompt

STUCK_AFTER = 60.0  # seconds without the bot's question: the person gives up on that turn
ROOT = Path(__file__).resolve().parent.parent


def question_texts() -> tuple[frozenset[str], tuple[str, ...]]:
    """Texts of the bundled flows that wait for a typed answer (no choices): each ask, and
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
    handle: Any = None  # what the platform needs to answer the question (a message id)


@dataclass
class Phase:
    name: str
    chats: dict[Hashable, Chat]
    latencies: list[float] = field(default_factory=list)
    finished: int = 0
    stuck: int = 0
    messages: int = 0
    replies: int = 0
    calls: int = 0  # platform API calls the bot made (answered)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Driver:
    """Runs people against a bot; subclasses deliver their messages to the fake."""

    def __init__(self) -> None:
        self.asks, self.retries = question_texts()
        self.phase: Phase | None = None
        self.loop = asyncio.get_running_loop()

    # ------------------------------------------------------------- platform side

    def deliver(self, key: Hashable, chat: Chat, action: Action) -> None:
        raise NotImplementedError

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def key_for(self, index: int) -> Hashable:
        return index

    # ------------------------------------------------------------- what the bot did

    def count_call(self) -> None:
        if self.phase is not None:
            self.phase.calls += 1

    def is_question(self, text: str) -> bool:
        # A turn's texts may come joined into one message (a blank line between them):
        # the question is its last part.
        last = text.rsplit("\n\n", 1)[-1]
        return last in self.asks or last.startswith(self.retries) or text.startswith(
            self.retries)

    def bot_replied(self, key: Hashable, prompt: Prompt | None, handle: Any = None) -> None:
        """The bot sent this person a message; ``prompt`` is the question it asks (None:
        more is coming in this turn)."""
        phase = self.phase
        chat = phase.chats.get(key) if phase is not None else None
        if phase is None or chat is None:
            return
        phase.replies += 1
        self._first_reply(phase, chat)
        if prompt is None:
            return
        chat.handle = handle
        if chat.person.done:
            self._finish(phase, chat)
        else:
            self._act(phase, key, chat, prompt)

    def bot_deleted(self, key: Hashable) -> None:
        """The bot deleted messages of this chat: the reply to a quick exit."""
        phase = self.phase
        chat = phase.chats.get(key) if phase is not None else None
        if phase is None or chat is None:
            return
        self._first_reply(phase, chat)
        if chat.person.done:
            self._finish(phase, chat)

    def _first_reply(self, phase: Phase, chat: Chat) -> None:
        if chat.sent_at is not None:
            phase.latencies.append(self.loop.time() - chat.sent_at)
            chat.sent_at = None

    # ------------------------------------------------------------- people

    def _act(self, phase: Phase, key: Hashable, chat: Chat, prompt: Prompt | None) -> None:
        action = chat.person.answer(prompt) if chat.person.sent else chat.person.first()
        chat.sent_at = chat.turn_started = self.loop.time()
        phase.messages += 1
        self.deliver(key, chat, action)

    def _finish(self, phase: Phase, chat: Chat) -> None:
        if chat.turn_started == float("inf"):
            return  # already finished
        phase.finished += 1
        chat.turn_started = float("inf")
        if phase.finished == len(phase.chats):
            phase.done.set()

    def _unstick(self, phase: Phase) -> None:
        """A person who saw no question for a long time types 'menu' (counted as stuck)."""
        now = self.loop.time()
        for key, chat in phase.chats.items():
            if now - chat.turn_started > STUCK_AFTER and chat.sent_at is None:
                phase.stuck += 1
                if chat.person.done:
                    self._finish(phase, chat)
                else:
                    self._act(phase, key, chat, None)

    async def run(self, name: str, first: int, people: int, messages: int, timeout: float
                  ) -> dict[str, Any]:
        chats = {self.key_for(first + i): Chat(Person(first + i, messages))
                 for i in range(people)}
        phase = self.phase = Phase(name, chats)
        start = self.loop.time()
        with self.bulk():
            for key, chat in chats.items():
                self._act(phase, key, chat, None)
        deadline = start + timeout
        while not phase.done.is_set() and self.loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(phase.done.wait(), 1.0)
            self._unstick(phase)
        elapsed = self.loop.time() - start
        self.phase = None
        unanswered = sum(1 for c in chats.values() if c.sent_at is not None)
        return {
            "people": people, "messages": phase.messages, "seconds": elapsed,
            "msgs_per_s": (phase.messages - unanswered) / elapsed if elapsed else 0.0,
            "p50_ms": percentile(phase.latencies, 50) * 1000,
            "p99_ms": percentile(phase.latencies, 99) * 1000,
            "replies_per_msg": phase.replies / phase.messages if phase.messages else 0.0,
            "api_calls_per_s": phase.calls / elapsed if elapsed else 0.0,
            "stuck": phase.stuck, "unfinished": people - phase.finished,
        }


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bot_process(main: Callable[[asyncio.Event], Awaitable[None]],
                    profile: str | None) -> None:
    """The bot side: run ``main`` until SIGTERM, then print its CPU time, the time its
    garbage collector took (all of the bot's life) and its peak RSS."""
    import gc

    from bench.common import peak_rss_mb

    collecting = {"began": 0.0, "seconds": 0.0, "runs": 0.0}

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting["began"] = time.perf_counter()
        else:
            collecting["seconds"] += time.perf_counter() - collecting["began"]
            collecting["runs"] += 1

    gc.callbacks.append(timed)
    lags = Lags()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        watching = threading.Event()
        watcher = threading.Thread(target=watch_loop, args=(loop, lags, watching),
                                   daemon=True)
        watcher.start()
        try:
            await main(stop)
        finally:
            watching.set()

    with profiling(profile):
        asyncio.run(runner())
    print(json.dumps({"cpu_s": cpu_seconds(), "peak_rss_mb": peak_rss_mb(),
                      "gc_s": collecting["seconds"], "gc_runs": collecting["runs"],
                      "lags": [(round(at, 4), round(lag * 1000, 2))
                               for at, lag in zip(lags.asked, lags.waited, strict=True)]}),
          flush=True)


LAG_EVERY = 0.005  # seconds between two probes of the bot's event loop


@dataclass
class Lags:
    """The probes of ``watch_loop``: when each was asked, how long it waited. Arrays of
    doubles, not a list of tuples: 200 probes a second over a long run would otherwise
    add megabytes to the bot's peak RSS, and tuples to what its collector walks."""

    asked: array[float] = field(default_factory=lambda: array("d"))
    waited: array[float] = field(default_factory=lambda: array("d"))


def watch_loop(loop: asyncio.AbstractEventLoop, lags: Lags, done: threading.Event) -> None:
    """The event loop's lag, from a thread of its own: every LAG_EVERY a probe asks the
    loop to run a callback, which notes how long it waited (``time.monotonic``, the same
    clock in every process, so the driver can keep what fell in its load phase). The wait
    is what a new message waits before the loop can look at it: a callback, a collection
    or a thread holding the GIL."""
    seen = threading.Event()

    def probe(asked: float) -> None:
        lags.asked.append(asked)
        lags.waited.append(time.monotonic() - asked)
        seen.set()

    while not done.is_set():
        seen.clear()
        try:
            loop.call_soon_threadsafe(probe, time.monotonic())
        except RuntimeError:  # the loop closed
            return
        while not seen.wait(0.5):
            if done.is_set() or loop.is_closed():
                return
        time.sleep(LAG_EVERY)


def lag_in(phase: str, lags: list[list[float]], began: float, ended: float
           ) -> dict[str, float]:
    """The loop's lag over the probes asked between ``began`` and ``ended``."""
    inside = [lag for at, lag in lags if began <= at <= ended]
    return {f"{phase}_loop_lag_p99_ms": percentile(inside, 99),
            f"{phase}_loop_lag_max_ms": max(inside, default=float("nan")),
            f"{phase}_loop_lag_probes": float(len(inside))}


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of process ``pid``, by thread id."""
    found: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


async def measure_bot(module: str, bot_args: list[str], driver: Driver,
                      ready: Callable[[], Awaitable[object]], people: int, messages: int,
                      light: int, budget: float, log_path: Path,
                      owed: Callable[[float], Awaitable[None]] | None = None
                      ) -> dict[str, Any]:
    """Start the bot process, wait until ``ready``, run warm-up, load and light phases.

    ``owed``: for a bot that writes what a message changed later than its reply (PTB's
    PicklePersistence, every ``update_interval`` seconds), waits until it has written what
    the load phase changed (called with the wall-clock time the load ended). The CPU it
    spends on that is counted with the load's messages (``cpu_owed_ms_per_msg``): a bot
    that writes before it replies pays the same inside the load phase."""
    with open(log_path, "w") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "bot", *bot_args,
            stdout=asyncio.subprocess.PIPE, stderr=log, cwd=str(ROOT))
        try:
            await asyncio.wait_for(ready(), 60)
            await driver.run("warm-up", 900_000, min(20, people), 3, 60)
            cpu0, own0 = proc_cpu_seconds(proc.pid), cpu_seconds()
            threads0 = thread_cpu_seconds(proc.pid)
            load_began = time.monotonic()
            load = await driver.run("load", 100_000, people, messages, budget)
            load_ended = time.monotonic()
            cpu1, own1 = proc_cpu_seconds(proc.pid), cpu_seconds()
            threads1 = thread_cpu_seconds(proc.pid)
            if owed is not None:
                await owed(time.time())
            cpu2 = proc_cpu_seconds(proc.pid)
            light_began = time.monotonic()
            quiet = await driver.run("light", 500_000, light, messages, budget)
            light_ended = time.monotonic()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
            except TimeoutError:
                proc.kill()
                out, _ = await proc.communicate()
    tail = out.decode().strip().splitlines()
    bot = json.loads(tail[-1]) if tail and tail[-1].startswith("{") else {}
    answered = max(1.0, load["msgs_per_s"] * load["seconds"])
    # The event loop's thread (its id is the process's) and the others (the database's).
    loop_cpu = threads1.get(proc.pid, 0.0) - threads0.get(proc.pid, 0.0)
    return {
        **load,
        "light_people": light, "light_p50_ms": quiet["p50_ms"], "light_p99_ms": quiet["p99_ms"],
        "bot_cpu_pct": 100 * (cpu1 - cpu0) / load["seconds"],
        # CPU of the bot process per person message answered in the load phase.
        "cpu_ms_per_msg": 1000 * (cpu1 - cpu0) / answered,
        "loop_cpu_ms_per_msg": 1000 * loop_cpu / answered,
        "other_threads_cpu_ms_per_msg": 1000 * (cpu1 - cpu0 - loop_cpu) / answered,
        # With what the bot wrote of the load's changes after it (see ``owed``).
        "cpu_owed_ms_per_msg": 1000 * (cpu2 - cpu0) / answered,
        "owed_cpu_s": cpu2 - cpu1,
        "fake_cpu_pct": 100 * (own1 - own0) / load["seconds"],
        "bot_peak_rss_mb": bot.get("peak_rss_mb"),
        # The garbage collector's time over the bot's whole life (start, all phases, stop).
        "bot_gc_s": bot.get("gc_s"), "bot_gc_runs": bot.get("gc_runs"),
        # How long the bot's event loop kept a callback waiting: under the load (every
        # person at once: the loop's queue of ready tasks is long), and in the light phase
        # (a few people: mostly what one callback or a collection holds).
        **lag_in("load", bot.get("lags", []), load_began, load_ended),
        **lag_in("light", bot.get("lags", []), light_began, light_ended),
    }
