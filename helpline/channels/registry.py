"""The channels ``helpline run`` can build, by name: a factory ``(options, services) ->
Channel`` each, and what ``helpline doctor`` asks its platform.

A channel's name is its section of the configuration (``[telegram]``, ``[signal]``); its
options are that section's model (helpline/channels/options.py). ``build_channels`` builds
every channel whose options say it is on. The built-in kinds import their platform library
only when they are built or checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from helpline.channels.base import Channel
from helpline.channels.options import ChannelOptions, SignalOptions, TelegramOptions
from helpline.errors import ConfigError
from helpline.findings import Finding
from helpline.i18n import NullTranslator, Translator

OptionsT = TypeVar("OptionsT", bound=ChannelOptions)


@dataclass(frozen=True)
class ChannelServices:
    """What a channel may be given besides its options."""

    translator: Translator = field(default_factory=NullTranslator)
    # The enabled languages, the default first (a command menu per language).
    languages: tuple[str, ...] = ("en",)
    # The advocate desk's staff group where the channel hosts it (0: none); doctor checks it.
    desk_chat: int = 0


@dataclass(frozen=True)
class ChannelKind(Generic[OptionsT]):
    name: str
    options: type[OptionsT]
    build: Callable[[OptionsT, ChannelServices], Channel]
    check: Callable[[OptionsT, ChannelServices], Awaitable[list[Finding]]] | None = None


_KINDS: dict[str, ChannelKind[Any]] = {}


def register(kind: ChannelKind[Any]) -> None:
    """Make ``kind`` buildable by its name (a later registration of the name replaces it)."""
    _KINDS[kind.name] = kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def kind(name: str) -> ChannelKind[Any] | None:
    return _KINDS.get(name)


def build_channels(options: Mapping[str, ChannelOptions],
                   services: ChannelServices) -> list[Channel]:
    """Every channel whose options are on, in the order of ``options``; ConfigError for
    options that are wrong, or that no registered kind takes."""
    channels: list[Channel] = []
    for name, given in options.items():
        if not given.enabled():
            continue
        found = _KINDS.get(name)
        if found is None or not isinstance(given, found.options):
            raise ConfigError(f"[{name}] is set, but no channel of that name is installed")
        channels.append(found.build(given.checked(), services))
    return channels


async def check_channels(options: Mapping[str, ChannelOptions],
                         services: ChannelServices) -> list[Finding]:
    """What each platform of a channel that is on says (doctor's online checks); options
    that are wrong are skipped here (doctor reports them offline)."""
    found: list[Finding] = []
    for name, given in options.items():
        kind_ = _KINDS.get(name)
        if not given.enabled() or kind_ is None or kind_.check is None:
            continue
        try:
            checked = given.checked()
        except ConfigError:
            continue
        found.extend(await kind_.check(checked, services))
    return found


def switched_on_by(options: Mapping[str, ChannelOptions]) -> str:
    """How an admin turns a channel on: "set X, or Y and Z"."""
    return "set " + ", or ".join(o.switched_on_by for o in options.values() if o.switched_on_by)


# ------------------------------------------------------------------ the built-in channels


def _telegram(options: TelegramOptions, services: ChannelServices) -> Channel:
    from helpline.channels.telegram import TelegramChannel

    return TelegramChannel(options, services.translator, services.languages)


async def _check_telegram(options: TelegramOptions,
                          services: ChannelServices) -> list[Finding]:
    from helpline.channels.telegram_checks import check_telegram

    return await check_telegram(options, services.desk_chat, options.webhook_url)


def _signal(options: SignalOptions, services: ChannelServices) -> Channel:
    from helpline.channels.signal import SignalChannel

    return SignalChannel(options)


async def _check_signal(options: SignalOptions, services: ChannelServices) -> list[Finding]:
    from helpline.channels.signal_checks import check_signal

    return await check_signal(options)


register(ChannelKind("telegram", TelegramOptions, _telegram, _check_telegram))
register(ChannelKind("signal", SignalOptions, _signal, _check_signal))

__all__ = ["ChannelKind", "ChannelServices", "build_channels", "check_channels", "kind",
           "register", "switched_on_by", "unregister"]
