"""Loopback fake of bbernhard/signal-cli-rest-api in ``MODE=json-rpc``.

The REAL ``signalbot`` client (2.2.1) talks to it over real HTTP and a real
websocket on 127.0.0.1, so integration tests exercise signalbot's wire code, not
a mock of it. Nothing here ever binds or connects to a non-loopback address.

What signalbot 2.2.1 does on the wire (read from its source and checked by
``tests/test_fake_signal_api.py``)
=====================================================================================

Startup (``SignalBot._async_init``), in order:

1. ``GET /v1/health`` -- must answer 204. With ``connection_mode="auto"`` (the
   default) it first tries ``https://``; on a transport error it falls back to
   ``http://`` and from then on also uses ``ws://``. Use ``"http_only"`` against
   this fake to skip the TLS attempt. While health fails it retries forever every
   ``retry_interval`` seconds.
2. ``GET /v1/about`` twice (version check, then mode check). The body is validated
   as ``{"build": int, "capabilities": {str: [str]}, "mode": str, "version": str,
   "versions": [str]}``; ``version`` must be ``>= 0.101.0`` (or ``"unset"``) and
   ``mode`` must be ``"json-rpc"``, otherwise ``RuntimeError`` -- which the
   ``rerun_on_exception`` wrapper around init swallows and retries (1 s, 2 s,
   4 s ... backoff) forever, so a wrong version shows up as "bot never gets ready",
   not as an error. (So ``"version": "0.97"`` would NOT work; the fake says 0.101.)
3. ``GET /v1/groups/{number}`` -- a JSON list of GroupEntry objects.
4. Ready handlers run, then ``MessagePipeline.start()`` spawns 1 producer task and
   3 consumer tasks. The producer opens ``ws://host:port/v1/receive/{number}``
   (``websockets`` library, number not URL-encoded) and reads text frames.

Nothing else is called at startup (no accounts/contacts/identities); the fake
still serves those. While running, signalbot calls: ``POST /v2/send``,
``DELETE /v1/remote-delete/{number}``, ``PUT``/``DELETE
/v1/typing-indicator/{number}``, ``POST /v1/reactions/{number}``, ``POST
/v1/receipts/{number}``, ``PUT /v1/contacts/{number}``, ``POST
/v1/polls/{number}``, ``GET /v1/groups/{number}[/{id}]``, ``PUT
/v1/groups/{number}/{id}`` and ``GET``/``DELETE /v1/attachments/{id}``
(received attachments are downloaded DURING parsing when
``download_attachments=True``, the default). Request bodies are JSON sent as
``text/plain`` (``data=payload``), so the fake parses bodies whatever the header.

Each frame is parsed with ``json.loads`` then validated as ``{"account": str,
"envelope": MessageEnvelope}``; ``envelope`` REQUIRES ``timestamp``,
``serverReceivedTimestamp`` and ``serverDeliveredTimestamp``; ``groupInfo``
requires ``revision``; attachments require ``isVoiceNote``; reactions require
``isRemove`` and ``targetSentTimestamp``.

* not JSON at all -> ``UnknownMessageFormatError`` -> frame skipped, connection kept;
* valid envelope without data/edit/typing/sync-sent message (receipts, sync read
  messages, call messages...) -> skipped, connection kept;
* valid JSON of the wrong shape (e.g. the bridge's own ``{"error": "..."}`` frame
  or an envelope missing a required field) -> pydantic ``ValidationError`` is NOT
  caught: the producer task dies, ``rerun_on_exception`` prints the traceback,
  sleeps (1 s, then 2, 4, ... up to 300 s; the delay only resets after an attempt
  that lived >= 180 s) and reconnects. Frames already written to the old socket
  are lost. Same if an attachment download fails.

``POST /v2/send``: signalbot 2.2.1 parses the body as a JSON LIST
``[{"timestamp": "<digits>", "errors": ...?}]`` (one entry per recipient) and
unpacks exactly one entry for ``messages.send``. The bridge's swagger (0.101, the
one bundled in signalbot) and its Go source return ONE OBJECT
``{"timestamp": "<digits>"}`` with 201; signalbot then raises
``pydantic.ValidationError`` from ``send()`` AFTER the message was sent. The fake
answers like the bridge by default (``send_response="object"``); pass
``send_response="list"`` for the shape signalbot wants.

Failures: every HTTP call goes through ``resp.raise_for_status()``; any non-2xx
answer or transport error becomes the action's ``SignalAPIError`` subclass
(``SendError``, ``RemoteDeleteError``, ``UpdateContactError`` ...) with the aiohttp
message; the ``{"error": ...}`` body is ignored and nothing is retried.

Websocket loss: an abnormal close (TCP drop / no close frame, i.e. what a crashed
bridge produces) raises ``ConnectionClosedError`` -> ``ReceiveError`` -> the
producer is restarted with the backoff above, reconnecting on its own. A CLEAN
close (close frame 1000/1001) just ends ``async for`` -> the producer coroutine
returns normally -> ``rerun_on_exception`` returns -> the bot never receives
again and logs nothing. The real bridge's gorilla ``ws.Close()`` sends no close
frame, but a proxy in between may; ``drop_websockets(clean=True)`` simulates that.

Dispatch: ONE producer reads frames in order, parses them (downloading
attachments inline) and puts ``(handler, job)`` items on an ``asyncio.Queue``;
THREE consumers run jobs concurrently. Jobs start in FIFO order but a slow
handler does not block the next message, so completion order is not arrival
order (two messages of one person may be handled concurrently / out of order).
A handler exception is logged and the consumer continues.

Running signalbot inside a test's event loop: build ``SignalBot(config)`` inside
the running loop (its constructor grabs ``asyncio.get_running_loop()``), call
``bot.start(run_forever=False)`` (only schedules ``init_task``; the scheduler is not
started), then ``await asyncio.wait_for(bot.wait_until_ready(), ...)``. To stop,
do NOT call ``await bot.stop()``: it ends with ``loop.stop()``, which kills the
test's own loop ("Event loop stopped before Future completed"). Instead cancel
``bot.init_task`` if still pending, ``await bot._pipeline.stop()`` (cancels and
awaits producer/consumers; private API) and ``await bot.close()`` (closes the
aiohttp session).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from aiohttp import WSMsgType, web

from tests.fakes.loopback import LOOPBACK, FailureQueues, LoopbackServer

__all__ = [
    "CHALLENGE_TOKEN", "DEFAULT_BOT_NUMBER", "LIBSIGNAL_429", "PROOF_REQUIRED", "RATE_LIMITED",
    "RATE_LIMIT_RETRY",
    "UNREGISTERED", "UNREGISTERED_NORMAL_MODE", "UNTRUSTED", "UNTRUSTED_NORMAL_MODE", "Call",
    "FakeGroup", "FakeSignalAPI",
]

DEFAULT_BOT_NUMBER = "+15550000001"
"""Fictitious (555 is no NANP area code); signalbot never validates its own number."""

# What the bridge answers when signal-cli fails, as their sources write it (signal-cli
# SendCommand / SendMessageResultUtils / SignalJsonRpcCommandHandler, signal-cli-rest-api
# api.go / jsonrpc2.go). ``{recipient}`` becomes the recipient: real answers quote it.
UNREGISTERED = "The user {recipient} is not registered."
UNREGISTERED_NORMAL_MODE = 'Failed to send message: Unregistered user "{recipient}"'
UNTRUSTED = "Unable to complete request due to untrusted recipient keys"
UNTRUSTED_NORMAL_MODE = 'Failed to send message: Untrusted Identity for "{recipient}"'
RATE_LIMITED = ("Failed to send message due to rate limiting. Use the attached challenge "
                "tokens to lift the rate limit restrictions via the "
                "'/v1/accounts/{number}/rate-limit-challenge' endpoint.")
RATE_LIMIT_RETRY = ('Failed to send message: Rate limit failure for "{recipient}", retry '
                    'after 42 seconds')
PROOF_REQUIRED = ('CAPTCHA proof required for sending to "{recipient}", available options '
                  '"CAPTCHA" with challenge token "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", or '
                  'wait "86400" seconds.\nTo get the captcha token, go to '
                  'https://signalcaptchas.org/challenge/generate.html')
# The token the fake's rate limit of new recipients attaches (a UUID, as signal-cli's).
CHALLENGE_TOKEN = "5fad97ac-7d06-4e44-b18a-b950b20148ff"
LIBSIGNAL_429 = "Failed to send message: [429] Rate limit exceeded: 12 (RateLimitException)"

_GROUP_ID_RE = re.compile(r"^group\.[a-zA-Z0-9]{59}=$")


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake received (websocket upgrades included, status 101)."""

    method: str
    path: str
    json_body: Any = None
    status: int = 0


