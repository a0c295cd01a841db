"""Translations through Babel/gettext catalogues in ``locales/<lang>/LC_MESSAGES``.

Python strings are marked with ``N_`` (plural texts with ``Nn_``, words a person types
with ``C_("command", ...)``), extracted with the flow texts into ``locales/helpline.pot``
(``helpline i18n``) and translated at render time for the person's locale. Catalogues are
compiled in memory at start: no ``.mo`` files to keep in step by hand.

Words a person types (quick exit, menu, ``skip``, option keywords...) are msgids in the
context ``command``; a translation may give several words separated by ``|``, and the first
one is the word the texts name (``salir|irme``: "salir" is shown, both work).
"""

from __future__ import annotations

import gettext as _gettext
import io
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_timedelta
from babel.messages.catalog import Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DOMAIN = "helpline"
from helpline.bundled import LOCALES as DEFAULT_LOCALES  # noqa: E402, I001
SOURCE_LANGUAGE = "en"  # the language of every msgid (flow texts and Python strings)
COMMAND = "command"  # msgctxt of the words a person types
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, for the person's locale."""
    return message


def C_(context: str, message: str) -> str:
    """Mark a string with a context (``pgettext``) for extraction; translated later."""
    return message


class Plural(NamedTuple):
    singular: str
    plural: str


def Nn_(singular: str, plural: str) -> Plural:
    """Mark a counted text (``ngettext``) for extraction; see ``count_text``."""
    return Plural(singular, plural)


# Default command words, marked for translation. Each translation of these (and of the
# ``skip:`` words and option ``keywords:`` in flows) works in every enabled language.
COMMAND_WORDS = (
    # NOTE: typed word: quick exit. Words separated by | all work; texts name the first.
    C_("command", "exit"),
    # NOTE: typed word: quick exit too. Words separated by | all work.
    C_("command", "quit"),
    # NOTE: typed word: shows the menu. Words separated by | all work; texts name the first.
    C_("command", "menu"),
    # NOTE: typed word: explains these words. Words separated by | all work.
    C_("command", "help"),
    # NOTE: typed word: choose a language. Words separated by | all work.
    C_("command", "language"),
    # NOTE: typed words: erase everything stored. Words separated by | all work.
    C_("command", "delete my data"),
    # NOTE: typed word: shows how the chat keeps the person's data. Words separated by |
    # all work.
    C_("command", "privacy"),
    # NOTE: typed answer that confirms erasing. Words separated by | all work.
    C_("command", "yes"),
    # NOTE: a one-letter "yes" that confirms erasing (or leave it as "y").
    C_("command", "y"),
)


class Translator(Protocol):
    def gettext(self, locale: str | None, message: str) -> str: ...

    def ngettext(self, locale: str | None, singular: str, plural: str, n: int) -> str: ...

    def pgettext(self, locale: str | None, context: str, message: str) -> str: ...


class NullTranslator:
    """Source English, for tests and when no catalogue exists."""

    def gettext(self, locale: str | None, message: str) -> str:
        return message

    def ngettext(self, locale: str | None, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural

    def pgettext(self, locale: str | None, context: str, message: str) -> str:
        return message


def po_path(folder: Path, locale: str) -> Path:
    return folder / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def placeholder_problem(message: Message) -> str | None:
    """How the ``{placeholders}`` of a translation differ from its msgid, if they do.

    Each plural form may leave out ``{n}`` (a language may say "one service" in words)."""
    ids = message.id if isinstance(message.id, (list, tuple)) else (message.id,)
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    wanted: set[str] = set()
    for msgid in ids:
        wanted |= placeholders(msgid)
    plural = len(ids) > 1
    for string in strings:
        if not string:
            continue
        got = placeholders(string)
        optional = {"n"} if plural else set()
        if got - wanted or (wanted - optional) - got:
            shown = ", ".join(f"{{{p}}}" for p in sorted(wanted)) or "none"
            found = ", ".join(f"{{{p}}}" for p in sorted(got)) or "none"
            return f"placeholders differ: the English has {shown}, the translation has {found}"
    return None


def compile_catalog(folder: Path, locale: str) -> _gettext.NullTranslations:
    """Compile ``<folder>/<locale>/LC_MESSAGES/helpline.po`` in memory. Fuzzy entries and
    entries whose placeholders differ from the English are left out (the person then
    reads the English rather than a broken text). Source text if there is no catalogue."""
    path = po_path(folder, locale)
    if not path.exists():
        return _gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale.replace("-", "_"))
    for message in catalog:
        if message.id and message.string and placeholder_problem(message) is not None:
            message.string = ("",) * len(message.string) if isinstance(
                message.string, (list, tuple)) else ""
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


