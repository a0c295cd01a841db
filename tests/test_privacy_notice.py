"""The privacy notice, made from the configuration: what it says changes with the
settings (periods, the desk, each platform), the bot shows it for "privacy" in the person's
language and then carries on where they were, and ``helpline privacy-notice`` prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline.app import engine_config
from helpline.cli import main
from helpline.config import Handoff, Retention, Signal, Telegram
from helpline.flow.engine import Engine
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.state import State
from tests.conftest import BUNDLED_FLOWS, HarnessFactory, make_settings

INTRO = "How this chat keeps what you tell it:"


def shown(tmp_path: Path, locale: str = "en", **updates: object) -> list[str]:
    settings = make_settings(tmp_path, BUNDLED_FLOWS, **updates)
    tr = CatalogTranslator(settings.locales, settings.default_language)
    engine = Engine(load_flows(BUNDLED_FLOWS), engine_config(settings, tr), tr)
    return engine.privacy_text(State(locale=locale)).split("\n\n")


def test_the_notice_says_what_this_configuration_keeps(tmp_path: Path) -> None:
    plain = shown(tmp_path, retention=Retention(conversation_days=30, message_id_hours=24))
    assert plain == [
        INTRO,
        "Your answers and where you are in the conversation are kept encrypted, under a code "
        "instead of your number or name. They are erased 30 days after your last message, or "
        "at once when you type delete my data.",
        "Typing exit clears this chat and what is kept of the conversation. So that it can, "
        "the helpline keeps the ids of messages for 24 hours.",
        "The helpline counts how often things happen (a search, a request to talk to a "
        "person) by week, never who did them.",
        "Nothing you write goes into the helpline's logs. The helpline sells nothing and "
        "passes nothing on to anyone else."]
    from helpline.config import Stats
    assert "counts how often" not in " ".join(shown(tmp_path, stats=Stats(enabled=False)))
    everything = shown(tmp_path, telegram=Telegram(token="123:abc"),
                       handoff=Handoff(staff_chat="-100123"),
                       signal=Signal(service="127.0.0.1:8080", number="+10000000000",
                                     disappearing_seconds=7 * 86400))
    assert [p.split(",")[0] for p in everything[3:6]] == [
        "If you ask to talk to a person", "On Telegram", "On Signal"]
    assert "A closed case's record (its code and what you chose to share, not your messages) " \
           "is kept for 365 days." in everything[3]
    assert "new messages in this chat disappear after 1 week." in everything[5]
    no_timer = shown(tmp_path, signal=Signal(service="127.0.0.1:8080", number="+10000000000",
                                             disappearing_seconds=0))
    assert "disappear" not in " ".join(no_timer) and no_timer[3].startswith("On Signal")


def test_the_notice_in_the_persons_language_names_their_words(tmp_path: Path) -> None:
    spanish = shown(tmp_path, "es", languages=["en", "es"],
                    signal=Signal(service="127.0.0.1:8080", number="+10000000000"))
    assert spanish[0] == "Cómo guarda este chat lo que cuentas:"
    assert "o enseguida si escribes borrar mis datos." in spanish[1]
    assert spanish[2].startswith("Si escribes salir, se vacía este chat")
    assert "desaparecen después de 1 día." in spanish[3]


async def test_privacy_anywhere_shows_the_notice_and_carries_on(
        harness_factory: HarnessFactory, tmp_path: Path) -> None:
    h = await harness_factory(BUNDLED_FLOWS, make_settings(tmp_path, languages=["en", "es"]))
    await h.send("hi")
    await h.press("English")  # two languages: asked first
    asked = await h.press("Yes")  # the welcome, then the menu
    question = asked[-1]
    answer = await h.send("privacy")
    assert answer[0].text.startswith(INTRO)
    assert answer[-1].text == question.text and answer[-1].choices == question.choices
    await h.send("language")
    await h.press("Español")
    again = await h.send("privacidad")  # the Spanish word works, the notice is in Spanish
    assert again[0].text.startswith("Cómo guarda este chat lo que cuentas:")


def test_helpline_privacy_notice_prints_each_enabled_language(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELPLINE_LANGUAGES", "en,fr")
    assert main(["privacy-notice"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"[en]\n{INTRO}\n")
    assert "\n[fr]\nComment ce chat garde ce que vous lui confiez :\n" in out
    assert main(["privacy-notice", "--lang", "fr"]) == 0
    assert capsys.readouterr().out.startswith("Comment ce chat garde")
    assert main(["privacy-notice", "--lang", "de"]) == 2
    assert "de is not an enabled language" in capsys.readouterr().err
