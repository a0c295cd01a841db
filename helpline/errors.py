"""The project's errors: one base, and what a channel says about an operation it was given.

A channel raises exactly one of three things when a platform operation (a send, an edit, a
delete, a timer) does not go through:

* ``Unreachable``: the platform (or the bridge to it) could not be reached or failed in a
  way worth trying again: a network error, a time-out, a 5xx. The operation stays queued
  and is tried again with backoff; what is queued behind it waits, in order.
* ``RateLimited(retry_after)``: the platform asked us to slow down. The operation stays
  queued and is tried again after ``retry_after`` seconds.
* ``Rejected``: the platform said no for good (the bot was blocked, the chat does not exist,
  the text is too long, the request is malformed). The operation ends (counted, logged by
  kind only) and the ones behind it go on. ``gone`` says the recipient can never be reached
  again here (blocked, chat not found, unregistered): their other queued sends end too.

None of them carries message text, an address or anything a platform said about a person:
their messages are fixed phrases chosen by the channel.
"""

from __future__ import annotations


class HelplineError(Exception):
    """The base of every error the project raises on purpose."""


class ConfigError(Exception):
    """A configuration problem, in one line an admin can act on (raised by
    ``helpline.config`` and by a channel's options when they are checked)."""


class ChannelError(HelplineError):
    """A platform operation did not go through (see the subclasses)."""


class Unreachable(ChannelError):
    """The platform could not be reached or failed for now: try again later."""


class RateLimited(ChannelError):
    """The platform asked us to wait ``retry_after`` seconds before trying again.
    ``challenge``: it asks for a proof first (Signal's captcha), with this token for the
    admin to answer it with ("" when it gave none); ``proof``: a proof is asked for."""

    def __init__(self, reason: str, retry_after: float, *, proof: bool = False,
                 challenge: str = "") -> None:
        super().__init__(reason)
        self.retry_after = max(0.0, float(retry_after))
        self.proof = proof or bool(challenge)
        self.challenge = challenge


class Rejected(ChannelError):
    """The platform refused this operation for good; ``gone``: the recipient is gone."""

    def __init__(self, reason: str, gone: bool = False) -> None:
        super().__init__(reason)
        self.gone = gone
