"""A loopback fake of the Telegram Bot API that the real python-telegram-bot talks to.

python-telegram-bot POSTs ``{base_url}{token}/{method}`` with form fields (non-string values
JSON-encoded). This server answers like Telegram (``{"ok": true, "result": ...}``), records
every call, keeps each chat's live messages (so deletions can be checked), lets a test act
as a person (send text, press a button), and can inject 429s, 403s and outages.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

TOKEN = "123456:TEST-TOKEN"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Helper", "username": "helpline_test_bot"}
JSON_FIELDS = {"reply_markup", "message_ids", "commands", "allowed_updates", "entities", "scope",
               "link_preview_options", "reply_parameters"}
INT_FIELDS = {"chat_id", "message_id", "offset", "timeout", "limit", "message_thread_id",
              "user_id", "from_chat_id", "icon_color"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str
    failed: bool = False


@dataclass
class Fault:
    error_code: int
    description: str
    retry_after: int | None
    times: int


@dataclass
class FakeBotAPI:
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    live: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    blocked: set[int] = field(default_factory=set)
    down: bool = False
    webhook: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1))
        self._topic_ids = itertools.count(100)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}

    # ------------------------------------------------------------- server

    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------- requests

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        if request.content_type == "application/json":
            raw = await request.json()
        elif request.can_read_body:
            form = await request.post()
            raw = {k: v for k, v in form.items() if isinstance(v, str)}
        raw.update(request.query)
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str) and key in JSON_FIELDS:
                value = json.loads(value)
            elif isinstance(value, str) and key in INT_FIELDS and value.lstrip("-").isdigit():
                value = int(value)
            elif isinstance(value, str) and value in ("true", "false"):
                value = value == "true"
            params[key] = value
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        params = await self._params(request)
        call = Call(method, params, request.match_info["token"])
        self.calls.append(call)
        await self._notify()
        if self.down:
            call.failed = True
            return web.Response(status=502, text="Bad Gateway")
        fault = self.faults.get(method)
        if fault is not None and fault.times > 0:
            fault.times -= 1
            call.failed = True
            body: dict[str, Any] = {"ok": False, "error_code": fault.error_code,
                                    "description": fault.description}
            if fault.retry_after is not None:
                body["parameters"] = {"retry_after": fault.retry_after}
            return web.json_response(body, status=fault.error_code)
        chat = params.get("chat_id")
        if isinstance(chat, int) and chat in self.blocked and method.startswith("send"):
            call.failed = True
            return web.json_response({"ok": False, "error_code": 403,
                                      "description": "Forbidden: bot was blocked by the user"},
                                     status=403)
        if method == "getupdates":
            return await self._get_updates(params)
        result = self._answer(method, params)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        if method == "getme":
            return BOT_USER
        if method in ("setwebhook",):
            self.webhook = {"url": params.get("url"), "secret": params.get("secret_token")}
            return True
        if method == "deletewebhook":
            self.webhook = {}
            return True
        if method == "getwebhookinfo":
            return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                    "pending_update_count": len(self.updates)}
        if method == "sendmessage":
            assert isinstance(chat_id, int)
            message_id = next(self._message_ids[chat_id])
            message = {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                       "chat": self._chat(chat_id), "text": params.get("text", "")}
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            if "message_thread_id" in params:
                message["message_thread_id"] = params["message_thread_id"]
                message["is_topic_message"] = True
            self.live[chat_id].add(message_id)
            self.messages[(chat_id, message_id)] = message
            return message
        if method in ("editmessagetext", "editmessagereplymarkup"):
            key = (int(chat_id or 0), int(params.get("message_id", 0)))
            message = self.messages.get(key)
            if message is None:
                return web.json_response({"ok": False, "error_code": 400,
                                          "description": "Bad Request: message not found"},
                                         status=400)
            if "text" in params:
                message["text"] = params["text"]
            message["reply_markup"] = params.get("reply_markup")
            return message
        if method == "deletemessage":
            assert isinstance(chat_id, int)
            self.live[chat_id].discard(int(params["message_id"]))
            return True
        if method == "deletemessages":
            assert isinstance(chat_id, int)
            ids = params.get("message_ids", [])
            if not 1 <= len(ids) <= 100:
                return web.json_response({"ok": False, "error_code": 400,
                                          "description": "Bad Request: too many message ids"},
                                         status=400)
            self.live[chat_id].difference_update(int(i) for i in ids)
            return True
        if method == "createforumtopic":
            return {"message_thread_id": next(self._topic_ids), "name": params.get("name", ""),
                    "icon_color": 7322096}
        if method == "getchat":
            return self._chat(int(chat_id or 0))
        if method == "getmycommands":
            return []
        return True

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": "Desk", "is_forum": True}
        return {"id": chat_id, "type": "private", "first_name": "Canary"}

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        async with self._changed:
            while not self.updates and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        limit = int(params.get("limit") or 100)
        return web.json_response({"ok": True, "result": self.updates[:limit]})

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------- acting as a person

    def queue_update(self, update: dict[str, Any]) -> int:
        update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return int(update["update_id"])

    def person_sends(self, chat_id: int, text: str | None = None, *, user_id: int | None = None,
                     first_name: str = "Canary", username: str | None = None,
                     language_code: str | None = "en", thread_id: int | None = None,
                     **extra: Any) -> int:
        message_id = next(self._message_ids[chat_id])
        user: dict[str, Any] = {"id": user_id or abs(chat_id), "is_bot": False,
                                "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                   "from": user, "chat": self._chat(chat_id), **extra}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(text.split()[0])}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        self.live[chat_id].add(message_id)
        self.messages[(chat_id, message_id)] = message
        self.queue_update({"message": message})
        return message_id

    def person_presses(self, chat_id: int, message_id: int, data: str, *,
                       user_id: int | None = None, first_name: str = "Canary") -> str:
        message = self.messages.get((chat_id, message_id)) or {
            "message_id": message_id, "date": int(time.time()), "chat": self._chat(chat_id)}
        query_id = str(next(self._callback_ids))
        self.queue_update({"callback_query": {
            "id": query_id, "chat_instance": str(chat_id),
            "from": {"id": user_id or abs(chat_id), "is_bot": False, "first_name": first_name,
                     "language_code": "en"},
            "message": message, "data": data}})
        return query_id

    def press(self, chat_id: int, label: str, *, user_id: int | None = None) -> str:
        """Press the button labelled ``label`` on the newest bot message that has it."""
        for call in reversed(self.calls_to("sendMessage")):
            if call.params.get("chat_id") != chat_id:
                continue
            for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == label:
                        message_id = self._message_of(call)
                        return self.person_presses(chat_id, message_id, button["callback_data"],
                                                   user_id=user_id)
        raise AssertionError(f"no button {label!r} in chat {chat_id}")

    def _message_of(self, call: Call) -> int:
        chat_id = int(call.params["chat_id"])
        found = [message_id for (chat, message_id), message in self.messages.items()
                 if chat == chat_id and message.get("from") == BOT_USER
                 and message.get("text") == call.params.get("text")]
        return found[-1]

    async def push_webhook(self, update: dict[str, Any], secret: str | None = None) -> int:
        update = {"update_id": next(self._update_ids), **update}
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret if secret is not None
                   else str(self.webhook.get("secret") or "")}
        async with ClientSession() as session, session.post(
                str(self.webhook["url"]), json=update, headers=headers) as response:
            return response.status

    # ------------------------------------------------------------- inspecting

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method.lower()]

    def sent_texts(self, chat_id: int) -> list[str]:
        return [str(c.params.get("text")) for c in self.calls_to("sendMessage")
                if c.params.get("chat_id") == chat_id and not c.failed]

    def live_message_ids(self, chat_id: int) -> set[int]:
        return set(self.live[chat_id])

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0,
                       chat_id: int | None = None) -> list[Call]:
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if not c.failed
                     and (chat_id is None or c.params.get("chat_id") == chat_id)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                recent = [(c.method, c.params.get("text")) for c in self.calls[-15:]]
                raise AssertionError(f"{count} x {method} not seen; recent: {recent}")
            await asyncio.sleep(0.01)

    async def wait_sent(self, chat_id: int, count: int, timeout: float = 5.0) -> list[str]:
        await self.wait_for("sendMessage", count=count, timeout=timeout, chat_id=chat_id)
        return self.sent_texts(chat_id)

    def fail_next(self, method: str, *, error_code: int = 429,
                  description: str = "Too Many Requests: retry after 1",
                  retry_after: int | None = 1, times: int = 1) -> None:
        self.faults[method.lower()] = Fault(error_code, description, retry_after, times)
