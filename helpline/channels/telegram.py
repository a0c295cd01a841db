"""Telegram through python-telegram-bot. Every PTB import stays in this file.

* Long polling by default; a webhook (PTB's own server, which checks Telegram's secret-token
  header on every request) when ``telegram.webhook_url`` is set.
* One chat's updates are handled in order, different chats concurrently (KeyedSerializer).
* Choices are inline keyboards; a press is answered and becomes a button event. Stale or
  forged data is the engine's business: it re-prompts gently.
* Quick exit deletes both sides of the chat (``deleteMessages``, 100 ids a call, 48 hours).
* Rate limits: AIORateLimiter, which also retries a 429 after its ``retry_after``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Location,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, ExtBot, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from helpline.channels.base import Capabilities, InboundHandler, ReadyHandler, Unreachable
from helpline.channels.ordered import KeyedSerializer
from helpline.config import ConfigError, Settings
from helpline.events import Inbound, InboundKind, Message, RawInbound, split_text
from helpline.i18n import N_, NullTranslator, Translator

log = logging.getLogger("helpline.telegram")

GroupListener = Callable[[Update], Awaitable[None]]

DELETE_BATCH = 100
# The Bot API takes at most 4,096 characters (UTF-16 code units) of text in a message; a
# turn's messages are joined up to a little less, and the app sends a longer text in parts
# (each its own outbox row, so each part's id is kept for quick exit).
MAX_TEXT = 4000
API_MAX_TEXT = 4096
# Bot API requests in flight at once (BoundedRequest). More did not go faster on loopback
# (bench/README.md: 8 gave the most messages a second, 64 a third fewer), and Telegram
# itself takes about 30 messages a second from a bot.
BOT_API_CONNECTIONS = 8

# Neutral descriptions: the command list can be seen by anyone who looks at the phone.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("menu", N_("Show the menu")),
    ("help", N_("Help")),
    ("language", N_("Language")),
    ("exit", N_("Clear this chat")),
)


@dataclass(frozen=True)
class TelegramOptions:
    token: str
    api_url: str = "https://api.telegram.org"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8443"
    webhook_secret: str = ""
    protect_content: bool = True
    exit_reply_delete_after_seconds: float = 5.0
    poll_timeout_seconds: float = 30.0
    poll_interval_seconds: float = 0.0
    languages: tuple[str, ...] = ("en",)
    rate_limit: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramOptions:
        t = settings.telegram
        if not t.token or ":" not in t.token:
            raise ConfigError("telegram.token does not look like a bot token (123456:ABC...); "
                              "get one from @BotFather")
        return cls(token=t.token, api_url=t.api_url.rstrip("/"), webhook_url=t.webhook_url,
                   webhook_listen=t.webhook_listen, webhook_secret=t.webhook_secret,
                   protect_content=t.protect_content,
                   exit_reply_delete_after_seconds=t.exit_reply_delete_after_seconds,
                   poll_timeout_seconds=t.poll_timeout_seconds,
                   languages=tuple(settings.languages), rate_limit=t.rate_limit)


class SafeBot(ExtBot[Any]):
    """An ExtBot whose polling survives an update it cannot read.

    python-telegram-bot parses a whole getUpdates batch at once: one unreadable update fails
    the batch, which is fetched again and again (the queue behind it is blocked), and the
    raw batch, message text included, is logged. Here each update is parsed on its own; one
    that cannot be read becomes an empty Update (so the offset moves past it) and only its
    error type is logged."""

    async def get_updates(  # type: ignore[override]
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: int | None = None,
        allowed_updates: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> tuple[Update, ...]:
        data: dict[str, Any] = {"timeout": timeout, "offset": offset, "limit": limit,
                                "allowed_updates": allowed_updates}
        read_timeout = float(self._request[0].read_timeout or 0) + float(timeout or 0)
        result = await self._post("getUpdates", data, read_timeout=read_timeout)
        updates: list[Update] = []
        for raw in result if isinstance(result, list) else []:
            if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
                log.warning("dropped an update with no id")
                continue
            try:
                update = Update.de_json(raw, self)
            except Exception as exc:
                log.warning("dropped an update that could not be read (%s)", type(exc).__name__)
                update = Update(update_id=raw["update_id"])
            self.insert_callback_data(update)
            updates.append(update)
        return tuple(updates)


class BoundedRequest(HTTPXRequest):
    """An HTTPXRequest that lets at most ``connections`` requests in at once; the rest
    wait their turn here, first come first served.

    Without it, with hundreds of chats in flight, every request went straight into
    httpcore's pool, which re-matches its whole queue of waiting requests against every
    connection each time one finishes (most of the bot's time under load, see
    bench/README.md), and requests that waited there longer than the pool timeout failed."""

    def __init__(self, connections: int) -> None:
        super().__init__(connection_pool_size=connections)
        self._slots = asyncio.Semaphore(connections)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        async with self._slots:
            return await super().do_request(url, method, request_data, read_timeout,
                                            write_timeout, connect_timeout, pool_timeout)


class TelegramChannel:
    name = "telegram"
    capabilities = Capabilities(buttons=True, deletes_inbound=True, delete_window_hours=48,
                                disappearing=False, max_text=MAX_TEXT, split_at=API_MAX_TEXT)

    def __init__(self, options: TelegramOptions, translator: Translator | None = None) -> None:
        self.options = options
        self.tr = translator or NullTranslator()
        bot = SafeBot(
            options.token,
            base_url=f"{options.api_url}/bot",
            base_file_url=f"{options.api_url}/file/bot",
            request=BoundedRequest(BOT_API_CONNECTIONS),
            get_updates_request=HTTPXRequest(connection_pool_size=2),
            rate_limiter=AIORateLimiter(max_retries=5) if options.rate_limit else None,
        )
        # Updates are handled one at a time in arrival order; KeyedSerializer adds the
        # concurrency between chats.
        builder = Application.builder().bot(bot).concurrent_updates(False)
        self.app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.app.add_error_handler(self._on_error)
        self._serial = KeyedSerializer()
        self._on_inbound: InboundHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # One group chat (the advocate desk) whose updates go to a listener, not to the app.
        self._group: tuple[int, GroupListener] | None = None
        self.webhook_secret = options.webhook_secret or secrets.token_urlsafe(32)

    @property
    def exit_reply_delete_after(self) -> float | None:
        delay = self.options.exit_reply_delete_after_seconds
        return delay if delay >= 0 else None

    @classmethod
    def from_settings(cls, settings: Settings, translator: Translator | None = None
                      ) -> TelegramChannel:
        return cls(TelegramOptions.from_settings(settings), translator)

    # ------------------------------------------------------------- lifecycle

    async def start(self, on_inbound: InboundHandler, on_ready: ReadyHandler) -> None:
        self._on_inbound = on_inbound
        await initialize_with_backoff(self.app)  # getMe: waits for Telegram, not for a bad token
        await self._register_commands()
        await self.app.start()
        updater = self.app.updater
        assert updater is not None
        allowed = ["message", "edited_message", "callback_query", "my_chat_member"]
        if self.options.webhook_url:
            host, _, port = self.options.webhook_listen.rpartition(":")
            path = urlsplit(self.options.webhook_url).path.lstrip("/")
            await updater.start_webhook(
                listen=host or "127.0.0.1", port=int(port or 8443), url_path=path,
                webhook_url=self.options.webhook_url, secret_token=self.webhook_secret,
                allowed_updates=allowed,
            )
        else:
            await updater.start_polling(
                poll_interval=self.options.poll_interval_seconds,
                timeout=int(self.options.poll_timeout_seconds),
                allowed_updates=allowed,
                error_callback=self._polling_error,
            )
        await on_ready()

    async def stop(self) -> None:
        updater = self.app.updater
        if updater is not None and updater.running:
            await updater.stop()
        await self._serial.join()
        for task in list(self._tasks):
            task.cancel()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("polling failed (%s); retrying", type(exc).__name__)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("an update failed (%s)", type(context.error).__name__)

    async def _register_commands(self) -> None:
        for lang in self.options.languages:
            commands = [BotCommand(cmd, self.tr.gettext(lang, desc)) for cmd, desc in COMMANDS]
            try:
                await self.app.bot.set_my_commands(
                    commands, language_code=None if lang == self.options.languages[0] else lang)
            except TelegramError as exc:
                log.warning("setMyCommands failed for %s (%s)", lang, type(exc).__name__)

    # ------------------------------------------------------------- inbound

    def listen_to_group(self, chat_id: int, listener: GroupListener) -> None:
        """Hand every update from the group ``chat_id`` to ``listener`` (in order per topic);
        the listener answers callback queries itself. Used by the advocate desk."""
        self._group = (chat_id, listener)

    def _to_group(self, update: Update) -> bool:
        if self._group is None:
            return False
        message = update.effective_message
        chat = update.effective_chat
        if chat is None or chat.id != self._group[0]:
            return False
        listener = self._group[1]
        thread = message.message_thread_id if message is not None else None
        self._serial.submit(f"group:{thread}", lambda: listener(update))
        return True

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Called in arrival order; queues the update behind earlier ones of its chat."""
        if self._to_group(update):
            return
        try:
            event = self._to_inbound(update)
        except Exception as exc:
            log.warning("ignored an update that could not be read (%s)", type(exc).__name__)
            return
        query = update.callback_query
        if query is not None:
            self._spawn(self._answer(query.id))
        if event is None or self._on_inbound is None:
            return
        handler = self._on_inbound
        self._serial.submit(event.address, lambda: handler(event))

    async def _answer(self, query_id: str) -> None:
        try:
            await self.app.bot.answer_callback_query(query_id)
        except TelegramError as exc:
            log.info("answerCallbackQuery failed (%s)", type(exc).__name__)

    def _to_inbound(self, update: Update) -> RawInbound | None:
        query = update.callback_query
        if query is not None:
            chat = query.message.chat if query.message is not None else None
            if chat is None or chat.type != ChatType.PRIVATE:
                return None
            return self._raw(chat.id, Inbound(kind="button", at=0.0, payload=query.data or "",
                                              locale_hint=query.from_user.language_code), None)
        message = update.message
        if message is None:
            # Edits, channel posts, membership changes: ignored by rule (an edit is not a
            # new answer; a blocked bot is noticed by the next failed send).
            return None
        if message.chat.type != ChatType.PRIVATE:
            return None
        user = message.from_user
        hint = user.language_code if user is not None else None
        text = message.text
        kind: InboundKind = "text"
        payload = ""
        if text is None:
            kind, text = "unsupported", ""
        elif text == "/start" or text.startswith("/start "):
            kind, payload, text = "start", text[7:].strip(), ""
        return self._raw(message.chat.id,
                         Inbound(kind=kind, at=0.0, text=text, payload=payload, locale_hint=hint,
                                 location=_point(message.location)),
                         str(message.message_id))

    def _raw(self, chat_id: int, inbound: Inbound, message_id: str | None) -> RawInbound:
        return RawInbound(channel=self.name, platform_id=str(chat_id), address=str(chat_id),
                          inbound=inbound, message_id=message_id)

    # ------------------------------------------------------------- outbound

    async def send(self, address: str, message: Message) -> list[str]:
        markup = None
        if message.choices:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(c.label, callback_data=c.payload[:64])]
                 for c in message.choices]
            )
        # The app already sends a long text in parts (Capabilities.split_at); this guards
        # any other caller.
        parts = split_text(message.text or "…", API_MAX_TEXT)
        ids: list[str] = []
        for index, text in enumerate(parts):
            try:
                sent = await self.app.bot.send_message(
                    chat_id=int(address), text=text,
                    reply_markup=markup if index == len(parts) - 1 else None,
                    protect_content=self.options.protect_content,
                )
            except Forbidden as exc:
                raise Unreachable(type(exc).__name__) from None
            except BadRequest as exc:
                if "chat not found" in str(exc).lower():
                    raise Unreachable("chat not found") from None
                raise
            except RetryAfter:
                raise  # the app keeps it and retries later
            ids.append(str(sent.message_id))
        return ids

    async def delete(self, address: str, message_ids: Sequence[str]) -> list[str]:
        """Delete both sides' messages, 100 a call. Returns the ids of batches Telegram
        could not be reached for (the app asks again later); a batch Telegram refused (too
        old, already gone) is not asked for again."""
        ids = sorted({int(i) for i in message_ids if str(i).isdigit()})
        again: list[str] = []
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start:start + DELETE_BATCH]
            try:
                await self.app.bot.delete_messages(chat_id=int(address), message_ids=batch)
            except BadRequest as exc:  # too old or already gone: nothing more to do
                log.info("deleteMessages failed for a batch (%s)", type(exc).__name__)
            except (NetworkError, RetryAfter) as exc:
                log.info("deleteMessages could not be sent (%s)", type(exc).__name__)
                again.extend(str(i) for i in batch)
            except TelegramError as exc:  # refused (blocked, ...): nothing more to do
                log.info("deleteMessages failed for a batch (%s)", type(exc).__name__)
        return again

    async def on_first_contact(self, address: str) -> None:
        return None

    async def set_disappearing(self, address: str, seconds: int) -> None:
        return None  # bots cannot set a private chat's auto-delete timer

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# getMe at start while the Bot API cannot be reached: first wait, doubling up to the most.
CONNECT_RETRY_FIRST_SECONDS = 1.0
CONNECT_RETRY_MAX_SECONDS = 60.0
TOKEN_REJECTED = ("Telegram rejected the bot token (telegram.token, HELPLINE_TELEGRAM_TOKEN); "
                  "copy it again from @BotFather (/mybots, API Token)")


