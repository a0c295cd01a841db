"""The Telegram bot a developer would write instead of helpline, for the benchmark.

python-telegram-bot's ``ConversationHandler`` with ``PicklePersistence`` (conversation
states and each chat's recorded message ids survive a restart, written every
``update_interval`` seconds, PTB's default of 60), a small menu flow of a few steps with
inline buttons (typed numbers and labels work too), two free-text questions, ``menu`` and
``help`` at any point, and a quick exit (``exit``, ``/exit``) that deletes the messages it
recorded (both sides, 100 a call) and forgets the chat. Like helpline, each turn is one
message, and a button press is answered.

It keeps what a plain bot keeps: no encryption, no outbox (a reply that fails is lost), no
per-chat ordering beyond PTB's ``concurrent_updates=1``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

# A state: its text and its options (label, next state); or an ask: its question and the
# state whose text follows the answer.
MENU_TEXT = "What would you like to do?\nType exit at any time to clear this chat."
STATES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "safe": ("Hi, thanks for your message.\n\nIs it safe for you to talk right now?",
             [("Yes", "menu"), ("Not now", "bye")]),
    "menu": (MENU_TEXT, [("Staying safe", "tips"), ("Find a service", "area"),
                         ("Talk to a person", "person"), ("Check in with me later", "checkin")]),
    "tips": ("You can turn on auto-delete for this chat in its settings.\n\n"
             "What would you like to look at?",
             [("Keeping your phone private", "tips"), ("Planning for a safe moment", "tips"),
              ("Back to the main menu", "menu")]),
    "person": ("A trained advocate can chat with you here. They only see what you choose "
               "to share.\n\nWould you like that?", [("Yes", "note"), ("No", "menu")]),
    "checkin": ("When should I check in with you?",
                [("Tomorrow", "menu"), ("In a week", "menu"), ("Back to the main menu", "menu")]),
}
ASKS: dict[str, tuple[str, str]] = {
    "area": ("Which area or city are you in? You can type skip.", "menu"),
    "note": ("What would you like the advocate to know first? You can type skip.", "menu"),
}
QUESTIONS = frozenset(text for text, _ in ASKS.values())
EXIT = re.compile(r"^/?exit$", re.IGNORECASE)
MENU = re.compile(r"^/?(menu|help)$", re.IGNORECASE)
DELETE_BATCH = 100
PICKLE_NAME = "conversation.pickle"
# PicklePersistence's default update_interval (BasePersistence): kept, not passed.
UPDATE_INTERVAL = 60.0


async def run_convo(api_root: str, token: str, folder: Path, rate_limit: bool,
                    concurrency: int, stop: Any) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import (
        AIORateLimiter,
        Application,
        CallbackQueryHandler,
        ContextTypes,
        ConversationHandler,
        ExtBot,
        MessageHandler,
        PicklePersistence,
        filters,
    )
    from telegram.request import HTTPXRequest
    from telegram.warnings import PTBUserWarning

    warnings.filterwarnings("ignore", category=PTBUserWarning)  # per_message=False advice
    exit_filter = filters.Regex(EXIT)
    menu_filter = filters.Regex(MENU)

    def ids(context: ContextTypes.DEFAULT_TYPE) -> list[int]:
        assert context.chat_data is not None
        kept: list[int] = context.chat_data.setdefault("ids", [])
        return kept

    def remember_person(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None:
            ids(context).append(update.message.message_id)

    async def show(update: Update, context: ContextTypes.DEFAULT_TYPE, state: str,
                   before: str = "") -> str:
        """Send the state's text (and its buttons): one message a turn."""
        assert update.effective_chat is not None
        if state in ASKS:
            text, markup = ASKS[state][0], None
        else:
            text, options = STATES[state]
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(label,
                                                                 callback_data=f"{state}:{i}")]
                                           for i, (label, _) in enumerate(options)])
        sent = await context.bot.send_message(update.effective_chat.id,
                                              f"{before}\n\n{text}" if before else text,
                                              reply_markup=markup)
        ids(context).append(sent.message_id)
        return state

    def handlers_for(state: str) -> list[Any]:
        async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
            query = update.callback_query
            assert query is not None
            await query.answer()
            own, _, index = str(query.data).partition(":")
            options = STATES[state][1]
            if own != state or not index.isdigit() or int(index) >= len(options):
                return await show(update, context, state)  # a stale button: ask again
            return await go(update, context, options[int(index)][1])

        async def typed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
            remember_person(update, context)
            assert update.message is not None
            said = (update.message.text or "").strip().lower()
            if state in ASKS:  # any answer (or skip) will do
                return await show(update, context, ASKS[state][1], "Thank you, noted.")
            options = STATES[state][1]
            for n, (label, target) in enumerate(options, 1):
                if said in (str(n), label.lower()):
                    return await go(update, context, target)
            return await show(update, context, state, "Please choose one of these.")

        # Quick exit and the menu come before the state's own handlers.
        return [MessageHandler(exit_filter, quick_exit), MessageHandler(menu_filter, menu),
                CallbackQueryHandler(pressed), MessageHandler(filters.TEXT, typed)]

    async def go(update: Update, context: ContextTypes.DEFAULT_TYPE, state: str) -> object:
        if state == "bye":
            assert update.effective_chat is not None
            sent = await context.bot.send_message(update.effective_chat.id,
                                                  "OK. Write any time.")
            ids(context).append(sent.message_id)
            return ConversationHandler.END
        return await show(update, context, state)

    async def begin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        remember_person(update, context)
        if update.callback_query is not None:
            await update.callback_query.answer()
        return await show(update, context, "safe")

    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        remember_person(update, context)
        return await show(update, context, "menu")

    async def quick_exit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        remember_person(update, context)
        assert update.effective_chat is not None and context.chat_data is not None
        recorded = sorted(set(ids(context)))
        for start in range(0, len(recorded), DELETE_BATCH):
            await context.bot.delete_messages(update.effective_chat.id,
                                              recorded[start:start + DELETE_BATCH])
        context.chat_data.clear()
        return ConversationHandler.END

    conversation = ConversationHandler(
        entry_points=[MessageHandler(exit_filter, quick_exit),
                      MessageHandler(filters.TEXT, begin), CallbackQueryHandler(begin)],
        states={state: handlers_for(state) for state in [*STATES, *ASKS]},
        fallbacks=[],
        name="conversation", persistent=True, allow_reentry=False,
    )
    bot: ExtBot[Any] = ExtBot(
        token, base_url=f"{api_root}/bot", base_file_url=f"{api_root}/file/bot",
        request=HTTPXRequest(connection_pool_size=64),
        get_updates_request=HTTPXRequest(connection_pool_size=2),
        rate_limiter=AIORateLimiter(max_retries=5) if rate_limit else None,
    )
    persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(
        filepath=folder / PICKLE_NAME)
    assert persistence.update_interval == UPDATE_INTERVAL
    app = (Application.builder().bot(bot).persistence(persistence)
           .concurrent_updates(concurrency).build())
    app.add_handler(conversation)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=30,
                                        allowed_updates=["message", "callback_query"])
        await stop.wait()
        await app.updater.stop()
        await app.stop()
