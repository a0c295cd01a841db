"""Memory: peak RSS of a bot process with 10,000 stored conversations, 1,000 of them active.

``python -m bench.memory_bench [--stored N] [--active M] [--messages K]``

Runs in its own process (the runner starts it), measured with /proc/self/status VmHWM:
the app as ``helpline run`` builds it (``open_app``: flows, store, translator, the sample
service directory) with the Telegram and Signal channel modules imported and a
TelegramChannel built (not started: the traffic goes through a channel that sends nowhere,
see bench.pipeline_bench). First ``--stored`` people each leave a saved conversation (a
state and their queued replies delivered), then ``--active`` people talk at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from pathlib import Path

from bench.common import SECRET, emit, peak_rss_mb, settings_for
from bench.people import Person, Prompt
from bench.pipeline_bench import NullChannel
from helpline.collector import settled_garbage_collector
from helpline.config import Resources
from helpline.events import Inbound, RawInbound
from helpline.resources import SAMPLE_DIRECTORY
from helpline.runtime import open_app


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(stored: int, active: int, messages: int, folder: Path) -> dict[str, float]:
    from helpline.channels.signal import SignalChannel  # noqa: F401 - as `helpline run` loads
    from helpline.channels.telegram import TelegramChannel, TelegramOptions

    settings = settings_for(folder, resources=Resources(seed=str(SAMPLE_DIRECTORY)))
    channel = NullChannel()
    unused = TelegramChannel(TelegramOptions(token="123456:TEST-TOKEN",
                                             api_url="http://127.0.0.1:9"))
    async with open_app(settings, SECRET, [channel]) as app:
        await app.start()
        started = rss_mb()

        async def talk(index: int, count: int) -> None:
            me = Person(index, count)
            address = str(20_000_000 + index)
            action = me.first()
            while True:
                inbound = (Inbound(kind="text", at=0.0, text=action.value)
                           if action.kind == "text"
                           else Inbound(kind="button", at=0.0, payload=action.value))
                await app.handle(RawInbound("telegram", address, address, inbound,
                                            str(me.sent)))
                if me.done:
                    return
                last = channel.last.get(address)
                action = me.answer(None if last is None else Prompt(
                    last.text, [(c.label, c.payload) for c in last.choices]))

        with settled_garbage_collector():  # as `helpline run` serves
            for start in range(0, stored, 200):  # stored: two messages each, 200 at a time
                await asyncio.gather(*(talk(i, 2)
                                       for i in range(start, min(stored, start + 200))))
            after_stored = rss_mb()
            await asyncio.gather(*(talk(stored + i, messages) for i in range(active)))
            people = await app.store.count("people")
        del unused
    return {"memory_stored": stored, "memory_active": active, "memory_people_rows": people,
            "memory_rss_started_mb": started, "memory_rss_after_stored_mb": after_stored,
            "memory_peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        emit(asyncio.run(measure(args.stored, args.active, args.messages, Path(tmp))))


if __name__ == "__main__":
    main()
