"""The privacy notice, made from the configuration: what this helpline keeps, for how long,
who sees it, and what the platforms themselves keep. The bot shows it for the ``privacy``
command in the person's language; ``helpline privacy-notice`` prints it for the website or
the organisation's records.

Each paragraph is a msgid (translated like every other text) with placeholders filled from
the settings after translation: ``{days}``, ``{hours}``, ``{case_days}``, ``{timer}``, and
``{exit}`` / ``{erase}``, the person's words for quick exit and for "delete my data". A
paragraph is there only when what it says holds for this configuration (the advocate desk,
each platform).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpline.flow.paragraphs import SECONDS, Paragraph
from helpline.i18n import N_

if TYPE_CHECKING:
    from helpline.config import Settings


P_INTRO = N_("How this chat keeps what you tell it:")
P_STORED = N_(
    "Your answers and where you are in the conversation are kept encrypted, under a code "
    "instead of your number or name. They are erased {days} days after your last message, "
    "or at once when you type {erase}.")
P_EXIT = N_(
    "Typing {exit} clears this chat and what is kept of the conversation. So that it can, "
    "the helpline keeps the ids of messages for {hours} hours.")
P_LOGS = N_("Nothing you write goes into the helpline's logs. The helpline sells nothing "
            "and passes nothing on to anyone else.")
P_STATS = N_(
    "The helpline counts how often things happen (a search, a request to talk to a "
    "person) by week, never who did them.")
P_DESK = N_(
    "If you ask to talk to a person, the organisation's advocates read what you write to "
    "them, in the organisation's staff group on Telegram. It stays there until the "
    "organisation deletes it, or you type {erase}. A closed case's record (its code and "
    "what you chose to share, not your messages) is kept for {case_days} days.")
P_CONSOLE = N_(
    "If you ask to talk to a person, the organisation's advocates read what you write to "
    "them on the organisation's own server. It is kept encrypted and removed when the case "
    "closes, or at once when you type {exit} or {erase}. A closed case's record (its code, "
    "not your messages) is kept for {case_days} days.")
P_CONSOLE_KEPT = N_(
    "If you ask to talk to a person, the organisation's advocates read what you write to "
    "them on the organisation's own server. It is kept encrypted and removed {hours} hours "
    "after the case closes, or at once when you type {exit} or {erase}. A closed case's "
    "record (its code, not your messages) is kept for {case_days} days.")
P_TELEGRAM = N_(
    "On Telegram, messages also pass through Telegram's servers, which keep this chat until "
    "it is deleted. The helpline can delete messages from both sides only in the first 48 "
    "hours; to remove older ones, delete the chat in Telegram.")
P_SIGNAL = N_(
    "On Signal, messages are end-to-end encrypted. The helpline can delete only its own "
    "messages, for about a day; to remove yours, delete the chat in Signal.")
P_SIGNAL_TIMER = N_(
    "On Signal, messages are end-to-end encrypted, and new messages in this chat disappear "
    "after {timer}. The helpline can delete only its own messages, for about a day; to "
    "remove yours, delete the chat in Signal.")



def _number(value: float) -> str:
    return f"{value:g}"


def notice(settings: Settings) -> tuple[Paragraph, ...]:
    """The paragraphs that hold for ``settings``, in the order shown."""
    r = settings.retention
    out: list[Paragraph] = [
        (P_INTRO, ()),
        (P_STORED, (("days", _number(r.conversation_days)),)),
        (P_EXIT, (("hours", _number(r.message_id_hours)),)),
    ]
    console = settings.console
    console_desk = console.enabled and console.desk in ("console", "both")
    if (settings.handoff.staff_chat and settings.telegram.token
            and not (console_desk and console.desk == "console")):
        out.append((P_DESK, (("case_days", _number(r.case_days)),)))
    if console_desk:
        keep = console.keep_transcript_hours
        out.append((P_CONSOLE_KEPT, (("hours", _number(keep)),
                                     ("case_days", _number(r.case_days))))
                   if keep > 0 else (P_CONSOLE, (("case_days", _number(r.case_days)),)))
    if settings.telegram.token:
        out.append((P_TELEGRAM, ()))
    if settings.signal.service and settings.signal.number:
        seconds = settings.signal.disappearing_seconds
        if seconds > 0:
            out.append((P_SIGNAL_TIMER, (("timer", f"{SECONDS}{seconds}"),)))
        else:
            out.append((P_SIGNAL, ()))
    if settings.stats.enabled:
        out.append((P_STATS, ()))
    out.append((P_LOGS, ()))
    return tuple(out)


__all__ = ["notice"]
