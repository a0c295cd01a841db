"""Translations through Babel/gettext catalogues in ``locales/<lang>/LC_MESSAGES``.

Python strings are marked with ``N_`` (extracted, translated at render time for the
person's locale); flow texts are msgids too and are translated the same way.
"""

from __future__ import annotations

import gettext as _gettext
import io
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "helpline"
DEFAULT_LOCALES = Path(__file__).resolve().parent.parent / "locales"


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, for the person's locale."""
    return message


class Translator(Protocol):
    def gettext(self, locale: str | None, message: str) -> str: ...

    def ngettext(self, locale: str | None, singular: str, plural: str, n: int) -> str: ...


class NullTranslator:
    """Source English, for tests and when no catalogue exists."""

    def gettext(self, locale: str | None, message: str) -> str:
        return message

    def ngettext(self, locale: str | None, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


def po_path(folder: Path, locale: str) -> Path:
    return folder / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalog(folder: Path, locale: str) -> _gettext.NullTranslations:
    """Compile ``<folder>/<locale>/LC_MESSAGES/helpline.po`` in memory at start (no ``.mo``
    files to keep in step by hand); fuzzy entries are left out. Source text if none."""
    path = po_path(folder, locale)
    if not path.exists():
        return _gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
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
