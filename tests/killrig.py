"""kill -9 at random moments of a stream of conversations, on Telegram and on Signal.

``helpline run`` serves a tiny echo flow (each answer comes back as "got <answer>") in a
child process against a loopback fake of the platform that runs here; people write in
bursts while the child is killed with SIGKILL at random moments and started again at once.
At the end every message must have been answered: on Telegram all of them (an update is
confirmed only once written down); on Signal all but those the bridge had written to the
socket in the instant of a kill, before the bot read it, which no client can keep
(signal-cli-rest-api never sends a frame twice): every message the bot wrote down in its
inbox must have been answered. Duplicate answers are counted: a reply can go out twice only when a
kill lands inside the platform call that sends it.

Used by ``tests/test_kill_nine.py`` (a short run) and ``bench/kill_soak.py`` (a long one).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from helpline.privacy import Vault
from tests.fakes.signal_cli_api import FakeSignalAPI
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI

SECRET = "kill-rig-secret-0123456789-abcdefghijklmnop"
ECHO_FLOW = """\
id: {id}
title: Echo
start: ask
steps:
  ask:
    ask: "Say something."
    save: said
    next: echo
  echo:
    say: "got {{said}}"
    next: ask
"""
GOT = re.compile(r"got (m-\d+-\d+)")
QUIET_SECONDS = 8.0


@dataclass
class Outcome:
    channel: str
    kills: int
    sent: int
    answered: int
    lost: list[str]
    lost_in_flight: list[str]
    duplicates: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.channel}: {self.kills} kills, {self.sent} messages, "
                f"{self.answered} answered, {len(self.lost)} lost "
                f"({len(self.lost_in_flight)} of them never read: in flight at a kill), "
                f"{self.duplicates} duplicate replies, {self.seconds:.1f} s")


def write_flows(folder: Path) -> Path:
    flows = folder / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    for flow_id in ("welcome", "main"):
        (flows / f"{flow_id}.yaml").write_text(ECHO_FLOW.format(id=flow_id), encoding="utf-8")
    return flows


class Child:
    """``helpline run`` in a child process, started again after each kill."""

    def __init__(self, folder: Path, env: dict[str, str], database: str | None = None
                 ) -> None:
        self.folder = folder
        self.env = {**os.environ, "HELPLINE_DB": database or str(folder / "helpline.db"),
                    "HELPLINE_SECRET_KEY": SECRET, "HELPLINE_FLOWS": str(write_flows(folder)),
                    "HELPLINE_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **env}
        self.database: Path | str = database or folder / "helpline.db"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(folder / "bot.log", "ab")  # noqa: SIM115 (closed in stop)

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "helpline", "run"], env=self.env,
                                     stdout=self.log, stderr=self.log)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


async def run(channel: str, folder: Path, *, kills: int, people: int = 10, burst: int = 6,
              pause: tuple[float, float] = (0.05, 0.25), seed: int = 7,
              settle_seconds: float = 60.0, database: str | None = None) -> Outcome:
    """Drive one channel through ``kills`` random kills; return what was lost.
    ``database``: a PostgreSQL URL to keep everything in (else a SQLite file in
    ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    if channel == "telegram":
        return await _telegram(folder, kills, people, burst, pause, seed, settle_seconds,
                               database)
    return await _signal(folder, kills, people, burst, pause, seed, settle_seconds, database)


async def _drive(kills: int, people: list[Any], burst: int, pause: tuple[float, float],
                 seed: int, child: Child, send: Callable[[Any, str], None],
                 replies: Callable[[], list[str]], settle_seconds: float,
                 on_kill: Callable[[], None] = lambda: None) -> tuple[list[str], float]:
    """Bursts of messages from every person while the child is killed now and then; then
    wait for the answers. Returns the messages sent and the seconds it took."""
    rng = random.Random(seed)
    began = time.monotonic()
    sent: list[str] = []
    counters = {p: 0 for p in people}
    child.start()
    for person in people:  # each person's first message starts the flow: not counted
        send(person, "hello")
    await _until(lambda: len(replies()) >= len(people), settle_seconds, "the first prompts")
    done_kills = 0
    next_kill = time.monotonic() + rng.uniform(0.3, 1.0)
    while done_kills < kills:
        for person in people:
            for _ in range(rng.randint(1, burst)):
                text = f"m-{people.index(person)}-{counters[person]}"
                counters[person] += 1
                send(person, text)
                sent.append(text)
        if time.monotonic() >= next_kill:
            # Right after a burst: the bot has read part of it and answered less.
            await asyncio.sleep(rng.uniform(0.005, 0.08))
            child.kill()
            done_kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.2))
            child.start()
            next_kill = time.monotonic() + rng.uniform(0.4, 1.2)
        await asyncio.sleep(rng.uniform(*pause))
    wanted = set(sent)
    # Until every message is answered, or no answer has come for a while and the bot has
    # nothing left to do: every event it wrote down processed, nothing queued to send (on
    # Signal, what the bot never read will not be answered). A bot slow to start again on
    # a busy machine is not taken for one that is done.
    last = (-1, time.monotonic())

    def settled() -> bool:
        nonlocal last
        count = len(replies())
        if count != last[0]:
            last = (count, time.monotonic())
        if wanted <= _answered(replies()):
            return True
        return time.monotonic() - last[1] > QUIET_SECONDS and _nothing_left(child.database)

    await _until(settled, settle_seconds, "every answer", fail=False)
    await asyncio.sleep(0.5)  # duplicates that are still coming
    return sent, time.monotonic() - began


