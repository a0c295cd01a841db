"""Loopback fake of the Telegram Bot API server.

The REAL python-telegram-bot (22.8) client talks to it over real HTTP on 127.0.0.1,
so integration tests exercise PTB's wire code, not a mock of it. Nothing here ever
binds or connects to a non-loopback address (``push_webhook`` refuses other hosts).

Point a client at it with::

    async with FakeBotAPI() as api:
        app = (ApplicationBuilder().token(TOKEN).base_url(api.base_url)
               .base_file_url(api.base_file_url).build())

What PTB 22.8 does on the wire (read from its source, checked by
``tests/test_fake_telegram_api.py``)
=====================================================================

* Every Bot API method is ``POST {base_url}{token}/{method}`` -- ``base_url`` is
  ``"https://api.telegram.org/bot"`` and the token is simply appended (or substituted
  for ``{token}`` if the string contains it). ``getMe`` included; GET is only used
  for file downloads.
* The body is ``application/x-www-form-urlencoded`` (httpx ``data=``) or, as soon as
  a file is uploaded, ``multipart/form-data``. PTB never sends JSON bodies. Each field
  is ``RequestParameter.json_value``: ``str`` values go as-is, EVERYTHING ELSE is
  ``json.dumps``-ed (ints ``"42"``, bools ``"true"``, markups/lists as JSON). So on the
  wire the text ``"42"`` and the int ``42`` look identical; the fake keeps known
  text-like fields (``text``, ``caption``, ``callback_query_id``, ``name`` ...) as
  strings and JSON-decodes the rest. ``None`` values are dropped, never sent. Datetimes
  become Unix timestamps, timedeltas whole seconds (``timeout=timedelta(seconds=1)``
  is sent as ``"1"``). ``Call.raw`` keeps the undecoded strings.
* A 2xx answer must be JSON; PTB returns ``body["result"]`` and ignores ``ok``. For a
  non-2xx answer PTB maps the HTTP STATUS (not ``error_code``): 400 BadRequest,
  401/404 InvalidToken, 403 Forbidden, 409 Conflict, anything else NetworkError --
  BUT if ``parameters.retry_after`` is truthy it raises ``RetryAfter`` whatever the
  status (and ``parameters.migrate_to_chat_id`` -> ``ChatMigrated``). So
  ``retry_after=0`` does NOT give RetryAfter; the fake only sends ``retry_after`` for
  429s. The ``description`` becomes the exception message.
* ``RetryAfter(...)`` warns (PTBDeprecationWarning) on construction unless
  ``PTB_TIMEDELTA=true`` is in the environment; then ``.retry_after`` is a timedelta.
* ``Application.initialize()`` -> ``getMe`` only. ``Updater.start_polling()`` ->
  ``deleteWebhook`` (``drop_pending_updates`` only sent when truthy) and then a loop of
  ``getUpdates(offset, timeout, allowed_updates)`` on a separate HTTP client; the
  first offset is ``0``. The offset advances to ``last update_id + 1`` only after the
  batch parses: if ``Update.de_list`` raises on a malformed update PTB logs CRITICAL,
  does not advance, and fetches the same batch again forever (a poison update).
  Unknown update types parse fine (into ``api_kwargs``).
* Poll errors: ``RetryAfter`` -> sleep ``retry_after + 0.5`` s; ``TimedOut`` -> retry at
  once; any other TelegramError (e.g. the 502s of ``set_down``) -> back off 1 s, then
  x1.5 per failure up to 30 s. After a long outage the bot can need up to 30 s to
  notice the fake is back.
* ``Updater.stop()`` cancels the in-flight long poll (the client just drops the
  connection; aiohttp lets the handler run on) and calls ``getUpdates`` once more with
  ``timeout=0`` to confirm what it fetched.
* ``Updater.start_webhook(...)`` calls ``setWebhook`` (``max_connections=40``,
  ``secret_token``, ``allowed_updates``) and runs a tornado server that answers 403
  unless ``Content-Type`` is EXACTLY ``application/json`` and the
  ``X-Telegram-Bot-Api-Secret-Token`` header matches; ``push_webhook`` sends exactly that.

What the fake models (and real Telegram does too)
=================================================

* Updates stay queued until confirmed by a later ``getUpdates`` offset (a negative
  offset keeps only the last N); ``getUpdates`` answers as soon as something is queued
  or after ``min(timeout, long_poll_cap)`` seconds. ``allowed_updates`` is ignored.
  ``getUpdates`` while a webhook is set -> 409; a second concurrent ``getUpdates``
  ends the first one with 409 "terminated by other getUpdates request".
* Message ids are per chat and shared by both sides; every message either side sends
  is kept until deleted, so ``live_message_ids`` shows what the person still sees.
  Bots may delete messages younger than 48 h (``clock``-based).
* ``editMessageText``/``editMessageReplyMarkup`` with no change -> 400 "message is not
  modified"; unknown message -> 400 "message to edit not found".
* ``answerCallbackQuery`` for an unknown or already answered id -> 400 "query is too old".
* Sending into a forum topic that does not exist -> 400 "message thread not found".
* Limits as Telegram measures them: a text (``sendMessage``, ``editMessageText``) of more
  than 4,096 UTF-16 code units (after entity parsing; plain text here) -> 400 "message is
  too long"; an inline button's ``callback_data`` outside 1..64 UTF-8 bytes -> 400
  "BUTTON_DATA_INVALID"; a topic name outside 1..128 characters -> 400
  "TOPIC_TITLE_EMPTY"/"TOPIC_TITLE_TOO_LONG"; a callback answer over 200 characters ->
  400 "MESSAGE_TOO_LONG".
* ``stall_next`` holds a method's answer back (a client time-out: PTB's ``TimedOut``).
* ``setWebhook`` ``secret_token`` must match ``[A-Za-z0-9_-]{1,256}``; commands must match
  ``[a-z0-9_]{1,32}`` with a 1..256 character description.

Not modelled: ``parse_mode`` (text is echoed, entities are not computed), file
downloads, inline mode, payments, per-chat rate limits (use ``fail_next``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, ClassVar, Literal, TypedDict, Unpack
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.loopback import FailureQueues, LoopbackServer, is_loopback

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "TOKEN",
    "Call",
    "ChatTypeName",
    "FakeBotAPI",
    "PersonOptions",
    "UploadedFile",
]

TOKEN = "123456:TEST-TOKEN"
BOT_ID = 123456
BOT_USERNAME = "helpline_test_bot"
BOT_FIRST_NAME = "Helpline Test Bot"

DELETE_WINDOW_SECONDS = 48 * 3600
MAX_DELETE_IDS = 100
MAX_TEXT_LENGTH = 4096  # UTF-16 code units
MAX_CALLBACK_DATA_BYTES = 64
MAX_TOPIC_NAME_LENGTH = 128
GENERAL_TOPIC_ID = 1

_PATH_RE = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)/?$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_COMMAND_ENTITY_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")

ChatTypeName = Literal["private", "group", "supergroup", "channel"]

# Fields PTB sends as plain strings: never JSON-decoded (the text "42" must stay "42").
_TEXT_FIELDS = frozenset({
    "action", "address", "animation", "audio", "business_connection_id", "callback_query_id",
    "caption", "currency", "custom_title", "description", "document", "emoji", "explanation",
    "explanation_parse_mode", "file_id", "first_name", "foursquare_id", "foursquare_type",
    "gift_id", "google_place_id", "google_place_type", "icon_custom_emoji_id",
    "inline_message_id", "invite_link", "ip_address", "language_code", "last_name",
    "message_effect_id", "name", "next_offset", "parse_mode", "payload", "phone_number",
    "photo", "provider_token", "query", "question", "question_parse_mode", "secret_token",
    "short_description", "start_parameter", "sticker", "sticker_set_name", "text", "thumbnail",
    "title", "url", "vcard", "video", "video_note", "voice",
})
_CHAT_ID_FIELDS = frozenset({"chat_id", "from_chat_id"})

# Methods that fail with 403 when the target chat blocked (or kicked) the bot.
_BLOCKABLE_PREFIXES = ("send", "copy", "forward", "edit", "createforumtopic", "closeforumtopic",
                       "reopenforumtopic")

_CANONICAL_METHODS = (
    "getMe", "logOut", "close", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo",
    "sendMessage", "sendPhoto", "sendDocument", "sendLocation", "editMessageText",
    "editMessageReplyMarkup", "answerCallbackQuery", "deleteMessage", "deleteMessages",
    "setMyCommands", "getMyCommands", "deleteMyCommands", "sendChatAction", "createForumTopic",
    "closeForumTopic", "reopenForumTopic", "editForumTopic", "deleteForumTopic", "getChat",
)
_CANONICAL = {name.lower(): name for name in _CANONICAL_METHODS}

_BOT_USER_SHORT: dict[str, Any] = {
    "id": BOT_ID, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME,
}
_BOT_USER_FULL: dict[str, Any] = {
    **_BOT_USER_SHORT,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part (e.g. ``sendPhoto`` with bytes); found in ``Call.params``."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request the fake received, recorded on arrival (``status`` is set on answer)."""

    method: str
    """Canonical camelCase name for the methods the fake knows, else as sent."""
    params: dict[str, Any]
    """Decoded: JSON fields decoded, ``chat_id`` an int where it parses, files as
    ``UploadedFile``."""
    token: str
    http_method: str = "POST"
    raw: dict[str, Any] = field(default_factory=dict)
    """Fields exactly as received (form strings, or the JSON body's values)."""
    status: int | None = None
    """HTTP status of the answer; ``None`` while in flight (e.g. a waiting long poll)."""
    at: float = 0.0


