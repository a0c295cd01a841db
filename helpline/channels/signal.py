"""Signal through signal-cli-rest-api (``MODE=json-rpc``). Every signalbot import stays here.

signalbot supplies the wire models (the contact update) and the health and about calls.
Its receive pipeline is not used, because each of these touches safety:

* it logs every raw frame (message text, phone numbers) at INFO, and when its receiver dies it
  prints a traceback to stderr whose pydantic error quotes the frame;
* valid JSON of the wrong shape (such as the bridge's own ``{"error": ...}`` frame) kills its
  receiver and loses the frames queued behind it, and a clean websocket close stops it for
  good;
* its three consumers may answer one person's two messages out of order.

Instead, one task keeps the bridge connection. It checks ``/v1/health`` and ``/v1/about``,
retrying with backoff while the bridge is down (``start()`` never fails for that). Whenever
the bridge is reachable (again) it calls ``on_ready``, so kept replies go out. It reads the
receive websocket (aiohttp, with a heartbeat) and, however the socket ends (dropped or closed
cleanly), starts over. Each frame is decoded once and its envelope read by the keys
signal-cli-rest-api documents (what signalbot's parser reads for a data message, without
building its pydantic models, about 4% of the CPU a message took), inside a try/except:
a frame that cannot be read is skipped and logged by its error type only. Each event goes to the
app's inbox at once (written down in the next commit, while reading goes on), and the app
handles one person's messages in order and different people concurrently.

Replies are posted to ``/v2/send`` here, not through signalbot: signalbot 2.2.1 reads the
answer as a list while the bridge answers one object, so its send raises after the message
went out (and a retry would send it twice). Both shapes are read. The timestamp is the message
id that a remote delete needs.

Edits are ignored, as on Telegram: an edit is not a new answer (the flow has moved on).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiohttp
from signalbot import (
    LOGGER_NAME,
    MIN_SIGNAL_CLI_REST_API_VERSION,
    Config,
    ConnectionMode,
    InMemoryConfig,
    SignalBot,
    UpdateContact,
)

from helpline.channels.base import (
    BaseChannel,
    Capabilities,
    InboundHandler,
    ReadyHandler,
    numbered,
)
from helpline.channels.clean import clean_id, clean_text
from helpline.channels.options import SignalOptions as SignalOptions
from helpline.digits import is_number
from helpline.errors import ChannelError, RateLimited, Rejected, Unreachable
from helpline.events import Inbound, Message, RawInbound
from helpline.logsafe import log_exception

log = logging.getLogger("helpline.signal")

# What a message without text may carry that we cannot read: answered with "text only".
MEDIA_KEYS = ("attachments", "sticker", "contacts", "payment", "pollCreate", "pollVote")
PARALLEL_DELETES = 4
MAX_RECEIPT_IDS = 100  # a receipt naming more messages than this is read for its first
# Told the ids of messages of the bot's that reached the person (delivery receipts).
DeliveryHandler = Callable[[list[str]], Coroutine[Any, Any, None]]
# A frame larger than this is skipped (logged, the connection kept). A text message's frame
# is a few KB (attachments are not downloaded; long texts come as an attachment).
MAX_FRAME_BYTES = 64 * 1024 * 1024


# signal-cli sends a text past 2,000 UTF-8 bytes as its first 2,000 bytes plus the whole
# as a long-text attachment (ServiceConfig.MAX_MESSAGE_SIZE_BYTES, ManagerImpl.applyMessage),
# and Signal apps fold it behind "Read more"; signal-cli-rest-api passes the text on as it
# is. The app sends a longer text in parts of at most this many bytes instead.
MAX_TEXT_BYTES = 2000

# A rate limit that names no wait (json-rpc mode never does): try again after this long;
# a proof-required challenge (a captcha for an admin to solve) after an hour.
RATE_LIMIT_SECONDS = 60.0
CHALLENGE_SECONDS = 3600.0

# What the bridge's {"error": ...} says, lower case. signal-cli's texts: SendCommand ("The
# user +1... is not registered."), SendMessageResultUtils ("Unregistered user", "Rate limit
# failure for ..., retry after N seconds", "CAPTCHA proof required ... or wait "N"
# seconds", "Untrusted Identity for"), CommandUtil ("Rate limit reached"), the JSON-RPC
# handler (-4: the bridge's "Unable to complete request due to untrusted recipient keys",
# -5: HTTP 429 "Failed to send message due to rate limiting. Use the attached challenge
# tokens ..." with "challenge_tokens"), and libsignal's "[429] Rate limit exceeded".
_GONE = ("is not registered", "unregistered user", "unregisteredrecipient",
         "unregistereduser")
_UNTRUSTED = ("untrusted", "identity failure")
_RATE = ("rate limit", "ratelimit", "[429]", "proof required", "proofrequired")
_WAIT = re.compile(r"(?:retry after|wait)\W{0,3}(\d{1,7})\W{0,3}seconds")
# A sender's number as signal-cli gives it (E.164).
_NUMBER = re.compile(r"\+[1-9]\d{5,14}")
# A challenge token as signal-cli writes it (a UUID): never anything else of the body.
_TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def bridge_error(status: int, body: bytes) -> ChannelError:
    """What an answer of signal-cli-rest-api that is not 2xx means (helpline.errors).

    The bridge answers a failure of signal-cli as 400 ``{"error": "..."}`` (429 for a
    rate limit in json-rpc mode) and its own trouble as 5xx. Read in this order: a rate
    limit or captcha challenge waits (RateLimited, the wait the text gives, else a minute,
    an hour for a challenge); an untrusted identity (the safety number changed) waits
    until an admin trusts it (Unreachable); an unregistered recipient is gone
    (Rejected(gone)); a 5xx is the bridge's trouble (Unreachable); any other 4xx is this
    request refused (Rejected). The body may quote a phone number: it never leaves this
    function."""
    said, tokens, challenge = _said(body)
    if status == 429 or any(marker in said for marker in _RATE):
        proof = tokens or "captcha" in said or "proof required" in said
        wait = _WAIT.search(said)
        if wait is not None:
            seconds = float(wait.group(1))
        elif proof:
            seconds = CHALLENGE_SECONDS
        else:
            seconds = RATE_LIMIT_SECONDS
        if not challenge and "challenge token" in said:
            found = _TOKEN.search(said)
            challenge = found.group(0) if found else ""
        return RateLimited("signal: rate limited", seconds, proof=proof, challenge=challenge)
    if any(marker in said for marker in _UNTRUSTED):
        return Unreachable("signal: untrusted identity, waiting for an admin to trust it")
    if any(marker in said for marker in _GONE):
        return Rejected("signal: not registered", gone=True)
    if status >= 500 or status < 400:
        return Unreachable(f"signal: the bridge answered {status}")
    return Rejected(f"signal: the bridge refused it ({status})")


def _said(body: bytes) -> tuple[str, bool, str]:
    """The error text of a bridge answer, lower case; whether it carries challenge tokens;
    and the first of them when it has the form of one ("" otherwise)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").lower(), False, ""
    if not isinstance(data, dict):
        return "", False, ""
    error = data.get("error")
    tokens = data.get("challenge_tokens")
    given = isinstance(tokens, list) and bool(tokens)
    token = str(tokens[0]).strip() if given and isinstance(tokens, list) else ""
    return (error.lower() if isinstance(error, str) else "", given,
            token if re.fullmatch(r"[A-Za-z0-9-]{4,64}", token) else "")


