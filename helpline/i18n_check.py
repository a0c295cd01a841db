"""The catalogue tools behind ``helpline i18n`` and the translation part of ``flows check``.

- ``build_template``: every msgid of the Python code (``N_``, ``C_``, ``Nn_``), of a flows
  folder (the ``helpline_flows`` extractor) and of the canned replies (``extract_canned``),
  with ``file:line`` references and the notes as translator comments: what
  ``pybabel extract -F babel.cfg -c NOTE`` gives.
- ``update_catalogs``: writes ``locales/helpline.pot`` and merges it into every
  ``locales/<lang>/LC_MESSAGES/helpline.po`` (new catalogues with ``--init``). Files are only
  rewritten when more than their dates would change.
- ``check_catalogs``: per language, how many translations are missing or fuzzy (warnings),
  and the errors: ``{placeholders}`` that differ from the English, a translation that tells
  the person to type a word that does not work in that language, and a typed word that
  means two different commands.

Which languages: every language in ``languages`` except the source (English), and every
catalogue present in the locales folder, so translators see the progress of a language
before it is switched on. An enabled language without a catalogue is an error: it would be
offered by its own name and then shown in English.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

from helpline import __version__
from helpline.config import Handoff, Settings
from helpline.flow import commands
from helpline.flow.engine import normalize
from helpline.flow.loader import Problem
from helpline.i18n import (
    COMMAND,
    DOMAIN,
    SOURCE_LANGUAGE,
    language_name,
    placeholder_problem,
    po_path,
    split_words,
)

PACKAGE_DIR = Path(__file__).resolve().parent
PYTHON_KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "C_": ((1, "c"), 2), "Nn_": (1, 2)}
COMMENT_TAGS = ("NOTE",)
FLOW_EXTRACTOR = "helpline.i18n_extract:extract_flows"
CANNED_EXTRACTOR = "helpline.i18n_extract:extract_canned"
BUNDLED_CANNED = Handoff().canned
TEMPLATE_NAME = f"{DOMAIN}.pot"
HEADER = """\
# Translations of helpline: every text a person reads, and the words they
# type. Made by `helpline i18n` (pybabel extract -F babel.cfg -c NOTE).
# These texts reach people who may be in danger: keep them as plain, calm,
# short and non-judging as the English.
#"""
_DATE_LINES = re.compile(rb'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"\n', re.M)
_TYPE_WORD = r"\btyp(?:e|es|ing)\s+({words})\b"


# ---------------------------------------------------------------- template


def _relative(path: Path, root: Path) -> str:
    """``path`` as a reference: relative to ``root`` when inside it, else to its source."""
    resolved = path.resolve()
    for base in (root, PACKAGE_DIR.parent, path.parent.parent):
        if resolved.is_relative_to(base.resolve()):
            return resolved.relative_to(base.resolve()).as_posix()
    return path.as_posix()


