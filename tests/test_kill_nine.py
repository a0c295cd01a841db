"""kill -9 at random moments of a stream of conversations on both channels (a short run;
``python -m bench.kill_soak`` runs the long one): nothing accepted is lost."""

from __future__ import annotations

from pathlib import Path

from tests.killrig import run


async def test_telegram_loses_nothing_across_kills(tmp_path: Path) -> None:
    outcome = await run("telegram", tmp_path, kills=5, seed=11)
    print(outcome.line())
    assert outcome.lost == [], outcome.line()
    assert outcome.sent >= 30


async def test_signal_loses_only_what_was_in_flight_at_a_kill(tmp_path: Path) -> None:
    outcome = await run("signal", tmp_path, kills=5, seed=13)
    print(outcome.line())
    assert sorted(outcome.lost) == sorted(outcome.lost_in_flight), outcome.line()
    assert outcome.sent >= 30


async def test_on_postgresql_a_kill_loses_nothing_either(tmp_path: Path,
                                                         pg_url: str) -> None:
    """The same stream, the conversations kept in PostgreSQL: a restarted bot takes the
    database's run lock as soon as PostgreSQL has seen the killed one's connection go."""
    outcome = await run("telegram", tmp_path, kills=4, seed=17, database=pg_url)
    print(outcome.line())
    assert outcome.lost == [], outcome.line()
    assert outcome.sent >= 25


async def test_on_postgresql_signal_loses_only_what_was_in_flight(tmp_path: Path,
                                                                  pg_url: str) -> None:
    outcome = await run("signal", tmp_path, kills=4, seed=19, database=pg_url)
    print(outcome.line())
    assert sorted(outcome.lost) == sorted(outcome.lost_in_flight), outcome.line()
    assert outcome.sent >= 25
