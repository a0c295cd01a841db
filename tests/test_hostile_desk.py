""""delete my data" in the middle of a case also removes the person's words from the desk:
the case's forum topic is deleted with every message in it (deleteForumTopic)."""

from __future__ import annotations

import asyncio

import pytest

from helpline.handoff.relay import desk_key
from tests.telegram_person import CHAT, until
from tests.test_handoff import (  # fixtures: api, start_desk
    ADVOCATE,
    FORUM,
    NOTE,
    Desk,
    Starter,
    api,
    start_desk,
)


def forum_texts(d: Desk) -> list[str]:
    return [str(m.get("text", "")) for m in d.api.messages(FORUM)]


async def erase(d: Desk) -> None:
    [confirm] = await d.person("delete my data")
    assert confirm.startswith("This erases everything stored about you here")
    d.api.person_sends(CHAT, "yes")


async def erased_events(d: Desk) -> list[str]:
    """The case's audit log once the desk has recorded the erase."""
    for _ in range(250):
        events = [e for e, _, _ in await d.service.cases.events(1)]
        if "desk_erased" in events:
            return events
        await asyncio.sleep(0.02)
    raise AssertionError(events)


async def start_case(start_desk: Starter) -> tuple[Desk, int]:
    d = await start_desk()
    await d.request()
    topic = d.topic
    await d.claim(ADVOCATE)
    await d.advocate_to_person("Hello, I'm here")
    await d.person("I'm scared of him", 0)
    await d.advocate("! she mentioned him twice")  # a note between advocates
    assert (await d.topic_gets(3))[2] == "Person: I'm scared of him"
    return d, topic


async def test_delete_my_data_deletes_the_cases_topic_and_every_message_in_it(
    start_desk: Starter,
) -> None:
    d, topic = await start_case(start_desk)
    await erase(d)
    await d.api.wait_for_call("deleteForumTopic")
    call = d.api.calls_to("deleteForumTopic")[-1]
    assert call.params == {"chat_id": FORUM, "message_thread_id": topic}
    await until(lambda: topic not in d.api.topics(FORUM))
    texts = " ".join(forum_texts(d))
    for words in ("I'm scared of him", NOTE, "Hello, I'm here", "she mentioned him"):
        assert words not in texts, words
    assert [m for m in d.api.messages(FORUM) if m.get("message_thread_id") == topic] == []
    events = await erased_events(d)
    assert events[-2:] == ["person_left", "desk_erased"]
    case = await d.service.cases.get(1)
    assert case is not None and case.topic is None and case.pid == "" and not case.summary
    assert await d.app.store.operations() == []


async def test_the_topic_delete_is_retried_until_the_desk_can_do_it(
    start_desk: Starter,
) -> None:
    d, topic = await start_case(start_desk)
    d.api.fail_next("deleteForumTopic", error_code=403,
                    description="Forbidden: bot is not a member of the supergroup chat",
                    times=2)
    await erase(d)
    await until(lambda: len(d.api.calls_to("deleteForumTopic")) >= 1)
    assert topic in d.api.topics(FORUM)  # refused: kept in the outbox
    for _ in range(100):  # what the scheduler does while serving
        await d.app.deliver_pending()
        if topic not in d.api.topics(FORUM):
            break
        await asyncio.sleep(0.05)
    assert len(d.api.calls_to("deleteForumTopic")) == 3
    assert topic not in d.api.topics(FORUM)
    assert "I'm scared of him" not in " ".join(forum_texts(d))
    assert (await erased_events(d))[-1] == "desk_erased"
    assert await d.app.store.operations() == []


async def test_a_delete_telegram_refuses_for_good_is_recorded_not_retried(
    start_desk: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    d, topic = await start_case(start_desk)
    d.api.fail_next("deleteForumTopic", error_code=400,
                    description="Bad Request: TOPIC_DELETE_FORBIDDEN")
    await erase(d)
    await d.api.wait_for_call("deleteForumTopic")
    for _ in range(100):
        if "desk_erase_refused" in [e for e, _, _ in await d.service.cases.events(1)]:
            break
        await asyncio.sleep(0.02)
    assert [e for e, _, _ in await d.service.cases.events(1)][-1] == "desk_erase_refused"
    assert topic in d.api.topics(FORUM)  # what the README says remains
    assert "deleteForumTopic refused (BadRequest); the topic's messages remain" \
        in caplog.messages
    await d.app.deliver_pending(force=True)
    assert len(d.api.calls_to("deleteForumTopic")) == 1
    assert await d.app.store.count_operations("send") == 0


async def test_quick_exit_keeps_the_topic_for_the_advocates(start_desk: Starter) -> None:
    d, topic = await start_case(start_desk)
    d.api.person_sends(CHAT, "exit")
    await until(lambda: d.topic_texts()[-1].startswith("The person left the chat."))
    assert topic in d.api.topics(FORUM)
    assert d.api.calls_to("deleteForumTopic") == []
    assert desk_key(1) == "desk:1"


_ = (api, start_desk)
