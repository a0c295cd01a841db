"""Texts made of paragraphs chosen elsewhere (the privacy notice, made from the settings):
each a msgid and the values of its placeholders, translated and filled when shown, in the
person's language."""

from __future__ import annotations

from datetime import timedelta

from babel.dates import format_timedelta

from helpline.i18n import Translator, babel_locale

Paragraph = tuple[str, tuple[tuple[str, str], ...]]  # (msgid, (placeholder, value) pairs)
SECONDS = "seconds:"  # a placeholder's value that is a duration, worded in the language


def render(tr: Translator, locale: str | None, paragraphs: tuple[Paragraph, ...],
           words: dict[str, str]) -> str:
    """The notice as one text: each paragraph translated, its placeholders filled (``words``:
    the person's words for ``exit`` and ``erase``), a blank line between them."""
    texts: list[str] = []
    for msgid, params in paragraphs:
        text = tr.gettext(locale, msgid)
        for name, value in (*params, *words.items()):
            if value.startswith(SECONDS):  # "1 day", "1 día", "1 день" (Babel's words)
                value = format_timedelta(timedelta(seconds=int(value[len(SECONDS):])),
                                         locale=babel_locale(locale or "en") or "en")
            text = text.replace("{" + name + "}", value)
        texts.append(text)
    return "\n\n".join(texts)


__all__ = ["SECONDS", "Paragraph", "render"]
