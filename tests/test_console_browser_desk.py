"""The console as the desk in a real browser (Debian's chromium through Playwright): sign
in with a TOTP code; a person on the Telegram fake asks for an advocate and the case
appears on the open queue page; claim; messages both ways; a service card found in the
directory; close. A second advocate cannot open the first's case. A person's quick exit
empties the open case page. One browser for the module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page

from helpline.console.desk import ConsoleDesk
from helpline.resources.importer import import_directory
from tests.browser import browser, context, page, sign_in
from tests.conftest import ROOT
from tests.console_rig import DeskRig, desk_rig
from tests.fakes.telegram_bot_api import FakeBotAPI
from tests.telegram_person import CHAT, until

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["browser", "context", "page"]  # fixtures used by name


@pytest_asyncio.fixture(loop_scope="module")
async def rig(tmp_path: Path) -> AsyncIterator[DeskRig]:
    async with FakeBotAPI() as api, desk_rig(tmp_path, api) as found:
        yield found




def no_csp_violations(page: Page) -> list[str]:
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            seen.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


async def test_a_case_arrives_live_is_claimed_answered_given_a_card_and_closed(
        rig: DeskRig, page: Page) -> None:
    await import_directory(rig.store, ROOT / "data" / "sample-directory.yaml", rig.app.clock())
    problems = no_csp_violations(page)
    await rig.active_user("amira")
    await sign_in(page, rig, "amira")
    assert await page.locator("h1").inner_text() == "Queue"
    assert "No one is waiting." in await page.locator("#queue").inner_text()
    handle = await rig.ask_for_advocate()
    # The open page shows it without being reloaded.
    row = page.locator(".case-row", has_text=f"Case {handle}")
    await row.wait_for()
    assert "I left last week" in await row.inner_text()
    assert "English · Telegram" in await row.inner_text()
    # A screen reader hears one short line, not the whole queue again.
    await page.get_by_role("status").filter(has_text="Waiting: 1. Claimed: 0.").wait_for()
    await row.get_by_role("button", name=f"Claim case {handle}").click()
    await page.locator("#case-status", has_text="You have this case.").wait_for()
    await until(lambda: "An advocate has joined. They can read what you write here."
                in rig.person_texts())
    # Messages both ways.
    await page.get_by_label("Message to the person").fill("Hi, I'm Amira. I'm here.")
    await page.get_by_role("button", name="Send", exact=True).click()
    await until(lambda: rig.person_texts()[-1] == "Advocate: Hi, I'm Amira. I'm here.")
    await page.locator(".line.advocate .state", has_text="sent").wait_for()
    # The box is empty again for the next message (once the form's answer is in).
    await page.wait_for_function("() => document.getElementById('reply').value === ''")
    rig.api.person_sends(CHAT, "Thank you. I need a place to stay")
    await page.locator(".line.desk", has_text="Person: Thank you. I need a place to stay"
                       ).wait_for()
    # A note stays on the desk.
    await page.get_by_label("Note for the desk (never sent to the person)").fill("calm")
    await page.get_by_role("button", name="Save the note").click()
    await page.locator(".line.note", has_text="calm").wait_for()
    # A service card from the directory.
    await page.get_by_label("Kind of help").select_option("shelter")
    await page.get_by_label("Town or area").fill("Larkhaven")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("button", name="Send the card of Harbour House").click()
    await until(lambda: "Harbour House" in rig.person_texts()[-1])
    await page.locator(".line.desk", has_text="Sent the card of Harbour House.").wait_for()
    texts = await page.locator("#transcript li").all_inner_texts()
    order = [next(i for i, t in enumerate(texts) if part in t) for part in (
        "Hi, I'm Amira", "Person: Thank you", "calm", "Sent the card of Harbour House")]
    assert order == sorted(order)
    # Close.
    await page.get_by_role("button", name="Close the case").click()
    await page.locator("h1", has_text="Queue").wait_for()
    await until(lambda: any(t.startswith("The advocate has closed this chat.")
                            for t in rig.person_texts()))
    assert await rig.store.database.rows("SELECT id FROM console_lines") == []
    assert problems == []


async def test_a_second_advocate_cannot_open_the_first_ones_case(
        rig: DeskRig, browser: Browser, page: Page) -> None:
    await rig.active_user("bea")
    await rig.active_user("chen")
    await sign_in(page, rig, "bea")
    handle = await rig.ask_for_advocate()
    thread = await rig.thread_of(handle)
    await rig.person("Canary words", 0)
    await page.locator(".case-row", has_text=f"Case {handle}").get_by_role(
        "button", name=f"Claim case {handle}").click()
    await page.locator(".line.desk", has_text="Canary words").wait_for()
    other = await browser.new_context()
    try:
        second = await other.new_page()
        await sign_in(second, rig, "chen")
        row = second.locator(".case-row", has_text=f"Case {handle}")
        assert "with bea" in await row.inner_text()
        assert await row.get_by_role("link").count() == 0
        response = await second.goto(f"{rig.url}/case/{thread}")
        assert response is not None and response.status == 403
        assert await second.locator("h1").inner_text() == "This case is with another advocate"
        assert "Canary" not in await second.content()
    finally:
        await other.close()


async def test_a_quick_exit_empties_the_open_case_page(rig: DeskRig, page: Page) -> None:
    await rig.active_user("dana")
    await sign_in(page, rig, "dana")
    handle = await rig.ask_for_advocate()
    await page.locator(".case-row", has_text=f"Case {handle}").get_by_role(
        "button", name=f"Claim case {handle}").click()
    await rig.person("Canary words", 0)
    await page.locator(".line.desk", has_text="Canary words").wait_for()
    rig.api.person_sends(CHAT, "exit")
    await page.get_by_text("The person left. This case is closed, and its chat was "
                           "removed.").wait_for()
    assert await page.locator("#transcript li").count() == 0
    assert "Canary" not in await page.locator("main").inner_text()
    assert await page.get_by_label("Message to the person").count() == 0
    assert await rig.store.database.rows("SELECT id FROM console_lines") == []


async def test_the_queue_and_case_pages_fit_a_phone_with_every_field_labelled(
        rig: DeskRig, browser: Browser) -> None:
    await rig.active_user("emre")
    small = await browser.new_context(viewport={"width": 375, "height": 667},
                                      device_scale_factor=2)
    try:
        page = await small.new_page()
        problems = no_csp_violations(page)
        await sign_in(page, rig, "emre")
        handle = await rig.ask_for_advocate()
        row = page.locator(".case-row", has_text=f"Case {handle}")
        await row.get_by_role("button", name=f"Claim case {handle}").click()
        await page.locator("#case-status", has_text="You have this case.").wait_for()
        fits = "() => document.documentElement.scrollWidth <= window.innerWidth"
        unlabelled = ("() => [...document.querySelectorAll('input:not([type=hidden]), "
                      "textarea, select')].filter(e => e.labels.length === 0).length")
        inline = ("() => document.querySelectorAll('script:not([src]), [style]').length")
        for path in ("/", f"/case/{await rig.thread_of(handle)}"):
            await page.goto(f"{rig.url}{path}")
            assert await page.evaluate(fits), path
            assert await page.evaluate(unlabelled) == 0, path
            assert await page.evaluate(inline) == 0, path
        assert problems == []
    finally:
        await small.close()


async def _tab_to(page: Page, name: str) -> None:
    """Press Tab until the focused control is ``name`` (its label, or its text); each
    control passed on the way shows a visible focus ring. (A Tab pressed while a page is
    still being put in place after a navigation can leave the focus on the page itself,
    which is no control: the next Tab starts from the top.)"""
    await page.wait_for_load_state("load")
    for _ in range(60):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " const label = e.labels && e.labels.length ? e.labels[0].innerText : '';"
            " if (e === document.body) return ['', 'body', 0];"
            " return [label || e.getAttribute('aria-label') || e.innerText || '',"
            " s.outlineStyle, parseFloat(s.outlineWidth)]; }")
        if focused[1] == "body":
            continue
        assert focused[1] == "solid" and focused[2] >= 2, focused
        if focused[0].strip() == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


async def test_a_case_is_claimed_and_answered_with_the_keyboard_alone(
        rig: DeskRig, page: Page) -> None:
    await rig.active_user("fern")
    await sign_in(page, rig, "fern")
    handle = await rig.ask_for_advocate()
    await page.locator(".case-row", has_text=f"Case {handle}").wait_for()
    await _tab_to(page, f"Claim case {handle}")
    await page.keyboard.press("Enter")
    await page.locator("#case-status", has_text="You have this case.").wait_for()
    await _tab_to(page, "Message to the person")
    await page.keyboard.type("I'm here. Take your time.")
    await _tab_to(page, "Send")
    await page.keyboard.press("Enter")
    await until(lambda: rig.person_texts()[-1] == "Advocate: I'm here. Take your time.")
    await page.locator(".line.advocate .state", has_text="sent").wait_for()


async def test_a_line_another_worker_added_appears_on_the_open_case_page(
        rig: DeskRig, page: Page) -> None:
    """Several workers serving together: another worker's desk adds a line to the case
    (its own pages learn it from its own hub); this worker hears only "thread:N|line",
    and the open page reads its transcript again, adding the new line alone."""
    problems = no_csp_violations(page)
    await rig.active_user("lena")
    await sign_in(page, rig, "lena")
    handle = await rig.ask_for_advocate()
    await page.locator(".case-row", has_text=f"Case {handle}").get_by_role(
        "button", name=f"Claim case {handle}").click()
    await page.locator("#case-status", has_text="You have this case.").wait_for()
    shown = await page.locator("#transcript li").count()
    [row] = await rig.store.database.rows(
        "SELECT id FROM console_threads ORDER BY id DESC LIMIT 1")
    elsewhere = ConsoleDesk(rig.store)  # another worker's desk, with a hub of its own
    await elsewhere._add(int(row["id"]), "desk", "", "Person: written on another worker")
    rig.desk.hub.heard(f"thread:{row['id']}|line")
    await page.locator(".line.desk", has_text="written on another worker").wait_for()
    assert await page.locator("#transcript li").count() == shown + 1
    assert problems == []
