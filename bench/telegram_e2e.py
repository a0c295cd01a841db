"""End to end on Telegram: simulated people against the loopback Bot API fake, for helpline
and for a bare python-telegram-bot echo bot, one after the other in the same run.

``python -m bench.telegram_e2e [--people N] [--messages M] [--quick] [--rate-limit]``

Three bots: helpline; the bot a developer would write instead (``bench.telegram_convo``:
python-telegram-bot's ConversationHandler with PicklePersistence, a small menu flow with
inline buttons, a quick exit that deletes what it recorded); and a bare echo bot.

Two processes per bot, so that they don't share a core's time: this one runs the fake
(``tests/fakes/telegram_bot_api.py``) and the people (bench.e2e) and measures; the bot runs
in a child process (``python -m bench.telegram_e2e bot --kind ...``): helpline exactly as
``helpline run`` serves it (``helpline.serve.serve``: the store on SQLite in WAL mode in a
temporary folder, the sample service directory, the scheduler, logging at INFO into a
file), or the echo bot.

Fairness: both bots use HTTPXRequest pools (helpline's lets at most 8 calls in flight, see
``helpline.channels.telegram.BoundedRequest``; the echo bot's has 64 connections, of which
it uses one or two, handling one update at a time with ``concurrent_updates=1``, PTB's
default), the same long polling (``poll_interval=0``, ``timeout=30``; the fake answers a
waiting poll as soon as an update comes; 2 connections for getUpdates), and both
run WITHOUT PTB's AIORateLimiter by default (it caps a bot at 30 messages/s); ``--rate-limit``
runs both with it (use ``--quick`` then: at 30 msg/s a big run is slow).

The echo bot answers a text with the same text and a button press with the button's data,
each time with three inline buttons, so its people press buttons as often as helpline's do.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from bench.common import emit, settings_for
from bench.e2e import Chat, Driver, measure_bot, run_bot_process
from bench.people import Action, Prompt

TOKEN = "123456:TEST-TOKEN"
KINDS = ("helpline", "convo", "echo")
CHAT_BASE = 70_000_000


# ---------------------------------------------------------------------- the bots


async def run_helpline(api_root: str, folder: Path, rate_limit: bool, stop: asyncio.Event
                       ) -> None:
    from helpline.channels.telegram import TelegramChannel, TelegramOptions
    from helpline.config import Resources
    from helpline.i18n import CatalogTranslator
    from helpline.resources import SAMPLE_DIRECTORY
    from helpline.serve import serve

    settings = settings_for(folder, resources=Resources(seed=str(SAMPLE_DIRECTORY)))
    translator = CatalogTranslator(settings.locales, settings.default_language)
    options = TelegramOptions(token=TOKEN, api_url=api_root, poll_timeout_seconds=30,
                              rate_limit=rate_limit)
    channel = TelegramChannel(options, translator, settings.languages)
    await serve(settings, [channel], stop)


async def run_echo(api_root: str, rate_limit: bool, concurrency: int, stop: asyncio.Event
                   ) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import (
        AIORateLimiter,
        Application,
        CallbackQueryHandler,
        ContextTypes,
        ExtBot,
        MessageHandler,
        filters,
    )
    from telegram.request import HTTPXRequest

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"echo:{label}")]
                                     for label in ("One", "Two", "Three")])

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None and update.effective_message is not None
        await context.bot.send_message(update.effective_chat.id,
                                       update.effective_message.text or "…",
                                       reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and update.effective_chat is not None
        await query.answer()
        await context.bot.send_message(update.effective_chat.id, str(query.data),
                                       reply_markup=keyboard)

    bot: ExtBot[Any] = ExtBot(
        TOKEN, base_url=f"{api_root}/bot", base_file_url=f"{api_root}/file/bot",
        request=HTTPXRequest(connection_pool_size=64),
        get_updates_request=HTTPXRequest(connection_pool_size=2),
        rate_limiter=AIORateLimiter(max_retries=5) if rate_limit else None,
    )
    # helpline's Application runs with concurrent_updates(False) (its own KeyedSerializer
    # adds the concurrency between chats); the bare bot gets the same PTB setting by default.
    app = Application.builder().bot(bot).concurrent_updates(concurrency).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=30,
                                        allowed_updates=["message", "callback_query"])
        await stop.wait()
        await app.updater.stop()
        await app.stop()


def bot_main(args: argparse.Namespace) -> None:
    async def main(stop: asyncio.Event) -> None:
        if args.kind == "helpline":
            await run_helpline(args.api, Path(args.folder), args.rate_limit, stop)
        elif args.kind == "convo":
            from bench.telegram_convo import run_convo

            await run_convo(args.api, TOKEN, Path(args.folder), args.rate_limit,
                            args.echo_concurrency, stop)
        else:
            await run_echo(args.api, args.rate_limit, args.echo_concurrency, stop)

    run_bot_process(main, args.profile)


# ---------------------------------------------------------------------- the people


class TelegramDriver(Driver):
    def __init__(self, api: Any) -> None:
        from bench.telegram_convo import QUESTIONS

        super().__init__()
        self.api = api
        self.asks = self.asks | QUESTIONS  # the conversation bot's free-text questions
        api.observers.append(self._observe)

    def key_for(self, index: int) -> Hashable:
        return CHAT_BASE + index

    def bulk(self) -> Any:
        return self.api.bulk()

    def deliver(self, key: Hashable, chat: Chat, action: Action) -> None:
        assert isinstance(key, int)
        if action.kind == "button":
            self.api.person_presses(key, chat.handle, action.value)
        else:
            self.api.person_sends(key, action.value)

    def _observe(self, call: Any, result: Any) -> None:
        self.count_call()
        chat_id = call.params.get("chat_id")
        if call.method == "deleteMessages":
            self.bot_deleted(chat_id)
        elif call.method == "sendMessage":
            self.bot_replied(chat_id, self._prompt(result), result.get("message_id"))

    def _prompt(self, message: dict[str, Any]) -> Prompt | None:
        text = str(message.get("text", ""))
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        choices = [(b["text"], b["callback_data"]) for row in rows for b in row
                   if "callback_data" in b]
        if choices:
            return Prompt(text, choices)
        return Prompt(text) if self.is_question(text) else None


async def bench_bot(kind: str, people: int, messages: int, light: int, rate_limit: bool,
                    folder: Path, profile: Path | None, echo_concurrency: int = 1
                    ) -> dict[str, Any]:
    from tests.fakes.telegram_bot_api import FakeBotAPI

    api = FakeBotAPI(long_poll_cap=30.0)
    await api.start()
    try:
        args = ["--kind", kind, "--api", api.root, "--folder", str(folder)]
        args += ["--rate-limit"] if rate_limit else []
        args += ["--echo-concurrency", str(echo_concurrency)]
        args += ["--profile", str(profile / f"telegram-{kind}.prof")] if profile else []
        budget = max(120.0, people * messages / (5 if rate_limit else 50))
        owed = None
        if kind == "convo":
            from bench.telegram_convo import PICKLE_NAME, UPDATE_INTERVAL

            async def owed(after: float) -> None:
                await written_after(folder / PICKLE_NAME, after, UPDATE_INTERVAL + 60.0)
        figures = await measure_bot(
            "bench.telegram_e2e", args, TelegramDriver(api),
            lambda: api.wait_for_call("getUpdates", timeout=60), people, messages, light,
            budget, folder / f"{kind}.log", owed)
    finally:
        await api.stop()
    return figures


async def written_after(path: Path, after: float, timeout: float) -> None:
    """Wait until ``path`` was written after ``after`` (wall clock) and then left alone for a
    second: PicklePersistence writes the whole file once per changed chat, in one burst."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = -1
    while loop.time() < deadline:
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = -1
        if stamp > after * 1e9 and stamp == last:
            return
        last = stamp
        await asyncio.sleep(1.0)
    raise TimeoutError(f"{path.name} was not written within {timeout:.0f} s")