@dataclass(frozen=True)
class FakeGroup:
    """A group the bot is a member of, as served by ``GET /v1/groups/{number}``."""

    id: str
    """Public id, ``group.<base64 of internal_id>``; what signalbot sends to."""
    internal_id: str
    """What ``envelope.dataMessage.groupInfo.groupId`` carries."""
    name: str
    members: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "internal_id": self.internal_id,
            "members": list(self.members),
            "blocked": False,
            "pending_invites": [],
            "pending_requests": [],
            "invite_link": "",
            "admins": [],
            "description": "",
            "member": True,
            "permissions": {
                "add_members": "only-admins",
                "edit_group": "only-admins",
                "send_messages": "every-member",
            },
        }


class _HttpError(Exception):
    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}


_Handler = Callable[[web.Request, dict[str, str], Any], Awaitable[web.StreamResponse]]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler
    json_required: bool = False


@dataclass
class _SendFailure:
    status: int
    error: str
    extra: dict[str, Any] = field(default_factory=dict)

    def error_for(self, recipient: str) -> _HttpError:
        return _HttpError(self.status, self.error.replace("{recipient}", recipient), self.extra)


@dataclass
class _State:
    """Mutable wire state; kept apart so ``reset()`` is one assignment."""

    delivered: list[str] = field(default_factory=list)
    pending: deque[str] = field(default_factory=deque)
    ws_connections: int = 0


