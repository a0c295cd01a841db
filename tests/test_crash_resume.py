"""After `kill -9` and a restart, `helpline chat` resumes at the same step and variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import BASIC_FLOWS


def start(tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HELPLINE_DB": str(tmp_path / "h.db"),
           "HELPLINE_FLOWS": str(BASIC_FLOWS), "PYTHONUNBUFFERED": "1"}
    env.pop("HELPLINE_SECRET_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "helpline", "chat"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def say(proc: subprocess.Popen[str], line: str, until: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 30
    while until not in seen:
        assert time.monotonic() < deadline, seen
        seen += proc.stdout.readline()
    return seen


def test_kill_minus_nine_then_resume(tmp_path: Path) -> None:
    proc = start(tmp_path)
    say(proc, "hi", "3. Check in later")
    say(proc, "1", "What should I call you?")
    say(proc, "Rae", "How old are you?")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert (tmp_path / "secret.key").exists()

    again = start(tmp_path)
    # The answer is taken at the question it was killed at, with the name said before it
    # (``say`` fails unless the bot says so within 30 s).
    say(again, "44", "Thanks Rae.")
    assert "What would you like to do?" in say(again, "menu", "1. Answer a question")
    assert again.stdin is not None
    again.stdin.close()
    assert again.wait(timeout=20) == 0
