"""Several ``helpline run`` workers on one PostgreSQL database, the serving one killed with
SIGKILL mid-stream again and again (``tests/test_failover.py``; the long run is
``python -m bench.failover``).

One worker serves: it holds the database's run lock, polls Telegram, carries out the queue
and runs the timed jobs; the others stand by, asking for the lock every second. The
serving worker is killed at random moments while people write in bursts, and started
again at once (it stands by). Counted: what was lost, the duplicate replies, each
person's replies out of order, and how long each takeover took (from the kill to the
next worker's "helpline running").
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI
from tests.killrig import GOT, QUIET_SECONDS, Child, _answered, _until, out_of_order

STATUS = re.compile(rb"standing by|taking over|helpline running with")


@dataclass
class Failover:
    workers: int
    kills: int
    sent: int
    lost: list[str]
    duplicates: int
    out_of_order: int
    takeovers: list[float]  # seconds from a kill to the next worker serving

    def line(self) -> str:
        slowest = max(self.takeovers, default=0.0)
        return (f"{self.workers} workers, {self.kills} kills of the serving one: "
                f"{self.sent} messages, {len(self.lost)} lost, {self.duplicates} duplicate "
                f"replies, {self.out_of_order} out of order; takeover "
                f"{min(self.takeovers, default=0.0):.1f}-{slowest:.1f} s")


def serving(child: Child, since: int = 0) -> bool:
    """Whether the worker's last word about its role (after byte ``since`` of its log)
    is that it serves."""
    found = STATUS.findall((child.folder / "bot.log").read_bytes()[since:])
    return bool(found) and found[-1] == b"helpline running with"


def _anyone_serving(children: list[Child], since: dict[int, int]) -> bool:
    return any(serving(c, since[id(c)]) for c in children)


def log_size(child: Child) -> int:
    return (child.folder / "bot.log").stat().st_size


async def run_failover(folder: Path, database: str, *, workers: int = 3, kills: int = 3,
                       people: int = 6, seed: int = 5, settle: float = 90.0) -> Failover:
    rng = random.Random(seed)
    async with FakeBotAPI() as api:
        chats = [770_000 + n for n in range(people)]
        env = {"HELPLINE_TELEGRAM_TOKEN": TOKEN, "HELPLINE_TELEGRAM_API_URL": api.root,
               "HELPLINE_TELEGRAM_POLL_TIMEOUT_SECONDS": "1",
               "HELPLINE_TELEGRAM_RATE_LIMIT": "false"}
        children = []
        for n in range(workers):
            (folder / f"w{n}").mkdir(parents=True, exist_ok=True)
            children.append(Child(folder / f"w{n}", env, database))

        def replies() -> list[str]:
            return [t for chat in chats for t in api.sent_texts(chat)]

        sent: list[str] = []
        takeovers: list[float] = []
        counters = dict.fromkeys(chats, 0)
        since = {id(c): 0 for c in children}  # where each one's log of its last start begins
        try:
            for child in children:
                child.start()
            await _until(partial(_anyone_serving, children, since), 60, "a worker serving")
            for chat in chats:
                api.person_sends(chat, "hello")
            await _until(lambda: len(replies()) >= len(chats), 60, "the first prompts")
            for _ in range(kills):
                for _ in range(rng.randint(3, 8)):  # bursts while it serves
                    for chat in chats:
                        text = f"m-{chats.index(chat)}-{counters[chat]}"
                        counters[chat] += 1
                        api.person_sends(chat, text)
                        sent.append(text)
                    await asyncio.sleep(rng.uniform(0.05, 0.2))
                [victim] = [c for c in children if serving(c, since[id(c)])]  # only one
                victim.kill()
                began = time.monotonic()
                since[id(victim)] = log_size(victim)
                victim.start()  # back at once: it stands by (or serves, if it is first)
                for chat in chats:  # people go on writing during the takeover
                    text = f"m-{chats.index(chat)}-{counters[chat]}"
                    counters[chat] += 1
                    api.person_sends(chat, text)
                    sent.append(text)
                await _until(partial(_anyone_serving, children, since), 30,
                             "another worker taking over")
                takeovers.append(time.monotonic() - began)
            wanted = set(sent)
            await _until(lambda: wanted <= _answered(replies()), settle, "every answer",
                         fail=False)
            await asyncio.sleep(QUIET_SECONDS / 4)
        finally:
            for child in children:
                child.stop()
        counts = Counter(m.group(1) for text in replies() for m in GOT.finditer(text))
        return Failover(workers, kills, len(sent), [m for m in sent if counts[m] == 0],
                        sum(n - 1 for n in counts.values() if n > 1),
                        out_of_order(api, chats),
                        takeovers)
