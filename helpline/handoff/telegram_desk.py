"""The advocate desk in a Telegram supergroup with topics, through the bot's own channel.

The bot (an admin of the group, so it sees every message) opens one forum topic per case,
named by the case handle, posts the case card with a Claim button, and relays. Updates from
the group never reach the person pipeline: ``TelegramChannel.listen_to_group`` hands them
here. A helper of ``helpline.channels.telegram``: python-telegram-bot stays in these two.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ExtBot

from helpline import payloads
from helpline.channels.clean import clean_text
from helpline.channels.telegram import (
    API_MAX_TEXT,
    MAX_CALLBACK_ANSWER,
    MAX_TOPIC_NAME,
    TelegramChannel,
    channel_error,
    is_not_modified,
)
from helpline.errors import ChannelError, Rejected, Unreachable
from helpline.events import TextUnit, shorten, split_text
from helpline.handoff.desk import DeskEvent, DeskHandler, DeskUnavailable
from helpline.i18n import NullTranslator, Translator
from helpline.payloads import Kind, encode

if TYPE_CHECKING:
    from helpline.feature import Host
    from helpline.handoff.relay import HandoffService

log = logging.getLogger("helpline.desk")

# What Telegram says (lower case) when the desk group is set up wrongly.
DESK_SETUP = ("chat is not a forum", "not enough rights", "have no rights",
              "chat_admin_required", "need administrator rights")


class TelegramDesk:
    # What one post takes, as Telegram counts it (the relay splits to fit).
    max_text = API_MAX_TEXT
    text_unit: TextUnit = "utf16"

    def __init__(self, channel: TelegramChannel, staff_chat: int, claim_label: str = "Claim",
                 translator: Translator | None = None, locale: str = "en") -> None:
        self.channel = channel
        self.chat = staff_chat
        self.claim_label = (translator or NullTranslator()).gettext(locale, claim_label)
        self._handler: DeskHandler | None = None
        channel.listen_to_group(staff_chat, self._on_update)

    @property
    def bot(self) -> ExtBot[Any]:
        bot: ExtBot[Any] = self.channel.app.bot
        return bot

    def listen(self, handler: DeskHandler) -> None:
        self._handler = handler

    def _markup(self, claim: str | None) -> InlineKeyboardMarkup | None:
        if claim is None:
            return None
        data = self.channel.callback_data(encode(Kind.CLAIM, "claim", claim))
        return InlineKeyboardMarkup([[InlineKeyboardButton(self.claim_label,
                                                           callback_data=data)]])

    async def create_thread(self, name: str) -> str:
        """Open a topic named ``name``, shortened with "…" past Telegram's 128 characters."""
        try:
            topic = await self.bot.create_forum_topic(
                chat_id=self.chat, name=shorten(name.strip() or "…", MAX_TOPIC_NAME))
        except TelegramError as exc:
            raise desk_error(exc) from None
        return str(topic.message_thread_id)

    async def post(self, thread: str, text: str, claim: str | None = None) -> str:
        """Post ``text``; one too long for a message (the relay splits the person's words
        before they are queued, so only a card could be) goes in parts, the Claim button
        on the last, whose id is returned."""
        parts = split_text(text or "…", API_MAX_TEXT)
        sent_id = ""
        for index, part in enumerate(parts):
            try:
                sent = await self.bot.send_message(
                    chat_id=self.chat, message_thread_id=int(thread), text=part,
                    reply_markup=self._markup(claim) if index == len(parts) - 1 else None)
            except TelegramError as exc:
                raise desk_error(exc) from None
            sent_id = str(sent.message_id)
        return sent_id

    async def edit(self, thread: str, message_id: str, text: str, claim: str | None = None
                   ) -> None:
        """Change the card; a card too long for one message keeps its start and ends in
        "…" (its first post had it whole)."""
        try:
            await self.bot.edit_message_text(chat_id=self.chat, message_id=int(message_id),
                                             text=shorten(text or "…", API_MAX_TEXT),
                                             reply_markup=self._markup(claim))
        except TelegramError as exc:
            if not is_not_modified(exc):
                raise desk_error(exc) from None

    async def answer(self, query: str, text: str) -> None:
        try:
            await self.bot.answer_callback_query(
                query, text=shorten(text, MAX_CALLBACK_ANSWER), show_alert=True)
        except TelegramError as exc:
            raise desk_error(exc) from None

    async def close_thread(self, thread: str) -> None:
        try:
            await self.bot.close_forum_topic(chat_id=self.chat, message_thread_id=int(thread))
        except TelegramError as exc:
            error = desk_error(exc)
            if isinstance(error, Rejected):  # already closed, or gone: nothing to do
                log.info("closeForumTopic refused (%s)", type(exc).__name__)
                return
            raise error from None

    async def delete_thread(self, thread: str) -> bool:
        """deleteForumTopic: the topic and all its messages, the person's words, the card
        and the advocates' replies and notes, for everyone in the group. The bot created
        the topic, so it needs no further right."""
        try:
            await self.bot.delete_forum_topic(chat_id=self.chat, message_thread_id=int(thread))
        except TelegramError as exc:
            said = str(exc).lower()
            if "topic_id_invalid" in said or "not found" in said:
                return True  # deleted already (by an admin, or an earlier try)
            error = desk_error(exc)  # not in the group (or not an admin) now: try again later
            if not isinstance(error, Rejected):
                raise DeskUnavailable(type(exc).__name__) from None
            log.warning("deleteForumTopic refused (%s); the topic's messages remain",
                        type(exc).__name__)
            return False
        return True

    async def _on_update(self, update: Update) -> None:
        event = self.event_of(update)
        query = update.callback_query
        if event is None:
            if query is not None:  # a press the desk doesn't know: still answer it
                try:
                    await self.bot.answer_callback_query(query.id)
                except TelegramError as exc:
                    log.info("answerCallbackQuery failed (%s)", type(exc).__name__)
            return
        if self._handler is not None:
            await self._handler(event)

    def event_of(self, update: Update) -> DeskEvent | None:
        """What an update from the staff group means for the desk: an advocate's words in a
        case's topic, or a press of a case's Claim button; None for anything else (the
        bot's own posts, the group's general chat, service messages, other buttons)."""
        query = update.callback_query
        if query is not None:
            message = query.message
            thread = getattr(message, "message_thread_id", None)
            data = self.channel.payload_of(query.data or "")
            if not payloads.is_(data, Kind.CLAIM, "claim") or thread is None:
                return None
            return DeskEvent("claim", str(thread), str(query.from_user.id), query=query.id)
        message = update.message
        if (message is None or message.text is None or message.from_user is None
                or message.from_user.is_bot or not message.is_topic_message
                or message.message_thread_id is None):
            return None
        return DeskEvent("message", str(message.message_thread_id), str(message.from_user.id),
                         text=clean_text(message.text))


def desk_error(exc: TelegramError) -> ChannelError:
    """``channel_error`` for the desk's own group. The group "gone" (the bot kicked or no
    longer an admin, the chat not found) or set up wrongly (not a forum, the bot without
    the right to manage topics or to post) is a setting for an admin to fix, not a person
    who left: what is queued for the desk waits (Unreachable) instead of being dropped."""
    error = channel_error(exc)
    said = exc.message.lower()
    if isinstance(error, Rejected) and (error.gone or any(m in said for m in DESK_SETUP)):
        log.warning("the bot cannot post in the advocate desk group (%s); is it still an "
                    "admin there?", type(exc).__name__)
        return Unreachable("telegram desk: the group refused the bot")
    return error


def install_telegram_desk(app: Host, channel: TelegramChannel) -> HandoffService:
    """The desk in ``handoff.staff_chat``, through ``channel``'s bot, added to ``app``."""
    from helpline.handoff import install
    from helpline.handoff.relay import D_CLAIM

    settings = app.settings
    desk = TelegramDesk(channel, settings.handoff.staff_chat, D_CLAIM, app.tr,
                        settings.default_language)
    return install(app, desk)
