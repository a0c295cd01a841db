"""`helpline run` from an installed wheel against the loopback fake Telegram Bot API.

Run with the fresh venv's Python and the checkout on PYTHONPATH (for tests/fakes only):
the bot itself is started as `HELPLINE_BIN run` in another folder, without PYTHONPATH, so
it uses only what the wheel installed. Checks: a person's "hi" is answered, the Telegram
API being down at start is waited out (not a traceback), and a rejected token is one line
that does not show the token. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.fakes.telegram_bot_api import FakeBotAPI

TOKEN = "123456:CI-fake-token-abcdefghijklmnopqrstuvw"
SECRET = "ci-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CHAT = 4242


def _env(api: FakeBotAPI, workdir: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HELPLINE_") and k != "PYTHONPATH"}
    env.update(HELPLINE_TELEGRAM_TOKEN=token, HELPLINE_TELEGRAM_API_URL=api.root,
               HELPLINE_TELEGRAM_POLL_TIMEOUT_SECONDS="1", HELPLINE_SECRET_KEY=SECRET,
               HELPLINE_DB=str(workdir / "var" / "helpline.db"))
    return env


async def _start(binary: str, api: FakeBotAPI, workdir: Path, token: str = TOKEN
                 ) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        binary, "run", cwd=workdir, env=_env(api, workdir, token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def answers_a_person(binary: str, workdir: Path) -> None:
    async with FakeBotAPI(valid_token=TOKEN) as api:
        api.set_down(True)  # unreachable at start: helpline waits and tries again
        process = await _start(binary, api, workdir)
        await api.wait_for_call("getMe", timeout=15)
        await asyncio.sleep(1.5)
        assert process.returncode is None, "helpline run stopped while Telegram was down"
        api.set_down(False)
        api.person_sends(CHAT, "hi")
        texts = await api.wait_sent(CHAT, 1, timeout=30)
        assert "thanks for your message" in texts[0], texts
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        log = (out + err).decode()
        assert process.returncode == 0, log
        assert TOKEN not in log and SECRET not in log, "a secret reached the output"
        assert "Traceback" not in log, log
        assert "not reachable" in log, log
        print("ok: helpline run waited for Telegram and answered a person")


async def rejected_token_is_one_line(binary: str, workdir: Path) -> None:
    async with FakeBotAPI(valid_token=TOKEN) as api:
        wrong = "654321:CI-rejected-token-zyxwvutsrqponmlkji"
        process = await _start(binary, api, workdir, token=wrong)
        _, err = await asyncio.wait_for(process.communicate(), 30)
        text = err.decode().strip()
        assert process.returncode == 2, (process.returncode, text)
        assert wrong not in text and wrong.split(":")[1] not in text, text
        assert "Traceback" not in text, text
        last = text.splitlines()[-1]
        assert "token" in last and "BotFather" in last, text
        print(f"ok: a rejected token stops helpline run with one line: {last}")


async def main(binary: str, workdir: str) -> None:
    folder = Path(workdir)
    await rejected_token_is_one_line(binary, folder)
    await answers_a_person(binary, folder)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