def build_template(flows: Path, root: Path, canned: Path | None = BUNDLED_CANNED
                   ) -> Catalog:
    """Every msgid of the flows in ``flows``, of the helpline code and of the advocates'
    canned replies (``handoff.canned``); references are relative to ``root`` (the folder
    that holds ``locales/``)."""
    catalog = Catalog(project="helpline", version=__version__, domain=DOMAIN,
                      header_comment=HEADER,
                      copyright_holder="helpline contributors", msgid_bugs_address="",
                      charset="utf-8", fuzzy=False)
    sources: list[tuple[Path, list[tuple[str, str]]]] = [
        (flows, [("**.yaml", FLOW_EXTRACTOR), ("**.yml", FLOW_EXTRACTOR)]),
        (PACKAGE_DIR, [("**.py", "python")]),
    ]
    for folder, method_map in sources:
        if not folder.is_dir():
            continue
        found = extract_from_dir(str(folder), method_map, keywords=PYTHON_KEYWORDS,
                                 comment_tags=COMMENT_TAGS)
        places: dict[str, str] = {}  # a file's reference, worked out once (resolve is slow)
        for filename, lineno, message, comments, context in found:
            where = places.get(filename)
            if where is None:
                where = places[filename] = _relative(folder / filename, root)
            catalog.add(message, None, [(where, lineno)], auto_comments=comments,
                        context=context)
    if canned is not None and canned.is_file():
        where = _relative(canned, root)
        for lineno, message, comments, context in extract_from_file(
                CANNED_EXTRACTOR, str(canned), keywords=PYTHON_KEYWORDS,
                comment_tags=COMMENT_TAGS):
            catalog.add(message, None, [(where, lineno)], auto_comments=comments,
                        context=context)
    return catalog


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=79)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless only the header dates differ from what is there."""
    if path.exists() and _DATE_LINES.sub(b"", path.read_bytes()) == _DATE_LINES.sub(b"", data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def catalogue_languages(locales: Path) -> list[str]:
    """Every language that has a catalogue in ``locales``."""
    if not locales.is_dir():
        return []
    return sorted(p.name for p in locales.iterdir() if po_path(locales, p.name).is_file())


def read_catalog(path: Path, locale: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale.replace("-", "_"))


def update_catalogs(locales: Path, flows: Path, init: Sequence[str] = (),
                    canned: Path | None = BUNDLED_CANNED) -> list[Path]:
    """Write the template and merge it into every catalogue (and new ones for ``init``).
    Returns the files that changed."""
    template = build_template(flows, locales.parent, canned)
    changed: list[Path] = []
    pot = locales / TEMPLATE_NAME
    if _write_if_changed(pot, _po_bytes(template)):
        changed.append(pot)
    for code in sorted(set(catalogue_languages(locales)) | set(init)):
        path = po_path(locales, code)
        if path.exists():
            catalog = read_catalog(path, code)
        else:
            catalog = Catalog(locale=code.replace("-", "_"), domain=DOMAIN, project="helpline",
                              header_comment=HEADER, copyright_holder="helpline contributors",
                              msgid_bugs_address="", charset="utf-8", fuzzy=False)
        _update(catalog, template)
        if _write_if_changed(path, _po_bytes(catalog)):
            changed.append(path)
    return changed


def _update(catalog: Catalog, template: Catalog) -> None:
    """Merge ``template`` into ``catalog``. Babel suggests old translations for changed
    texts (as fuzzy), but across contexts too ("menu" the command for "men" the label):
    such suggestions are dropped, so a translator never starts from an unrelated text."""
    contexts: dict[str, set[str | None]] = {}
    for message in catalog:
        if message.id:
            contexts.setdefault(_key(message)[0], set()).add(message.context)
    before = {_key(m) for m in catalog if m.id}
    catalog.update(template, update_header_comment=False)
    for message in catalog:
        if not message.id or _key(message) in before or not message.previous_id:
            continue
        previous = str(message.previous_id[0])
        if message.context not in contexts.get(previous, set()):
            message.string = ("",) * len(message.string) if isinstance(
                message.string, (list, tuple)) else ""
            message.flags.discard("fuzzy")
        message.previous_id = []


# ---------------------------------------------------------------- checks


@dataclass
class LanguageReport:
    code: str
    path: Path
    total: int = 0
    missing: list[Problem] = field(default_factory=list)
    fuzzy: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        state = ("complete" if not self.missing and not self.fuzzy
                 else f"{len(self.missing)} missing, {len(self.fuzzy)} fuzzy")
        errors = f", {len(self.errors)} error(s)" if self.errors else ""
        return (f"{self.path}: {self.code} ({language_name(self.code)}): {self.total} texts, "
                f"{state}{errors}")


def _key(message: Message) -> tuple[str, str | None]:
    msgid = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    return str(msgid), message.context


def _translated(message: Message | None) -> bool:
    if message is None:
        return False
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return all(bool(s) for s in strings)


def _line(message: Message | None) -> int:
    return message.lineno if message is not None and message.lineno else 1


def _short(message: Message) -> str:
    text = _key(message)[0].replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _where(message: Message) -> str:
    return ", ".join(f"{f}:{n}" for f, n in message.locations[:2])


def check_catalogs(locales: Path, template: Catalog, languages: Iterable[str],
                   commands: Mapping[str, Sequence[str]]) -> list[LanguageReport]:
    """Report on every catalogue in ``locales`` and every enabled language (``languages``)
    but the source. ``commands`` maps each global command (quick_exit, menu, ...) to its
    configured words."""
    codes = sorted((set(languages) | set(catalogue_languages(locales))) - {SOURCE_LANGUAGE})
    wanted = [m for m in template if m.id]
    words = sorted({_key(m)[0] for m in wanted if m.context == COMMAND}
                   | {w for ws in commands.values() for w in ws if not w.startswith("/")},
                   key=len, reverse=True)
    type_word = re.compile(_TYPE_WORD.format(words="|".join(map(re.escape, words))),
                           re.IGNORECASE) if words else None
    reports: list[LanguageReport] = []
    for code in codes:
        path = po_path(locales, code)
        report = LanguageReport(code, path, total=len(wanted))
        reports.append(report)
        if not path.is_file():
            report.errors.append(Problem(str(path), 1, 1, (
                f"{code}: enabled in 'languages' but there is no catalogue; run "
                f"'helpline i18n --init {code}' and translate it, or remove '{code}' from "
                "languages")))
            continue
        catalog = read_catalog(path, code)
        for message in wanted:
            found = catalog.get(*_key(message))
            where = _line(found)
            what = f"{_short(message)!r} ({_where(message)})"
            if found is not None and found.fuzzy and _translated(found):
                report.fuzzy.append(Problem(str(path), where, 1,
                                            f"{code}: fuzzy translation of {what}; check it and "
                                            "remove the fuzzy flag"))
            elif not _translated(found):
                report.missing.append(Problem(str(path), where, 1,
                                              f"{code}: no translation of {what}"
                                              + ("" if found is not None
                                                 else "; run 'helpline i18n' to add it")))
        report.errors.extend(_placeholder_errors(code, path, catalog))
        report.errors.extend(_word_errors(code, path, catalog, type_word, commands))
    return reports


def _placeholder_errors(code: str, path: Path, catalog: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    for message in catalog:
        if not message.id or message.fuzzy or not _any_string(message):
            continue  # a fuzzy entry is never used; it is counted as fuzzy instead
        problem = placeholder_problem(message)
        if problem is not None:
            problems.append(Problem(str(path), _line(message), 1, (
                f"{code}: {problem} in the translation of {_short(message)!r}; keep every "
                "{placeholder} exactly as in the English (it is left out until fixed)")))
    return problems


def _any_string(message: Message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return any(bool(s) for s in strings)


def _forms(catalog: Catalog, word: str) -> list[str]:
    """The words that work for ``word`` in this catalogue's language (and the English)."""
    found = catalog.get(word, COMMAND)
    forms = [word]
    if found is not None and not found.fuzzy and isinstance(found.string, str):
        forms.extend(split_words(found.string))
    return forms


