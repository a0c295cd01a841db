"""Each channel's options: one pydantic model, which is also the channel's section of the
configuration (``helpline.config.Settings`` composes them; a channel never reads Settings).

A model takes every key its channel has, with the defaults ``helpline run`` uses. An empty
section is a channel that is off; ``checked()`` says, in one line an admin can act on,
what is wrong with one that is on (``ConfigError``), and gives the options as the channel
uses them. Importing this module imports no platform library.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from helpline.digits import is_number
from helpline.errors import ConfigError


class ChannelOptions(BaseModel):
    """What every channel's options say about themselves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # What an admin sets to turn the channel on, for "no channel configured" hints.
    switched_on_by: ClassVar[str] = ""

    def configured(self) -> bool:
        """Whether any key that turns the channel on is set (doctor checks it then)."""
        return False

    def enabled(self) -> bool:
        """Whether the channel runs (``helpline run`` builds it)."""
        return self.configured()

    def checked(self) -> Self:
        """These options as the channel uses them, or ConfigError saying what is wrong."""
        return self


class TelegramOptions(ChannelOptions):
    switched_on_by: ClassVar[str] = "HELPLINE_TELEGRAM_TOKEN"

    token: str = ""
    api_url: str = "https://api.telegram.org"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8443"
    webhook_secret: str = ""
    protect_content: bool = True
    rate_limit: bool = True
    exit_reply_delete_after_seconds: float = Field(5.0, ge=0)
    poll_timeout_seconds: float = Field(30.0, ge=0)
    poll_interval_seconds: float = Field(0.0, ge=0)
    # How long a Bot API call may take before it counts as timed out (PTB's 5 s).
    request_timeout_seconds: float = Field(5.0, gt=0)

    def configured(self) -> bool:
        return bool(self.token)

    def checked(self) -> Self:
        if not self.token or ":" not in self.token:
            raise ConfigError("telegram.token does not look like a bot token (123456:ABC...); "
                              "get one from @BotFather")
        return self.model_copy(update={"api_url": self.api_url.rstrip("/")})


class SignalOptions(ChannelOptions):
    switched_on_by: ClassVar[str] = "HELPLINE_SIGNAL_SERVICE and HELPLINE_SIGNAL_NUMBER"

    service: str = ""  # host:port of signal-cli-rest-api
    number: str = ""  # the bot's registered number
    disappearing_seconds: int = Field(86400, ge=0)  # timer set at first contact (0 = off)
    retry_first_seconds: float = Field(1.0, gt=0)  # bridge reconnect backoff: first wait ...
    retry_max_seconds: float = Field(60.0, gt=0)  # ... doubling up to this
    heartbeat_seconds: float = Field(30.0, gt=0)  # websocket ping (a dead socket is noticed)
    request_timeout_seconds: float = Field(20.0, gt=0)
    exit_reply_delete_after_seconds: float = Field(5.0, ge=0)  # the neutral quick-exit reply

    def configured(self) -> bool:
        return bool(self.service or self.number)

    def enabled(self) -> bool:
        return bool(self.service and self.number)

    def checked(self) -> Self:
        if not (self.service and self.number):
            raise ConfigError("set both HELPLINE_SIGNAL_SERVICE and HELPLINE_SIGNAL_NUMBER "
                              "(or neither)")
        service = self.service.strip().removeprefix("http://").rstrip("/")
        host, _, port = service.rpartition(":")
        if not host or not is_number(port) or "/" in service:
            raise ConfigError("signal.service should be host:port of signal-cli-rest-api, "
                              "like 127.0.0.1:8080 or signal-cli:8080")
        number = self.number.strip()
        if not (number.startswith("+") and is_number(number[1:]) and 8 <= len(number) <= 16):
            raise ConfigError("signal.number should be the bot's registered number in "
                              "international form, like +4915112345678")
        return self.model_copy(update={"service": service, "number": number})


__all__ = ["ChannelOptions", "ConfigError", "SignalOptions", "TelegramOptions"]
