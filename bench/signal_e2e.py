"""End to end on Signal: simulated people against the loopback signal-cli-rest-api fake,
for helpline, a bare signalbot echo bot and a storing signalbot echo bot, one after the
other in the same run.

``python -m bench.signal_e2e [--people N] [--messages M] [--quick]``

As bench.telegram_e2e: this process runs the fake (``tests/fakes/signal_cli_api.py``) and
the people; the bot runs in a child process (``python -m bench.signal_e2e bot --kind ...``):
helpline as ``helpline run`` serves it (``helpline.serve.serve``, its SignalChannel, the
store on SQLite in WAL mode in a temporary folder), or a bare signalbot bot (its own receive
pipeline: one websocket reader, three consumers) that echoes the text with a numbered list
of three options, so its people answer by number or label as helpline's do. The storing
echo is the same bot writing each exchange to SQLite (one encrypted row, its own commit)
before replying: the least that keeps what a bot accepted across a crash, which helpline's
rules ask for, with none of helpline's other work.

Signal has no buttons: both bots show choices as a numbered list, and people type a number
or a label. The fake answers ``/v2/send`` with a list (the shape signalbot parses; helpline
reads both), so the bare bot's sends don't fail. A quick exit's reply is the bot's first
remote delete.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from bench.common import emit, settings_for
from bench.e2e import Chat, Driver, measure_bot, run_bot_process
from bench.people import Action, Prompt

BOT_NUMBER = "+15550000001"
_OPTION = re.compile(r"^(\d{1,3})\. (.+)$")


# ---------------------------------------------------------------------- the bots


async def run_helpline(service: str, folder: Path, stop: asyncio.Event) -> None:
    from helpline.channels.signal import SignalChannel, SignalOptions
    from helpline.config import Resources
    from helpline.resources import SAMPLE_DIRECTORY
    from helpline.serve import serve

    settings = settings_for(folder, resources=Resources(seed=str(SAMPLE_DIRECTORY)))
    channel = SignalChannel(SignalOptions(service=service, number=BOT_NUMBER))
    await serve(settings, [channel], stop)


async def run_echo(service: str, stop: asyncio.Event, store_in: Path | None = None) -> None:
    """The bare signalbot echo; with ``store_in``, the storing echo: before each reply it
    writes the exchange (who, what came, what goes) to SQLite as one AES-GCM encrypted row
    in its own commit (WAL, synchronous=NORMAL, one aiosqlite trip), the least a bot can do
    that keeps what it accepted across a crash. It reads nothing back."""
    import contextlib
    import json
    import os

    import aiosqlite
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from signalbot import DataMessageContext, DataMessageHandler, SendMessage, SignalBot

    db: aiosqlite.Connection | None = None
    if store_in is not None:
        db = await aiosqlite.connect(str(store_in / "echo.db"), isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE exchanges (id INTEGER PRIMARY KEY, who BLOB, body BLOB)")
    aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def sealed(data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, data, None)

    class Echo(DataMessageHandler):
        async def handle_data_message(self, context: DataMessageContext) -> None:
            text = context.message.text or "…"
            reply = f"{text}\n1. One\n2. Two\n3. Three"
            if db is not None:
                who = str(context.message.source_uuid or context.message.source)
                await db.execute("INSERT INTO exchanges (who, body) VALUES (?, ?)",
                                 (sealed(who.encode()), sealed(json.dumps([text, reply]).encode())))
            await context.send(SendMessage(text=reply))

    bot = SignalBot({"phone_number": BOT_NUMBER, "signal_service": service,
                     "storage": {"type": "in-memory"}, "connection_mode": "http_only"})
    bot.register(Echo())
    bot.start(run_forever=False)  # bot.stop() would stop this loop: see the fake's notes
    try:
        await stop.wait()
    finally:
        if bot.init_task is not None and not bot.init_task.done():
            bot.init_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot.init_task
        await bot._pipeline.stop()
        await bot.close()
        if db is not None:
            await db.close()


def bot_main(args: argparse.Namespace) -> None:
    async def main(stop: asyncio.Event) -> None:
        if args.kind == "helpline":
            await run_helpline(args.service, Path(args.folder), stop)
        else:
            await run_echo(args.service, stop,
                           Path(args.folder) if args.kind == "storing" else None)

    run_bot_process(main, args.profile)


# ---------------------------------------------------------------------- the people


class SignalDriver(Driver):
    def __init__(self, api: Any) -> None:
        super().__init__()
        self.api = api
        self.by_uuid: dict[str, str] = {}
        api.observers.append(self._observe)

    def key_for(self, index: int) -> Hashable:
        number = f"+1555{index:07d}"
        self.by_uuid[self.api.uuid_of(number)] = number
        return number

    def deliver(self, key: Hashable, chat: Chat, action: Action) -> None:
        # No buttons on Signal: a "press" is typing the option's number.
        self.api.person_sends(str(key), action.value)

    def _observe(self, call: Any) -> None:
        if call.status >= 300 or call.method == "GET":
            return
        self.count_call()
        body = call.json_body if isinstance(call.json_body, dict) else {}
        if call.path == "/v2/send":
            for recipient in body.get("recipients") or []:
                key = self.by_uuid.get(recipient, recipient)
                self.bot_replied(key, self._prompt(str(body.get("message", ""))))
        elif call.path.startswith("/v1/remote-delete/"):
            recipient = str(body.get("recipient", ""))
            self.bot_deleted(self.by_uuid.get(recipient, recipient))

    def _prompt(self, text: str) -> Prompt | None:
        lines = text.splitlines()
        choices: list[tuple[str, str]] = []
        while lines and (match := _OPTION.match(lines[-1])):
            choices.insert(0, (match.group(2), match.group(1)))
            lines.pop()
        if choices:
            return Prompt("\n".join(lines), choices)
        return Prompt(text) if self.is_question(text) else None


async def bench_bot(kind: str, people: int, messages: int, light: int, folder: Path,
                    profile: Path | None) -> dict[str, Any]:
    from tests.fakes.signal_cli_api import FakeSignalAPI

    api = FakeSignalAPI(BOT_NUMBER, send_response="list")
    await api.start()
    try:
        args = ["--kind", kind, "--service", api.service, "--folder", str(folder)]
        args += ["--profile", str(profile / f"signal-{kind}.prof")] if profile else []
        return await measure_bot(
            "bench.signal_e2e", args, SignalDriver(api),
            lambda: api.wait_connected(timeout=60), people, messages, light,
            max(120.0, people * messages / 50), folder / f"{kind}.log")
    finally:
        await api.stop()


async def compare(people: int, messages: int, light: int, profile: Path | None = None
                  ) -> dict[str, Any]:
    result: dict[str, Any] = {"people": people, "messages_each": messages}
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        for kind in ("helpline", "echo", "storing"):
            folder = Path(tmp) / kind
            folder.mkdir()
            figures = await bench_bot(kind, people, messages, light, folder, profile)
            result.update({f"{kind}_{k}": v for k, v in figures.items()})
    echo, storing = result["echo_msgs_per_s"], result["storing_msgs_per_s"]
    result["ratio"] = result["helpline_msgs_per_s"] / echo if echo else 0.0
    result["ratio_storing"] = result["helpline_msgs_per_s"] / storing if storing else 0.0
    per_msg = result["storing_cpu_ms_per_msg"]
    result["cpu_ratio_storing"] = result["helpline_cpu_ms_per_msg"] / per_msg if per_msg else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    bot = sub.add_parser("bot")
    bot.add_argument("--kind", choices=("helpline", "echo", "storing"), required=True)
    bot.add_argument("--service", required=True)
    bot.add_argument("--folder", required=True)
    bot.add_argument("--profile", help="write a cProfile of the bot process here")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--light", type=int, default=20, help="people in the light phase")
    parser.add_argument("--quick", action="store_true", help="200 people x 5 messages")
    parser.add_argument("--profile", metavar="DIR",
                        help="profile each bot process (cProfile) into DIR")
    args = parser.parse_args()
    if args.command == "bot":
        bot_main(args)
        return
    people, messages = (200, 5) if args.quick else (args.people, args.messages)
    profile = Path(args.profile).resolve() if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    emit(asyncio.run(compare(people, messages, args.light, profile)))


if __name__ == "__main__":
    main()
