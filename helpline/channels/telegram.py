"""Telegram through python-telegram-bot. Every PTB import stays in this file.

* Long polling by default; a webhook (our own aiohttp endpoint, which checks Telegram's
  secret-token header on every request in constant time) when ``telegram.webhook_url`` is
  set.
* Nothing is acknowledged before it is written down. Polling: the updates a getUpdates call
  fetched go to the app's inbox (one commit) before that call returns to
  python-telegram-bot, whose next getUpdates is what confirms them to Telegram. Webhook: an
  update is written down before the HTTP 200. The app handles one person's updates in
  order, different people concurrently; the desk's group updates go to the inbox too, and
  are handled in order per topic.
* Choices are inline keyboards; a press is answered and becomes a button event. Stale or
  forged data is the engine's business: it re-prompts gently.
* Quick exit deletes both sides of the chat (``deleteMessages``, 100 ids a call, 48 hours).
* Rate limits: AIORateLimiter, which also retries a 429 after its ``retry_after``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dtm
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Location,
    Update,
    User,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, ExtBot, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from helpline.channels.base import BaseChannel, Capabilities, InboundHandler, ReadyHandler
from helpline.channels.clean import clean_hint, clean_id, clean_payload, clean_text
from helpline.channels.options import TelegramOptions as TelegramOptions
from helpline.digits import is_number
from helpline.errors import ChannelError, RateLimited, Rejected, Unreachable
from helpline.events import Inbound, InboundKind, Message, RawInbound, split_text
from helpline.flow import commands
from helpline.i18n import NullTranslator, Translator
from helpline.logsafe import log_exception

log = logging.getLogger("helpline.telegram")
# "/start", "/start payload" and "/start@AnyBot payload" (a deep link, or the menu's /start).
_START = re.compile(r"/start(?:@\w+)?(?:\s+(.*))?", re.DOTALL)

GroupListener = Callable[[Update], Awaitable[None]]
FetchedHandler = Callable[[Sequence[Update]], Awaitable[None]]
# The most a webhook request may carry (Telegram's updates are far smaller).
WEBHOOK_MAX_BYTES = 1 << 20
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

DELETE_BATCH = 100
# The Bot API takes at most 4,096 characters (UTF-16 code units) of text in a message; a
# turn's messages are joined up to a little less, and the app sends a longer text in parts
# (each its own queued operation, so each part's id is kept for quick exit).
MAX_TEXT = 4000
API_MAX_TEXT = 4096
# Callback data: 1-64 bytes (UTF-8). Longer payloads go as a digest (see callback_data).
MAX_CALLBACK_BYTES = 64
DIGEST_PREFIX = "#"
# An inline keyboard: at most 100 buttons.
MAX_BUTTONS = 100
KNOWN_DIGESTS = 10_000
# An answer to a button press (the little pop-up) takes at most 200 characters.
MAX_CALLBACK_ANSWER = 200
# Forum topic names: 1-128 characters.
MAX_TOPIC_NAME = 128
# A 429 without a number (the rate limiter gave up, or a proxy said it): wait this long.
DEFAULT_RETRY_AFTER = 5.0

# What a 400 says when the chat is gone for good (Bot API descriptions, lower case; PTB
# strips "Bad Request: " and capitalises the rest).
GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated",
        "bot was blocked", "bot was kicked", "chat was deleted", "group chat was deactivated",
        "bot can't initiate conversation", "bot can't send messages to bots")
# Known 400s, for the log only (the reason of a Rejected); any other 400 is "bad request".
KNOWN_BAD = ("message is too long", "message text is empty", "text must be non-empty",
             "button_data_invalid", "message thread not found", "topic_closed",
             "topic_id_invalid", "topic_title_too_long", "topic_title_empty",
             "message to edit not found", "message can't be edited", "message_too_long",
             "can't parse entities", "not enough rights", "have no rights",
             "query is too old", "message to delete not found", "message can't be deleted",
             "topic_not_modified", "text must be encoded in utf-8", "strings must be encoded")


def channel_error(exc: TelegramError) -> ChannelError:
    """What python-telegram-bot's ``exc`` means for the operation (helpline.errors).

    PTB turns the HTTP status into the type (request/_baserequest.py): 403 Forbidden (the
    bot was blocked or kicked, the user is deactivated): the chat is gone for good; 400
    BadRequest: this request is refused, and the chat is gone too when it says "chat not
    found" and the like; any answer with ``parameters.retry_after`` RetryAfter: wait;
    TimedOut, NetworkError (a 5xx, a transport error), InvalidToken (401/404), Conflict
    (409), ChatMigrated and anything else: try again later. The reason is a fixed phrase,
    never Telegram's description."""
    if isinstance(exc, RetryAfter):
        return RateLimited("telegram asked to wait", _seconds(exc))
    if isinstance(exc, Forbidden):
        return Rejected("telegram: forbidden", gone=True)
    if isinstance(exc, BadRequest):  # a NetworkError subclass: before the catch-all
        said = exc.message.lower()
        for marker in GONE:
            if marker in said:
                return Rejected(f"telegram: {marker}", gone=True)
        for marker in KNOWN_BAD:
            if marker in said:
                return Rejected(f"telegram: {marker}")
        return Rejected("telegram: bad request")
    return Unreachable(f"telegram: {type(exc).__name__}")


