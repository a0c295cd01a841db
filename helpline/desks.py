"""Which advocate desks ``helpline run`` puts together (``[console] desk``): the Telegram
desk alone (``helpline.serve`` does it as before), the console alone, or both.

An assembler, like ``helpline.serve``: it joins the relay (``helpline.handoff``), the
Telegram desk and the console, which reach each other only through the ``Desk``
protocol and the features' interface.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from helpline.channels.base import Channel
from helpline.console.both import BothDesks
from helpline.console.desk import ConsoleDesk
from helpline.console.feature import ConsoleFeature, Desking, options
from helpline.feature import Host
from helpline.handoff import install
from helpline.handoff.desk import Desk
from helpline.handoff.relay import SHARE_LABELS
from helpline.store import Store

log = logging.getLogger("helpline.desks")


def install_console_desk(app: Host, store: Store, telegram: Desk | None = None,
                         desk: ConsoleDesk | None = None) -> Desking:
    """The console as the desk, or beside ``telegram`` (both), added to ``app``."""
    console = desk or ConsoleDesk(store, options=options(app.settings))
    relay_desk: Desk = console if telegram is None else BothDesks(
        console, telegram, app.settings.handoff.note_prefix)
    service = install(app, relay_desk)
    app.add(ConsoleFeature(console))
    return Desking(console, app.settings, service.hours, service.canned,
                   service.s.gettext, service.s.repository.directory, SHARE_LABELS,
                   lambda: service.do_not_contact is not None)


def install_desks(app: Host, store: Store, channels: Sequence[Channel]) -> Desking | None:
    """``[console] desk``: "console" or "both" (with the Telegram desk of ``[handoff]``
    when its staff group is set and Telegram runs). None: "telegram"."""
    settings = app.settings
    mode = settings.console.desk
    if not settings.console.enabled or mode == "telegram":
        return None
    telegram: Desk | None = None
    if mode == "both":
        from helpline.channels.telegram import TelegramChannel

        channel = next((c for c in channels if isinstance(c, TelegramChannel)), None)
        if channel is None or not settings.handoff.staff_chat:
            log.warning("[console] desk = both, but the Telegram desk is not set up "
                        "(handoff.staff_chat and Telegram): the console alone")
        else:
            from helpline.handoff.relay import D_CLAIM
            from helpline.handoff.telegram_desk import TelegramDesk

            telegram = TelegramDesk(channel, settings.handoff.staff_chat, D_CLAIM, app.tr,
                                    settings.default_language)
    return install_console_desk(app, store, telegram)
