"""Three workers on one PostgreSQL database; the serving one killed mid-stream, three
times: nothing lost, each person's replies in order, another worker serving within 10 s."""

from __future__ import annotations

from pathlib import Path

from tests.failover import run_failover


async def test_three_workers_the_serving_one_killed_lose_nothing(tmp_path: Path,
                                                                  pg_url: str) -> None:
    outcome = await run_failover(tmp_path, pg_url, workers=3, kills=3)
    print(outcome.line())
    assert outcome.lost == [], outcome.line()
    assert outcome.out_of_order == 0, outcome.line()
    assert outcome.sent >= 60 and len(outcome.takeovers) == 3
    assert max(outcome.takeovers) < 10.0, outcome.line()