async def compare(people: int, messages: int, light: int, rate_limit: bool,
                  profile: Path | None = None, echo_concurrency: int = 1) -> dict[str, Any]:
    result: dict[str, Any] = {"people": people, "messages_each": messages,
                              "rate_limiter": rate_limit, "echo_concurrency": echo_concurrency}
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        for kind in KINDS:
            folder = Path(tmp) / kind
            folder.mkdir()
            figures = await bench_bot(kind, people, messages, light, rate_limit, folder,
                                      profile, echo_concurrency)
            result.update({f"{kind}_{k}": v for k, v in figures.items()})
    echo = result["echo_msgs_per_s"]
    result["ratio"] = result["helpline_msgs_per_s"] / echo if echo else 0.0
    convo = result["convo_msgs_per_s"]
    result["ratio_convo"] = result["helpline_msgs_per_s"] / convo if convo else 0.0
    per_msg = result["convo_cpu_ms_per_msg"]
    result["cpu_ratio_convo_load"] = (result["helpline_cpu_ms_per_msg"] / per_msg
                                      if per_msg else 0.0)
    # The conversation bot's CPU with the PicklePersistence write-out its load owed
    # (helpline writes before it replies: nothing is owed after its load phase).
    owed = result["convo_cpu_owed_ms_per_msg"]
    result["cpu_ratio_convo"] = result["helpline_cpu_owed_ms_per_msg"] / owed if owed else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    bot = sub.add_parser("bot")
    bot.add_argument("--kind", choices=KINDS, required=True)
    bot.add_argument("--api", required=True)
    bot.add_argument("--folder", required=True)
    bot.add_argument("--rate-limit", action="store_true")
    bot.add_argument("--profile", help="write a cProfile of the bot process here")
    bot.add_argument("--echo-concurrency", type=int, default=1)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--light", type=int, default=20, help="people in the light phase")
    parser.add_argument("--quick", action="store_true", help="200 people x 5 messages")
    parser.add_argument("--rate-limit", action="store_true")
    parser.add_argument("--echo-concurrency", type=int, default=1,
                        help="the echo bot's concurrent_updates (1: PTB's default, the "
                             "setting helpline's Application uses)")
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
    emit(asyncio.run(compare(people, messages, args.light, args.rate_limit, profile,
                             args.echo_concurrency)))


if __name__ == "__main__":
    main()
