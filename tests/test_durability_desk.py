"""The desk's updates go through the inbox too (tests/test_durability.py for the rest)."""

from __future__ import annotations

from tests.conftest import eventually
from tests.telegram_person import until
from tests.test_durability import crash_every_turn, unprocessed
from tests.test_handoff import (  # fixtures: api, start_desk
    ADVOCATE,
    FORUM,
    Starter,
    api,
    start_desk,
    stop,
)

__all__ = ["api", "start_desk"]  # fixtures used by name


async def test_an_advocates_reply_fetched_before_a_crash_reaches_the_person(
        start_desk: Starter) -> None:
    """The desk's updates go through the inbox too: what an advocate wrote in the case's
    topic is relayed after a restart although Telegram was told the bot had it."""
    d = await start_desk()
    await d.request()
    assert await d.claim(ADVOCATE) == "You have this case."
    await until(lambda: "An advocate has joined. They can read what you write here."
                in d.person_texts())
    crash_every_turn(d.app)
    d.api.person_sends(FORUM, "We can talk this evening.", user_id=ADVOCATE,
                       message_thread_id=d.topic)
    await d.api.wait_confirmed()
    await eventually(lambda: unprocessed(d.app), 1)
    await stop(d.app)
    assert "Advocate: We can talk this evening." not in d.person_texts()

    again = await start_desk()
    await until(lambda: "Advocate: We can talk this evening." in again.person_texts())
    await eventually(lambda: unprocessed(again.app), 0)