class SignalChannel(BaseChannel):
    name = "signal"
    # A turn is joined up to signal-cli's 2,000 bytes and a longer text sent in parts of
    # that much (MAX_TEXT_BYTES), the numbered list counted in.
    capabilities = Capabilities(buttons=False, deletes_inbound=False, delete_window_hours=24,
                                disappearing=True, max_text=MAX_TEXT_BYTES,
                                split_at=MAX_TEXT_BYTES, text_unit="utf8")

    def __init__(self, options: SignalOptions) -> None:
        self.options = options
        self._http = f"http://{options.service}"
        self._ws = f"ws://{options.service}"
        self._timeout = aiohttp.ClientTimeout(total=options.request_timeout_seconds)
        self._bot: SignalBot | None = None
        self._session: aiohttp.ClientSession | None = None
        self._accepting: set[asyncio.Future[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_inbound: InboundHandler | None = None
        self._on_ready: ReadyHandler | None = None
        self._on_delivery: list[DeliveryHandler] = []

    @property
    def first_contact_timer(self) -> int:
        return max(0, self.options.disappearing_seconds)

    @property
    def exit_reply_delete_after(self) -> float | None:
        return self.options.exit_reply_delete_after_seconds

    # ------------------------------------------------------------- lifecycle

    async def start(self, on_inbound: InboundHandler, on_ready: ReadyHandler) -> None:
        """Returns at once; the connection is made (and kept) in the background."""
        if self._runner is not None:
            return
        self._on_inbound, self._on_ready = on_inbound, on_ready
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None,
                                          sock_connect=self.options.request_timeout_seconds))
        self._bot = _make_bot(self.options)
        self._runner = asyncio.create_task(self._keep_connected(), name="signal-receive")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if self._accepting:  # frames read are written down before the bridge goes
            await asyncio.wait(list(self._accepting), timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.close()

    async def _keep_connected(self) -> None:
        first, most = self.options.retry_first_seconds, self.options.retry_max_seconds
        delay, outage = first, False
        while True:
            try:
                problem = await self._check_bridge()
                if problem is None:
                    log.info("signal bridge reachable%s", " again" if outage else "")
                    outage = False
                    self._spawn(self._after_connect())
                    began = time.monotonic()
                    problem = await self._receive()
                    if time.monotonic() - began >= most:
                        delay = first  # it ran for a good while: start the backoff over
            except Exception as exc:  # a bug here must not end receiving for good
                log_exception(log, "the signal connection failed", exc)
                problem = f"failed ({type(exc).__name__})"
            outage = True
            log.warning("signal bridge %s; trying again in %.1fs", problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)

    async def _check_bridge(self) -> str | None:
        """None when the bridge answers and fits; else what is wrong, for the log."""
        session, bot = self._parts()
        try:
            async with session.get(f"{self._http}/v1/health", timeout=self._timeout) as resp:
                if resp.status >= 300:
                    return f"is not healthy ({resp.status})"
            async with asyncio.timeout(self.options.request_timeout_seconds):
                about = await bot.general.about()
        except Exception as exc:
            return f"is not reachable ({type(exc).__name__})"
        if about.mode != "json-rpc":
            return "runs in the wrong mode: set MODE=json-rpc"
        if not _new_enough(about.version):
            return f"is too old ({about.version}; {MIN_SIGNAL_CLI_REST_API_VERSION} needed)"
        return None

    async def _after_connect(self) -> None:
        if self._on_ready is not None:
            await self._on_ready()

    # ------------------------------------------------------------- inbound

    async def _receive(self) -> str:
        """Read the receive websocket until it ends; return how it ended, for the log."""
        session, _ = self._parts()
        url = f"{self._ws}/v1/receive/{self.options.number}"
        try:
            async with asyncio.timeout(self.options.request_timeout_seconds):
                # No aiohttp size limit (its default, 4 MB, closed the socket on a large
                # frame, and the bridge sent it again on every reconnect); our own cap
                # skips a frame past it and reads on.
                ws = await session.ws_connect(url, heartbeat=self.options.heartbeat_seconds,
                                              max_msg_size=0)
            async with ws:
                async for frame in ws:
                    if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY) \
                            and len(frame.data) > MAX_FRAME_BYTES:
                        log.warning("skipped a frame of more than %d MB", MAX_FRAME_BYTES >> 20)
                    elif frame.type == aiohttp.WSMsgType.TEXT:
                        await self._on_frame(str(frame.data))
                    elif frame.type == aiohttp.WSMsgType.BINARY:
                        await self._on_frame(bytes(frame.data).decode("utf-8", "replace"))
                    elif frame.type == aiohttp.WSMsgType.ERROR:
                        break
                return f"closed the receive connection ({ws.close_code})"
        except aiohttp.WSServerHandshakeError as exc:
            return f"refused the receive connection ({exc.status})"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"dropped the receive connection ({type(exc).__name__})"

    async def _on_frame(self, raw: str) -> None:
        """Turn one frame into an event and hand it to the app at once, which writes it
        down (frames read together go in one commit) and processes it in order with the
        sender's earlier ones. Reading goes on meanwhile: the bridge never sends a frame
        again once it was read."""
        try:
            event = await self._read(raw)
        except Exception as exc:
            log_exception(log, "skipped a frame that could not be read", exc, logging.INFO)
            return
        handler = self._on_inbound
        if event is None or handler is None:
            return
        accepted = asyncio.ensure_future(handler(event))
        self._accepting.add(accepted)
        accepted.add_done_callback(self._accepted)

    def _accepted(self, future: asyncio.Future[None]) -> None:
        self._accepting.discard(future)
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("a frame could not be written down (%s)", type(exc).__name__)

    async def _read(self, raw: str) -> RawInbound | None:
        frame = json.loads(raw)
        envelope = frame.get("envelope") if isinstance(frame, dict) else None
        if not isinstance(envelope, dict):
            log.info("skipped a frame without an envelope")
            return None
        receipt = envelope.get("receiptMessage")
        if isinstance(receipt, dict) and self._on_delivery:
            self._delivered(receipt)
            return None
        data = envelope.get("dataMessage")
        if not isinstance(data, dict):
            # Receipts, typing, calls, stories, edits, and sync messages (what this number
            # sent from a linked device): nothing to answer.
            return None
        if data.get("groupInfo") is not None:
            log.info("ignored a group message")
            return None
        if data.get("reaction") is not None or data.get("remoteDelete") is not None:
            return None  # a reaction or a remote delete: nothing to answer
        # The uuid, else the number; an envelope with both empty still names its sender in
        # the older "source" field (signalbot's parse_source_from_envelope reads the same
        # three for a data message).
        source_number = envelope.get("sourceNumber")
        sender = (clean_id(envelope.get("sourceUuid")) or clean_id(source_number)
                  or clean_id(envelope.get("source")))
        if not sender or self.options.number in (source_number, sender):
            return None
        text = clean_text(data.get("message"))
        number = clean_id(source_number) or ""
        number = number if _NUMBER.fullmatch(number) else ""
        if text.strip():
            inbound = Inbound(kind="text", at=0.0, text=text, number=number)
        elif any(data.get(key) for key in MEDIA_KEYS):
            inbound = Inbound(kind="unsupported", at=0.0, number=number)
        else:
            return None  # a timer change, a profile key update, an end of session ...
        stamp = envelope.get("timestamp")
        return RawInbound(channel=self.name, platform_id=sender, address=sender,
                          inbound=inbound,
                          message_id=clean_id(stamp) if isinstance(stamp, int) else None,
                          event_id=f"{sender}:{stamp}" if isinstance(stamp, int) else None)

    # ------------------------------------------------------------- outbound

    async def send(self, address: str, message: Message) -> list[str]:
        """Raises helpline.errors (see ``bridge_error``) when the message does not go out."""
        body = await self._call("POST", "/v2/send",
                                send_body(self.options.number, address,
                                          numbered(message) or "…"))
        ids = _sent_timestamps(body)
        if not ids:
            log.warning("a reply went out without a timestamp; it cannot be deleted later")
        return ids

    async def delete(self, address: str, message_ids: Sequence[str]) -> list[str]:
        """Remote-delete the bot's own messages (Signal honours it for about a day). Returns
        the ones worth asking for again (the bridge was unreachable or rate-limited): the
        app keeps them (across restarts) and asks again when the bridge is back. One the
        bridge refused (the person is gone, a bad timestamp) is not asked for again."""
        stamps = sorted({int(i) for i in message_ids if is_number(str(i))})
        if not stamps:
            return []
        failed = await self._remote_delete(address, stamps)
        if failed:
            log.warning("could not delete %d of %d messages; trying again when the bridge "
                        "is back", len(failed), len(stamps))
        return [str(ts) for ts in failed]

    async def _remote_delete(self, address: str, stamps: Sequence[int]) -> list[int]:
        """Delete each message; return the timestamps worth trying again."""
        if self._session is None:
            return list(stamps)
        limit = asyncio.Semaphore(PARALLEL_DELETES)
        path = f"/v1/remote-delete/{self.options.number}"

        async def one(ts: int) -> int | None:
            async with limit:
                try:
                    await self._call("DELETE", path,
                                     json.dumps({"recipient": address, "timestamp": ts}))
                except Rejected as exc:
                    log.info("a remote delete was refused (%s)", "gone" if exc.gone else "4xx")
                    return None
                except ChannelError:
                    return ts
                except Exception as exc:  # a bug: keep it, say where
                    log_exception(log, "a remote delete failed", exc)
                    return ts
                return None

        results = await asyncio.gather(*(one(ts) for ts in stamps))
        return [ts for ts in results if ts is not None]

    async def set_disappearing(self, address: str, seconds: int) -> None:
        """Set the chat's timer (the app queues it before the replies it should cover, and
        tries it again while the bridge is down)."""
        payload = UpdateContact(expiration_in_seconds=max(0, seconds)).to_generated(address)
        try:
            await self._call("PUT", f"/v1/contacts/{self.options.number}",
                             payload.model_dump_json(exclude_none=True, by_alias=True))
        except ChannelError:
            raise
        except Exception as exc:
            raise Unreachable(f"setting the timer failed ({type(exc).__name__})") from None

    # ------------------------------------------------------------- helpers

    def _parts(self) -> tuple[aiohttp.ClientSession, SignalBot]:
        if self._session is None or self._bot is None:
            raise Unreachable("the Signal channel is not started")
        return self._session, self._bot

    async def _call(self, method: str, path: str, payload: str) -> bytes:
        """One JSON request to the bridge; its body on 2xx, else the error it means
        (``bridge_error``); a connection error or a time-out is Unreachable."""
        session, _ = self._parts()
        try:
            async with session.request(method, f"{self._http}{path}", data=payload,
                                       headers={"Content-Type": "application/json"},
                                       timeout=self._timeout) as resp:
                status, body = resp.status, await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(f"signal: the bridge could not be reached "
                              f"({type(exc).__name__})") from None
        if status >= 300:
            raise bridge_error(status, body)
        return body

    def on_delivery(self, handler: DeliveryHandler) -> None:
        """``handler`` is given the ids (the bridge's timestamps, as ``send`` returns them)
        of messages the bot sent that Signal says reached the person's phone (a delivery
        receipt); read and viewed receipts are not passed on."""
        self._on_delivery.append(handler)

    def _delivered(self, receipt: dict[str, Any]) -> None:
        stamps = receipt.get("timestamps")
        if receipt.get("isDelivery") is not True or not isinstance(stamps, list):
            return
        ids = [str(t) for t in stamps[:MAX_RECEIPT_IDS]
               if isinstance(t, int) and not isinstance(t, bool) and t > 0]
        if ids:
            for handler in self._on_delivery:
                self._spawn(handler(ids))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log_exception(log, "a background task failed", exc)