def _rows(database: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Every row of a query on the bot's database, read apart from the bot: a SQLite
    file read only, or PostgreSQL (in a thread of its own, off the caller's loop)."""
    if isinstance(database, Path):
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            return [tuple(r) for r in db.execute(sql)]

    async def read() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, read()).result()


def _nothing_left(database: Path | str) -> bool:
    """The bot's database holds no unprocessed event and no queued operation."""
    try:
        [(pending,)] = _rows(database, "SELECT (SELECT COUNT(*) FROM inbox WHERE done = 0) "
                                       "+ (SELECT COUNT(*) FROM operations)")
    except (sqlite3.Error, asyncpg.PostgresError, OSError):
        return False
    return int(pending) == 0


def _quiet(_: object) -> None:
    return None


def _answered(replies: list[str]) -> set[str]:
    return {m.group(1) for text in replies for m in GOT.finditer(text)}


def _outcome(channel: str, kills: int, sent: list[str], replies: list[str],
             in_flight: set[str], seconds: float) -> Outcome:
    counts = Counter(m.group(1) for text in replies for m in GOT.finditer(text))
    lost = [m for m in sent if counts[m] == 0]
    return Outcome(channel, kills, len(sent), sum(1 for m in sent if counts[m]), lost,
                   [m for m in lost if m in in_flight],
                   sum(n - 1 for n in counts.values() if n > 1), seconds)


def out_of_order(api: FakeBotAPI, chats: list[int]) -> int:
    """Replies (Telegram) that came before the reply to an earlier message of the same
    person."""
    count = 0
    for chat in chats:
        seen: list[int] = []
        for text in api.sent_texts(chat):
            for m in GOT.finditer(text):
                number = int(m.group(1).rsplit("-", 1)[1])
                if number not in seen:
                    if seen and number < seen[-1]:
                        count += 1
                    seen.append(number)
    return count


async def _until(condition: Callable[[], bool], timeout: float, what: str,
                 fail: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(f"timed out waiting for {what}")
            return
        await asyncio.sleep(0.05)


async def _telegram(folder: Path, kills: int, people: int, burst: int,
                    pause: tuple[float, float], seed: int, settle: float,
                    database: str | None) -> Outcome:
    async with FakeBotAPI() as api:
        chats = [880_000 + n for n in range(people)]
        child = Child(folder, {"HELPLINE_TELEGRAM_TOKEN": TOKEN,
                               "HELPLINE_TELEGRAM_API_URL": api.root,
                               "HELPLINE_TELEGRAM_POLL_TIMEOUT_SECONDS": "1",
                               "HELPLINE_TELEGRAM_RATE_LIMIT": "false"}, database)

        def replies() -> list[str]:
            return [t for chat in chats for t in api.sent_texts(chat)]

        try:
            sent, seconds = await _drive(kills, chats, burst, pause, seed, child,
                                         lambda chat, text: _quiet(api.person_sends(chat, text)),
                                         replies, settle)
        finally:
            child.stop()
        return _outcome("telegram", kills, sent, replies(), set(), seconds)


def _accepted_events(database: Path | str) -> set[str]:
    """The keyed hashes of every event the bot wrote down in its inbox."""
    return {str(r[0]) for r in _rows(database, "SELECT event FROM inbox WHERE channel = "
                                               "'signal'")}


async def _signal(folder: Path, kills: int, people: int, burst: int,
                  pause: tuple[float, float], seed: int, settle: float,
                  database: str | None) -> Outcome:
    async with FakeSignalAPI() as api:
        numbers = [f"+1555020{n:04d}" for n in range(people)]
        stamps: dict[str, tuple[str, int]] = {}  # message -> (sender uuid, timestamp)
        child = Child(folder, {"HELPLINE_SIGNAL_SERVICE": api.service,
                               "HELPLINE_SIGNAL_NUMBER": api.number,
                               "HELPLINE_SIGNAL_DISAPPEARING_SECONDS": "0"}, database)

        def replies() -> list[str]:
            return [t for number in numbers for t in api.sent_texts(number)]

        def send(number: str, text: str) -> None:
            stamps[text] = (api.uuid_of(number), api.person_sends(number, text))

        try:
            sent, seconds = await _drive(kills, numbers, burst, pause, seed, child, send,
                                         replies, settle)
        finally:
            child.stop()
        # What the bot never wrote down was lost before it could be: written by the bridge
        # to a socket in the instant of a kill (in its buffer, or the dead process's).
        vault = Vault(SECRET)
        accepted = _accepted_events(child.database)
        never_read = {text for text, (uuid, ts) in stamps.items()
                      if vault.pseudonym("inbox:signal", f"{uuid}:{ts}")[:32] not in accepted}
        return _outcome("signal", kills, sent, replies(), never_read, seconds)
