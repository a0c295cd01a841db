"""The channel kit: a third channel built from the kit alone (tests/minichat.py, its fake on
tests/fakes/loopback.py) runs a real conversation through helpline; the app shapes every
message from the channel's Capabilities; channels are built from the registry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import Field

from helpline.channels import registry
from helpline.channels.base import BaseChannel, Capabilities, Channel
from helpline.channels.options import SignalOptions, TelegramOptions
from helpline.channels.registry import ChannelServices
from helpline.config import ConfigError, Settings, load_settings
from helpline.doctor import check_channels_configured, online_findings
from helpline.events import Choice, Message
from helpline.runtime import open_app
from helpline.serve import build_channels
from tests.conftest import SECRET, make_settings
from tests.fakes.minichat_api import FakeMiniChat
from tests.fakes.signal_cli_api import FakeSignalAPI
from tests.fakes.telegram_bot_api import TOKEN, FakeBotAPI
from tests.minichat import KIND, MiniChatChannel, MiniChatOptions

PERSON = "p-1"
MAIN_MENU = ["I need help right now", "Staying safe", "Find a service (none listed yet)",
             "Talk to a person (not available)", "Check in with me later"]


class MiniChatSettings(Settings):
    """Settings with the new channel's section: the one line a new channel adds there."""

    minichat: MiniChatOptions = Field(default_factory=MiniChatOptions)


@pytest.fixture
def minichat_kind() -> Iterator[None]:
    registry.register(KIND)
    yield
    registry.unregister(KIND.name)


@pytest.fixture
async def fake() -> AsyncIterator[FakeMiniChat]:
    async with FakeMiniChat() as api:
        yield api


def minichat_settings(tmp_path: Path, api: FakeMiniChat) -> MiniChatSettings:
    base = make_settings(tmp_path)
    return MiniChatSettings(**{**base.model_dump(), "minichat": {"api": api.root}})


def numbered(labels: list[str]) -> list[str]:
    return [f"{n}. {label}" for n, label in enumerate(labels, 1)]


async def test_a_new_channel_runs_a_conversation_end_to_end(
        tmp_path: Path, fake: FakeMiniChat, minichat_kind: None) -> None:
    settings = minichat_settings(tmp_path, fake)
    channels = registry.build_channels(settings.channel_options(), ChannelServices())
    assert [type(c) for c in channels] == [MiniChatChannel]
    async with open_app(settings, SECRET, channels) as app:
        await app.start()
        fake.person_says(PERSON, "hello")
        [*_, safe] = await fake.wait_sent(PERSON, 1)
        assert safe.text.endswith("Is it safe for you to talk right now?")
        assert [label for label, _ in safe.buttons] == ["Yes", "Not now"]

        # Five options, and this platform shows three buttons: a numbered list instead.
        fake.person_presses(PERSON, "Yes")
        menu = (await fake.wait_sent(PERSON, 2))[-1]
        assert menu.buttons == []
        assert menu.text.splitlines()[-5:] == numbered(MAIN_MENU)

        # A typed number answers; a label longer than the platform's 16 is cut, and its
        # button still does what it says.
        fake.person_says(PERSON, "1")
        now = (await fake.wait_sent(PERSON, 3))[-1]
        assert "This bot cannot send help or call anyone for you." in now.text
        assert [label for label, _ in now.buttons] == ["Safety tips", "Back to the…"]
        fake.person_presses(PERSON, "Back to the…")
        again = (await fake.wait_sent(PERSON, 4))[-1]
        assert again.text.splitlines()[-5:] == numbered(MAIN_MENU)

        # Quick exit: the bot's messages are deleted on the platform.
        fake.person_says(PERSON, "exit")
        await fake.wait_until(lambda: fake.live(PERSON) == [], what="the chat cleared")
        assert len(fake.sent[PERSON]) == 4
        assert [c.status for c in fake.calls if c.path == "/send"] == [200] * 4
        row = await app.store.person(app.vault.pseudonym("minichat", PERSON))
        assert row is not None and row.state.top is None  # the conversation is forgotten


async def test_one_persons_batch_is_answered_in_order_by_the_app(
        tmp_path: Path, fake: FakeMiniChat, minichat_kind: None) -> None:
    """The channel hands a batch over all at once; the app handles it in order."""
    settings = minichat_settings(tmp_path, fake)
    channels = build_channels(settings)
    async with open_app(settings, SECRET, channels) as app:
        await app.start()
        fake.person_says(PERSON, "hello", "yes", "2")
        sent = await fake.wait_sent(PERSON, 3)
        assert sent[0].text.endswith("Is it safe for you to talk right now?")
        assert sent[1].text.splitlines()[-5:] == numbered(MAIN_MENU)
        assert "What would you like to look at?" in sent[2].text


async def test_a_reply_the_platform_cannot_take_now_is_kept_and_sent_later(
        tmp_path: Path, fake: FakeMiniChat, minichat_kind: None) -> None:
    settings = minichat_settings(tmp_path, fake)
    async with open_app(settings, SECRET, build_channels(settings)) as app:
        await app.start()
        fake.fail_next("/send", 503)
        fake.person_says(PERSON, "hello")
        await fake.wait_until(lambda: any(c.status == 503 for c in fake.calls),
                              what="the refused send")
        [kept] = await app.store.operations(app.vault.pseudonym("minichat", PERSON))
        assert kept.message.text.endswith("Is it safe for you to talk right now?")
        await app.deliver_pending(force=True)  # what the scheduler's sweep does
        [first] = await fake.wait_sent(PERSON, 1)
        assert first.text == kept.message.text
        assert [c.status for c in fake.calls if c.path == "/send"] == [503, 200]