class PersonOptions(TypedDict, total=False):
    """Who writes and where, for the ``person_*`` helpers."""

    user_id: int | None
    """Defaults to the chat id in private chats, else 424242."""
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    chat_type: ChatTypeName | None
    """Defaults from the id: > 0 private, <= -10**12 supergroup, else group."""
    chat_title: str | None
    message_thread_id: int | None
    is_topic_message: bool | None
    """Defaults to True when ``message_thread_id`` is given."""
    reply_to_message_id: int | None


_DEFAULT_GROUP_USER_ID = 424242


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None,
                 ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class _Failure:
    code: int
    description: str
    parameters: dict[str, Any] | None


def _chat_of(update: dict[str, Any]) -> Any:
    """The chat an update belongs to (Telegram keeps one chat's updates in order)."""
    for value in update.values():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat")
            if isinstance(chat, dict):
                return chat.get("id")
    return None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int
    ip_address: str | None


@dataclass
class _Topic:
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None
    closed: bool = False


def _default_description(code: int, retry_after: int | None) -> str:
    if code == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    return {
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
        409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway",
    }.get(code, f"Error {code}")


def _decode_field(name: str, value: str) -> Any:
    if name in _CHAT_ID_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in _TEXT_FIELDS:
        return value

    def _reject(constant: str) -> Any:
        raise ValueError(constant)

    try:
        decoded = json.loads(value, parse_constant=_reject)
    except ValueError:
        return value
    return value if isinstance(decoded, str) else decoded


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "bot_command", "offset": _utf16_len(text[: m.start()]),
         "length": _utf16_len(m.group(0))}
        for m in _BOT_COMMAND_ENTITY_RE.finditer(text)
    ]


def _chat_type_for(chat_id: int) -> ChatTypeName:
    if chat_id > 0:
        return "private"
    return "supergroup" if chat_id <= -(10**12) else "group"


_MethodHandler = Callable[[Call], Awaitable[Any]]


