"""What ``helpline doctor`` and ``helpline telegram ids`` ask the Bot API (python-telegram-bot
stays inside the channel's files). Nothing here prints or returns the token, and nothing
about the people who write to the bot: only the bot itself, the staff group and, for
``ids``, the groups and group members the bot sees."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from telegram import Bot, Chat, ChatMemberAdministrator, ChatMemberOwner, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)
from telegram.request import HTTPXRequest

from helpline.channels.telegram import TOKEN_REJECTED, TelegramOptions
from helpline.findings import Finding, error, ok, warning


@asynccontextmanager
async def _bot(options: TelegramOptions) -> AsyncIterator[Bot]:
    bot = Bot(options.token, base_url=f"{options.api_url}/bot",
              base_file_url=f"{options.api_url}/file/bot",
              request=HTTPXRequest(connect_timeout=10, read_timeout=10),
              get_updates_request=HTTPXRequest(connect_timeout=10, read_timeout=40))
    try:
        yield bot
    finally:
        await bot.shutdown()


def _why(exc: TelegramError) -> str:
    return "not reachable" if isinstance(exc, NetworkError) else type(exc).__name__


async def check_telegram(options: TelegramOptions, staff_chat: int,
                         webhook_url: str) -> list[Finding]:
    """The token, the webhook (or polling) and, when set, the staff group."""
    found: list[Finding] = []
    async with _bot(options) as bot:
        try:
            await bot.initialize()  # getMe
        except InvalidToken:
            return [error("telegram", TOKEN_REJECTED)]
        except NetworkError as exc:
            return [error("telegram", f"the Bot API at {options.api_url} is not reachable "
                          f"({type(exc).__name__}); check this machine's network (helpline "
                          "run waits for it and tries again)")]
        except TelegramError as exc:
            return [error("telegram", f"getMe failed ({type(exc).__name__})")]
        found.append(ok("telegram", f"token accepted: the bot is @{bot.username}"))
        found.append(await _webhook(bot, webhook_url))
        if staff_chat:
            found.extend(await _desk(bot, staff_chat))
    return found


async def _webhook(bot: Bot, webhook_url: str) -> Finding:
    try:
        info = await bot.get_webhook_info()
    except TelegramError as exc:
        return warning("telegram webhook", f"getWebhookInfo failed ({_why(exc)})")
    if not webhook_url:
        if info.url:
            return warning("telegram webhook", "a webhook is set at Telegram although "
                           "helpline uses long polling; helpline run removes it at start")
        return ok("telegram webhook", "none: long polling (nothing to expose)")
    if not webhook_url.startswith("https://"):
        return error("telegram webhook", "telegram.webhook_url must start with https:// "
                     "(Telegram only calls HTTPS); put a TLS proxy in front")
    if info.url != webhook_url:
        return warning("telegram webhook", "Telegram has not got this webhook yet; helpline "
                       "run sets it at start (run doctor again while it runs)")
    if info.last_error_message:
        when = ""
        if info.last_error_date is not None:
            minutes = max(0, int((time.time() - info.last_error_date.timestamp()) // 60))
            when = f" {minutes} min ago"
        return error("telegram webhook", f"Telegram could not deliver to it{when} "
                     f"({info.last_error_message}); check the proxy, its certificate and "
                     "telegram.webhook_listen")
    return ok("telegram webhook", f"set, {info.pending_update_count} update(s) waiting")


async def _desk(bot: Bot, staff_chat: int) -> list[Finding]:
    try:
        chat = await bot.get_chat(staff_chat)
    except (BadRequest, Forbidden):
        return [error("desk", "the bot cannot see the staff group (handoff.staff_chat); "
                      "add the bot to the group, then check the id with helpline telegram "
                      "ids")]
    except TelegramError as exc:
        return [error("desk", f"the staff group could not be checked ({_why(exc)})")]
    found: list[Finding] = []
    if chat.type != Chat.SUPERGROUP or not chat.is_forum:
        found.append(error("desk", "the staff group has no topics; turn on Topics in the "
                           "group's settings (it becomes a supergroup with a new id: check "
                           "it with helpline telegram ids)"))
    try:
        member = await bot.get_chat_member(staff_chat, bot.id)
    except TelegramError as exc:
        return [*found, error("desk", f"the bot's rights in the staff group could not be "
                              f"checked ({_why(exc)})")]
    if isinstance(member, ChatMemberOwner):
        pass
    elif not isinstance(member, ChatMemberAdministrator):
        found.append(error("desk", "the bot is not an admin of the staff group; make it an "
                           "admin with the right to manage topics"))
    elif not member.can_manage_topics:
        found.append(error("desk", "the bot is an admin of the staff group but may not "
                           "manage topics; give it that right"))
    if not found:
        found.append(ok("desk", "the staff group has topics and the bot is an admin who "
                        "manages them"))
    return found


@dataclass(frozen=True)
class SeenChat:
    chat_id: int
    kind: str
    title: str
    forum: bool


@dataclass(frozen=True)
class SeenUser:
    user_id: int
    name: str
    chat_id: int


async def watch_ids(options: TelegramOptions, seconds: float,
                    on_chat: Callable[[SeenChat], None],
                    on_user: Callable[[SeenUser], None]) -> int:
    """Read the updates waiting for the bot for ``seconds`` without confirming them (no
    offset), so the running bot still gets every one; report each group the bot is in and
    each person who writes in a group. Private chats are only counted (the people who
    write to the bot are not shown). Raises Rejected or a TelegramError subclass."""
    from helpline.errors import Rejected, Unreachable

    seen_updates: set[int] = set()
    chats: set[int] = set()
    users: set[tuple[int, int]] = set()
    private: set[int] = set()
    async with _bot(options) as bot:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return len(private)
            try:
                updates = await bot.get_updates(timeout=int(min(left, 10)),
                                                allowed_updates=Update.ALL_TYPES)
            except InvalidToken:
                raise Rejected(TOKEN_REJECTED) from None
            except Conflict:
                raise Rejected("Telegram sends this bot's updates to a webhook (or another "
                               "program is reading them); stop helpline, or try again while "
                               "it uses long polling") from None
            except NetworkError as exc:
                raise Unreachable(f"the Bot API is not reachable ({type(exc).__name__})"
                                  ) from None
            fresh = [u for u in updates if u.update_id not in seen_updates]
            seen_updates.update(u.update_id for u in updates)
            for update in fresh:
                chat = update.effective_chat
                if chat is None:
                    continue
                if chat.type == Chat.PRIVATE:
                    private.add(chat.id)
                    continue
                if chat.id not in chats:
                    chats.add(chat.id)
                    on_chat(SeenChat(chat.id, chat.type, chat.title or "", bool(chat.is_forum)))
                user = update.effective_user
                if user is not None and not user.is_bot and (chat.id, user.id) not in users:
                    users.add((chat.id, user.id))
                    on_user(SeenUser(user.id, user.full_name, chat.id))
            if not fresh:
                await asyncio.sleep(1.0)
