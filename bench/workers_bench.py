"""Several workers on PostgreSQL beside the single SQLite process, under the same load
(issue 21): ``python -m bench.workers_bench [--people 200] [--messages 10]
[--workers 1 2 4] [--connections 40]``.

Each configuration runs ``helpline run`` in child processes on the tiny echo flow of the
kill rig, behind the loopback load balancer of the tests, with Telegram's webhook: the
fake Bot API delivers each update as Telegram does (up to ``--connections`` requests at
once, one chat's updates in order, each until it is answered 200). Every person writes
their next message as soon as the reply to the last one arrives (closed loop, each at
their own pace), so the figures are the throughput the system sustains and the time from
a message to its reply:

* **sqlite**: one process on the SQLite file (the default deployment);
* **postgresql, one**: one worker on PostgreSQL, as without ``[workers] together``;
* **postgresql xN**: N workers serving one PostgreSQL database together
  (``[workers] together``), a throw-away cluster with PostgreSQL's durable defaults (or
  ``TESTS_POSTGRES_URL``).

Everything runs on this machine: the fake Bot API and the balancer (this process), the
workers and PostgreSQL share its cores, so more workers than cores measure contention,
not a second machine. Figures in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.pipeline_bench import server_cpu_seconds
from tests.balancer import Balancer
from tests.fakes.telegram_bot_api import Call, FakeBotAPI
from tests.killrig import Child
from tests.postgres import cluster, new_schema
from tests.together import RUNNING, free_port, workers_env

BASE_CHAT = 900_000
RUNS = ["sqlite", "one", "together"]


def process_cpu_seconds(pid: int) -> float:
    """CPU used so far by one process, all its threads (Linux's /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    name: str
    messages: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float]  # CPU seconds in the measured phase: workers, postgresql, rig

    def line(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        per = "  ".join(f"{k} {v / self.messages * 1000:.2f}" for k, v in self.cpu.items())
        return (f"{self.name:<16} {self.messages / self.seconds:8.0f} msg/s   "
                f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({self.messages} messages, "
                f"{self.seconds:.1f} s); CPU ms a message: {per}")


async def _wait_running(children: list[Child], marker: bytes, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not all(marker in (c.folder / "bot.log").read_bytes() for c in children):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start; see their bot.log")
        await asyncio.sleep(0.1)


async def run_one(name: str, folder: Path, database: str | None, workers: int, people: int,
                  messages: int, connections: int, together: bool = True) -> Figures:
    ports = [free_port() for _ in range(workers)]
    async with FakeBotAPI() as api, Balancer([("127.0.0.1", p) for p in ports]) as balancer:
        together = together and database is not None
        children = []
        for n, port in enumerate(ports):
            (folder / f"w{n}").mkdir(parents=True, exist_ok=True)
            env = {**workers_env(api, balancer),
                   "HELPLINE_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
                   "HELPLINE_WORKERS_TOGETHER": "true" if together else "false"}
            children.append(Child(folder / f"w{n}", env, database))
        stop = asyncio.Event()
        pusher = asyncio.create_task(api.deliver_webhooks(stop, connections=connections))
        chats = [BASE_CHAT + n for n in range(people)]
        written: dict[int, int] = dict.fromkeys(chats, 0)
        asked_at: dict[int, float] = {}
        latencies: list[float] = []
        finished = asyncio.Event()
        left = [people]
        measuring = [False]

        def write(chat: int) -> None:
            asked_at[chat] = time.monotonic()
            api.person_sends(chat, f"m-{chat - BASE_CHAT}-{written[chat]}")
            written[chat] += 1

        def on_call(call: Call, result: Any) -> None:
            if call.method != "sendMessage" or not measuring[0]:
                return
            chat = call.params.get("chat_id")
            if not isinstance(chat, int) or chat not in asked_at:
                return
            if not str(call.params.get("text", "")).startswith("got "):
                return
            latencies.append(time.monotonic() - asked_at.pop(chat))
            if written[chat] < messages:
                write(chat)
            else:
                left[0] -= 1
                if not left[0]:
                    finished.set()

        api.observers.append(on_call)
        try:
            for child in children:
                child.start()
            await _wait_running(children, RUNNING if together else b"helpline running with")
            for chat in chats:  # the first message starts the flow: not counted
                api.person_sends(chat, "hello")
            deadline = time.monotonic() + 120
            while len(api.calls_to("sendMessage")) < people:
                if time.monotonic() > deadline:
                    raise RuntimeError("the first prompts did not all come")
                await asyncio.sleep(0.05)
            def cpu() -> dict[str, float]:
                return {"workers": sum(process_cpu_seconds(c.proc.pid) for c in children
                                       if c.proc is not None),
                        "postgresql": server_cpu_seconds(), "rig": time.process_time()}

            measuring[0] = True
            before = cpu()
            began = time.monotonic()
            for chat in chats:
                write(chat)
            await asyncio.wait_for(finished.wait(), 600)
            seconds = time.monotonic() - began
            used = {k: v - before[k] for k, v in cpu().items()}
        finally:
            stop.set()
            await pusher
            for child in children:
                child.stop()
        return Figures(name, len(latencies), seconds, latencies, used)


async def main(people: int, messages: int, workers: list[int], connections: int,
               runs: set[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="helpline-workers-") as tmp:
        root = Path(tmp)
        figures = []
        if "sqlite" in runs:
            figures.append(await run_one("sqlite", root / "sqlite", None, 1, people,
                                         messages, connections))
            print(figures[-1].line(), flush=True)
        with contextlib.ExitStack() as stack:
            server = os.environ.get("TESTS_POSTGRES_URL") or stack.enter_context(
                cluster(durable=True))
            if "one" in runs:
                url = await new_schema(server)
                figures.append(await run_one("postgresql, one", root / "pg", url, 1, people,
                                             messages, connections, together=False))
                print(figures[-1].line(), flush=True)
            for n in workers if "together" in runs else []:
                url = await new_schema(server)
                figures.append(await run_one(f"postgresql x{n}", root / f"pg{n}", url, n,
                                             people, messages, connections))
                print(figures[-1].line(), flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=RUNS,
                        help="sqlite: one process on SQLite; one: one worker on PostgreSQL; "
                             "together: --workers workers together")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.people, args.messages, args.workers, args.connections,
                         set(args.runs)))


if __name__ == "__main__":
    cli()
