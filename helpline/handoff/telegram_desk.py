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
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ExtBot

from helpline.channels.clean import clean_text
from helpline.channels.telegram import TelegramChannel
from helpline.handoff.desk import DeskEvent, DeskHandler, DeskUnavailable
from helpline.i18n import NullTranslator, Translator

if TYPE_CHECKING:
    from helpline.app import App
    from helpline.handoff.relay import HandoffService

log = logging.getLogger("helpline.desk")

CLAIM_PREFIX = "hd:claim:"


class TelegramDesk:
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
        return InlineKeyboardMarkup([[InlineKeyboardButton(
            self.claim_label, callback_data=f"{CLAIM_PREFIX}{claim}"[:64])]])

    async def create_thread(self, name: str) -> str:
        try:
            topic = await self.bot.create_forum_topic(chat_id=self.chat, name=name[:128])
        except Forbidden as exc:  # kicked or not an admin: keep everything, retry later
            raise DeskUnavailable(type(exc).__name__) from None
        return str(topic.message_thread_id)

    async def post(self, thread: str, text: str, claim: str | None = None) -> str:
        try:
            sent = await self.bot.send_message(
                chat_id=self.chat, message_thread_id=int(thread), text=text[:4096] or "…",
                reply_markup=self._markup(claim))
        except Forbidden as exc:
            raise DeskUnavailable(type(exc).__name__) from None
        return str(sent.message_id)

    async def edit(self, thread: str, message_id: str, text: str, claim: str | None = None
                   ) -> None:
        try:
            await self.bot.edit_message_text(chat_id=self.chat, message_id=int(message_id),
                                             text=text[:4096], reply_markup=self._markup(claim))
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise

    async def answer(self, query: str, text: str) -> None:
        await self.bot.answer_callback_query(query, text=text[:200], show_alert=True)

    async def close_thread(self, thread: str) -> None:
        try:
            await self.bot.close_forum_topic(chat_id=self.chat, message_thread_id=int(thread))
        except BadRequest as exc:
            log.info("closeForumTopic failed (%s)", type(exc).__name__)

    async def delete_thread(self, thread: str) -> bool:
        """deleteForumTopic: the topic and all its messages, the person's words, the card
        and the advocates' replies and notes, for everyone in the group. The bot created
        the topic, so it needs no further right."""
        try:
            await self.bot.delete_forum_topic(chat_id=self.chat, message_thread_id=int(thread))
        except Forbidden as exc:  # not in the group (or not an admin) now: try again later
            raise DeskUnavailable(type(exc).__name__) from None
        except BadRequest as exc:
            if "topic_id_invalid" in str(exc).lower() or "not found" in str(exc).lower():
                return True  # deleted already (by an admin, or an earlier try)
            log.warning("deleteForumTopic refused (%s); the topic's messages remain",
                        type(exc).__name__)
            return False
        return True

    async def _on_update(self, update: Update) -> None:
        event = self._event(update)
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

    def _event(self, update: Update) -> DeskEvent | None:
        query = update.callback_query
        if query is not None:
            message = query.message
            thread = getattr(message, "message_thread_id", None)
            if not (query.data or "").startswith(CLAIM_PREFIX) or thread is None:
                return None
            return DeskEvent("claim", str(thread), str(query.from_user.id), query=query.id)
        message = update.message
        if (message is None or message.text is None or message.from_user is None
                or message.from_user.is_bot or not message.is_topic_message
                or message.message_thread_id is None):
            return None
        return DeskEvent("message", str(message.message_thread_id), str(message.from_user.id),
                         text=clean_text(message.text))


def install_telegram_desk(app: App, channel: TelegramChannel) -> HandoffService:
    """The desk in ``handoff.staff_chat``, through ``channel``'s bot, wired into ``app``."""
    from helpline.handoff import install
    from helpline.handoff.relay import D_CLAIM

    settings = app.settings
    desk = TelegramDesk(channel, settings.handoff.staff_chat, D_CLAIM, app.tr,
                        settings.default_language)
    return install(app, desk)
