"""Words as the engine matches them, whatever form a platform or keyboard delivers."""

from __future__ import annotations

import re
import unicodedata


def normalize(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form used to match words.

    Every form a platform or a keyboard delivers folds to the same words: any case,
    full-width and other compatibility forms (NFKD: "ｅｘｉｔ" is "exit"), accents and
    other combining marks, invisible characters (Unicode format characters such as
    zero-width spaces and joiners, bidi marks, soft hyphens; Hangul fillers; the Arabic
    tatweel), punctuation around words ("exit!!"), and a Telegram command's bot name
    ("/exit@AnyBot" is "/exit")."""
    folded = text.casefold()
    if not folded.isascii():  # ASCII has nothing to decompose: skip the slow part
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in decomposed
                         if not unicodedata.combining(c) and c not in _INVISIBLE
                         and unicodedata.category(c) != "Cf").casefold()
    if "@" in folded:
        folded = _BOT_NAME.sub(r"\1", folded)
    return " ".join(_NOT_WORD.sub(" ", folded).split())


_NOT_WORD = re.compile(r"[^\w/]+")
# "/exit@HelpBot" (from a command menu or a group): Telegram adds the bot's user name.
_BOT_NAME = re.compile(r"(?:^|(?<=\s))(/\w+)@\w*")
# Not format characters (Cf), but shown as nothing, or joining letters without changing them.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u0640\u2800\u180e")
