"""The Signal channel's edge: frames past aiohttp's default 4 MB, lone surrogates, odd
types. Each is read or skipped cleanly; the connection stays and later messages go on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpline.channels.clean import clean_id, clean_text
from helpline.events import RawInbound
from tests.conftest import BASIC_FLOWS, make_settings
from tests.test_signal_channel import (  # fixtures: api, make_rig, rig
    GREETING,
    OTHER,
    PERSON,
    Rig,
    RigFactory,
    api,
    make_rig,
    rig,
)


async def test_a_frame_over_4_mb_is_read_and_the_connection_stays(rig: Rig) -> None:
    api = rig.api
    _, frame = api._data_message(PERSON, source_uuid=None, source_name="A", group_id=None,
                                  message="hi")
    frame["envelope"]["dataMessage"]["padding"] = "x" * (5 * 1024 * 1024)
    api.push_envelope(frame)
    await api.wait_for_send(PERSON, 1, timeout=10)
    assert api.sent_texts(PERSON) == [GREETING]
    assert await rig.say("hi", 1, number=OTHER) == [GREETING]
    assert api.ws_connections == 1  # never closed and reopened


async def test_a_lone_surrogate_in_a_saved_answer_is_stored_and_shown_cleaned(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = await make_rig(make_settings(tmp_path, BASIC_FLOWS))
    await rig.say("hi", 1)
    await rig.say("1", 1)
    # The fake writes frames with json.dumps: the surrogate arrives as "\ud800".
    assert await rig.say("Sam\ud800", 1) == ["How old are you?"]
    [thanks] = await rig.say("33", 1)
    assert thanks.startswith("Thanks Sam\ufffd.")
    person = await rig.store.person(rig.pid())
    assert person is not None and person.state.vars["name"] == "Sam\ufffd"


ANY_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=40)
ODD = st.one_of(ANY_TEXT, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                st.lists(st.integers(), max_size=2), st.dictionaries(ANY_TEXT, st.integers(),
                                                                    max_size=2))


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    """A data message frame, any of whose values may be replaced by something odd."""
    frame: dict[str, Any] = {"envelope": {
        "source": PERSON, "sourceNumber": PERSON,
        "sourceUuid": "4d1c7c3e-1f1a-4a55-9b7e-9a2b6c1d0e11", "sourceName": "A",
        "sourceDevice": 1, "timestamp": 1_800_000_000_000,
        "serverReceivedTimestamp": 1_800_000_000_000,
        "serverDeliveredTimestamp": 1_800_000_000_000,
        "dataMessage": {"timestamp": 1_800_000_000_000, "message": draw(ANY_TEXT),
                        "expiresInSeconds": 0, "viewOnce": False}},
        "account": "+10000000000"}
    for key in draw(st.lists(st.sampled_from(
            ["source", "sourceNumber", "sourceUuid", "sourceName", "timestamp", "message"]),
            max_size=3)):
        target = frame["envelope"]["dataMessage"] if key == "message" else frame["envelope"]
        target[key] = draw(ODD)
    return frame


@settings(deadline=None, max_examples=80,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(frame=frames())
@example(frame={"envelope": {
    "source": PERSON, "sourceNumber": PERSON, "sourceUuid": "4d1c7c3e-1f1a-4a55-9b7e-9a2b6c1d0e11",
    "sourceName": "A", "sourceDevice": 1, "timestamp": 5, "serverReceivedTimestamp": 5,
    "serverDeliveredTimestamp": 5, "dataMessage": {
        "timestamp": 5, "message": "hi \ud800 \x00", "expiresInSeconds": 0, "viewOnce": False}},
    "account": "+10000000000"})
async def test_any_frame_is_read_into_a_clean_event_or_skipped(
    rig: Rig, frame: dict[str, Any]
) -> None:
    raw = json.dumps(frame)
    events: list[RawInbound] = []

    async def collect(event: RawInbound) -> None:
        events.append(event)

    handler = rig.channel._on_inbound
    rig.channel._on_inbound = collect
    try:
        await rig.channel._on_frame(raw)  # never raises
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    finally:
        rig.channel._on_inbound = handler
    for event in events:
        event.inbound.text.encode("utf-8")
        event.platform_id.encode("utf-8")
        assert event.inbound.kind in ("text", "unsupported")
    message = frame["envelope"]["dataMessage"]["message"]
    senders = [frame["envelope"][k] for k in ("source", "sourceNumber", "sourceUuid")]
    # A message whose envelope names its sender somewhere (one with no sender at all
    # cannot be answered, nor one whose only sender is no id: a control character, say).
    sender_ok = all(isinstance(k, str) for k in senders) and any(map(clean_id, senders))
    if sender_ok and clean_text(message).strip() \
            and isinstance(frame["envelope"]["timestamp"], int) \
            and isinstance(frame["envelope"]["sourceName"], str):
        assert len(events) == 1  # a readable message is never dropped


_ = (api, make_rig, rig)
