"""Catalogues, the flow extractor, `helpline i18n`, the translation checks of `flows check`,
command words in every language, and Babel formatting (plurals, dates, language names)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from helpline.app import engine_config
from helpline.cli import main
from helpline.config import ConfigError, Settings, load_settings
from helpline.events import DeleteChat, Inbound
from helpline.flow.engine import Engine, normalize
from helpline.flow.loader import load_flows
from helpline.handoff.relay import load_canned
from helpline.i18n import (
    COMMAND,
    CatalogTranslator,
    count_text,
    format_when,
    language_name,
    placeholders,
)
from helpline.i18n_check import build_template, check_catalogs, command_words
from helpline.i18n_extract import extract_canned, extract_flows
from helpline.resources.browse import T_FOUND
from helpline.state import State

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
FLOWS = ROOT / "flows"
# Shipped complete: every text translated (not fuzzy), placeholders kept.
COMPLETE = ("es", "fr", "ru", "uk", "ar")

FLOW = """\
id: sample
title: Sample
start: ask_area
steps:
  ask_area:
    ask: >-
      Which area? If you'd rather not say,
      type skip.
    note: Only a town, never an address.
    save: area
    skip: ["skip", "/skip"]
    next: pick
  pick:
    choose: "Pick one"
    options:
      - label: "Not now"
        note: The gentle way out.
        keywords: ["later"]
        next: bye
  bye:
    end: "Bye, {area}."
"""


def key(message: object) -> tuple[str, str | None]:
    msgid = getattr(message, "id")  # noqa: B009 - babel Message
    return (msgid[0] if isinstance(msgid, tuple) else msgid), getattr(message, "context")  # noqa: B009


# ---------------------------------------------------------------- extraction


def test_extractor_gives_lines_notes_and_typed_words() -> None:
    found = list(extract_flows(io.BytesIO(FLOW.encode()), ["pgettext"], [], {}))
    by_message = {(m if isinstance(m, str) else m[1]): (line, func, notes)
                  for line, func, m, notes in found}
    line, func, notes = by_message["Which area? If you'd rather not say, type skip."]
    assert (line, func) == (6, None)
    assert notes == ["step sample.ask_area", "Only a town, never an address."]
    assert by_message["skip"][:2] == (11, "pgettext")
    assert "/skip" not in by_message  # platform commands are not translated
    assert by_message["Pick one"][0] == 14
    line, _, notes = by_message["Not now"]
    assert line == 16
    assert "a button label: keep it short" in notes and "The gentle way out." in notes
    assert by_message["later"][:2] == (18, "pgettext")
    assert any('picks the option "Not now"' in n for n in by_message["later"][2])
    assert by_message["Bye, {area}."][0] == 21
    contexts = {m[0] for _, func, m, _ in found if func == "pgettext"}
    assert contexts == {COMMAND}


CANNED = """\
# A comment
hello: "Hi, I'm here."
danger: >-
  If you are in danger,
  call 112.