class FakeBotAPI(LoopbackServer[Call]):
    """The Telegram Bot API on 127.0.0.1 (ephemeral port) for one bot, ``@helpline_test_bot``."""

    client_max_size: ClassVar[int] = 64 * 1024 * 1024

    def __init__(
        self,
        *,
        port: int = 0,
        long_poll_cap: float = 1.0,
        valid_token: str | None = None,
        strict_chats: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``valid_token``: if set, other tokens get 401 (PTB: ``InvalidToken``).
        ``strict_chats``: sending to a chat no person ever wrote from -> 400 "chat not found"
        (like real Telegram) instead of inventing a private chat."""
        super().__init__(port=port)
        self.long_poll_cap = long_poll_cap
        self.valid_token = valid_token
        self.strict_chats = strict_chats
        self.clock = clock
        self._closing = False
        self._down = False

        self.tokens: set[str] = set()
        self._pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(10_001)
        self._last_update_id = 10_000
        self._poll_generation = 0
        self._callback_ids = itertools.count(1_000_000_000_000_000_001)
        self._callbacks: dict[str, tuple[int, int]] = {}
        self._file_ids = itertools.count(1)
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, dict[str, Any]]] = {}
        self._next_message_id: dict[int, int] = {}
        self._bot_sent: dict[int, list[dict[str, Any]]] = {}
        self._topics: dict[int, dict[int, _Topic]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._failures: FailureQueues[_Failure] = FailureQueues()
        self._stalls: dict[str, deque[float]] = {}
        self._blocked: dict[int, str] = {}
        self._webhook: _Webhook | None = None
        self._bulk = 0
        self.observers: list[Callable[[Call, Any], None]] = []
        """Called with each call the fake answered with 200 and its result, as it answers
        (load drivers react to the bot's sends here instead of polling ``calls``)."""
        self._handlers: dict[str, _MethodHandler] = {
            "getme": self._get_me,
            "logout": self._true,
            "close": self._true,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "sendlocation": self._send_location,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendchataction": self._send_chat_action,
            "createforumtopic": self._create_forum_topic,
            "closeforumtopic": self._close_forum_topic,
            "reopenforumtopic": self._reopen_forum_topic,
            "editforumtopic": self._edit_forum_topic,
            "deleteforumtopic": self._delete_forum_topic,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
        }
        self.webhook_last_error: tuple[float, str] | None = None
        """``(unix time, message)`` that ``getWebhookInfo`` reports as the last failed
        delivery to the webhook (Telegram's ``last_error_date``/``last_error_message``)."""
        self.bot_rights: dict[int, dict[str, Any]] = {}
        """What ``getChatMember`` says of the bot in a group, by chat id: ``status``
        (``administrator`` by default) and rights (``can_manage_topics`` true by default)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/bot``: PTB's ``base_url`` (the token is appended)."""
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root}/file/bot"

    async def start(self) -> None:
        if not self.listening:
            self._closing = False
        await super().start()

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # waiting long polls answer at once
        await super().stop()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def clear_calls(self) -> None:
        self.calls.clear()

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
        count: int = 1,
    ) -> Call:
        """Wait until ``count`` calls of ``method`` (matching ``predicate``) were received and
        return the ``count``-th. Raises AssertionError listing recent calls on timeout."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        await self.wait_until(lambda: len(matching()) >= count, timeout=timeout,
                              what=f"{count} call(s) to {method}"
                                   f"{' matching the predicate' if predicate else ''}")
        return matching()[count - 1]

    def describe_calls(self, last: int = 25, *, include_polls: bool = False) -> str:
        shown = [c for c in self.calls if include_polls or c.method != "getUpdates"][-last:]
        if not shown:
            return "  (none)"
        return "\n".join(
            f"  {c.method} [{c.status if c.status is not None else 'in flight'}] "
            f"{json.dumps(c.params, default=repr, ensure_ascii=False)[:300]}"
            for c in shown
        )

    def sent_texts(self, chat_id: int) -> list[str]:
        """Text (or caption) of every message the bot sent to the chat, deleted ones included,
        as first sent."""
        out: list[str] = []
        for message in self._bot_sent.get(chat_id, []):
            text = message.get("text", message.get("caption"))
            if isinstance(text, str):
                out.append(text)
        return out

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message the bot sent to the chat (as first sent), deleted ones included."""
        return [copy.deepcopy(m) for m in self._bot_sent.get(chat_id, [])]

    def live_message_ids(
        self, chat_id: int, *, sender: Literal["any", "bot", "person"] = "any"
    ) -> list[int]:
        """Sorted ids of the messages still in the chat (both sides unless ``sender``)."""
        ids = []
        for message_id, message in self._messages.get(chat_id, {}).items():
            from_bot = message.get("from", {}).get("id") == BOT_ID
            if sender == "any" or (sender == "bot") == from_bot:
                ids.append(message_id)
        return sorted(ids)

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A copy of a live message as it is now (edits applied), or None."""
        found = self._messages.get(chat_id, {}).get(message_id)
        return None if found is None else copy.deepcopy(found)

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for i in self.live_message_ids(chat_id) if (m := self.message(chat_id, i))]

    def topics(self, chat_id: int) -> dict[int, dict[str, Any]]:
        return {
            thread_id: {"name": t.name, "icon_color": t.icon_color,
                        "icon_custom_emoji_id": t.icon_custom_emoji_id, "closed": t.closed}
            for thread_id, t in self._topics.get(chat_id, {}).items()
        }

    def commands(self, *, scope: dict[str, Any] | None = None, language_code: str = ""
                 ) -> list[dict[str, Any]]:
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def webhook_url(self) -> str:
        return self._webhook.url if self._webhook else ""

    @property
    def webhook_secret(self) -> str | None:
        return self._webhook.secret_token if self._webhook else None

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return [copy.deepcopy(u) for u in self._pending]

    async def wait_confirmed(self, timeout: float = 5.0) -> None:
        """Wait until the client confirmed (via a later getUpdates offset) every queued update."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending:
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                ids = [u.get("update_id") for u in self._pending]
                raise AssertionError(f"updates {ids} still unconfirmed after {timeout}s; "
                                     f"recent calls:\n{self.describe_calls(include_polls=True)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def describe(self) -> str:
        return self.describe_calls()

    def _timed_out(self, timeout: float, what: str) -> str:
        return f"timed out after {timeout}s waiting for {what}; recent calls:\n{self.describe()}"

    async def wait_sent(self, chat_id: int, count: int, *, timeout: float = 5.0) -> list[str]:
        """Wait until ``sent_texts(chat_id)`` has at least ``count`` entries and return it.
        Only sends that succeeded count (a send answered with 429 or 403 sent nothing);
        messages deleted since still count."""
        await self.wait_until(lambda: len(self.sent_texts(chat_id)) >= count, timeout=timeout,
                              what=f"{count} text message(s) from the bot in chat {chat_id} "
                                   f"(have {len(self.sent_texts(chat_id))})")
        return self.sent_texts(chat_id)

    def buttons(self, chat_id: int, message_id: int) -> list[tuple[str, str]]:
        """``(label, callback_data)`` of the inline buttons on a live message, row by row
        (empty if the message is gone or has none)."""
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            return []
        markup = message.get("reply_markup")
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
        return [
            (str(button.get("text")), button["callback_data"])
            for row in rows if isinstance(row, list)
            for button in row
            if isinstance(button, dict) and isinstance(button.get("callback_data"), str)
        ]

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = 1,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` fail with HTTP ``error_code``. The default
        description is Telegram's ("Too Many Requests: retry after N" for 429). Like Telegram,
        ``parameters.retry_after`` is sent only with a 429 (PTB turns ANY answer carrying it
        into RetryAfter). The failed calls have no effect."""
        if error_code == 429 and not retry_after:
            raise ValueError("a 429 needs retry_after >= 1 (PTB ignores retry_after=0)")
        parameters = {"retry_after": retry_after} if error_code == 429 else None
        failure = _Failure(error_code, description or _default_description(error_code,
                                                                           retry_after),
                           parameters)
        self._failures.add(method.lower(), failure, times)

    def stall_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` are answered only after ``seconds`` (a
        client with a shorter read time-out gives up first: PTB raises ``TimedOut``). The
        stalled calls then have their effect, as a slow Telegram's would."""
        self._stalls.setdefault(method.lower(), deque()).extend(seconds for _ in range(times))

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Sends/edits/chat actions to the chat now fail with 403 (PTB: ``Forbidden``)."""
        self._blocked[chat_id] = description or (
            "Forbidden: bot was blocked by the user" if chat_id > 0
            else "Forbidden: bot was kicked from the supergroup chat"
        )

    def unblock(self, chat_id: int) -> None:
        self._blocked.pop(chat_id, None)

    def set_down(self, down: bool) -> None:
        """While down, every request (waiting long polls too) answers HTTP 502."""
        self._down = down
        self._notify()

    @property
    def is_down(self) -> bool:
        return self._down

    # ------------------------------------------------------------------ acting as people

    def queue_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (anything JSON-able, malformed ones too). ``update_id`` is
        assigned when missing; returns it."""
        update = dict(update)
        raw_id = update.get("update_id")
        if isinstance(raw_id, int):
            update_id = raw_id
            if update_id > self._last_update_id:
                self._last_update_id = update_id
                self._update_ids = itertools.count(update_id + 1)
        else:
            update_id = next(self._update_ids)
            self._last_update_id = update_id
            update["update_id"] = update_id
        self._pending.append(update)
        if self._bulk:
            return update_id  # sorted once and announced once when the bulk block ends
        self._sort_pending()
        self._notify()
        return update_id

    def _sort_pending(self, *, whole: bool = False) -> None:
        """Keep the queue in update_id order. It is sorted before each append, so only an
        update that came in out of order needs a sort (the common case costs nothing)."""
        def key(u: dict[str, Any]) -> int:
            return u["update_id"] if isinstance(u.get("update_id"), int) else 0

        pending = self._pending
        if whole or (len(pending) > 1 and key(pending[-2]) > key(pending[-1])):
            pending.sort(key=key)

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Queue many updates at once: ``person_*`` calls inside the block append their
        updates without sorting the queue or waking the long poll each time; both happen
        once when the block ends (for load tests with thousands of people)."""
        self._bulk += 1
        try:
            yield
        finally:
            self._bulk -= 1
            if not self._bulk:
                self._sort_pending(whole=True)
                self._notify()

    def person_sends(
        self,
        chat_id: int,
        text: str,
        *,
        entities: list[dict[str, Any]] | None = None,
        **person: Unpack[PersonOptions],
    ) -> int:
        """A person writes ``text``; queues a ``message`` update (``channel_post`` in a
        channel) and returns its message_id. ``/commands`` get ``bot_command`` entities."""
        content: dict[str, Any] = {"text": text}
        found = _command_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        return self.person_sends_content(chat_id, content, **person)

    def person_sends_photo(
        self,
        chat_id: int,
        *,
        caption: str | None = None,
        file_id: str | None = None,
        width: int = 1280,
        height: int = 960,
        **person: Unpack[PersonOptions],
    ) -> int:
        base = file_id or f"AgACAgQAAxkBAAI{next(self._file_ids)}"
        sizes = [(90, 68), (320, 240), (width, height)]
        content: dict[str, Any] = {"photo": [
            {"file_id": f"{base}-{w}", "file_unique_id": f"AQAD{w}x{h}", "width": w,
             "height": h, "file_size": w * h // 10}
            for w, h in sizes
        ]}
        if caption is not None:
            content["caption"] = caption
        return self.person_sends_content(chat_id, content, **person)

    def person_sends_location(
        self,
        chat_id: int,
        latitude: float = 52.52,
        longitude: float = 13.405,
        **person: Unpack[PersonOptions],
    ) -> int:
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self.person_sends_content(chat_id, content, **person)

    def person_sends_content(
        self, chat_id: int, content: dict[str, Any], **person: Unpack[PersonOptions]
    ) -> int:
        """Any message content (``{"sticker": {...}}``, ``{"voice": {...}}`` ...)."""
        chat_type = person.get("chat_type") or _chat_type_for(chat_id)
        chat = self._remember_chat(chat_id, chat_type, person)
        message_id = self._allocate_message_id(chat_id)
        message: dict[str, Any] = {"message_id": message_id}
        if chat_type != "channel":
            message["from"] = self._user(chat_id, chat_type, person)
        else:
            message["sender_chat"] = chat
        message["chat"] = chat
        message["date"] = int(self.clock())
        thread_id = person.get("message_thread_id")
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            is_topic = person.get("is_topic_message")
            if is_topic is None or is_topic:
                message["is_topic_message"] = True
                self._topics.setdefault(chat_id, {}).setdefault(
                    thread_id, _Topic(name=f"Topic {thread_id}", icon_color=7322096,
                                      icon_custom_emoji_id=None))
        reply_id = person.get("reply_to_message_id")
        if reply_id is None and thread_id is not None:
            reply_id = thread_id  # Telegram: topic messages reply to the topic's first message
        if reply_id is not None and (replied := self._messages.get(chat_id, {}).get(reply_id)):
            message["reply_to_message"] = {k: v for k, v in replied.items()
                                           if k != "reply_to_message"}
        message.update(content)
        self._messages.setdefault(chat_id, {})[message_id] = message
        self._blocked.pop(chat_id, None)  # writing to a bot means (re)starting it
        kind = "channel_post" if chat_type == "channel" else "message"
        self.queue_update({kind: copy.deepcopy(message)})
        return message_id

    def person_edits(self, chat_id: int, message_id: int, text: str) -> int:
        """The person edits their message; queues ``edited_message``; returns the update_id."""
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None or message.get("from", {}).get("id") == BOT_ID:
            raise LookupError(f"no live message {message_id} of the person in chat {chat_id}")
        message["text"] = text
        message["edit_date"] = int(self.clock())
        kind = "edited_channel_post" if message["chat"]["type"] == "channel" else "edited_message"
        return self.queue_update({kind: copy.deepcopy(message)})

    def person_deletes(self, chat_id: int, message_id: int) -> None:
        """The person deletes a message for everyone (bots get no update for that)."""
        self._messages.get(chat_id, {}).pop(message_id, None)

    def person_presses(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Canary",
        username: str | None = None,
        language_code: str | None = "en",
        strict: bool = True,
    ) -> str:
        """The person presses an inline button of the bot's live message; queues a
        ``callback_query`` update and returns the query id. With ``strict`` the message must
        carry a button with that ``callback_data`` (pass ``strict=False`` to forge data)."""
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise LookupError(f"no live message {message_id} in chat {chat_id}: "
                              f"live are {self.live_message_ids(chat_id)}")
        if strict:
            buttons = [
                b.get("callback_data")
                for row in message.get("reply_markup", {}).get("inline_keyboard", [])
                for b in row
            ]
            if data not in buttons:
                raise LookupError(f"message {message_id} has no button with callback_data "
                                  f"{data!r}; its buttons: {buttons}")
        query_id = str(next(self._callback_ids))
        self._callbacks[query_id] = (chat_id, message_id)
        chat_type = message["chat"]["type"]
        options: PersonOptions = {"user_id": user_id, "first_name": first_name,
                                  "username": username, "language_code": language_code}
        self.queue_update({"callback_query": {
            "id": query_id,
            "from": self._user(chat_id, chat_type, options),
            "message": copy.deepcopy(message),
            "chat_instance": str(5_000_000_000_000 + abs(chat_id)),
            "data": data,
        }})
        return query_id

    def press_button(
        self,
        chat_id: int,
        label: str,
        *,
        user_id: int | None = None,
        first_name: str = "Canary",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> str:
        """The person presses the button labelled ``label`` on the newest live bot message
        in the chat that has one (a strict ``person_presses`` with that button's data);
        returns the query id. Raises LookupError if no live message has such a button."""
        for message_id in reversed(self.live_message_ids(chat_id, sender="bot")):
            for text, data in self.buttons(chat_id, message_id):
                if text == label:
                    return self.person_presses(chat_id, message_id, data, user_id=user_id,
                                               first_name=first_name, username=username,
                                               language_code=language_code)
        labels = [text for message_id in self.live_message_ids(chat_id, sender="bot")
                  for text, _ in self.buttons(chat_id, message_id)]
        raise LookupError(f"no live bot message in chat {chat_id} has a button {label!r}; "
                          f"live labels: {labels}")

    def person_blocks_bot(self, chat_id: int, *, first_name: str = "Canary") -> int:
        """Blocks the bot and queues the ``my_chat_member`` update Telegram sends for it."""
        self.block(chat_id)
        chat = self._remember_chat(chat_id, "private", {"first_name": first_name})
        user = self._user(chat_id, "private", {"first_name": first_name})
        return self.queue_update({"my_chat_member": {
            "chat": chat, "from": user, "date": int(self.clock()),
            "old_chat_member": {"user": dict(_BOT_USER_SHORT), "status": "member"},
            "new_chat_member": {"user": dict(_BOT_USER_SHORT), "status": "kicked",
                                "until_date": 0},
        }})

    def add_forum_topic(self, chat_id: int, name: str, *, icon_color: int = 7322096) -> int:
        """Create a topic as if someone else had (no call recorded); returns its thread id."""
        return self._new_topic(chat_id, name, icon_color, None, from_user=None)

    # ------------------------------------------------------------------ webhook

    async def push_webhook(
        self,
        update: dict[str, Any] | None = None,
        *,
        secret_token: str | EllipsisType | None = ...,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> int:
        """POST one update to the registered webhook like Telegram does; returns the status.

        ``update=None`` delivers the oldest queued update (it stays queued unless the answer
        is 2xx). ``secret_token``: ``...`` sends the registered one, ``None`` sends no header,
        a string sends that (to test a wrong secret). Only loopback URLs are contacted.
        ``session``: a client session to send with (else one for this update)."""
        if self._webhook is None:
            raise RuntimeError("no webhook is set (setWebhook was not called)")
        url = self._webhook.url
        if not is_loopback(urlsplit(url).hostname):
            raise RuntimeError(f"refusing to push to non-loopback webhook {url!r}")
        from_queue = update is None
        if update is None:
            if not self._pending:
                raise LookupError("no queued update to push")
            update = self._pending[0]
        elif "update_id" not in update:
            update = {**update, "update_id": next(self._update_ids)}
        secret = self._webhook.secret_token if isinstance(secret_token, EllipsisType) \
            else secret_token
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = json.dumps(update).encode()
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with contextlib.AsyncExitStack() as stack:
            if session is None:
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(timeout=client_timeout))
            response = await stack.enter_async_context(
                session.post(url, data=body, headers=headers, timeout=client_timeout))
            await response.read()
            status = response.status
        if from_queue and 200 <= status < 300 and self._pending and self._pending[0] is update:
            self._pending.pop(0)
            self._notify()
        return status

    async def deliver_webhooks(self, stop: asyncio.Event, *, connections: int = 1,
                               first_retry: float = 0.05, most_retry: float = 1.0) -> int:
        """Until ``stop``: deliver what is queued to the registered webhook as Telegram
        does while one is set, oldest first, one at a time: an update stays queued until
        the webhook answers 2xx, and is sent again after a pause (growing to
        ``most_retry``) when it answers otherwise or cannot be reached. Returns how many
        were delivered. ``connections`` > 1: that many requests at once (Telegram's
        ``max_connections``), one chat's updates still one at a time and in order."""
        if connections > 1:
            return await self._deliver_in_parallel(stop, connections, first_retry, most_retry)
        delivered = 0
        pause = first_retry
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                status = await self._deliver_one(session)
                if status is None:
                    continue
                if 200 <= status < 300:
                    delivered += 1
                    pause = first_retry
                    continue
                await asyncio.sleep(pause)
                pause = min(pause * 2, most_retry)
        return delivered

    async def _deliver_in_parallel(self, stop: asyncio.Event, connections: int,
                                   first_retry: float, most_retry: float) -> int:
        delivered = 0
        busy: set[Any] = set()  # chats with an update on its way (or pausing after a failure)
        tasks: set[asyncio.Task[None]] = set()
        pauses: dict[Any, float] = {}

        async def push(update: dict[str, Any], chat: Any, session: aiohttp.ClientSession
                       ) -> None:
            nonlocal delivered
            try:
                status = await self.push_webhook(update, session=session)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            try:
                if 200 <= status < 300:
                    delivered += 1
                    pauses.pop(chat, None)
                    with contextlib.suppress(ValueError):
                        self._pending.remove(update)
                    self._notify()
                else:
                    pause = pauses.get(chat, first_retry / 2) * 2
                    pauses[chat] = min(pause, most_retry)
                    await asyncio.sleep(pauses[chat])
            finally:
                busy.discard(chat)
                self._notify()

        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                seen: set[Any] = set()
                for update in list(self._pending):
                    if len(tasks) >= connections or self._webhook is None:
                        break
                    chat = _chat_of(update)
                    if chat in seen or chat in busy:
                        seen.add(chat)
                        continue  # behind an earlier update of the same chat
                    seen.add(chat)
                    busy.add(chat)
                    task = asyncio.create_task(push(update, chat, session))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 0.05)
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return delivered

    async def _deliver_one(self, session: aiohttp.ClientSession) -> int | None:
        """Push the oldest queued update (its status; 0: not reached), or None after
        waiting a moment for one."""
        if self._webhook is None or not self._pending:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.05)
            return None
        try:
            return await self.push_webhook(session=session)
        except (aiohttp.ClientError, TimeoutError, LookupError):
            return 0

    # ------------------------------------------------------------------ HTTP plumbing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        match = _PATH_RE.match(request.path)
        if match is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        token = match["token"]
        method_sent = match["method"]
        method = _CANONICAL.get(method_sent.lower(), method_sent)
        call = Call(method=method, params={}, token=token, http_method=request.method,
                    at=self.clock())
        self.tokens.add(token)
        try:
            call.raw, call.params = await self._read_params(request)
        except _ApiError as exc:
            self._record(call)
            return self._error_response(call, exc)
        self._record(call)  # after decoding, so a waiter never sees half a call
        try:
            result = await self._answer(call)
        except _ApiError as exc:
            return self._error_response(call, exc)
        call.status = 200
        self._notify()
        for observer in self.observers:
            observer(call, result)
        return web.json_response({"ok": True, "result": result})

    def _error_response(self, call: Call, exc: _ApiError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                "description": exc.description}
        if exc.parameters:
            body["parameters"] = exc.parameters
        call.status = exc.code
        self._notify()
        return web.json_response(body, status=exc.code)

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        raw: dict[str, Any] = dict(request.query)
        params: dict[str, Any] = {k: _decode_field(k, v) for k, v in request.query.items()}
        if request.method != "POST" or not request.can_read_body:
            return raw, params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON request body") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: request body must be a JSON object")
            raw.update(body)
            for key, value in body.items():
                params[key] = (_decode_field(key, value)
                               if key in _CHAT_ID_FIELDS and isinstance(value, str) else value)
            return raw, params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                uploaded = UploadedFile(value.filename, value.content_type, value.file.read())
                raw[key] = params[key] = uploaded
                continue
            text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
            raw[key] = text
            params[key] = _decode_field(key, text)
        return raw, params

    async def _answer(self, call: Call) -> Any:
        if self._down:
            raise _ApiError(502, "Bad Gateway")
        if self.valid_token is not None and call.token != self.valid_token:
            raise _ApiError(401, "Unauthorized")
        key = call.method.lower()
        stalls = self._stalls.get(key)
        if stalls:
            await asyncio.sleep(stalls.popleft())
        failure = self._failures.take(key)
        if failure is not None:
            raise _ApiError(failure.code, failure.description, failure.parameters)
        chat_id = call.params.get("chat_id")
        if (isinstance(chat_id, int) and chat_id in self._blocked
                and key.startswith(_BLOCKABLE_PREFIXES)):
            raise _ApiError(403, self._blocked[chat_id])
        handler = self._handlers.get(key, self._true)
        return await handler(call)

    # ------------------------------------------------------------------ state helpers

    def _remember_chat(self, chat_id: int, chat_type: ChatTypeName, person: PersonOptions,
                       ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = person.get("first_name", "Canary")
            if last := person.get("last_name"):
                chat["last_name"] = last
            if username := person.get("username"):
                chat["username"] = username
        else:
            old = self._chats.get(chat_id, {})
            chat["title"] = person.get("chat_title") or old.get("title") or f"Chat {chat_id}"
            if chat_type == "supergroup" and (
                person.get("message_thread_id") is not None or old.get("is_forum")
                or chat_id in self._topics
            ):
                chat["is_forum"] = True
        self._chats[chat_id] = chat
        return dict(chat)

    def _user(self, chat_id: int, chat_type: str, person: PersonOptions) -> dict[str, Any]:
        user_id = person.get("user_id")
        if user_id is None:
            user_id = chat_id if chat_type == "private" else _DEFAULT_GROUP_USER_ID
        user: dict[str, Any] = {"id": user_id, "is_bot": False,
                                "first_name": person.get("first_name", "Canary")}
        if last := person.get("last_name"):
            user["last_name"] = last
        if username := person.get("username"):
            user["username"] = username
        language = person.get("language_code", "en")
        if language:
            user["language_code"] = language
        return user

    def _chat_for_bot(self, chat_id: int) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is not None:
            return dict(chat)
        if self.strict_chats:
            raise _ApiError(400, "Bad Request: chat not found")
        chat_type = _chat_type_for(chat_id)
        person: PersonOptions = {"first_name": "Canary"}
        return self._remember_chat(chat_id, chat_type, person)

    def _allocate_message_id(self, chat_id: int) -> int:
        # In groups, message 1 is the "group created" service message (and thread id 1 is
        # the General topic), so the first real message there is 2.
        message_id = self._next_message_id.get(chat_id, 1 if chat_id > 0 else 2)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _live(self, chat_id: int, message_id: int, *, action: str) -> dict[str, Any]:
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise _ApiError(400, f"Bad Request: message to {action} not found")
        return message

    def _new_topic(self, chat_id: int, name: str, icon_color: int, emoji: str | None,
                   *, from_user: dict[str, Any] | None) -> int:
        if chat_id > 0:
            raise _ApiError(400, "Bad Request: the chat is not a forum")
        if not 1 <= len(name) <= MAX_TOPIC_NAME_LENGTH:
            raise _ApiError(400, "Bad Request: TOPIC_TITLE_EMPTY" if not name
                            else "Bad Request: TOPIC_TITLE_TOO_LONG")
        old = self._chats.get(chat_id, {})
        chat = {"id": chat_id, "type": "supergroup", "is_forum": True,
                "title": old.get("title", f"Chat {chat_id}")}
        self._chats[chat_id] = chat
        thread_id = self._allocate_message_id(chat_id)
        created: dict[str, Any] = {"name": name, "icon_color": icon_color}
        if emoji:
            created["icon_custom_emoji_id"] = emoji
        self._messages.setdefault(chat_id, {})[thread_id] = {
            "message_id": thread_id, "from": from_user or dict(_BOT_USER_SHORT),
            "chat": dict(chat), "date": int(self.clock()), "message_thread_id": thread_id,
            "is_topic_message": True, "forum_topic_created": created,
        }
        self._topics.setdefault(chat_id, {})[thread_id] = _Topic(name, icon_color, emoji)
        return thread_id

    def _topic(self, call: Call) -> tuple[int, int, _Topic]:
        chat_id = self._require_chat_id(call)
        thread_id = call.params.get("message_thread_id")
        topic = self._topics.get(chat_id, {}).get(thread_id) if isinstance(thread_id, int) \
            else None
        if topic is None or not isinstance(thread_id, int):
            raise _ApiError(400, "Bad Request: TOPIC_ID_INVALID")
        return chat_id, thread_id, topic

    @staticmethod
    def _require_chat_id(call: Call) -> int:
        chat_id = call.params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise _ApiError(400, "Bad Request: chat not found")
        return chat_id

    @staticmethod
    def _require_int(call: Call, name: str, description: str) -> int:
        value = call.params.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _ApiError(400, f"Bad Request: {description}")
        return value

    @staticmethod
    def _inline_markup(params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and isinstance(markup.get("inline_keyboard"), list):
            return markup
        return None

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope_key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return scope_key, str(language_code or "")

    # ------------------------------------------------------------------ methods

    async def _true(self, call: Call) -> Any:
        return True

    async def _get_me(self, call: Call) -> Any:
        return dict(_BOT_USER_FULL)

    async def _get_updates(self, call: Call) -> Any:
        if self._webhook is not None:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                                 "active; use deleteWebhook to delete the webhook first")
        offset = call.params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._pending = [u for u in self._pending
                             if not isinstance(u.get("update_id"), int)
                             or u["update_id"] >= offset]
            self._notify()
        elif isinstance(offset, int) and offset < 0:
            del self._pending[:offset]
            self._notify()
        limit = call.params.get("limit")
        limit = limit if isinstance(limit, int) and 1 <= limit <= 100 else 100
        timeout = call.params.get("timeout")
        wait = max(0.0, min(float(timeout), self.long_poll_cap)) \
            if isinstance(timeout, int | float) and not isinstance(timeout, bool) else 0.0
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            changed = self._changed
            if self._down:
                raise _ApiError(502, "Bad Gateway")
            if generation != self._poll_generation:
                raise _ApiError(409, "Conflict: terminated by other getUpdates request; make "
                                     "sure that only one bot instance is running")
            if self._pending or self._closing:
                return [copy.deepcopy(u) for u in self._pending[:limit]]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _set_webhook(self, call: Call) -> Any:
        url = call.params.get("url")
        if not isinstance(url, str) or not url:
            return await self._delete_webhook(call)
        secret = call.params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_RE.match(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = call.params.get("allowed_updates")
        max_connections = call.params.get("max_connections")
        ip_address = call.params.get("ip_address")
        self._webhook = _Webhook(
            url=url, secret_token=secret,
            allowed_updates=list(allowed) if isinstance(allowed, list) else None,
            max_connections=max_connections if isinstance(max_connections, int) else 40,
            ip_address=ip_address if isinstance(ip_address, str) else None,
        )
        if call.params.get("drop_pending_updates") is True:
            self._pending.clear()
        self._poll_generation += 1  # a waiting getUpdates ends with 409
        self._notify()
        return True

    async def _delete_webhook(self, call: Call) -> Any:
        self._webhook = None
        if call.params.get("drop_pending_updates") is True:
            self._pending.clear()
        self._notify()
        return True

    async def _get_webhook_info(self, call: Call) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook_url, "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.allowed_updates is not None:
                info["allowed_updates"] = self._webhook.allowed_updates
            if self._webhook.ip_address:
                info["ip_address"] = self._webhook.ip_address
            if self.webhook_last_error is not None:
                info["last_error_date"] = int(self.webhook_last_error[0])
                info["last_error_message"] = self.webhook_last_error[1]
        return info

    def _bot_message(self, call: Call, content: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._require_chat_id(call)
        chat = self._chat_for_bot(chat_id)
        thread_id = call.params.get("message_thread_id")
        if isinstance(thread_id, int) and thread_id != GENERAL_TOPIC_ID and chat_id < 0 and (
            thread_id not in self._topics.get(chat_id, {})
        ):
            raise _ApiError(400, "Bad Request: message thread not found")
        message_id = self._allocate_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id, "from": dict(_BOT_USER_SHORT), "chat": chat,
            "date": int(self.clock()),
        }
        if isinstance(thread_id, int) and chat_id < 0:
            message["message_thread_id"] = thread_id
            if thread_id != GENERAL_TOPIC_ID:
                message["is_topic_message"] = True
        reply = call.params.get("reply_parameters")
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        if reply_id is None:
            reply_id = call.params.get("reply_to_message_id")
        if isinstance(reply_id, int):
            replied = self._messages.get(chat_id, {}).get(reply_id)
            if replied is not None:
                message["reply_to_message"] = {k: v for k, v in replied.items()
                                               if k != "reply_to_message"}
            elif not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                raise _ApiError(400, "Bad Request: message to be replied not found")
        message.update(content)
        markup = self._inline_markup(call.params)
        if markup is not None:
            message["reply_markup"] = markup
        if call.params.get("protect_content") is True:
            message["has_protected_content"] = True
        self._messages.setdefault(chat_id, {})[message_id] = message
        self._bot_sent.setdefault(chat_id, []).append(copy.deepcopy(message))
        return copy.deepcopy(message)

    @staticmethod
    def _check_text(text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _check_markup(params: dict[str, Any]) -> None:
        markup = params.get("reply_markup")
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        for row in rows if isinstance(rows, list) else []:
            for button in row if isinstance(row, list) else []:
                data = button.get("callback_data") if isinstance(button, dict) else None
                if data is not None and not (
                        isinstance(data, str)
                        and 1 <= len(data.encode("utf-8", "surrogatepass"))
                        <= MAX_CALLBACK_DATA_BYTES):
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    async def _send_message(self, call: Call) -> Any:
        text = self._check_text(call.params.get("text"))
        self._check_markup(call.params)
        content: dict[str, Any] = {"text": text}
        entities = call.params.get("entities")
        if isinstance(entities, list) and entities:
            content["entities"] = entities
        return self._bot_message(call, content)

    async def _send_photo(self, call: Call) -> Any:
        photo = call.params.get("photo")
        file_id = photo if isinstance(photo, str) else f"AgACAgBot{len(self.calls)}"
        content: dict[str, Any] = {"photo": [
            {"file_id": file_id, "file_unique_id": f"u{file_id}"[:32], "width": 1280,
             "height": 960}
        ]}
        if isinstance(caption := call.params.get("caption"), str):
            content["caption"] = caption
        return self._bot_message(call, content)

    async def _send_document(self, call: Call) -> Any:
        document = call.params.get("document")
        name = document.filename if isinstance(document, UploadedFile) else "file"
        file_id = document if isinstance(document, str) else f"BQACAgBot{len(self.calls)}"
        content: dict[str, Any] = {"document": {"file_id": file_id,
                                                "file_unique_id": f"u{file_id}"[:32],
                                                "file_name": name}}
        if isinstance(caption := call.params.get("caption"), str):
            content["caption"] = caption
        return self._bot_message(call, content)

    async def _send_location(self, call: Call) -> Any:
        latitude = call.params.get("latitude")
        longitude = call.params.get("longitude")
        if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
            raise _ApiError(400, "Bad Request: wrong latitude or longitude")
        return self._bot_message(call, {"location": {"latitude": latitude,
                                                     "longitude": longitude}})

    def _editable(self, call: Call) -> tuple[int, dict[str, Any]] | None:
        if "inline_message_id" in call.params:
            return None
        chat_id = self._require_chat_id(call)
        message_id = self._require_int(call, "message_id",
                                       "message identifier is not specified")
        message = self._live(chat_id, message_id, action="edit")
        if message.get("from", {}).get("id") != BOT_ID:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return chat_id, message

    @staticmethod
    def _not_modified() -> _ApiError:
        return _ApiError(400, "Bad Request: message is not modified: specified new message "
                              "content and reply markup are exactly the same as a current "
                              "content and reply markup of the message")

    async def _edit_message_text(self, call: Call) -> Any:
        text = self._check_text(call.params.get("text"))
        self._check_markup(call.params)
        target = self._editable(call)
        if target is None:
            return True
        _, message = target
        if "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = self._inline_markup(call.params)
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise self._not_modified()
        message["text"] = text
        entities = call.params.get("entities")
        if isinstance(entities, list) and entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(self.clock())
        return copy.deepcopy(message)

    async def _edit_message_reply_markup(self, call: Call) -> Any:
        self._check_markup(call.params)
        target = self._editable(call)
        if target is None:
            return True
        _, message = target
        markup = self._inline_markup(call.params)
        if message.get("reply_markup") == markup:
            raise self._not_modified()
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(self.clock())
        return copy.deepcopy(message)

    async def _answer_callback_query(self, call: Call) -> Any:
        query_id = call.params.get("callback_query_id")
        if not isinstance(query_id, str) or query_id not in self._callbacks \
                or query_id in self.callback_answers:
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired "
                                 "or query ID is invalid")
        text = call.params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = dict(call.params)
        return True

    def _deletable(self, chat_id: int, message_id: int) -> bool:
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            return False
        return self.clock() - float(message.get("date", 0)) < DELETE_WINDOW_SECONDS

    async def _delete_message(self, call: Call) -> Any:
        chat_id = self._require_chat_id(call)
        message_id = self._require_int(call, "message_id",
                                       "message identifier is not specified")
        self._live(chat_id, message_id, action="delete")
        if not self._deletable(chat_id, message_id):
            raise _ApiError(400, "Bad Request: message can't be deleted")
        del self._messages[chat_id][message_id]
        return True

    async def _delete_messages(self, call: Call) -> Any:
        chat_id = self._require_chat_id(call)
        ids = call.params.get("message_ids")
        if not isinstance(ids, list) or not ids:
            raise _ApiError(400, "Bad Request: message identifiers are not specified")
        if len(ids) > MAX_DELETE_IDS:
            raise _ApiError(400, "Bad Request: too many message identifiers specified")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise _ApiError(400, "Bad Request: can't parse message identifiers")
        for message_id in ids:
            if self._deletable(chat_id, message_id):
                del self._messages[chat_id][message_id]
        return True

    async def _set_my_commands(self, call: Call) -> Any:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _ApiError(400, "Bad Request: commands must be a list of at most 100 commands")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(
                    str(command.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
        self._commands[key] = [{"command": c["command"], "description": c["description"]}
                               for c in commands]
        return True

    async def _get_my_commands(self, call: Call) -> Any:
        key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, call: Call) -> Any:
        key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
        self._commands.pop(key, None)
        return True

    async def _send_chat_action(self, call: Call) -> Any:
        self._require_chat_id(call)
        if not isinstance(call.params.get("action"), str):
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _create_forum_topic(self, call: Call) -> Any:
        chat_id = self._require_chat_id(call)
        name = call.params.get("name")
        icon_color = call.params.get("icon_color")
        emoji = call.params.get("icon_custom_emoji_id")
        thread_id = self._new_topic(
            chat_id, name if isinstance(name, str) else "",
            icon_color if isinstance(icon_color, int) else 7322096,
            emoji if isinstance(emoji, str) else None, from_user=None)
        topic: dict[str, Any] = {"message_thread_id": thread_id, "name": name,
                                 "icon_color": self._topics[chat_id][thread_id].icon_color}
        if isinstance(emoji, str):
            topic["icon_custom_emoji_id"] = emoji
        return topic

    async def _close_forum_topic(self, call: Call) -> Any:
        _, _, topic = self._topic(call)
        if topic.closed:
            raise _ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic.closed = True
        return True

    async def _reopen_forum_topic(self, call: Call) -> Any:
        _, _, topic = self._topic(call)
        if not topic.closed:
            raise _ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic.closed = False
        return True

    async def _edit_forum_topic(self, call: Call) -> Any:
        _, _, topic = self._topic(call)
        name = call.params.get("name")
        emoji = call.params.get("icon_custom_emoji_id")
        changed = False
        if isinstance(name, str) and name != topic.name:
            if not 1 <= len(name) <= MAX_TOPIC_NAME_LENGTH:
                raise _ApiError(400, "Bad Request: TOPIC_TITLE_TOO_LONG")
            topic.name, changed = name, True
        if isinstance(emoji, str) and emoji != (topic.icon_custom_emoji_id or ""):
            topic.icon_custom_emoji_id, changed = emoji or None, True
        if not changed:
            raise _ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        return True

    async def _delete_forum_topic(self, call: Call) -> Any:
        chat_id, thread_id, _ = self._topic(call)
        del self._topics[chat_id][thread_id]
        messages = self._messages.get(chat_id, {})
        for message_id in [i for i, m in messages.items()
                           if m.get("message_thread_id") == thread_id]:
            del messages[message_id]
        return True

    async def _get_chat(self, call: Call) -> Any:
        chat_id = self._require_chat_id(call)
        if chat_id == BOT_ID:
            chat: dict[str, Any] = {"id": BOT_ID, "type": "private",
                                    "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}
        else:
            chat = self._chat_for_bot(chat_id)
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                "premium_subscription": False, "gifts_from_channels": False,
            },
        }

    async def _get_chat_member(self, call: Call) -> Any:
        chat_id = self._require_chat_id(call)
        user_id = self._require_int(call, "user_id", "user_id is required")
        if user_id != BOT_ID:
            return {"status": "member", "user": {"id": user_id, "is_bot": False,
                                                 "first_name": "Canary"}}
        rights = {"status": "administrator", "can_manage_topics": True,
                  **self.bot_rights.get(chat_id, {})}
        if rights["status"] != "administrator":
            return {"status": rights["status"], "user": dict(_BOT_USER_SHORT)}
        flags = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
                 "can_manage_video_chats", "can_restrict_members", "can_promote_members",
                 "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                 "can_delete_stories")
        return {**{flag: False for flag in flags}, "can_manage_chat": True, **rights,
                "user": dict(_BOT_USER_SHORT)}
