"""Words outreach listens for, and words a first message must not carry.

* Opt-out words: a whole message that is one of these (any case, accents and punctuation
  aside) from someone a campaign reached puts their number on the suppression list. The
  English ones work whatever the language; each bundled language adds its own.
* Words that name the purpose: a first message (or follow-up) that has one is refused at
  ``create`` unless the admin says ``--reveal``: the phone may be read by someone else.
"""

from __future__ import annotations

import re

from helpline.flow.words import normalize

OPT_OUT: dict[str, tuple[str, ...]] = {
    "en": ("stop", "end", "cancel", "unsubscribe", "stop all", "quit", "opt out"),
    "es": ("baja", "parar", "alto", "cancelar", "fin", "no mas"),
    "fr": ("arret", "arreter", "stop", "desabonner", "desinscrire", "fin"),
    "ru": ("стоп", "отписаться", "отмена", "хватит"),
    "uk": ("стоп", "відписатися", "скасувати", "досить"),
    "ar": ("توقف", "الغاء", "إلغاء", "ايقاف"),
}
OPT_OUT_WORDS = frozenset(normalize(w) for words in OPT_OUT.values() for w in words)

# Words that tell a reader what the message is about (whole words, any case).
REVEALING = (
    "trafficking", "trafficked", "abuse", "abused", "violence", "survivor", "survivors",
    "exploitation", "exploited", "shelter", "helpline", "hotline", "sex", "sexual",
    "prostitution", "domestic", "assault", "rape", "escape", "police",
    "trata", "abuso", "violencia", "sobreviviente", "explotacion", "refugio",
    "traite", "violences", "survivante", "exploitation", "refuge",
    "торговля", "насилие", "насильство", "торгівля", "اتجار", "عنف", "استغلال",
)
_REVEALING = frozenset(normalize(w) for w in REVEALING)
_WORD = re.compile(r"\w+")


def is_opt_out(text: str) -> bool:
    return normalize(text) in OPT_OUT_WORDS


def revealing(text: str) -> list[str]:
    """The words of ``text`` that name the purpose, in order, once each."""
    found: list[str] = []
    for word in _WORD.findall(normalize(text)):
        if word in _REVEALING and word not in found:
            found.append(word)
    return found


def says_how_to_stop(text: str) -> bool:
    words = set(_WORD.findall(normalize(text)))
    return any(w in words for w in ("stop", "baja", "arret", "стоп", "توقف"))


__all__ = ["OPT_OUT", "OPT_OUT_WORDS", "is_opt_out", "revealing", "says_how_to_stop"]