not_text: [1, 2]
"""


def test_canned_replies_are_extracted_with_their_key_and_line(tmp_path: Path) -> None:
    found = list(extract_canned(io.BytesIO(CANNED.encode()), [], [], {}))
    assert [(line, func, m) for line, func, m, _ in found] == [
        (2, None, "Hi, I'm here."), (3, None, "If you are in danger, call 112.")]
    assert "canned reply danger: an advocate sends it with /canned danger" in found[1][3][0]
    # The organisation's own file (handoff.canned) is what the template holds.
    own = tmp_path / "canned.yaml"
    own.write_text(CANNED, encoding="utf-8")
    ids = {key(m)[0] for m in build_template(FLOWS, ROOT, own) if m.id}
    assert "If you are in danger, call 112." in ids
    bundled = set(load_canned(ROOT / "data" / "canned.yaml").values())
    assert bundled and not bundled & ids
    assert not bundled & {key(m)[0] for m in build_template(FLOWS, ROOT, None) if m.id}


def test_bundled_canned_replies_are_in_the_template_and_translated() -> None:
    bundled = load_canned(ROOT / "data" / "canned.yaml")
    template = {key(m)[0]: m for m in build_template(FLOWS, ROOT) if m.id}
    translator = CatalogTranslator(LOCALES)
    for name, text in bundled.items():
        assert template[text].locations[0][0] == "data/canned.yaml", name
        for lang in COMPLETE:
            assert translator.gettext(lang, text) != text, (lang, name)


def test_pybabel_extract_matches_the_template_and_keeps_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "helpline.pot"
    CommandLineInterface().run([  # type: ignore[no-untyped-call]
        "pybabel", "-q", "extract", "-F", "babel.cfg", "-c", "NOTE", "-o", str(out), "."])
    text = out.read_text(encoding="utf-8")
    assert "#. Keep the promise exactly as strong as the English, no stronger.\n" in text
    assert "#: flows/advocate.yaml:23" in text
    assert 'msgctxt "command"\nmsgid "skip"' in text
    assert 'msgid "I found {n} service that may fit."\nmsgid_plural' in text
    with out.open("rb") as handle:
        extracted = {key(m) for m in read_po(handle) if m.id}
    assert extracted == {key(m) for m in build_template(FLOWS, ROOT) if m.id}


def test_template_is_current() -> None:
    with (LOCALES / "helpline.pot").open("rb") as handle:
        committed = {key(m) for m in read_po(handle) if m.id}
    live = {key(m) for m in build_template(FLOWS, ROOT) if m.id}
    assert committed == live, (
        "locales/helpline.pot is out of date: run `make i18n` and translate what is new; "
        f"new: {sorted(live - committed)}, gone: {sorted(committed - live)}")


# ---------------------------------------------------------------- the shipped catalogues


@pytest.mark.parametrize("lang", COMPLETE)
def test_shipped_language_is_complete_with_equal_placeholders(lang: str) -> None:
    template = build_template(FLOWS, ROOT)
    with (LOCALES / lang / "LC_MESSAGES" / "helpline.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    for message in template:
        if not message.id:
            continue
        found = catalog.get(*key(message))
        assert found is not None and not found.fuzzy, (lang, message.id)
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        assert all(strings), (lang, message.id)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(placeholders(str(i)) for i in ids))
        for string in strings:
            got = placeholders(str(string))
            assert got <= wanted and wanted - {"n"} <= got, (lang, message.id, string)
    report = check_catalogs(LOCALES, template, [lang], command_words(Settings()))
    assert [r.errors for r in report] == [[] for _ in report]
    assert all(not r.missing and not r.fuzzy for r in report)


def test_flows_check_reports_every_shipped_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check", "--strict"]) == 0
    out = capsys.readouterr().out
    for lang in COMPLETE:
        assert f"{lang} ({language_name(lang)}): " in out and "complete" in out


# ---------------------------------------------------------------- the checks on a catalogue

BROKEN_PO = """\
msgid ""
msgstr ""
"Language: es\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

msgctxt "command"
msgid "exit"
msgstr "salir"

msgctxt "command"
msgid "menu"
msgstr "salir"

msgid "Is it safe for you to talk right now?"
msgstr "¿Es seguro para ti hablar ahora?"

#, fuzzy
msgid "Hi, thanks for your message."
msgstr "Hola."

msgid "Welcome back."
msgstr ""

msgid "You can type {menu} at any time to see the options, or {exit} to leave and clear this chat. To erase what is stored about you here, type {erase}."
msgstr "Escribe {menú} o {exit}; para borrar, {erase}."

msgid "That's OK. You can come back and write here any time. If you want to clear this chat now, type exit."
msgstr "Está bien. Si quieres borrar este chat ahora, escribe fuera."