# ------------------------------------------------------------------ Capabilities


def test_choices_are_shaped_from_the_capabilities_alone() -> None:
    caps = Capabilities(buttons=True, max_buttons=2, max_label=6)
    two = Message("Pick", (Choice("Yes", "a"), Choice("Not today", "b")))
    three = Message("Pick", (Choice("A", "1"), Choice("B", "2"), Choice("C", "3")))
    assert caps.shape([two, three]) == [
        Message("Pick", (Choice("Yes", "a"), Choice("Not…", "b"))),
        Message("Pick\n1. A\n2. B\n3. C"),
    ]
    # In UTF-8 bytes "é" counts two: the cut is where the platform measures it.
    bytes_ = Capabilities(buttons=True, max_label=5, text_unit="utf8")
    assert bytes_.label("ééé") == "é…"
    # A channel without buttons shows the list itself; no limits: nothing changes.
    assert Capabilities(buttons=False, max_buttons=1).shape([three]) == [three]
    assert Capabilities(buttons=True).shape([three]) == [three]


def test_the_built_in_channels_describe_themselves() -> None:
    from helpline.channels.signal import SignalChannel
    from helpline.channels.telegram import TelegramChannel

    telegram = TelegramChannel(TelegramOptions(token="123456:T", api_url="http://127.0.0.1:9"))
    signal = SignalChannel(SignalOptions(service="127.0.0.1:9", number="+15550000001"))
    assert telegram.capabilities.max_buttons == 100
    assert not telegram.capabilities.may_write_first
    assert signal.capabilities.may_write_first and not signal.capabilities.buttons
    assert (telegram.first_contact_timer, signal.first_contact_timer) == (0, 86400)


async def test_a_channel_on_the_base_needs_only_a_send() -> None:
    class Echo(BaseChannel):
        name = "echo"

        async def send(self, address: str, message: Message) -> list[str]:
            return ["1"]

    echo: Channel = Echo()  # satisfies the protocol
    assert await echo.delete("a", ["1"]) is None
    await echo.set_disappearing("a", 60)
    assert (echo.exit_reply_delete_after, echo.first_contact_timer) == (None, 0)
    assert await echo.send("a", Message("hi")) == ["1"]


# ------------------------------------------------------------------ registry and options


def test_channels_are_built_from_their_sections(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={
        "telegram": TelegramOptions(token="123456:T", api_url="http://127.0.0.1:9/"),
        "signal": SignalOptions(service="http://127.0.0.1:8080/", number=" +15550000001")})
    telegram, signal = build_channels(settings)
    assert telegram.name == "telegram" and signal.name == "signal"
    assert telegram.options.api_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]
    assert signal.options.service == "127.0.0.1:8080"  # type: ignore[attr-defined]
    assert signal.options.number == "+15550000001"  # type: ignore[attr-defined]


def test_a_section_no_installed_channel_takes_is_one_clear_line(
        tmp_path: Path, fake: FakeMiniChat) -> None:
    settings = minichat_settings(tmp_path, fake)  # the kind is not registered here
    with pytest.raises(ConfigError, match=r"\[minichat\] is set, but no channel"):
        build_channels(settings)


def test_doctor_names_every_channel_that_could_be_turned_on(tmp_path: Path) -> None:
    plain = check_channels_configured(make_settings(tmp_path))
    assert [f.text for f in plain] == [
        "no channel configured; set HELPLINE_TELEGRAM_TOKEN, or HELPLINE_SIGNAL_SERVICE and "
        "HELPLINE_SIGNAL_NUMBER"]
    more = MiniChatSettings(**make_settings(tmp_path).model_dump())
    [finding] = check_channels_configured(more)
    assert finding.text.endswith(", or HELPLINE_MINICHAT_API")


def test_every_channel_option_is_a_setting() -> None:
    settings = load_settings(environ={
        "HELPLINE_LANGUAGES": "en,es",
        "HELPLINE_TELEGRAM_TOKEN": "123456:T", "HELPLINE_TELEGRAM_REQUEST_TIMEOUT_SECONDS": "9",
        "HELPLINE_SIGNAL_SERVICE": "127.0.0.1:8080", "HELPLINE_SIGNAL_NUMBER": "+15550000001",
        "HELPLINE_SIGNAL_HEARTBEAT_SECONDS": "5"})
    telegram, signal = build_channels(settings)
    assert telegram.options.request_timeout_seconds == 9  # type: ignore[attr-defined]
    assert telegram.languages == ("en", "es")  # type: ignore[attr-defined]
    assert signal.options.heartbeat_seconds == 5  # type: ignore[attr-defined]


async def test_doctor_asks_each_channels_platform_through_the_registry() -> None:
    async with FakeBotAPI() as telegram, FakeSignalAPI() as signal:
        settings = load_settings(environ={
            "HELPLINE_TELEGRAM_TOKEN": TOKEN, "HELPLINE_TELEGRAM_API_URL": telegram.root,
            "HELPLINE_SIGNAL_SERVICE": signal.service, "HELPLINE_SIGNAL_NUMBER": signal.number})
        found = await online_findings(settings)
    assert [(f.item, f.level) for f in found] == [
        ("telegram", "ok"), ("telegram webhook", "ok"), ("signal", "ok"), ("signal number", "ok")]
    assert telegram.calls_to("getMe") and any(c.path == "/v1/accounts" for c in signal.calls)