def is_not_modified(exc: TelegramError) -> bool:
    """An edit that changed nothing: Telegram says 400 "message is not modified"."""
    return isinstance(exc, BadRequest) and "not modified" in exc.message.lower()


def _seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int (with a deprecation warning) or, with
    PTB_TIMEDELTA set, a timedelta in PTB 22: both read as seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def callback_data(payload: str) -> str:
    """``payload`` as Telegram takes it: as is when it is 1-64 bytes, else a digest of it
    (``#`` and 43 characters) that ``TelegramChannel`` maps back when the button is
    pressed. Never cut: a cut payload would be another button's, or none."""
    raw = payload.encode("utf-8", "surrogatepass")
    if 0 < len(raw) <= MAX_CALLBACK_BYTES and not payload.startswith(DIGEST_PREFIX):
        return payload
    digest = hashlib.sha256(raw).digest()
    return DIGEST_PREFIX + _b64(digest)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


# Bot API requests in flight at once (BoundedRequest). More did not go faster on loopback
# (bench/README.md: 8 gave the most messages a second, 64 a third fewer), and Telegram
# itself takes about 30 messages a second from a bot.
BOT_API_CONNECTIONS = 8

# Neutral descriptions: the command list can be seen by anyone who looks at the phone.
COMMANDS: list[tuple[str, str]] = commands.menu_entries()


