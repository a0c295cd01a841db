"""The global commands are enumerated once (``helpline.flow.commands``): the config's
``[commands]``, the engine, the catalogues' command words and Telegram's command menu all
come from that list."""

from __future__ import annotations

from pathlib import Path

from helpline.channels.telegram import COMMANDS as TELEGRAM_MENU
from helpline.config import Commands
from helpline.events import Inbound
from helpline.flow import commands
from helpline.flow.engine import Engine
from helpline.flow.loader import load_flows
from helpline.i18n_check import command_words
from tests.conftest import BASIC_FLOWS, make_settings


def test_config_has_one_setting_per_command_with_its_default_words() -> None:
    settings = Commands()
    assert set(Commands.model_fields) == {*commands.NAMES, "quick_exit_reply"}
    for command in commands.COMMANDS:
        assert getattr(settings, command.name) == list(command.words)


def test_the_catalogues_and_the_telegram_menu_take_the_same_list(tmp_path: Path) -> None:
    assert set(command_words(make_settings(tmp_path))) == set(commands.TRANSLATED)
    assert [name for name, _ in TELEGRAM_MENU] == ["menu", "help", "language", "privacy", "exit"]


def test_every_command_is_known_by_its_words_and_by_its_button() -> None:
    engine = Engine(load_flows(BASIC_FLOWS))
    for command in commands.COMMANDS:
        for word in command.words:
            assert engine.command(Inbound(kind="text", at=0.0, text=word)) == command.name
        pressed = Inbound(kind="button", at=0.0, payload=f"g:{command.button}")
        assert engine.command(pressed) == command.name
    assert engine.command(Inbound(kind="text", at=0.0, text="menus")) is None
