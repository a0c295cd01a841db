"""The app alone: person messages per second through the whole pipeline (pseudonym, lock,
store read, engine, effects, save, outbox, delivery) with a channel that sends nowhere.

``python -m bench.pipeline_bench [--people N] [--messages M] [--profile FILE]
[--postgresql [--together]]``

``--together`` (with ``--postgresql``): as one of several workers serving together
(``[workers] together``: people's locks across workers, rows read afresh).

``--postgresql``: the data kept in PostgreSQL instead of the SQLite file (a throw-away
cluster with PostgreSQL's own durable defaults, or ``TESTS_POSTGRES_URL``); the CPU then
counts the server's processes too.

What helpline adds per message on top of the platform library, without the library: the
Telegram and Signal benchmarks add python-telegram-bot or signalbot and HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import tempfile
import time
from pathlib import Path

from bench.common import SECRET, cpu_seconds, emit, percentile, profiling, settings_for
from bench.people import Person, Prompt
from helpline.channels.base import BaseChannel, Capabilities
from helpline.collector import settled_garbage_collector
from helpline.config import Resources
from helpline.events import Inbound, Message, RawInbound
from helpline.resources import SAMPLE_DIRECTORY
from helpline.runtime import open_app
from helpline.store.keylocks import KeyLocks
from tests.postgres import cluster, new_schema


class NullChannel(BaseChannel):
    """Sends nowhere; remembers each chat's last question for the people."""

    name = "telegram"
    capabilities = Capabilities(buttons=True, deletes_inbound=True, delete_window_hours=48,
                                max_text=4000)  # as Telegram: a turn goes out as one message

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.last: dict[str, Message] = {}
        self.sent = 0

    async def send(self, address: str, message: Message) -> list[str]:
        self.sent += 1
        self.last[address] = message
        return [str(next(self.ids))]


def server_cpu_seconds() -> float:
    """CPU used so far by every PostgreSQL process of this machine (Linux's /proc)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1]
        if name.startswith(("postgres", "postmaster")):
            parts = fields.split()
            total += int(parts[11]) + int(parts[12])  # utime, stime
    return total / tick


async def measure(people: int, messages: int, folder: Path,
                  database_url: str = "", together: bool = False) -> dict[str, float]:
    settings = settings_for(folder, resources=Resources(seed=str(SAMPLE_DIRECTORY)))
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    channel = NullChannel()
    latencies: list[float] = []
    async with open_app(settings, SECRET, [channel]) as app:
        if together:  # as a worker of several serving together ([workers] together)
            app.serve_together(await KeyLocks.open(database_url))
        await app.start()

        async def person(index: int) -> None:
            me = Person(index, messages)
            address = str(10_000_000 + index)
            action = me.first()
            while True:
                inbound = (Inbound(kind="text", at=0.0, text=action.value)
                           if action.kind == "text"
                           else Inbound(kind="button", at=0.0, payload=action.value))
                t0 = time.perf_counter()
                await app.handle(RawInbound("telegram", address, address, inbound,
                                            str(me.sent)))
                latencies.append(time.perf_counter() - t0)
                if me.done:
                    return
                last = channel.last.get(address)
                prompt = None if last is None else Prompt(
                    last.text, [(c.label, c.payload) for c in last.choices])
                action = me.answer(prompt)

        with settled_garbage_collector():  # as `helpline run` serves
            server0 = server_cpu_seconds() if database_url else 0.0
            t0, cpu0, main0 = time.perf_counter(), cpu_seconds(), time.thread_time()
            trips0 = app.store.database.trips
            await asyncio.gather(*(person(i) for i in range(people)))
            trips = app.store.database.trips - trips0
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            server = server_cpu_seconds() - server0 if database_url else 0.0
            loop_cpu = time.thread_time() - main0
        if app.key_locks is not None:
            await app.key_locks.close()
    total = people * messages
    return {"pipeline_messages": total, "pipeline_msgs_per_s": total / elapsed,
            "pipeline_sends_per_msg": channel.sent / total,
            # Trips to the database thread per message (group commit shares them).
            "pipeline_db_trips_per_msg": trips / total,
            # CPU of the whole process (event loop and database thread) per message.
            "pipeline_cpu_ms_per_msg": 1000 * cpu / total,
            # Of it, the event loop's thread (the rest: the database thread, mostly).
            "pipeline_loop_cpu_ms_per_msg": 1000 * loop_cpu / total,
            # PostgreSQL's own processes (0 on SQLite, which works in the bot's process).
            "pipeline_server_cpu_ms_per_msg": 1000 * server / total,
            "pipeline_p50_ms": percentile(latencies, 50) * 1000,
            "pipeline_p99_ms": percentile(latencies, 99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--together", action="store_true",
                        help="with --postgresql: as a worker of several serving together")
    args = parser.parse_args()
    # Logged at INFO like `helpline run`, into nothing.
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="helpline-bench-"))
        url = ""
        if args.postgresql:
            url = os.environ.get("TESTS_POSTGRES_URL") or stack.enter_context(
                cluster(durable=True))
            url = asyncio.run(new_schema(url))
        with profiling(args.profile):
            result = asyncio.run(measure(args.people, args.messages, Path(tmp), url,
                                         args.together and bool(url)))
    emit(result)


if __name__ == "__main__":
    main()