msgid "Welcome back! Here is where we left off:"
msgstr "¡Hola de nuevo! Aquí es donde lo dejamos:"
"""  # noqa: E501


def write_locales(tmp_path: Path) -> Path:
    locales = tmp_path / "locales"
    po = locales / "es" / "LC_MESSAGES" / "helpline.po"
    po.parent.mkdir(parents=True)
    po.write_text(BROKEN_PO, encoding="utf-8")
    return locales


def test_check_counts_missing_and_fuzzy_and_names_errors_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locales = write_locales(tmp_path)
    toml = tmp_path / "helpline.toml"
    toml.write_text(f'locales = "{locales}"\nlanguages = ["en", "es", "fr"]\n')
    code = main(["--config", str(toml), "flows", "check"])
    out = capsys.readouterr().out
    po = locales / "es" / "LC_MESSAGES" / "helpline.po"
    total = len([m for m in build_template(FLOWS, ROOT) if m.id])
    assert code == 1
    # Translated: exit, menu, "Is it safe", and two with errors; one fuzzy, one empty.
    assert f"es (Español): {total} texts, {total - 6} missing, 1 fuzzy, 3 error(s)" in out
    assert f"{po}:24:1: es: placeholders differ: the English has {{erase}}, {{exit}}, {{menu}}" \
           in out
    assert f"{po}:27:1: es: the English says 'type exit' but the translation" in out
    assert "(exit, salir); use one of them" in out
    assert f"{po}:11:1: es: 'salir' is a word for both 'quick_exit' and 'menu'" in out
    fr = locales / "fr" / "LC_MESSAGES" / "helpline.po"
    assert f"{fr}:1:1: fr: enabled in 'languages' but there is no catalogue" in out
    assert "flows OK" not in out


def test_missing_and_fuzzy_fail_only_when_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locales = write_locales(tmp_path)
    po = locales / "es" / "LC_MESSAGES" / "helpline.po"
    good = "\n\n".join(part for part in BROKEN_PO.split("\n\n")
                       if "{menú}" not in part and "fuera" not in part
                       and 'msgid "menu"' not in part)
    po.write_text(good, encoding="utf-8")
    toml = tmp_path / "helpline.toml"
    toml.write_text(f'locales = "{locales}"\n')
    assert main(["--config", str(toml), "flows", "check"]) == 0
    assert "flows OK" in capsys.readouterr().out
    assert main(["--config", str(toml), "flows", "check", "--strict"]) == 1
    out = capsys.readouterr().out
    assert f"{po}:14:1: es: fuzzy translation of 'Hi, thanks for your message.'" in out
    assert f"{po}:17:1: es: no translation of 'Welcome back.'" in out


def test_helpline_i18n_updates_and_inits_catalogues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locales = write_locales(tmp_path)
    toml = tmp_path / "helpline.toml"
    toml.write_text(f'locales = "{locales}"\n')
    assert main(["--config", str(toml), "i18n", "--init", "fr"]) == 1  # the broken es
    out = capsys.readouterr().out
    assert f"updated {locales / 'helpline.pot'}" in out
    fr = locales / "fr" / "LC_MESSAGES" / "helpline.po"
    with fr.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    assert catalog.plural_forms.startswith("nplurals=3;")
    assert catalog.get("Welcome back.") is not None
    before = fr.read_bytes()
    assert main(["--config", str(toml), "i18n"]) == 1
    assert "updated" not in capsys.readouterr().out  # nothing but dates would change
    assert fr.read_bytes() == before
    with (locales / "es" / "LC_MESSAGES" / "helpline.po").open("rb") as handle:
        es = read_po(handle, locale="es")
    changed = es.get("Welcome back. Here is where we left off:")
    assert changed is not None and changed.fuzzy  # a changed text keeps its old translation
    assert changed.string == "¡Hola de nuevo! Aquí es donde lo dejamos:"
    men = es.get("men")  # close to the command word "menu", but never suggested from it
    assert men is not None and not men.fuzzy and not men.string


def test_a_translation_with_other_placeholders_is_left_out(tmp_path: Path) -> None:
    translator = CatalogTranslator(write_locales(tmp_path))
    english = ("You can type {menu} at any time to see the options, or {exit} to leave and "
               "clear this chat. To erase what is stored about you here, type {erase}.")
    assert translator.gettext("es", english) == english
    assert translator.gettext("es", "Hi, thanks for your message.") == (
        "Hi, thanks for your message.")  # fuzzy: not used
    assert translator.pgettext("es", COMMAND, "exit") == "salir"


# ---------------------------------------------------------------- commands in every language


def test_command_words_of_every_enabled_language_work_everywhere() -> None:
    settings = Settings(languages=["en", "es", "ru", "uk", "ar", "fr"])
    config = engine_config(settings, CatalogTranslator(LOCALES))
    def words(*forms: str) -> set[str]:
        return {normalize(f) for f in forms}

    assert words("exit", "/exit", "salir", "salida", "выход", "выйти", "вихід", "خروج",
                 "sortir") <= config.words("quick_exit")
    assert words("delete my data", "borrar mis datos", "احذف بياناتي") <= config.words("erase")
    assert words("yes", "sí", "да", "так", "نعم", "oui") <= config.words("yes")
    assert [lang.name for lang in config.languages] == [
        "English", "Español", "Русский", "Українська", "العربية", "Français"]
    only_english = engine_config(Settings(), CatalogTranslator(LOCALES))
    assert "salir" not in only_english.words("quick_exit")


# ---------------------------------------------------------------- Babel formatting


@pytest.mark.parametrize(("locale", "n", "text"), [
    ("en", 1, "I found 1 service that may fit."),
    ("en", 3, "I found 3 services that may fit."),
    ("en", 1200, "I found 1,200 services that may fit."),
    ("es", 1200, "Encontré 1.200 servicios que pueden servirte."),
    ("fr", 0, "J'ai trouvé 0 service qui pourrait convenir."),
    ("ru", 1, "Найдена 1 служба, которая может подойти."),
    ("ru", 3, "Найдены 3 службы, которые могут подойти."),
    ("ru", 5, "Найдено 5 служб, которые могут подойти."),
    ("ru", 21, "Найдена 21 служба, которая может подойти."),
    ("uk", 4, "Знайдено 4 служби, які можуть підійти."),
    ("ar", 0, "لم أجد أي خدمة قد تناسبك."),
    ("ar", 2, "وجدت خدمتين قد تناسبانك."),
    ("ar", 3, "وجدت 3 خدمات قد تناسبك."),
    ("ar", 11, "وجدت 11 خدمة قد تناسبك."),
])
def test_counted_texts_use_each_language_plural_rules(locale: str, n: int, text: str) -> None:
    assert count_text(CatalogTranslator(LOCALES), locale, T_FOUND, n) == text


def test_when_and_date_in_the_person_language_and_the_organisation_time_zone() -> None:
    at = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    assert format_when("en", at, 72, "UTC") == ("in 3 days", "Monday, January 18, 2027")
    assert format_when("es", at, 24, "Europe/Madrid") == (
        "dentro de 1 día", "sábado, 16 de enero de 2027")
    assert format_when("ru", at, 168, "UTC")[0] == "через 1 неделю"
    # Late in the evening in Honolulu, the next morning UTC: the date is the organisation's.
    assert format_when("en", 1_800_000_000.0 + 15 * 3600, 24, "Pacific/Honolulu")[1] == (
        "Saturday, January 16, 2027")


def test_language_names_are_in_their_own_language() -> None:
    assert [language_name(c) for c in ("en", "es", "fr", "ru", "uk", "ar", "pt_BR", "zz")] == [
        "English", "Español", "Français", "Русский", "Українська", "العربية",
        "Português (Brasil)", "zz"]


@pytest.mark.parametrize(("env", "message"), [
    ({"HELPLINE_TIMEZONE": "Mars/Olympus"}, "'timezone': Value error, 'Mars/Olympus' is not"),
    ({"HELPLINE_LANGUAGES": "es"}, "default_language 'en' is not one of languages (es)"),
    ({"HELPLINE_LANGUAGES": "en,xx"}, "'xx' is not a language code"),
])
def test_bad_language_settings_are_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, env)
    assert message in str(err.value)


# ---------------------------------------------------------------- the engine's language choice


def two_language_engine() -> Engine:
    settings = Settings(languages=["en", "es"])
    translator = CatalogTranslator(LOCALES)
    return Engine(load_flows(FLOWS), engine_config(settings, translator), translator)


def test_an_unanswered_first_question_goes_on_in_the_default_language() -> None:
    engine = two_language_engine()
    asked = engine.step(State(), Inbound(kind="text", at=1e9, text="hello"))
    assert asked.state.pending == "language" and asked.state.idle
    assert [c.label for c in asked.messages[0].choices] == ["English", "Español"]
    went_on = engine.step(asked.state, Inbound(kind="text", at=1e9 + 5, text="what?"))
    assert went_on.state.locale == "en" and went_on.state.pending is None
    assert went_on.messages[0].text == "Hi, thanks for your message."


def test_quick_exit_and_help_while_the_first_question_waits() -> None:
    engine = two_language_engine()
    asked = engine.step(State(), Inbound(kind="text", at=1e9, text="hola"))
    gone = engine.step(asked.state, Inbound(kind="text", at=1e9 + 1, text="Salir"))
    assert gone.state.idle and gone.state.pending is None and gone.state.locale is None
    assert any(isinstance(e, DeleteChat) for e in gone.effects)
    helped = engine.step(State(), Inbound(kind="text", at=1e9, text="ayuda"))
    assert helped.messages[0].text.startswith("You can type menu at any time")
    assert helped.state.pending == "language"  # then the first screen, not silence
    hinted = engine.step(State(), Inbound(kind="text", at=1e9, text="ayuda", locale_hint="es"))
    assert hinted.messages[0].text.startswith("Puedes escribir “menú”")
    assert hinted.messages[1].text == "Hola, gracias por tu mensaje."
