"""Workers together, killed again and again: ``python -m bench.together_soak [--workers 3]
[--kills 24] [--people 10]`` (the long form of ``tests/test_together.py``).

Several ``helpline run`` workers serve one PostgreSQL database at once (a throw-away
cluster, or ``TESTS_POSTGRES_URL``) behind the tests' loopback balancer, Telegram's
webhook delivered by the fake Bot API; a worker is killed with SIGKILL ``--kills`` times
mid-stream (every second kill the leader) and started again at once. Prints what was
lost, the duplicate replies and the replies out of order. Figures in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from tests.postgres import cluster, new_schema
from tests.together import run_together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="helpline-soak-")))
        server = os.environ.get("TESTS_POSTGRES_URL") or stack.enter_context(
            cluster(durable=True))
        url = asyncio.run(new_schema(server))
        outcome = asyncio.run(run_together(tmp, url, workers=args.workers, kills=args.kills,
                                           people=args.people, seed=args.seed,
                                           settle=180.0, leader_every=2))
    print(outcome.line())
    if outcome.lost:
        print("lost:", " ".join(outcome.lost[:50]))


if __name__ == "__main__":
    main()
