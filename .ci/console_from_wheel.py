"""The advocate console from an installed wheel: `helpline console add-user` prints a set-up
link, and `helpline run` with `[console] enabled` serves the sign-in and set-up pages and
their assets (the templates and static files are in the wheel). Run like run_against_fake.py
(the fresh venv's Python, the checkout on PYTHONPATH for tests/fakes only); 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.fakes.telegram_bot_api import FakeBotAPI

TOKEN = "123456:CI-fake-token-abcdefghijklmnopqrstuvw"
SECRET = "ci-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(binary: str, workdir: str) -> None:
    folder = Path(workdir)
    port = _free_port()
    async with FakeBotAPI(valid_token=TOKEN) as api:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HELPLINE_") and k != "PYTHONPATH"}
        env.update(HELPLINE_TELEGRAM_TOKEN=TOKEN, HELPLINE_TELEGRAM_API_URL=api.root,
                   HELPLINE_TELEGRAM_POLL_TIMEOUT_SECONDS="1", HELPLINE_SECRET_KEY=SECRET,
                   HELPLINE_DB=str(folder / "var" / "console.db"),
                   HELPLINE_CONSOLE_ENABLED="true",
                   HELPLINE_CONSOLE_LISTEN=f"127.0.0.1:{port}")
        added = subprocess.run([binary, "console", "add-user", "ci-admin", "--role", "admin",
                                "--create"], cwd=folder, env=env, capture_output=True, text=True,
                               timeout=60)
        assert added.returncode == 0, added.stderr
        assert f"http://127.0.0.1:{port}/setup#" in added.stdout, added.stdout
        process = await asyncio.create_subprocess_exec(
            binary, "run", cwd=folder, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                for _ in range(200):
                    try:
                        async with http.get("/login") as response:
                            assert response.status == 200
                            assert "Sign in" in await response.text()
                            assert "script-src 'self'" in response.headers[
                                "Content-Security-Policy"]
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the console did not answer")
                for path in ("/setup", "/static/console.css", "/static/console.js"):
                    async with http.get(path) as response:
                        assert response.status == 200, path
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 30)
        log = (out + err).decode()
        assert process.returncode == 0, log
        assert "Traceback" not in log and SECRET not in log, log
        assert "ci-admin" not in log, "a console user name reached the log"
    print("ok: helpline console add-user, and helpline run serving the console")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