def _contains(text: str, form: str) -> bool:
    return f" {normalize(form)} " in f" {normalize(text)} "


def _word_errors(code: str, path: Path, catalog: Catalog, type_word: re.Pattern[str] | None,
                 commands: Mapping[str, Sequence[str]]) -> list[Problem]:
    problems: list[Problem] = []
    for message in catalog:
        if (not message.id or message.context == COMMAND or message.fuzzy
                or not isinstance(message.string, str) or not message.string
                or type_word is None):
            continue
        for match in type_word.finditer(str(message.id)):
            word = match.group(1).lower()
            forms = _forms(catalog, word)
            if not any(_contains(message.string, form) for form in forms):
                problems.append(Problem(str(path), _line(message), 1, (
                    f"{code}: the English says {match.group(0)!r} but the translation of "
                    f"{_short(message)!r} names none of the words that work for it here "
                    f"({', '.join(forms)}); use one of them")))
    owner: dict[str, str] = {}
    for command, configured in commands.items():
        for word in configured:
            for form in (_forms(catalog, word) if not word.startswith("/") else [word]):
                other = owner.setdefault(normalize(form), command)
                if other != command:
                    found = catalog.get(word, COMMAND)
                    problems.append(Problem(str(path), _line(found), 1, (
                        f"{code}: '{form}' is a word for both '{other}' and '{command}'; "
                        f"give one of them another word")))
    for message in catalog:
        if message.context != COMMAND or not isinstance(message.string, str):
            continue
        if str(message.id) in {w for ws in commands.values() for w in ws}:
            continue
        for form in split_words(message.string):
            taken = owner.get(normalize(form))
            if taken is not None:
                problems.append(Problem(str(path), _line(message), 1, (
                    f"{code}: '{form}' (for '{message.id}') is also a word for the "
                    f"'{taken}' command, which is checked first, so it would never reach "
                    "the step; choose another word")))
    return problems


# ---------------------------------------------------------------- for the command line


def command_words(settings: Settings) -> dict[str, list[str]]:
    """The configured words of every global command, and the erase confirmation's yes."""
    c = settings.commands
    return {**{name: list(getattr(c, name)) for name in commands.NAMES},
            "yes": list(commands.YES_WORDS)}


def report(settings: Settings, flows: Path, strict: bool = False) -> tuple[list[str], int]:
    """Lines to print about every catalogue, and how many of them are errors (missing and
    fuzzy translations count only when ``strict``)."""
    template = build_template(flows, settings.locales.parent, settings.handoff.canned)
    reports = check_catalogs(settings.locales, template, settings.languages,
                             command_words(settings))
    lines: list[str] = []
    errors = 0
    for item in reports:
        lines.append(item.summary())
        shown = item.errors + (item.missing + item.fuzzy if strict else [])
        lines.extend(str(p) for p in sorted(shown))
        errors += len(shown)
    return lines, errors


__all__ = [
    "LanguageReport",
    "build_template",
    "catalogue_languages",
    "check_catalogs",
    "command_words",
    "report",
    "update_catalogs",
]