class SafeBot(ExtBot[Any]):
    """An ExtBot whose polling survives an update it cannot read.

    python-telegram-bot parses a whole getUpdates batch at once: one unreadable update fails
    the batch, which is fetched again and again (the queue behind it is blocked), and the
    raw batch, message text included, is logged. Here each update is parsed on its own; one
    that cannot be read becomes an empty Update (so the offset moves past it) and only its
    error type is logged.

    ``on_fetched`` (set by the channel) is awaited with every batch before it is returned:
    python-telegram-bot confirms a batch to Telegram with its next getUpdates, so what was
    fetched is written down before it can be confirmed. If writing fails, the call fails
    (as a NetworkError, which python-telegram-bot retries with the same offset)."""

    __slots__ = ("_on_fetched",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_fetched: FetchedHandler | None = None

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
        if self._on_fetched is not None and updates:
            try:
                await self._on_fetched(updates)
            except Exception as exc:
                raise NetworkError(f"fetched updates could not be written down "
                                   f"({type(exc).__name__})") from None
        return tuple(updates)


class BoundedRequest(HTTPXRequest):
    """An HTTPXRequest that lets at most ``connections`` requests in at once; the rest
    wait their turn here, first come first served.

    Without it, with hundreds of chats in flight, every request went straight into
    httpcore's pool, which re-matches its whole queue of waiting requests against every
    connection each time one finishes (most of the bot's time under load, see
    bench/README.md), and requests that waited there longer than the pool timeout failed."""

    def __init__(self, connections: int, timeout: float = 5.0) -> None:
        super().__init__(connection_pool_size=connections, read_timeout=timeout,
                         write_timeout=timeout, connect_timeout=timeout)
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


class TelegramChannel(BaseChannel):
    name = "telegram"
    # A bot may write only to someone who started it; an inline keyboard takes at most
    # MAX_BUTTONS buttons (more would be refused: they go as a numbered list instead).
    capabilities = Capabilities(buttons=True, deletes_inbound=True, delete_window_hours=48,
                                disappearing=False, max_text=MAX_TEXT, split_at=API_MAX_TEXT,
                                max_buttons=MAX_BUTTONS, may_write_first=False)

    def __init__(self, options: TelegramOptions, translator: Translator | None = None,
                 languages: Sequence[str] = ("en",)) -> None:
        self.options = options
        self.tr = translator or NullTranslator()
        # The command menu's languages, the default first.
        self.languages = tuple(languages) or ("en",)
        bot = SafeBot(
            options.token,
            base_url=f"{options.api_url}/bot",
            base_file_url=f"{options.api_url}/file/bot",
            request=BoundedRequest(BOT_API_CONNECTIONS, options.request_timeout_seconds),
            get_updates_request=HTTPXRequest(connection_pool_size=2),
            rate_limiter=AIORateLimiter(max_retries=5) if options.rate_limit else None,
        )
        # Every update goes to the app's inbox as it is fetched (see SafeBot); the app adds
        # the order per chat and the concurrency between chats.
        builder = Application.builder().bot(bot).concurrent_updates(False)
        self.app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.app.add_error_handler(self._on_error)
        self._on_inbound: InboundHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # One group chat (the advocate desk) whose updates go to a listener, not to the app.
        self._group: tuple[int, GroupListener] | None = None
        self.webhook_secret = options.webhook_secret or secrets.token_urlsafe(32)
        self._webhook: web.AppRunner | None = None
        bot._on_fetched = self._fetched
        # Payloads too long for callback data, by the digest sent instead (the newest kept;
        # a press of an older one after a restart is a stale press: the engine re-prompts).
        self._digests: OrderedDict[str, str] = OrderedDict()

    @property
    def receives_anywhere(self) -> bool:
        """With a webhook, any of several workers takes Telegram's requests (behind a load
        balancer); polling is for one worker alone."""
        return bool(self.options.webhook_url)

    @property
    def exit_reply_delete_after(self) -> float | None:
        delay = self.options.exit_reply_delete_after_seconds
        return delay if delay >= 0 else None

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
            await self._serve_webhook()
            await self.app.bot.set_webhook(url=self.options.webhook_url,
                                           secret_token=self.webhook_secret,
                                           allowed_updates=allowed)
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
        runner, self._webhook = self._webhook, None
        if runner is not None:
            await runner.cleanup()
        for task in list(self._tasks):
            task.cancel()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("polling failed (%s); retrying", type(exc).__name__)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.error is not None:
            log_exception(log, "an update failed", context.error)

    async def _register_commands(self) -> None:
        for lang in self.languages:
            commands = [BotCommand(cmd, self.tr.gettext(lang, desc)) for cmd, desc in COMMANDS]
            try:
                await self.app.bot.set_my_commands(
                    commands, language_code=None if lang == self.languages[0] else lang)
            except TelegramError as exc:
                log.warning("setMyCommands failed for %s (%s)", lang, type(exc).__name__)

    # ------------------------------------------------------------- inbound

    def listen_to_group(self, chat_id: int, listener: GroupListener) -> None:
        """Hand every update from the group ``chat_id`` to ``listener`` (in order per topic);
        the listener answers callback queries itself. Used by the advocate desk."""
        self._group = (chat_id, listener)

    def _desk_event(self, update: Update) -> RawInbound:
        """A desk update as an inbox event: written down like a person's, and handled in
        order per topic (the key names the topic, never a person)."""
        assert self._group is not None
        message = update.effective_message
        thread = message.message_thread_id if message is not None else None
        return RawInbound(channel=self.name, platform_id=f"desk:{self._group[0]}:{thread}",
                          address="", inbound=Inbound(kind="desk", at=0.0,
                                                      payload=json.dumps(update.to_dict())),
                          event_id=str(update.update_id))

    async def replay_desk(self, payload: str) -> None:
        """Hand a desk update the app took from the inbox to the desk's listener."""
        if self._group is None:
            return
        update = Update.de_json(json.loads(payload), self.app.bot)
        await self._group[1](update)

    def _is_group(self, update: Update) -> bool:
        chat = update.effective_chat
        return self._group is not None and chat is not None and chat.id == self._group[0]

    async def _fetched(self, updates: Sequence[Update]) -> None:
        """Hand every update of a batch to the app and wait until all are written down (one
        commit): a person's, and the desk's (an advocate's words are kept as well)."""
        handler = self._on_inbound
        accepted: list[Awaitable[None]] = []
        for update in updates:
            if self._is_group(update):
                if handler is not None:
                    accepted.append(handler(self._desk_event(update)))
                continue
            try:
                event = self._to_inbound(update)
            except Exception as exc:
                log.warning("ignored an update that could not be read (%s)",
                            type(exc).__name__)
                continue
            query = update.callback_query
            if query is not None:
                self._spawn(self._answer(query.id))
            if event is not None and handler is not None:
                accepted.append(handler(event))
        if accepted:
            await asyncio.gather(*accepted)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Nothing to do: every update went to the app's inbox when it was fetched."""

    async def _serve_webhook(self) -> None:
        host, _, port = self.options.webhook_listen.rpartition(":")
        path = "/" + urlsplit(self.options.webhook_url).path.lstrip("/")
        server = web.Application(client_max_size=WEBHOOK_MAX_BYTES)
        server.router.add_post(path, self._on_webhook)
        runner = web.AppRunner(server, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host or "127.0.0.1", int(port or 8443)).start()
        self._webhook = runner

    async def _on_webhook(self, request: web.Request) -> web.Response:
        """One update from Telegram: 200 only once it is written down (or is garbage that
        sending again would not mend); 403 for a wrong secret; 500 makes Telegram retry."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            return web.Response(status=403)
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, self.app.bot)
        except Exception as exc:
            log.warning("dropped a webhook update that could not be read (%s)",
                        type(exc).__name__)
            return web.Response(status=200)
        try:
            await self._fetched([update])
        except Exception as exc:
            log.error("a webhook update could not be written down (%s)", type(exc).__name__)
            return web.Response(status=500)
        return web.Response(status=200)

    async def _answer(self, query_id: str) -> None:
        try:
            await self.app.bot.answer_callback_query(query_id)
        except TelegramError as exc:
            log.info("answerCallbackQuery failed (%s)", type(exc).__name__)

    def _to_inbound(self, update: Update) -> RawInbound | None:
        """The event an update is, with every value cleaned (helpline/channels/clean.py):
        a number where text belongs, a lone surrogate or a huge text never reaches the app."""
        query = update.callback_query
        if query is not None:
            chat = query.message.chat if query.message is not None else None
            if chat is None or chat.type != ChatType.PRIVATE:
                return None
            presser: User | None = query.from_user
            return self._raw(chat.id, Inbound(
                kind="button", at=0.0, payload=self.payload_of(clean_payload(query.data)),
                locale_hint=clean_hint(presser.language_code if presser else None)), None,
                update.update_id)
        message = update.message
        if message is None:
            # Edits, channel posts, membership changes: ignored by rule (an edit is not a
            # new answer; a blocked bot is noticed by the next failed send).
            return None
        if message.chat.type != ChatType.PRIVATE:
            return None
        user = message.from_user
        hint = clean_hint(user.language_code if user is not None else None)
        raw_text = message.text
        text = clean_text(raw_text)
        kind: InboundKind = "text"
        payload = ""
        if not isinstance(raw_text, str):
            kind, text = "unsupported", ""
        elif (start := _START.fullmatch(text)) is not None:  # "/start x", "/start@Bot x"
            kind, payload, text = "start", clean_payload((start.group(1) or "").strip()), ""
        return self._raw(message.chat.id,
                         Inbound(kind=kind, at=0.0, text=text, payload=payload, locale_hint=hint,
                                 location=_point(message.location)),
                         clean_id(message.message_id), update.update_id)

    def _raw(self, chat_id: object, inbound: Inbound, message_id: str | None,
             update_id: object) -> RawInbound | None:
        chat = clean_id(chat_id)
        if chat is None:
            return None
        return RawInbound(channel=self.name, platform_id=chat, address=chat,
                          inbound=inbound, message_id=message_id, event_id=clean_id(update_id))

    # ------------------------------------------------------------- outbound

    def callback_data(self, payload: str) -> str:
        """The callback data for a button carrying ``payload`` (see ``callback_data``); a
        digest is remembered so that a press gives the payload back."""
        data = callback_data(payload)
        if data != payload:
            self._digests[data] = payload
            self._digests.move_to_end(data)
            while len(self._digests) > KNOWN_DIGESTS:
                self._digests.popitem(last=False)
        return data

    def payload_of(self, data: str) -> str:
        """The payload a press's callback data stands for (unknown digests stay as they
        are: the engine takes them as a stale press)."""
        if data.startswith(DIGEST_PREFIX):
            return self._digests.get(data, data)
        return data

    async def send(self, address: str, message: Message) -> list[str]:
        """Raises helpline.errors (see ``channel_error``) when Telegram does not take it."""
        markup = None
        if message.choices:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(c.label, callback_data=self.callback_data(c.payload))]
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
            except TelegramError as exc:
                raise channel_error(exc) from None
            ids.append(str(sent.message_id))
        return ids

    async def delete(self, address: str, message_ids: Sequence[str]) -> list[str]:
        """Delete both sides' messages, 100 a call. Returns the ids of batches worth asking
        for again (Telegram could not be reached, or asked us to wait); a batch Telegram
        refused (too old, already gone, the chat is gone) is not asked for again."""
        ids = sorted({int(i) for i in message_ids if is_number(str(i))})
        again: list[str] = []
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start:start + DELETE_BATCH]
            try:
                await self.app.bot.delete_messages(chat_id=int(address), message_ids=batch)
            except TelegramError as exc:
                error = channel_error(exc)
                if isinstance(error, Rejected):  # nothing more to do
                    log.info("deleteMessages refused a batch (%s)", type(exc).__name__)
                else:
                    log.info("deleteMessages could not be sent (%s)", type(exc).__name__)
                    again.extend(str(i) for i in batch)
            except Exception as exc:  # a bug: keep the ids, say where
                log_exception(log, "deleteMessages failed", exc)
                again.extend(str(i) for i in batch)
        return again

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
    try:
        lat, lon = float(location.latitude), float(location.longitude)
    except (TypeError, ValueError, OverflowError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        return None
    return (lat, lon)

