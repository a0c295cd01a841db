"""kill -9 soak: ``python -m bench.kill_soak [--kills N] [--channel telegram|signal]``.

The long form of ``tests/test_kill_nine.py`` (tests/killrig.py): ``helpline run`` on the
loopback fakes, people writing in bursts, the bot killed with SIGKILL at random moments and
started again, N kills per channel (24 by default). Prints, per channel, the messages sent
and answered, what was lost (and how much of it the bridge had written to a socket in the
instant of a kill, which no client can keep), and the duplicate replies. ``--database
postgresql://...`` keeps the bot's data in that (empty) PostgreSQL database instead of a
SQLite file: each channel in a schema of its own, dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path

from tests.killrig import Outcome, run
from tests.postgres import drop_schema, new_schema


async def soak(channels: list[str], kills: int, seed: int, database: str | None = None
               ) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as folder:
        for channel in channels:
            url = None if database is None else await new_schema(database)
            try:
                outcome = await run(channel, Path(folder) / channel, kills=kills, seed=seed,
                                    database=url)
            finally:
                if database is not None and url is not None:
                    await drop_schema(database, url)
            print(("postgresql " if url else "") + outcome.line(), flush=True)
            outcomes.append(outcome)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--channel", choices=["telegram", "signal"], action="append")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database", metavar="postgresql://...",
                        help="keep the bot's data in PostgreSQL (the tests' server: "
                        "tests/postgres.py)")
    args = parser.parse_args()
    # The fakes' servers see every kill as a request cut off: not news here.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    asyncio.run(soak(args.channel or ["telegram", "signal"], args.kills, args.seed,
                     args.database))


if __name__ == "__main__":
    main()
