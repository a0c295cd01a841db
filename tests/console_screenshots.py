"""Screenshots of the console for the docs: ``python -m tests.console_screenshots
docs/console`` (Debian's chromium through Playwright, a console on a loopback port over a
temporary database, made-up accounts)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from tests.browser import chromium, set_up, sign_in
from tests.console_rig import console_rig


async def shoot(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    with tempfile.TemporaryDirectory() as work:
        async with console_rig(Path(work)) as rig, chromium() as browser:
            context = await browser.new_context(viewport={"width": 900, "height": 640})
            page = await context.new_page()
            await set_up(page, rig, "amira", "supervisor")
            await page.goto(f"{rig.url}/login")
            await page.get_by_label("User name").fill("amira")
            made.append(folder / "login.png")
            await page.screenshot(path=made[-1])
            await sign_in(page, rig, "amira")
            made.append(folder / "home.png")
            await page.screenshot(path=made[-1])
            await context.close()
    return made


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/console")
    for path in asyncio.run(shoot(folder)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
