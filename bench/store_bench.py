"""The store alone: state saves per second (``Store.save_turn``: encrypt the state and the
address, upsert the person and queue the reply in one transaction), on a SQLite file in
WAL mode in a temporary folder; and the read that starts every turn (``Store.person``).
Each one after another, then ``--at-once`` people at a time, as the app runs conversations:
writes queued while a commit runs share the next commit (group commit) and reads asked for
together are one query.

``python -m bench.store_bench [--saves N] [--people P] [--at-once K] [--profile FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import SECRET, emit, profiling
from helpline.events import Choice, Message
from helpline.privacy import Vault
from helpline.state import Frame, State
from helpline.store import Store

START = 1_800_000_000.0


def sample_state(i: int) -> State:
    return State(
        stack=[Frame(flow="main", step="go_resources"), Frame(flow="resources", step="age")],
        vars={"channel": "telegram", "needs": "shelter", "area": f"District {i % 97}"},
        turn=1_800_000_000 + i, locale="en", seen_welcome=True, last_seen=START + i,
    )


REPLIES = [
    Message("Some services are only for certain ages. Which fits you?",
            (Choice("Under 18", "c:1:0"), Choice("18 or over", "c:1:1"),
             Choice("Prefer not to say", "c:1:2"))),
]


async def measure(saves: int, people: int, at_once: int, folder: Path
                  ) -> dict[str, float]:
    vault = Vault(SECRET)
    store = await Store.open(folder / "helpline.db", vault)
    try:
        pids = [vault.pseudonym("telegram", str(100_000 + i)) for i in range(people)]
        states = [sample_state(i) for i in range(people)]
        t0 = time.perf_counter()
        for n in range(saves):
            i = n % people
            await store.save_turn(pids[i], "telegram", str(100_000 + i), states[i], REPLIES,
                                  START + n, str(n))
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        reads = min(saves, people)
        for i in range(reads):
            assert await store.person(pids[i]) is not None
        read_s = time.perf_counter() - t0

        async def saver(lane: int) -> None:  # one lane: its own people, one turn at a time
            for n in range(lane, saves, at_once):
                i = n % people
                await store.save_turn(pids[i], "telegram", str(100_000 + i), states[i],
                                      REPLIES, START + saves + n, str(n))

        async def reader(lane: int) -> None:
            for i in range(lane, reads, at_once):
                assert await store.person(pids[i]) is not None

        t0 = time.perf_counter()
        await asyncio.gather(*(saver(k) for k in range(at_once)))
        many_save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await asyncio.gather(*(reader(k) for k in range(at_once)))
        many_read_s = time.perf_counter() - t0
    finally:
        await store.close()
    return {"store_saves": saves, "store_saves_per_s": saves / save_s,
            "store_reads_per_s": reads / read_s, "store_at_once": at_once,
            "store_saves_at_once_per_s": saves / many_save_s,
            "store_reads_at_once_per_s": reads / many_read_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=5000)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--at-once", type=int, default=100)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp, profiling(args.profile):
        result = asyncio.run(measure(args.saves, args.people, args.at_once, Path(tmp)))
    emit(result)


if __name__ == "__main__":
    main()
