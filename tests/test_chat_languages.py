"""A language whose catalogue is not complete: ``helpline chat`` lets an author try it (the
missing texts in English), and ``helpline run`` refuses it unless ``allow_incomplete``
lists it (README, Configuration)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from helpline import cli
from helpline.i18n_check import update_catalogs
from tests.conftest import BASIC_FLOWS, SECRET
from tests.test_startup import TOKEN, environment


def test_chat_tries_an_incomplete_language_that_run_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    locales = tmp_path / "locales"
    update_catalogs(locales, BASIC_FLOWS, ["de"])  # a new catalogue: nothing translated
    environment(monkeypatch, tmp_path, LOCALES=str(locales), LANGUAGES="en,de",
                SECRET_KEY=SECRET, TELEGRAM_TOKEN=TOKEN)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n2\n"))
    assert cli.main(["chat"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    # Both languages offered, each by its own name; in German the texts are in English.
    assert "1. English" in out and "2. Deutsch" in out
    assert out.rstrip().endswith("3. Check in later")
    assert "bot> Hello." in out
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "helpline: error    language de (Deutsch): 0 of " in err
    assert "add 'de' to allow_incomplete" in err
    assert "refusing to start: 1 error(s) above" in err
