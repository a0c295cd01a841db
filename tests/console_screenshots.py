"""Screenshots of the console for the docs: ``python -m tests.console_screenshots
docs/console`` (Debian's chromium through Playwright, a console on a loopback port over a
temporary database, made-up accounts)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from helpline.resources.importer import import_directory
from tests.browser import chromium, set_up, sign_in
from tests.conftest import ROOT
from tests.console_rig import DeskRig, console_rig, desk_rig
from tests.fakes.telegram_bot_api import FakeBotAPI
from tests.telegram_person import CHAT, until, until_async


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
        made += await shoot_desk(folder, Path(work) / "desk")
    return made


async def shoot_desk(folder: Path, work: Path) -> list[Path]:
    """The queue and a case, with the console as the desk: two people on the Telegram
    fake asked for an advocate, one case is claimed and talked in (made-up words)."""
    work.mkdir()
    made: list[Path] = []
    async with FakeBotAPI() as api, desk_rig(work, api) as rig, chromium() as browser:
        await import_directory(rig.store, ROOT / "data" / "sample-directory.yaml",
                               rig.app.clock())
        context = await browser.new_context(viewport={"width": 900, "height": 900})
        page = await context.new_page()
        await rig.active_user("amira")
        await rig.active_user("bea")
        await sign_in(page, rig, "amira")
        await page.get_by_role("radio", name="On shift").check()
        await page.get_by_role("button", name="Save").click()
        handle = await rig.ask_for_advocate()
        thread = await rig.thread_of(handle)
        await rig.desk.claim("console:amira", thread)
        await rig.desk.say("console:amira", thread, "Hi, I'm Amira. I'm here, and there's "
                           "no rush.")
        await rig.person("Thank you. I need somewhere to stay tonight", 0)
        await rig.desk.note("console:amira", thread, "Asked for evenings only.")
        rig.api.person_sends(CHAT + 1, "hi")  # a second person, still waiting
        await until(lambda: len(rig.api.sent_texts(CHAT + 1)) >= 1)
        second = RigPerson(rig, CHAT + 1)
        await second.ask()
        await until_async(lambda: _cases(rig, 2))
        await page.goto(f"{rig.url}/")
        made.append(folder / "queue.png")
        await page.screenshot(path=made[-1], full_page=True)
        await page.goto(f"{rig.url}/case/{thread}?need=shelter&place=Larkhaven")
        await page.locator(".line.desk", has_text="somewhere to stay").wait_for()
        made.append(folder / "case.png")
        await page.screenshot(path=made[-1], full_page=True)
        await context.close()
    return made


async def _cases(rig: DeskRig, count: int) -> bool:
    return len(await rig.desk.open_cases()) >= count


class RigPerson:
    """Another person on the same fake, through the same steps as ``ask_for_advocate``."""

    def __init__(self, rig: DeskRig, chat: int) -> None:
        self.rig, self.chat = rig, chat

    async def _press(self, label: str) -> None:
        api = self.rig.api
        before = len(api.sent_texts(self.chat))
        for message in reversed(api.messages(self.chat)):
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        api.person_presses(self.chat, message["message_id"],
                                           button["callback_data"])
                        await until(lambda: len(api.sent_texts(self.chat)) > before)
                        return
        raise AssertionError(label)

    async def _say(self, text: str) -> None:
        api = self.rig.api
        before = len(api.sent_texts(self.chat))
        api.person_sends(self.chat, text)
        await until(lambda: len(api.sent_texts(self.chat)) > before)

    async def ask(self) -> None:
        await self._press("Yes")
        await self._say("4")
        await self._press("Yes")
        await self._say("Is anyone there?")
        await self._press("Any time")


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/console")
    for path in asyncio.run(shoot(folder)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
