"""What signal-cli-rest-api answers, as the Signal channel says it (helpline.errors): the
channel over real HTTP against the loopback bridge fake, which answers with the texts of
signal-cli's and the bridge's own sources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from helpline.channels.signal import (
    CHALLENGE_SECONDS,
    RATE_LIMIT_SECONDS,
    SignalChannel,
    SignalOptions,
    bridge_error,
)
from helpline.channels.terminal import numbered
from helpline.errors import ChannelError, RateLimited, Rejected, Unreachable
from helpline.events import Choice, Message, RawInbound, measure
from tests.fakes.signal_cli_api import (
    LIBSIGNAL_429,
    PROOF_REQUIRED,
    RATE_LIMIT_RETRY,
    RATE_LIMITED,
    UNREGISTERED,
    UNREGISTERED_NORMAL_MODE,
    UNTRUSTED,
    UNTRUSTED_NORMAL_MODE,
    FakeSignalAPI,
)

PERSON = "+12025550123"


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalAPI]:
    async with FakeSignalAPI() as fake:
        yield fake


@pytest.fixture
async def channel(api: FakeSignalAPI) -> AsyncIterator[SignalChannel]:
    ch = SignalChannel(SignalOptions(service=api.service, number=api.number,
                                     retry_first_seconds=0.05, retry_max_seconds=0.2,
                                     request_timeout_seconds=2.0))

    async def inbound(raw: RawInbound) -> None:
        return None

    async def ready() -> None:
        return None

    await ch.start(inbound, ready)
    await api.wait_connected()
    yield ch
    await ch.stop()


async def send_error(channel: SignalChannel) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(PERSON, Message("Hello"))
    return caught.value


@pytest.mark.parametrize("error", [UNREGISTERED, UNREGISTERED_NORMAL_MODE])
async def test_an_unregistered_recipient_is_gone(
    api: FakeSignalAPI, channel: SignalChannel, error: str,
) -> None:
    api.fail_sends(1, status=400, error=error)
    found = await send_error(channel)
    assert isinstance(found, Rejected) and found.gone
    assert PERSON not in str(found)  # the bridge quoted the number; the error does not
    assert [c.status for c in api.calls if c.path == "/v2/send"] == [400]


@pytest.mark.parametrize(("status", "error", "extra", "wait"), [
    # json-rpc mode: 429, the challenge tokens attached: a captcha for an admin -> an hour
    (429, RATE_LIMITED, {"challenge_tokens": ["aaaa-bbbb"], "account": "+15550000001"},
     CHALLENGE_SECONDS),
    (429, RATE_LIMITED, {"account": "+15550000001"}, RATE_LIMIT_SECONDS),
    (400, RATE_LIMIT_RETRY, {}, 42.0),  # the wait the text names
    (400, PROOF_REQUIRED, {}, 86400.0),
    (400, LIBSIGNAL_429, {}, RATE_LIMIT_SECONDS),
])
async def test_rate_limits_and_challenges_wait(
    api: FakeSignalAPI, channel: SignalChannel, status: int, error: str,
    extra: dict[str, Any], wait: float,
) -> None:
    api.fail_sends(1, status=status, error=error, extra=extra)
    found = await send_error(channel)
    assert isinstance(found, RateLimited) and found.retry_after == wait


@pytest.mark.parametrize("error", [UNTRUSTED, UNTRUSTED_NORMAL_MODE])
async def test_an_untrusted_identity_waits_for_an_admin(
    api: FakeSignalAPI, channel: SignalChannel, error: str,
) -> None:
    api.fail_sends(1, status=400, error=error)
    assert type(await send_error(channel)) is Unreachable


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_the_bridge_failing_is_unreachable(
    api: FakeSignalAPI, channel: SignalChannel, status: int,
) -> None:
    api.fail_sends(1, status=status)
    assert type(await send_error(channel)) is Unreachable


async def test_a_bridge_that_is_gone_is_unreachable(
    api: FakeSignalAPI, channel: SignalChannel,
) -> None:
    await api.go_down("refuse")
    assert type(await send_error(channel)) is Unreachable
    await api.come_back()
    await api.go_down("http_503")
    assert type(await send_error(channel)) is Unreachable


@pytest.mark.parametrize("error", [
    "Failed to send message",  # json-rpc: every recipient failed, no detail passed on
    "Couldn't process request - invalid request",
    "Invalid recipient type",
])
async def test_any_other_4xx_refuses_only_this_message(
    api: FakeSignalAPI, channel: SignalChannel, error: str,
) -> None:
    api.fail_sends(1, status=400, error=error)
    found = await send_error(channel)
    assert isinstance(found, Rejected) and not found.gone
    assert await channel.send(PERSON, Message("Next")) != []


async def test_remote_deletes_ask_again_only_for_what_may_still_go_through(
    api: FakeSignalAPI, channel: SignalChannel,
) -> None:
    ids = [i for _ in range(3) for i in await channel.send(PERSON, Message("x"))]
    api.fail_deletes(1, status=429, error=RATE_LIMITED)
    api.fail_deletes(1, status=500)
    api.fail_deletes(1, status=400, error=UNREGISTERED)
    again = await channel.delete(PERSON, ids)
    assert len(again) == 2 and set(again) <= set(ids)
    assert await channel.delete(PERSON, again) == []


async def test_timers_raise_what_happened_and_are_kept_to_set_again(
    api: FakeSignalAPI, channel: SignalChannel,
) -> None:
    api.fail_contact_updates(1, status=400, error=UNREGISTERED)
    with pytest.raises(Rejected):
        await channel.set_disappearing(PERSON, 3600)
    api.fail_contact_updates(1, status=503)
    with pytest.raises(Unreachable):
        await channel.set_disappearing(PERSON, 3600)
    await channel.set_disappearing(PERSON, 3600)
    puts = [c for c in api.calls if c.method == "PUT"]
    assert [c.status for c in puts][-3:] == [400, 503, 204]
    assert puts[-1].json_body == {"recipient": PERSON, "expiration_in_seconds": 3600}


def test_bridge_answers_that_are_not_json_are_read_too() -> None:
    assert isinstance(bridge_error(502, b"<html>Bad Gateway</html>"), Unreachable)
    assert isinstance(bridge_error(404, b"404 page not found"), Rejected)
    assert isinstance(bridge_error(400, b"[]"), Rejected)


def test_signal_texts_are_split_by_signal_clis_own_measure() -> None:
    """signal-cli cuts a text past 2,000 UTF-8 bytes (the rest goes as an attachment): the
    channel's parts stay under it, the numbered list included."""
    caps = SignalChannel.capabilities
    text = "Привіт, " * 400  # 3,200 characters, 6,000 bytes
    choices = (Choice("Так", "c:1:0"), Choice("Ні", "c:1:1"))
    parts = caps.fit([Message(text, choices)])
    assert len(parts) >= 3 and all(not p.choices for p in parts[:-1])
    assert parts[-1].choices == choices
    assert all(measure(numbered(p), "utf8") <= 2000 for p in parts)
    assert "".join(p.text for p in parts).replace(" ", "") == text.replace(" ", "")
