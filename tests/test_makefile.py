"""The Makefile notices a .venv made with another (or an older) Python and makes it again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _venv_python(folder: Path, prints: str) -> None:
    python = folder / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho '{prints}'\n")
    python.chmod(0o755)


def _make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT / "Makefile", folder / "Makefile")
    return subprocess.run(["make", "-n", *args, "demo"], cwd=folder, capture_output=True,
                          text=True, timeout=30)


def this_python() -> str:
    return f"{sys.base_prefix}/python{sys.version.split()[0]}"


def test_a_venv_of_another_python_is_made_again(tmp_path: Path) -> None:
    _venv_python(tmp_path, "/opt/old/python3.10.2")
    result = _make(tmp_path, f"PY={sys.executable}")
    assert ".venv was made with /opt/old/python3.10.2; making it again with " \
        + this_python() in result.stdout
    assert not (tmp_path / ".venv").exists()
    assert "-m venv .venv" in result.stdout


def test_a_venv_whose_python_is_gone_is_made_again(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(tmp_path / "gone" / "python3.11")
    result = _make(tmp_path, f"PY={sys.executable}")
    assert "a Python that is gone" in result.stdout
    assert not (tmp_path / ".venv").exists()


def test_a_venv_of_this_python_is_kept(tmp_path: Path) -> None:
    _venv_python(tmp_path, this_python())
    result = _make(tmp_path, f"PY={sys.executable}")
    assert "making it again" not in result.stdout
    assert (tmp_path / ".venv" / "bin" / "python").exists()


def test_an_older_python_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\necho old\n")
    old.chmod(0o755)
    result = _make(tmp_path, f"PY={old}")
    assert result.returncode != 0
    assert "older than Python 3.11, which helpline needs" in result.stderr