def send_body(number: str, recipient: str, text: str) -> str:
    """The JSON body of ``POST /v2/send`` for one text: what signalbot's ``SendMessage``
    (``to_generated``, then ``model_dump_json(exclude_none=True, by_alias=True)``) gives,
    without building two pydantic models per reply (about 20 us; a test keeps the two
    equal)."""
    return json.dumps({"message": text, "number": number, "recipients": [recipient]},
                      ensure_ascii=False, separators=(",", ":"))


def _make_bot(options: SignalOptions) -> SignalBot:
    """A SignalBot used for its HTTP calls and parser only (never started). It must be built
    inside the running loop. Its constructor adds a stderr handler to the "signalbot" logger
    every time; that is taken off again, so its records (kept at WARNING, where it logs no
    content) reach only our own handlers."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers = list(logger.handlers)
    try:
        return SignalBot(Config(
            phone_number=options.number,
            signal_service=options.service,
            storage=InMemoryConfig(),
            connection_mode=ConnectionMode.HTTP_ONLY,
            download_attachments=False,  # a person's files are never fetched
            logging_level=logging.WARNING,
        ))
    finally:
        logger.handlers[:] = handlers


def _new_enough(version: str) -> bool:
    """Whether the bridge is at least the version signalbot's models need. "unset" (preview
    builds) and versions that cannot be read pass: the models themselves still check."""
    found: list[int] = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        found.append(int(digits))
    if not found:
        return True
    need = list(MIN_SIGNAL_CLI_REST_API_VERSION.release)
    width = max(len(found), len(need))
    return found + [0] * (width - len(found)) >= need + [0] * (width - len(need))


def _sent_timestamps(body: bytes) -> list[str]:
    """The timestamps in a /v2/send answer: one object (the bridge) or a list (what
    signalbot 2.2.1 expects)."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    out: list[str] = []
    for entry in data if isinstance(data, list) else [data]:
        stamp = entry.get("timestamp") if isinstance(entry, dict) else None
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            out.append(str(stamp))
        elif isinstance(stamp, str) and is_number(stamp):
            out.append(str(int(stamp)))
    return out
