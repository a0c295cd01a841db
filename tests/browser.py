"""Debian's chromium driven by Playwright (never a browser Playwright downloads), and what
a person does in the console: follow a set-up link, sign in."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pyotp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.console_rig import PASSWORD, Rig

CHROMIUM = os.environ.get("HELPLINE_CHROMIUM") or shutil.which("chromium") or ""
# How long a step may wait for the page (Playwright's default is 30 s; a shared test
# machine can take more than 5).
STEP_MS = 10_000


def need_chromium() -> str:
    """The browser's path; the test is skipped without one (it fails in CI, which
    installs it: .ci/run)."""
    if not CHROMIUM:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = need_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path)
        try:
            yield browser
        finally:
            await browser.close()


async def set_up(page: Page, rig: Rig, name: str, role: str = "advocate",
                 password: str = PASSWORD) -> None:
    """``helpline console add-user``'s link followed in the browser: a password, then the
    key typed into an authenticator app (here pyotp) and its code confirmed."""
    link = await rig.accounts.add_user(name, role)
    await page.goto(rig.link(link.token))
    await page.get_by_label("New password").fill(password)
    await page.get_by_label("The same password again").fill(password)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("heading", name="Add your authenticator app").wait_for()
    secret = (await page.locator("#secret").inner_text()).replace(" ", "")
    await page.get_by_label("The code your app shows now").fill(
        pyotp.TOTP(secret).at(rig.clock.now))
    await page.get_by_role("button", name="Finish set-up").click()
    await page.get_by_text("Your account is ready").wait_for()


async def sign_in(page: Page, rig: Rig, name: str, password: str = PASSWORD,
                  code: str | None = None) -> None:
    """The sign-in form filled and sent (``code``: the app's current code, after the
    clock moved on a step so that it is not one used already)."""
    if "/login" not in page.url:
        await page.goto(f"{rig.url}/login")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_label("Code from your authenticator app").fill(
        code if code is not None else await rig.code(name, steps_later=1))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


# The fixtures of a browser test module (import them by name): one browser for the
# module, a context and a page for each test.

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as found:
        yield found


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    found = await browser.new_context()
    found.set_default_timeout(STEP_MS)
    yield found
    await found.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()
