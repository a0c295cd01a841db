"""Babel extractor for flow YAML: every user-facing text of every step, with its line and
the step's ``note:`` as a translator comment. Registered as the ``helpline_flows`` extractor.

The words a person may type in a step (``skip:`` words of an ask, ``keywords:`` of an
option) are extracted too, as ``pgettext("command", word)``: their translations work in
every enabled language, like the global command words.

``extract_canned`` does the same for the advocates' canned replies (``data/canned.yaml``,
``key: text``): each text is sent translated into the person's language.

babel.cfg::

    [python: helpline/**.py]
    [helpline_flows: flows/**.yaml]
    [helpline.i18n_extract.extract_canned: data/canned.yaml]

Babel keeps an extractor's comments whatever ``-c`` says, so the notes always reach the
catalogue as ``#.`` comments.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from pydantic import ValidationError

from helpline.flow import steps as kinds
from helpline.flow.model import flow_model
from helpline.flow.yamlsource import Located, YamlSyntaxError, load_located

CANNED_NOTE = "written by the organisation's advocates: keep their calm, honest voice"
WORD_NOTE = ("a word the person types here; several words separated by | all work, and "
             "the texts name the first. The English word always works too.")

# (lineno, funcname, message, comments) as Babel expects from an extractor.
Extracted = tuple[int, str | None, str | tuple[str, ...], list[str]]


def _read(fileobj: IO[bytes]) -> Located | None:
    """The YAML with positions, or None when it cannot be read (``flows check`` reports it)."""
    try:
        return load_located(fileobj.read().decode("utf-8"))
    except (YamlSyntaxError, UnicodeDecodeError):
        return None


def extract_flows(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any] | Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[Extracted]:
    """Every text and typed word of a flow file, by what each step's kind says it shows
    (``helpline.flow.steps``), at its line. A file that is not a valid flow gives none
    (``flows check`` says what is wrong with it)."""
    located = _read(fileobj)
    if located is None:
        return
    try:
        flow = flow_model().model_validate(located.data)
    except ValidationError:
        return
    for step_id, step in flow.steps.items():
        kind = kinds.kind_of(step)
        comments = [f"step {flow.id}.{step_id}"]
        if getattr(step, "note", None):
            comments.append(step.note)
        for path, text in kind.texts(step):
            if not text.strip():
                continue
            note = list(comments)
            if path[-1:] == ("label",):  # an option's label
                note.append("a button label: keep it short")
                option_note = getattr(_at(step, path[:-1]), "note", None)
                if option_note:
                    note.append(option_note)
            yield located.position(("steps", step_id, *path)).line, None, text, note
        for path, words, what in kind.words(step):
            yield from _words(located, ("steps", step_id, *path), words, [*comments, what])


def _at(step: object, path: tuple[str | int, ...]) -> object:
    """What a key path inside a parsed step leads to (e.g. ``("options", 2)``)."""
    found = step
    for key in path:
        found = found[key] if isinstance(key, int) else getattr(found, key)  # type: ignore[index]
    return found


def _words(located: Located, path: tuple[str | int, ...], words: object,
           comments: list[str]) -> Iterator[Extracted]:
    if not isinstance(words, list):
        return
    for j, word in enumerate(words):
        if isinstance(word, str) and word.strip() and not word.startswith("/"):
            line = located.position((*path, j)).line
            yield line, "pgettext", ("command", word), [*comments, WORD_NOTE]


def extract_canned(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any] | Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[Extracted]:
    """Every text of a canned-replies file (a mapping of key: text), with its line."""
    located = _read(fileobj)
    if located is None or not isinstance(located.data, dict):
        return
    for key, value in located.data.items():
        if isinstance(value, str) and value.strip():
            name = str(key) if not isinstance(key, int) else key
            yield located.position((name,)).line, None, value, [
                f"canned reply {key}: an advocate sends it with /canned {key}; the person "
                "reads it after \"Advocate: \"", CANNED_NOTE]