class FakeSignalAPI(LoopbackServer[Call]):
    """signal-cli-rest-api (json-rpc mode) on 127.0.0.1 for one registered number."""

    recheck_seconds: ClassVar[float] = 0.02

    def __init__(
        self,
        number: str = DEFAULT_BOT_NUMBER,
        *,
        port: int = 0,
        version: str = "0.101",
        mode: str = "json-rpc",
        send_response: Literal["object", "list"] = "object",
    ) -> None:
        super().__init__(port=port)
        self._number = number
        self.version = version
        self.mode = mode
        self.send_response: Literal["object", "list"] = send_response
        """``"object"``: ``{"timestamp": "..."}`` like the bridge; ``"list"``: what
        signalbot 2.2.1 parses (one entry per recipient)."""

        self._state = _State()
        # Failures for "send", "delete" and "contact" (a timer) requests.
        self._failures: FailureQueues[_SendFailure] = FailureQueues()
        self._sockets: dict[web.WebSocketResponse, web.Request] = {}
        self._down: Literal["refuse", "http_503"] | None = None
        self._wakeup = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._last_ts = 0
        self._uuid_by_number: dict[str, str] = {}
        self._number_by_uuid: dict[str, str] = {}
        self._groups: dict[str, FakeGroup] = {}
        self._attachments: dict[str, bytes] = {}
        self._attachment_ids = itertools.count(1)
        # The limit of new recipients (limit_new_recipients): how many, whether it holds
        # now, and the recipients written to so far.
        self._new_limit: int | None = None
        self._new_round = 0
        self._limited = False
        self._written: set[str] = set()
        self._stamps: dict[str, list[int]] = {}  # recipient -> timestamps sent to them
        self.challenges: list[dict[str, Any]] = []  # rate-limit-challenge bodies answered
        self._routes = self._build_routes()
        self.observers: list[Callable[[Call], None]] = []
        """Called with each recorded call as it is answered (load drivers react to the
        bot's sends here instead of polling ``calls``)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def number(self) -> str:
        return self._number

    @property
    def service(self) -> str:
        """``"127.0.0.1:PORT"``: signalbot's ``signal_service`` config value."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def is_down(self) -> bool:
        return self._down is not None

    async def start(self) -> None:
        if self.listening:
            return
        await super().start()
        if self._pump_task is None:
            self._pump_task = asyncio.create_task(self._pump(), name="fake-signal-pump")

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        self._abort_sockets()
        await super().stop()

    # ------------------------------------------------------------------- outages

    async def go_down(self, mode: Literal["refuse", "http_503"] = "refuse") -> None:
        """Simulate a dead bridge.

        ``"refuse"`` (default, like a crashed/restarting container): websockets are
        cut without a close frame, the TCP listener is closed, so every request
        fails with "connection refused". ``"http_503"``: the process stays up but
        every request (websocket upgrades included) answers 503 ``{"error": ...}``.
        Envelopes pushed meanwhile are queued and delivered after ``come_back()``.
        """
        self._down = mode
        self._abort_sockets()
        if mode == "refuse":
            await self._close_listener()
        self._notify()

    async def come_back(self) -> None:
        """Undo ``go_down()``: listen again on the SAME port."""
        if self._down == "refuse" and not self.listening:
            await self._listen()
        self._down = None
        self._wakeup.set()
        self._notify()

    async def drop_websockets(self, *, clean: bool = False) -> None:
        """Cut the receive websockets while the HTTP API stays up.

        ``clean=False``: abort the TCP connection (no close frame; code 1006 on the
        client, like a bridge crash). ``clean=True``: send a close frame 1000.
        """
        if not clean:
            self._abort_sockets()
        else:
            for ws in list(self._sockets):
                with contextlib.suppress(Exception):
                    await ws.close(code=1000, message=b"bye")
        self._notify()

    def fail_sends(self, n: int = 1, *, status: int = 500, error: str = "",
                   extra: dict[str, Any] | None = None) -> None:
        """The next ``n`` ``POST /v2/send`` answer ``status`` with ``{"error": ...}``
        (and the ``extra`` keys, e.g. ``challenge_tokens``).

        The real bridge uses 400 for signal-cli failures (e.g. unregistered or
        untrusted recipient) and, in json-rpc mode, 429 for rate limits (with
        ``challenge_tokens`` and ``account``); see ``UNREGISTERED`` and the others.
        """
        self._queue_failures("send", n, status, error, extra)

    def fail_deletes(self, n: int = 1, *, status: int = 500, error: str = "",
                     extra: dict[str, Any] | None = None) -> None:
        """The next ``n`` ``DELETE /v1/remote-delete`` answer like ``fail_sends``."""
        self._queue_failures("delete", n, status, error, extra)

    def fail_contact_updates(self, n: int = 1, *, status: int = 500, error: str = "",
                             extra: dict[str, Any] | None = None) -> None:
        """The next ``n`` ``PUT /v1/contacts`` (timers) answer like ``fail_sends``."""
        self._queue_failures("contact", n, status, error, extra)

    def limit_new_recipients(self, after: int) -> None:
        """Answer like Signal for an account that writes to many new recipients (signal-cli
        issues #1285, #1174, #1778): once ``after`` recipients were written to, a send to
        anyone new is refused as the bridge refuses it in json-rpc mode (429,
        ``RATE_LIMITED`` with ``challenge_tokens``), until a captcha is given for the
        token at ``POST /v1/accounts/{number}/rate-limit-challenge``; then ``after`` more
        new recipients may be written to. Answers to people who wrote first are not
        counted."""
        self._new_limit = self._new_round = after
        self._written.clear()

    def _queue_failures(self, key: str, n: int, status: int, error: str,
                        extra: dict[str, Any] | None) -> None:
        msg = error or "Failed to send message: simulated signal-cli failure"
        for _ in range(n):
            self._failures.add(key, _SendFailure(status, msg, dict(extra or {})))

    def _abort_sockets(self) -> None:
        for ws, request in list(self._sockets.items()):
            transport = request.transport
            if transport is not None:
                transport.abort()
            self._sockets.pop(ws, None)

    # ------------------------------------------------------------ acting as people

    def uuid_of(self, number: str) -> str:
        """The (stable, fictitious) ACI uuid the fake uses for ``number``."""
        found = self._uuid_by_number.get(number)
        if found is None:
            found = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-signal-cli:{number}"))
            self._remember(number, found)
        return found

    def _remember(self, number: str, source_uuid: str) -> None:
        self._uuid_by_number[number] = source_uuid
        self._number_by_uuid[source_uuid] = number

    def add_group(self, name: str, members: Iterable[str] = ()) -> FakeGroup:
        """Make the bot a member of a group (served by ``GET /v1/groups``)."""
        for salt in itertools.count():
            digest = hashlib.sha256(f"{name}:{len(self._groups)}:{salt}".encode()).digest()
            internal_id = base64.b64encode(digest).decode()
            group_id = "group." + base64.b64encode(internal_id.encode()).decode()
            if _GROUP_ID_RE.match(group_id) and group_id not in self._groups:
                break
        group = FakeGroup(group_id, internal_id, name, tuple(members))
        self._groups[group_id] = group
        return group

    def next_timestamp(self) -> int:
        """Unique, strictly increasing milliseconds (shared by envelopes and sends)."""
        self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        return self._last_ts

    def envelope(
        self,
        source_number: str,
        *,
        source_uuid: str | None = None,
        source_name: str = "Canary",
        timestamp: int | None = None,
        **body: Any,
    ) -> dict[str, Any]:
        """A ``{"envelope": ..., "account": ...}`` frame from ``source_number``;
        ``body`` adds e.g. ``dataMessage=...`` / ``typingMessage=...``."""
        if source_uuid is None:
            source_uuid = self.uuid_of(source_number)
        else:
            self._remember(source_number, source_uuid)
        ts = self.next_timestamp() if timestamp is None else timestamp
        return {
            "envelope": {
                "source": source_number,
                "sourceNumber": source_number,
                "sourceUuid": source_uuid,
                "sourceName": source_name,
                "sourceDevice": 1,
                "timestamp": ts,
                "serverReceivedTimestamp": ts,
                "serverDeliveredTimestamp": ts,
                **body,
            },
            "account": self._number,
        }

    def _group_info(self, group_id: str) -> dict[str, Any]:
        group = self._groups.get(group_id)
        if group is None:
            group = next((g for g in self._groups.values() if g.internal_id == group_id), None)
        if group is None:
            return {"groupId": group_id, "groupName": None, "revision": 0, "type": "DELIVER"}
        return {
            "groupId": group.internal_id,
            "groupName": group.name,
            "revision": 0,
            "type": "DELIVER",
        }

    def _data_message(
        self,
        source_number: str,
        *,
        source_uuid: str | None,
        source_name: str,
        group_id: str | None,
        **data: Any,
    ) -> tuple[int, dict[str, Any]]:
        ts = self.next_timestamp()
        data_message: dict[str, Any] = {
            "timestamp": ts,
            "expiresInSeconds": 0,
            "viewOnce": False,
            **data,
        }
        if group_id is not None:
            data_message["groupInfo"] = self._group_info(group_id)
        frame = self.envelope(
            source_number,
            source_uuid=source_uuid,
            source_name=source_name,
            timestamp=ts,
            dataMessage=data_message,
        )
        return ts, frame

    def person_sends(
        self,
        source_number: str,
        text: str,
        *,
        source_uuid: str | None = None,
        source_name: str = "Canary",
        group_id: str | None = None,
    ) -> int:
        """Queue a text message from ``source_number``; returns its timestamp.

        ``group_id`` is a ``FakeGroup.id`` or internal id (the envelope carries the
        internal id, as signal-cli does). Without ``source_uuid`` a stable uuid is
        derived from the number (see ``uuid_of``); signalbot replies to the uuid.
        """
        ts, frame = self._data_message(
            source_number,
            source_uuid=source_uuid,
            source_name=source_name,
            group_id=group_id,
            message=text,
        )
        self.push_envelope(frame)
        return ts

    def person_sends_attachment(
        self,
        source_number: str,
        data: bytes,
        *,
        content_type: str = "image/png",
        filename: str = "photo.png",
        text: str | None = None,
        source_uuid: str | None = None,
        source_name: str = "Canary",
        group_id: str | None = None,
    ) -> int:
        """Queue a message with one attachment, downloadable at
        ``GET /v1/attachments/{id}`` (signalbot fetches it while parsing)."""
        suffix = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        attachment_id = f"fakeattachment{next(self._attachment_ids)}.{suffix}"
        self._attachments[attachment_id] = data
        ts, frame = self._data_message(
            source_number,
            source_uuid=source_uuid,
            source_name=source_name,
            group_id=group_id,
            message=text,
            attachments=[
                {
                    "contentType": content_type,
                    "filename": filename,
                    "id": attachment_id,
                    "size": len(data),
                    "width": None,
                    "height": None,
                    "caption": None,
                    "uploadTimestamp": self._last_ts,
                    "isVoiceNote": False,
                }
            ],
        )
        self.push_envelope(frame)
        return ts

    def person_reacts(
        self,
        source_number: str,
        emoji: str,
        target_timestamp: int,
        *,
        target_author: str | None = None,
        remove: bool = False,
        source_uuid: str | None = None,
        group_id: str | None = None,
    ) -> int:
        """Queue a reaction to the message sent at ``target_timestamp`` (by the bot
        unless ``target_author`` is given)."""
        author = self._number if target_author is None else target_author
        ts, frame = self._data_message(
            source_number,
            source_uuid=source_uuid,
            source_name="Canary",
            group_id=group_id,
            message=None,
            reaction={
                "emoji": emoji,
                "targetAuthor": author,
                "targetAuthorNumber": author if author.startswith("+") else None,
                "targetAuthorUuid": self._uuid_by_number.get(author),
                "targetSentTimestamp": target_timestamp,
                "isRemove": remove,
            },
        )
        self.push_envelope(frame)
        return ts

    def person_edits(
        self,
        source_number: str,
        text: str,
        target_timestamp: int,
        *,
        source_uuid: str | None = None,
    ) -> int:
        """Queue an edit of the person's own message sent at ``target_timestamp``."""
        ts = self.next_timestamp()
        frame = self.envelope(
            source_number,
            source_uuid=source_uuid,
            timestamp=ts,
            editMessage={
                "targetSentTimestamp": target_timestamp,
                "dataMessage": {
                    "timestamp": ts,
                    "message": text,
                    "expiresInSeconds": 0,
                    "viewOnce": False,
                },
            },
        )
        self.push_envelope(frame)
        return ts

    def person_deletes(
        self, source_number: str, target_timestamp: int, *, source_uuid: str | None = None
    ) -> int:
        """Queue a remote delete ("delete for everyone") of the person's message."""
        ts, frame = self._data_message(
            source_number,
            source_uuid=source_uuid,
            source_name="Canary",
            group_id=None,
            remoteDelete={"timestamp": target_timestamp},
        )
        self.push_envelope(frame)
        return ts

    def person_types(
        self,
        source_number: str,
        *,
        started: bool = True,
        source_uuid: str | None = None,
        group_id: str | None = None,
    ) -> int:
        """Queue a typing indicator (``STARTED`` / ``STOPPED``)."""
        ts = self.next_timestamp()
        typing: dict[str, Any] = {"action": "STARTED" if started else "STOPPED", "timestamp": ts}
        if group_id is not None:
            typing["groupId"] = self._group_info(group_id)["groupId"]
        self.push_envelope(
            self.envelope(
                source_number, source_uuid=source_uuid, timestamp=ts, typingMessage=typing
            )
        )
        return ts

    def receipt(
        self,
        source_number: str,
        timestamps: Iterable[int],
        *,
        kind: Literal["delivery", "read", "viewed"] = "read",
        source_uuid: str | None = None,
    ) -> int:
        """Queue a receipt for messages the bot sent (signalbot ignores receipts)."""
        ts = self.next_timestamp()
        self.push_envelope(
            self.envelope(
                source_number,
                source_uuid=source_uuid,
                timestamp=ts,
                receiptMessage={
                    "when": ts,
                    "isDelivery": kind == "delivery",
                    "isRead": kind == "read",
                    "isViewed": kind == "viewed",
                    "timestamps": list(timestamps),
                },
            )
        )
        return ts

    def push_envelope(self, raw: dict[str, Any] | str) -> None:
        """Queue one websocket text frame: a dict is JSON-encoded as is, a str is
        sent verbatim (garbage welcome). Delivered in order to every open receive
        websocket; kept while none is open (or the fake is down)."""
        frame = raw if isinstance(raw, str) else json.dumps(raw)
        self._state.pending.append(frame)
        self._wakeup.set()

    # -------------------------------------------------------------- observation

    @property
    def delivered(self) -> list[str]:
        """Frames written to at least one websocket (not necessarily processed)."""
        return self._state.delivered

    @property
    def pending(self) -> int:
        """Frames queued but not delivered yet."""
        return len(self._state.pending)

    @property
    def ws_connections(self) -> int:
        """Receive-websocket upgrades accepted so far (reconnects included)."""
        return self._state.ws_connections

    @property
    def connected(self) -> int:
        """Currently open receive websockets."""
        return sum(1 for ws in self._sockets if not ws.closed)

    def reset(self) -> None:
        """Forget recorded calls, delivered/pending frames and scheduled failures."""
        self._state = _State(ws_connections=self._state.ws_connections)
        self.calls = []
        self._stamps.clear()
        self._failures.clear()

    def _aliases(self, recipient: str) -> set[str]:
        aliases = {recipient}
        if recipient in self._uuid_by_number:
            aliases.add(self._uuid_by_number[recipient])
        if recipient in self._number_by_uuid:
            aliases.add(self._number_by_uuid[recipient])
        group = self._groups.get(recipient)
        if group is not None:
            aliases.add(group.internal_id)
        for g in self._groups.values():
            if g.internal_id == recipient:
                aliases.add(g.id)
        return aliases

    def sends_to(self, recipient: str) -> list[dict[str, Any]]:
        """Bodies of successful ``POST /v2/send`` whose recipients include
        ``recipient`` (a number also matches its uuid and vice versa)."""
        aliases = self._aliases(recipient)
        out: list[dict[str, Any]] = []
        for call in self.calls:
            if call.method != "POST" or call.path != "/v2/send" or call.status != 201:
                continue
            body = call.json_body
            if isinstance(body, dict) and aliases.intersection(body.get("recipients") or []):
                out.append(body)
        return out

    def stamps_sent_to(self, recipient: str) -> list[int]:
        """The timestamps of the messages sent to ``recipient`` (what a receipt names)."""
        return list(self._stamps.get(recipient, []))

    def sent_texts(self, recipient: str) -> list[str]:
        return [str(body.get("message", "")) for body in self.sends_to(recipient)]

    def _timed_out(self, timeout: float, what: str) -> str:
        return f"timed out after {timeout}s waiting for {what}\n" + self.describe()

    async def wait_for(
        self,
        predicate_or_path: Callable[[Call], bool] | str,
        timeout: float = 5.0,
        count: int = 1,
    ) -> list[Call]:
        """Wait until ``count`` recorded calls match; returns all matching calls.

        A str matches ``call.path`` exactly, or ``"METHOD /path"``.
        """
        predicate = _call_matcher(predicate_or_path)

        def matching() -> list[Call]:
            return [c for c in self.calls if predicate(c)]

        await self.wait_until(
            lambda: len(matching()) >= count,
            timeout=timeout,
            what=f"{count} call(s) matching {predicate_or_path!r}",
        )
        return matching()

    async def wait_for_send(
        self, recipient: str, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` successful sends to ``recipient``; returns bodies."""
        await self.wait_until(
            lambda: len(self.sends_to(recipient)) >= count,
            timeout=timeout,
            what=f"{count} send(s) to {recipient}",
        )
        return self.sends_to(recipient)

    async def wait_connected(self, timeout: float = 5.0, *, total: int | None = None) -> None:
        """Wait until a receive websocket is open (and, with ``total``, until that
        many upgrades happened overall, i.e. a reconnect)."""
        await self.wait_until(
            lambda: self.connected > 0 and (total is None or self.ws_connections >= total),
            timeout=timeout,
            what=f"receive websocket (total={total})",
        )

    def describe(self, last: int = 25) -> str:
        lines = [
            f"fake state: down={self._down} connected={self.connected} "
            f"ws_connections={self.ws_connections} pending={self.pending} "
            f"delivered={len(self.delivered)}",
            f"last {min(last, len(self.calls))} of {len(self.calls)} calls:",
        ]
        lines += [
            f"  {c.status} {c.method} {c.path} {json.dumps(c.json_body)[:200]}"
            for c in self.calls[-last:]
        ]
        return "\n".join(lines)

    # ---------------------------------------------------------------- delivery

    async def _pump(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._state.pending and self._down is None:
                targets = [ws for ws in self._sockets if not ws.closed]
                if not targets:
                    break
                frame = self._state.pending[0]
                sent = False
                for ws in targets:
                    try:
                        await ws.send_str(frame)
                        sent = True
                    except Exception:  # closing/aborted transport: treat as gone
                        self._sockets.pop(ws, None)
                pending = self._state.pending  # reset() may have swapped the state
                if sent and pending and pending[0] is frame:
                    pending.popleft()
                    self._state.delivered.append(frame)
                    self._notify()

    # ----------------------------------------------------------------- HTTP side

    def _build_routes(self) -> list[_Route]:
        n = r"(?P<number>[^/]+)"
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", r"/v1/health", self._h_health, False),
            ("GET", r"/v1/about", self._h_about, False),
            ("GET", r"/v1/accounts", self._h_accounts, False),
            ("GET", rf"/v1/receive/{n}", self._h_receive, False),
            ("POST", r"/v2/send", self._h_send, True),
            ("POST", rf"/v1/accounts/{n}/rate-limit-challenge", self._h_challenge, True),
            ("DELETE", rf"/v1/remote-delete/{n}", self._h_remote_delete, True),
            ("GET", rf"/v1/groups/{n}", self._h_groups, False),
            ("GET", rf"/v1/groups/{n}/(?P<group>[^/]+)", self._h_group, False),
            ("PUT", rf"/v1/groups/{n}/(?P<group>[^/]+)", self._h_group_update, True),
            ("GET", rf"/v1/contacts/{n}", self._h_empty_list, False),
            ("PUT", rf"/v1/contacts/{n}", self._h_contact_update, True),
            ("GET", rf"/v1/identities/{n}", self._h_empty_list, False),
            ("PUT", rf"/v1/typing-indicator/{n}", self._h_recipient_204, True),
            ("DELETE", rf"/v1/typing-indicator/{n}", self._h_recipient_204, True),
            ("POST", rf"/v1/reactions/{n}", self._h_recipient_204, True),
            ("DELETE", rf"/v1/reactions/{n}", self._h_recipient_204, True),
            ("POST", rf"/v1/receipts/{n}", self._h_recipient_204, True),
            ("POST", rf"/v1/polls/{n}", self._h_poll, True),
            ("GET", r"/v1/attachments", self._h_attachments, False),
            ("GET", r"/v1/attachments/(?P<id>[^/]+)", self._h_attachment, False),
            ("DELETE", r"/v1/attachments/(?P<id>[^/]+)", self._h_attachment_delete, False),
        ]
        return [
            _Route(method, re.compile(f"^{pattern}$"), handler, json_required)
            for method, pattern, handler, json_required in table
        ]

    def _record_request(self, method: str, path: str, body: Any, status: int) -> None:
        call = Call(method, path, body, status)
        self._record(call)
        for observer in self.observers:
            observer(call)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        body: Any = None
        body_is_json = True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, body_is_json = raw, False
        path = request.path
        if self._down is not None:
            response: web.StreamResponse = _error(503, "signal-cli-rest-api is unavailable")
            self._record_request(request.method, path, body, response.status)
            return response
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None or route.method != request.method:
                continue
            params = match.groupdict()
            try:
                if "number" in params and params["number"] != self._number:
                    raise _HttpError(400, f"User {params['number']} is not registered.")
                if route.json_required and (not body_is_json or not isinstance(body, dict)):
                    raise _HttpError(400, "Couldn't process request - invalid request")
                response = await route.handler(request, params, body)
            except _HttpError as exc:
                response = _error(exc.status, exc.message, exc.extra)
            if not isinstance(response, web.WebSocketResponse):
                self._record_request(request.method, path, body, response.status)
            return response
        response = _error(404, "404 page not found")
        self._record_request(request.method, path, body, 404)
        return response

    async def _h_health(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.Response(status=204)

    async def _h_about(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.json_response(
            {
                "versions": ["v1", "v2"],
                "build": 2,
                "mode": self.mode,
                "version": self.version,
                "capabilities": {"v2/send": ["quotes", "mentions"]},
            }
        )

    async def _h_accounts(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.json_response([self._number])

    async def _h_empty_list(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.json_response([])

    async def _h_groups(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.json_response([g.to_json() for g in self._groups.values()])

    async def _h_group(self, _r: web.Request, p: dict[str, str], _b: Any) -> web.Response:
        group = self._groups.get(p["group"])
        if group is None:
            raise _HttpError(404, "No group with that id found")
        return web.json_response(group.to_json())

    async def _h_group_update(self, _r: web.Request, p: dict[str, str], _b: Any) -> web.Response:
        if p["group"] not in self._groups:
            raise _HttpError(400, "Group not found")
        return web.Response(status=204)

    async def _h_receive(
        self, request: web.Request, p: dict[str, str], _b: Any
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._state.ws_connections += 1
        self._record_request(request.method, request.path, None, 101)
        if p["number"] == self._number:  # the bridge filters frames by account
            self._sockets[ws] = request
        self._wakeup.set()
        try:
            async for msg in ws:  # drain client frames; pings are auto-answered
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.pop(ws, None)
            self._notify()
        return ws

    async def _h_send(self, _r: web.Request, _p: dict[str, str], body: Any) -> web.Response:
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            raise _HttpError(
                400, "Couldn't process request - please provide at least one recipient"
            )
        if body.get("number") != self._number:
            raise _HttpError(400, "Couldn't process request - please provide a valid number")
        if (failure := self._failures.take("send")) is not None:
            raise failure.error_for(str(recipients[0]))
        if self._new_limit is not None:
            # Someone who wrote to the bot is no new recipient (an answer is not outreach).
            new = [str(r) for r in recipients if str(r) not in self._written
                   and str(r) not in self._number_by_uuid and str(r) not in self._uuid_by_number]
            if new and (self._limited or len(self._written) + len(new) > self._new_limit):
                self._limited = True
                raise _HttpError(429, RATE_LIMITED, {"challenge_tokens": [CHALLENGE_TOKEN],
                                                     "account": self._number})
            self._written.update(new)
        ts = self.next_timestamp()
        for recipient in recipients:
            self._stamps.setdefault(str(recipient), []).append(ts)
        if self.send_response == "list":
            return web.json_response([{"timestamp": str(ts)} for _ in recipients], status=201)
        return web.json_response({"timestamp": str(ts)}, status=201)

    async def _h_challenge(self, _r: web.Request, _p: dict[str, str], body: Any
                           ) -> web.Response:
        """``{"challenge_token": ..., "captcha": "signalcaptcha://..."}``: lifts the limit of
        new recipients for another round (204), or 400 as the bridge answers a bad one."""
        self.challenges.append(dict(body))
        if body.get("challenge_token") != CHALLENGE_TOKEN or not str(
                body.get("captcha", "")).startswith("signalcaptcha://"):
            raise _HttpError(400, "Failed to submit challenge: invalid captcha or token")
        self._limited = False
        if self._new_limit is not None:
            self._new_limit = len(self._written) + self._new_round
        return web.Response(status=204)

    async def _h_remote_delete(
        self, _r: web.Request, _p: dict[str, str], body: Any
    ) -> web.Response:
        if not body.get("recipient") or not isinstance(body.get("timestamp"), int):
            raise _HttpError(400, "Couldn't process request - invalid request")
        if (failure := self._failures.take("delete")) is not None:
            raise failure.error_for(str(body["recipient"]))
        return web.json_response({"timestamp": str(self.next_timestamp())}, status=201)

    async def _h_contact_update(
        self, _r: web.Request, _p: dict[str, str], body: Any
    ) -> web.Response:
        if not body.get("recipient"):
            raise _HttpError(400, "Couldn't process request - recipient missing")
        if (failure := self._failures.take("contact")) is not None:
            raise failure.error_for(str(body["recipient"]))
        return web.Response(status=204)

    async def _h_recipient_204(
        self, _r: web.Request, _p: dict[str, str], body: Any
    ) -> web.Response:
        if not body.get("recipient"):
            raise _HttpError(400, "Couldn't process request - invalid request")
        return web.Response(status=204)

    async def _h_poll(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.json_response({"timestamp": str(self.next_timestamp())}, status=201)

    async def _h_attachments(self, _r: web.Request, _p: dict[str, str], _b: Any) -> web.Response:
        return web.json_response(list(self._attachments))

    async def _h_attachment(self, _r: web.Request, p: dict[str, str], _b: Any) -> web.Response:
        data = self._attachments.get(p["id"])
        if data is None:
            raise _HttpError(400, "Couldn't find attachment")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _h_attachment_delete(
        self, _r: web.Request, p: dict[str, str], _b: Any
    ) -> web.Response:
        if self._attachments.pop(p["id"], None) is None:
            raise _HttpError(400, "Couldn't delete attachment")
        return web.Response(status=204)


def _error(status: int, message: str, extra: dict[str, Any] | None = None) -> web.Response:
    return web.json_response({"error": message, **(extra or {})}, status=status)


def _call_matcher(spec: Callable[[Call], bool] | str) -> Callable[[Call], bool]:
    if callable(spec):
        return spec
    method, _, path = spec.partition(" ") if " " in spec else ("", "", spec)

    def matches(call: Call) -> bool:
        return call.path == path and (not method or call.method == method.upper())

    return matches
