"""The console as the desk under load: 20 advocates with 200 open cases, people and
advocates writing at once; how long from a person's message reaching the bot to the line
on the advocate's open case page (issue 18, item 9: p99 <= 200 ms).

``python -m bench.console_load [--advocates 20] [--cases 200] [--messages 10]``

The real app, store, relay, console desk and console web server (aiohttp, on a loopback
port), with a channel that sends people's replies nowhere. Each case is opened through
the bundled flows, claimed in the console (10 a piece), and each advocate has every one
of their case pages open: a server-sent-events stream each, read by an aiohttp client in
this process (so the figures include the pages' reading). Then every person writes
``--messages`` messages, 0.5 to 2 seconds apart, while each advocate answers one of their
cases every 1 to 3 seconds through the console's form. A message's time runs from the
moment the channel hands it to the app to the moment its line is read off the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import aiohttp
import pyotp
from argon2 import PasswordHasher

from bench.common import SECRET, cpu_seconds, emit, percentile, settings_for
from helpline.channels.base import BaseChannel, Capabilities
from helpline.collector import settled_garbage_collector
from helpline.config import Console as ConsoleSettings
from helpline.console.accounts import Accounts, Policy
from helpline.console.desk import staff_id
from helpline.console.server import serve_console
from helpline.console.web import SESSION_COOKIE, Console
from helpline.desks import install_desks
from helpline.events import Inbound, Message, RawInbound
from helpline.runtime import open_app

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "quiet river lamp stone"
NOTE = "I left last week and I need somewhere safe"


class NullChannel(BaseChannel):
    """Sends nowhere; remembers each chat's last message (for its buttons)."""

    name = "telegram"
    capabilities = Capabilities(buttons=True, deletes_inbound=True, delete_window_hours=48,
                                max_text=4000)

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.last: dict[str, Message] = {}

    async def send(self, address: str, message: Message) -> list[str]:
        if message.choices:
            self.last[address] = message
        return [str(next(self.ids))]


