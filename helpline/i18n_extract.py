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

from helpline.flow.yamlsource import Located, YamlSyntaxError, load_located

TEXT_KEYS = ("say", "choose", "ask", "retry", "end")
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
    located = _read(fileobj)
    if located is None:
        return
    data = located.data
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        return
    for step_id, step in data["steps"].items():
        if not isinstance(step, dict):
            continue
        comments = [f"step {data.get('id', '?')}.{step_id}"]
        if isinstance(step.get("note"), str):
            comments.append(step["note"])
        for key in TEXT_KEYS:
            value = step.get(key)
            if isinstance(value, str) and value.strip():
                yield located.position(("steps", step_id, key)).line, None, value, comments
        options_ = step.get("options")
        if isinstance(options_, list):
            for i, option in enumerate(options_):
                if isinstance(option, dict) and isinstance(option.get("label"), str):
                    note = [*comments, "a button label: keep it short"]
                    if isinstance(option.get("note"), str):
                        note.append(option["note"])
                    line = located.position(("steps", step_id, "options", i, "label")).line
                    yield line, None, option["label"], note
                    yield from _words(located, ("steps", step_id, "options", i, "keywords"),
                                      option.get("keywords"), [
                                          *comments, f"picks the option \"{option['label']}\""])
        yield from _words(located, ("steps", step_id, "skip"), step.get("skip"),
                          [*comments, "skips the question"])


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