async def initialize_with_backoff(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """``app.initialize()`` (its ``getMe``) until Telegram answers, as the Signal bridge is
    waited for: an unreachable Bot API is logged in one line and tried again with backoff.
    A token Telegram rejects raises ``Rejected`` at once; its message never holds the
    token (python-telegram-bot's own does)."""
    from telegram.error import InvalidToken

    from helpline.errors import Rejected

    delay = CONNECT_RETRY_FIRST_SECONDS
    while True:
        try:
            await app.initialize()
            return
        except InvalidToken:
            raise Rejected(TOKEN_REJECTED) from None
        except NetworkError as exc:  # also TimedOut; a 5xx from the Bot API
            log.warning("Telegram API is not reachable (%s); trying again in %.1fs",
                        type(exc).__name__, delay)
        except TelegramError as exc:
            raise Rejected(f"Telegram refused getMe ({type(exc).__name__})") from None
        await asyncio.sleep(delay)
        delay = min(delay * 2, CONNECT_RETRY_MAX_SECONDS)


def _point(location: Location | None) -> tuple[float, float] | None:
    """A shared location as (latitude, longitude), kept only in memory for this turn (a live
    location's later updates come as edits, which are ignored)."""
    if location is None:
        return None
    lat, lon = float(location.latitude), float(location.longitude)
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        return None
    return (lat, lon)