async def measure(advocates: int, cases: int, messages: int, folder: Path
                  ) -> dict[str, float]:
    settings = settings_for(folder, console=ConsoleSettings(enabled=True, desk="console"))
    channel = NullChannel()
    serial = itertools.count(1)
    async with open_app(settings, SECRET, [channel]) as app:
        desking = install_desks(app, app.store, [channel])
        assert desking is not None
        desk = desking.desk
        await app.start()

        async def say(address: str, inbound: Inbound) -> float:
            t0 = time.perf_counter()
            await app.handle(RawInbound("telegram", address, address, inbound,
                                        str(next(serial))))
            return t0

        async def text(address: str, words: str) -> float:
            return await say(address, Inbound(kind="text", at=0.0, text=words))

        async def press(address: str, label: str) -> None:
            last = channel.last[address]
            payload = next(c.payload for c in last.choices if c.label == label)
            await say(address, Inbound(kind="button", at=0.0, payload=payload))

        async def open_case(index: int) -> None:
            address = str(20_000_000 + index)
            await text(address, "hi")
            await press(address, "Yes")
            await text(address, "4")
            await press(address, "Yes")
            await text(address, NOTE)
            await press(address, "Evenings")

        t_open = time.perf_counter()
        for start in range(0, cases, 20):
            await asyncio.gather(*(open_case(i) for i in range(start, min(cases, start + 20))))
        opening = time.perf_counter() - t_open
        await desk.settled()
        threads = [thread for _, thread in await desk.open_cases()]
        assert len(threads) == cases, (len(threads), cases)

        clock = time.time
        accounts = Accounts(app.store.database, app.vault, Policy(), CHEAP, clock)
        console = Console(accounts, "http://127.0.0.1", None, desking)
        server = await serve_console(console, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.port}"
        tokens: list[str] = []
        for a in range(advocates):
            name = f"advocate{a:02d}"
            link = await accounts.add_user(name, "advocate")
            enrolment = await accounts.choose_password(link.token, PASSWORD)
            assert not isinstance(enrolment, str)
            code = pyotp.TOTP(enrolment.secret).now()
            assert await accounts.confirm_code(link.token, code) is not None
            result = await accounts.login(name, PASSWORD, code)
            assert result.session is not None
            tokens.append(result.session)
        mine: dict[int, list[int]] = {a: [] for a in range(advocates)}
        for index, thread in enumerate(threads):
            a = index % advocates
            await desk.claim(staff_id(f"advocate{a:02d}"), thread)
            mine[a].append(thread)
        thread_address = {thread: str(20_000_000 + i) for i, thread in enumerate(threads)}

        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        queue_times: list[float] = []
        missing = 0
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            streams: list[asyncio.Task[None]] = []
            ready = 0

            async def page(token: str, thread: int) -> None:
                nonlocal ready
                headers = {"Cookie": f"{SESSION_COOKIE}={token}"}
                async with http.get(f"{url}/case/{thread}/events", headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=None)) as response:
                    assert response.status == 200, response.status
                    ready += 1
                    async for raw in response.content:
                        line = raw.decode()
                        if line.startswith("data: ") and '"Person: ' in line:
                            key = line.split('"Person: ', 1)[1].split('"', 1)[0]
                            t0 = sent_at.pop(key, None)
                            if t0 is not None:
                                latencies.append(time.perf_counter() - t0)

            for a, token in enumerate(tokens):
                for thread in mine[a]:
                    streams.append(asyncio.create_task(page(token, thread)))
            while ready < len(streams):
                await asyncio.sleep(0.05)

            # The queue page with every case on it, as a page fetches it at each change.
            for _ in range(20):
                q0 = time.perf_counter()
                async with http.get(f"{url}/queue/part", headers={
                        "Cookie": f"{SESSION_COOKIE}={tokens[0]}"}) as response:
                    assert response.status == 200
                    await response.read()
                queue_times.append(time.perf_counter() - q0)

            rng = random.Random(18)
            stop = asyncio.Event()

            async def person(thread: int) -> None:
                address = thread_address[thread]
                for m in range(messages):
                    await asyncio.sleep(rng.uniform(0.5, 2.0))
                    words = f"message {m} in case {thread}"
                    sent_at[words] = time.perf_counter()
                    await app.handle(RawInbound(
                        "telegram", address, address,
                        Inbound(kind="text", at=0.0, text=words), str(next(serial))))

            replies = 0

            async def advocate(a: int) -> None:
                nonlocal replies
                token = tokens[a]
                headers = {"Cookie": f"{SESSION_COOKIE}={token}",
                           "X-Requested-With": "fetch"}
                csrf = console.csrf(token)
                while not stop.is_set():
                    await asyncio.sleep(rng.uniform(1.0, 3.0))
                    thread = rng.choice(mine[a])
                    async with http.post(f"{url}/case/{thread}/send", headers=headers,
                                         data={"csrf": csrf, "text": "I'm here with you."}
                                         ) as response:
                        assert response.status == 200, response.status
                    replies += 1

            with settled_garbage_collector():
                t0, cpu0 = time.perf_counter(), cpu_seconds()
                answering = [asyncio.create_task(advocate(a)) for a in range(advocates)]
                await asyncio.gather(*(person(t) for t in threads))
                await asyncio.sleep(0.5)  # the last lines to arrive
                stop.set()
                await asyncio.gather(*answering)
                elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            missing = len(sent_at)
            for task in streams:
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
        await server.stop()
        await desk.settled()
    total = cases * messages
    return {"console_advocates": advocates, "console_cases": cases,
            "console_open_pages": cases, "console_person_messages": total,
            "console_advocate_replies": replies,
            "console_msgs_per_s": (total + replies) / elapsed,
            "console_opening_s": opening,
            "console_to_page_p50_ms": percentile(latencies, 50) * 1000,
            "console_to_page_p99_ms": percentile(latencies, 99) * 1000,
            "console_to_page_max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "console_lines_not_seen": missing,
            "console_queue_page_p50_ms": percentile(queue_times, 50) * 1000,
            "console_cpu_ms_per_msg": 1000 * cpu / (total + replies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--advocates", type=int, default=20)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        result = asyncio.run(measure(args.advocates, args.cases, args.messages, Path(tmp)))
    emit(result)


if __name__ == "__main__":
    main()
