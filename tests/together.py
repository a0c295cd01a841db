"""Several ``helpline run`` workers serving one PostgreSQL database at once
(``[workers] together``), Telegram's webhook requests spread over them by a load balancer,
one worker killed with SIGKILL mid-stream again and again (``tests/test_together.py``;
more workers and more load: ``python -m bench.workers_bench``).

The fake Bot API delivers the webhook as Telegram does (oldest first, each update until
it is answered 200); the balancer sends each request to the next worker, skipping one
that cannot be reached. The killed worker is started again at once. Counted: what was
lost, duplicate replies, each person's replies out of order, the requests each worker
answered, and how many times a worker became the leader.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.balancer import Balancer
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI
from tests.killrig import GOT, QUIET_SECONDS, Child, _answered, _until, out_of_order

RUNNING = b"together with the other workers"
LEADING = b"leading: "
WEBHOOK_SECRET = "together-webhook-secret_0123456789"


@dataclass
class Together:
    workers: int
    kills: int
    sent: int
    lost: list[str]
    duplicates: int
    out_of_order: int
    answered_by: list[int]  # webhook requests each worker answered
    leaders: int  # times a worker became the leader
    seconds: float

    def line(self) -> str:
        return (f"{self.workers} workers together, {self.kills} kills: {self.sent} messages, "
                f"{len(self.lost)} lost, {self.duplicates} duplicate replies, "
                f"{self.out_of_order} out of order; webhook requests per worker "
                f"{self.answered_by}; {self.leaders} leaders; {self.seconds:.1f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log(child: Child) -> bytes:
    return (child.folder / "bot.log").read_bytes()


def running_since(child: Child, since: int) -> bool:
    return RUNNING in _log(child)[since:]


def leader(children: list[Child]) -> Child:
    """The worker whose last start made it the leader."""
    for child in children:
        log = _log(child)
        if LEADING in log[log.rfind(RUNNING):]:
            return child
    raise AssertionError("no worker leads")


def workers_env(api: FakeBotAPI, balancer: Balancer) -> dict[str, str]:
    return {"HELPLINE_TELEGRAM_TOKEN": TOKEN, "HELPLINE_TELEGRAM_API_URL": api.root,
            "HELPLINE_TELEGRAM_RATE_LIMIT": "false", "HELPLINE_WORKERS_TOGETHER": "true",
            "HELPLINE_TELEGRAM_WEBHOOK_URL": balancer.url("/telegram"),
            "HELPLINE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}


async def run_together(folder: Path, database: str, *, workers: int = 3, kills: int = 3,
                       people: int = 8, seed: int = 11, settle: float = 90.0,
                       leader_every: int = 0) -> Together:
    """``leader_every``: kill the leader every so many kills (0: only the second kill);
    else a worker drawn at random."""
    rng = random.Random(seed)
    ports = [free_port() for _ in range(workers)]
    began = time.monotonic()
    async with FakeBotAPI() as api, Balancer([("127.0.0.1", p) for p in ports]) as balancer:
        chats = [780_000 + n for n in range(people)]
        children = []
        for n, port in enumerate(ports):
            (folder / f"w{n}").mkdir(parents=True, exist_ok=True)
            env = {**workers_env(api, balancer),
                   "HELPLINE_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
            children.append(Child(folder / f"w{n}", env, database))
        stop = asyncio.Event()
        pusher = asyncio.create_task(api.deliver_webhooks(stop))

        def replies() -> list[str]:
            return [t for chat in chats for t in api.sent_texts(chat)]

        sent: list[str] = []
        counters = dict.fromkeys(chats, 0)

        def write(chat: int) -> None:
            text = f"m-{chats.index(chat)}-{counters[chat]}"
            counters[chat] += 1
            api.person_sends(chat, text)
            sent.append(text)

        def all_running(since: dict[int, int]) -> Callable[[], bool]:
            return lambda: all(running_since(c, since[id(c)]) for c in children)

        try:
            for child in children:
                child.start()
            await _until(all_running(dict.fromkeys(map(id, children), 0)), 60,
                         "every worker running")
            for chat in chats:
                api.person_sends(chat, "hello")
            await _until(lambda: len(replies()) >= len(chats), 60, "the first prompts")
            for kill in range(kills):
                for _ in range(rng.randint(3, 8)):  # bursts while all serve
                    for chat in chats:  # a person's messages in a row reach other workers
                        for _ in range(rng.randint(1, 3)):
                            write(chat)
                    await asyncio.sleep(rng.uniform(0.05, 0.2))
                # The second kill is of the leader (it reads the single streams and runs
                # the timed jobs): another worker must take that over.
                of_leader = (kill % leader_every == 1 if leader_every > 1 else kill == 1)
                victim = leader(children) if of_leader else rng.choice(children)
                victim.kill()
                mark = (victim.folder / "bot.log").stat().st_size
                victim.start()
                for chat in chats:  # people go on writing while it comes back
                    write(chat)
                await _until(partial(running_since, victim, mark), 60,
                             "the killed worker running again")
            wanted = set(sent)
            await _until(lambda: wanted <= _answered(replies()), settle, "every answer",
                         fail=False)
            await asyncio.sleep(QUIET_SECONDS / 4)
        finally:
            stop.set()
            await pusher
            for child in children:
                child.stop()
        counts = Counter(m.group(1) for text in replies() for m in GOT.finditer(text))
        leaders = sum(len(re.findall(LEADING, _log(c))) for c in children)
        return Together(workers, kills, len(sent), [m for m in sent if counts[m] == 0],
                        sum(n - 1 for n in counts.values() if n > 1),
                        out_of_order(api, chats),
                        [balancer.answered[n] for n in range(workers)], leaders,
                        time.monotonic() - began)