class CatalogTranslator:
    """Compiled catalogues (``.mo``) from a locales folder, one per language, cached."""

    def __init__(self, folder: Path = DEFAULT_LOCALES, default: str = "en") -> None:
        self.folder = folder
        self.default = default

    @lru_cache(maxsize=64)  # noqa: B019 - one translator per process, few locales
    def _catalog(self, locale: str | None) -> _gettext.NullTranslations:
        return compile_catalog(self.folder, locale or self.default)

    def gettext(self, locale: str | None, message: str) -> str:
        if not message:
            return message
        return self._catalog(locale).gettext(message)

    def ngettext(self, locale: str | None, singular: str, plural: str, n: int) -> str:
        return self._catalog(locale).ngettext(singular, plural, n)

    def pgettext(self, locale: str | None, context: str, message: str) -> str:
        if not message:
            return message
        return self._catalog(locale).pgettext(context, message)


# ---------------------------------------------------------------- words a person types


def split_words(text: str) -> list[str]:
    """The alternatives of a translated command word (``salir|irme``), in order."""
    return [part.strip() for part in text.split("|") if part.strip()]


def word_forms(tr: Translator, locales: Iterable[str], word: str) -> list[str]:
    """``word`` and its translations in every one of ``locales`` (not normalized)."""
    forms = [word]
    if word.startswith("/"):  # platform commands (/exit, /start) stay as they are
        return forms
    for locale in locales:
        for form in split_words(tr.pgettext(locale, COMMAND, word)):
            if form not in forms:
                forms.append(form)
    return forms


def display_word(tr: Translator, locale: str | None, word: str) -> str:
    """The form of ``word`` that texts in ``locale`` name (the first alternative)."""
    if word.startswith("/"):
        return word
    forms = split_words(tr.pgettext(locale, COMMAND, word))
    return forms[0] if forms else word


# ---------------------------------------------------------------- Babel formatting


def babel_locale(code: str) -> Locale | None:
    try:
        return Locale.parse(code.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def language_name(code: str) -> str:
    """The language's name in its own language ("Español", "Русский", "العربية")."""
    locale = babel_locale(code)
    name = locale.get_display_name(locale) if locale is not None else None
    if not name:
        return code
    return name[:1].upper() + name[1:]


def format_when(locale: str, at: float, hours: float, timezone: str) -> tuple[str, str]:
    """("in 3 days", "Monday, 18 January 2027") in ``locale``: how long from ``at`` and
    on which date, in the organisation's ``timezone``."""
    code = locale if babel_locale(locale) is not None else SOURCE_LANGUAGE
    when = format_timedelta(timedelta(hours=hours), add_direction=True, locale=code)
    due = datetime.fromtimestamp(at + hours * 3600, ZoneInfo(timezone))
    return when, format_date(due.date(), format="full", locale=code)


def count_text(tr: Translator, locale: str, text: Plural, n: int) -> str:
    """A counted text in ``locale`` (``ngettext``), with ``{n}`` shown the local way."""
    chosen = tr.ngettext(locale, text.singular, text.plural, n)
    code = locale if babel_locale(locale) is not None else SOURCE_LANGUAGE
    return chosen.replace("{n}", format_decimal(n, locale=code))
