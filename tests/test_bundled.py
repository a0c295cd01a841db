"""The bundled flows, catalogues and data are found in the checkout and in an installed
wheel (where setup.py puts them under helpline/_bundled/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline import bundled
from helpline.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_checkout_folders_are_used_when_not_installed() -> None:
    assert not bundled.INSTALLED.exists()
    assert bundled.FLOWS == ROOT / "flows"
    assert Settings().locales == ROOT / "locales"
    assert Settings().handoff.canned == ROOT / "data" / "canned.yaml"


def test_the_installed_folders_win_when_present(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flows").mkdir()
    monkeypatch.setattr(bundled, "INSTALLED", tmp_path)
    assert bundled.bundled("flows") == tmp_path / "flows"
    assert bundled.bundled("data") == ROOT / "data"  # not in this "wheel": the checkout's


def test_i18n_does_not_write_into_an_installed_package(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from helpline import cli

    monkeypatch.setattr(bundled, "INSTALLED", ROOT)  # as if the checkout were site-packages
    monkeypatch.delenv("HELPLINE_LOCALES", raising=False)
    before = (ROOT / "locales" / "helpline.pot").stat().st_mtime_ns
    assert cli.main(["i18n"]) == 2
    assert "the bundled catalogues belong to the installed package" in capsys.readouterr().err
    assert (ROOT / "locales" / "helpline.pot").stat().st_mtime_ns == before
