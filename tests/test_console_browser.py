"""The advocate console in a real browser (Debian's chromium through Playwright): set-up,
sign-in with TOTP, a wrong code, lockout, CSRF, session fixation, idle sessions, the
Content-Security-Policy, roles, keyboard use and small screens. One browser for the
module; each test has its own database, console and browser context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page

from helpline.console.web import PRE_COOKIE, SESSION_COOKIE
from helpline.stats import Stats, week_of
from tests.browser import browser, context, page, set_up, sign_in
from tests.console_rig import PASSWORD, Rig, console_rig

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["browser", "context", "page"]  # fixtures used by name


@pytest_asyncio.fixture(loop_scope="module")
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with console_rig(tmp_path) as found:
        yield found




async def cookie(context: BrowserContext, name: str) -> str | None:
    return next((c["value"] for c in await context.cookies() if c["name"] == name), None)


async def heading(page: Page) -> str:
    return await page.locator("h1").inner_text()


# ------------------------------------------------------------------ signing in


async def test_an_account_is_set_up_from_its_link_and_signs_in_with_password_and_code(
        rig: Rig, page: Page, context: BrowserContext) -> None:
    await set_up(page, rig, "amira", "supervisor")
    assert "#" not in page.url  # the link's code left the address bar
    await sign_in(page, rig, "amira")
    assert page.url == f"{rig.url}/"
    assert await page.locator("#who-name").inner_text() == "amira"
    assert await page.locator("#who-role").inner_text() == "supervisor"
    assert "The case queue will appear here" in await page.locator("main").inner_text()
    session = await cookie(context, SESSION_COOKIE)
    assert session
    [stored] = await rig.store.database.rows("SELECT token_hash FROM console_sessions")
    assert bytes(stored["token_hash"]) != session.encode()  # kept only as its hash
    events = [(actor, event) for actor, event, _, _ in await rig.audit()]
    assert events == [("command line", "user added"), ("amira", "account set up"),
                      ("amira", "login")]


async def test_the_set_up_link_works_once(rig: Rig, page: Page) -> None:
    link = await rig.accounts.add_user("bea", "advocate")
    enrolment = await rig.accounts.choose_password(link.token, PASSWORD)
    assert not isinstance(enrolment, str)
    code = pyotp.TOTP(enrolment.secret).at(rig.clock.now)
    assert await rig.accounts.confirm_code(link.token, code) is not None
    await page.goto(rig.link(link.token))
    await page.get_by_label("New password").fill("another calm long phrase")
    await page.get_by_label("The same password again").fill("another calm long phrase")
    await page.get_by_role("button", name="Continue").click()
    assert "expired or was used already" in await page.locator(".error").inner_text()


async def test_a_wrong_code_is_refused_without_saying_which_part_was_wrong(
        rig: Rig, page: Page) -> None:
    await rig.active_user("chen")
    right = await rig.code("chen", steps_later=1)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    await sign_in(page, rig, "chen", code=wrong)
    assert page.url.startswith(f"{rig.url}/login")
    error = await page.get_by_role("alert").inner_text()
    assert "did not match" in error and "code" in error
    assert await page.get_by_label("User name").input_value() == "chen"  # kept for retry
    assert await page.get_by_label("Password").input_value() == ""  # never sent back
    assert (await rig.audit())[-1] == ("chen", "login failed", "chen", "wrong code")
    await sign_in(page, rig, "chen", code=right)
    assert await heading(page) == "Home"


async def test_repeated_failures_pause_the_account_even_for_the_right_password(
        rig: Rig, page: Page) -> None:
    await rig.active_user("dana")
    for attempt in range(5):
        await sign_in(page, rig, "dana", password=f"not the password {attempt}")
    assert "paused for 15 minutes" in await page.get_by_role("alert").inner_text()
    await sign_in(page, rig, "dana")  # right password, right code
    assert "paused for 15 minutes" in await page.get_by_role("alert").inner_text()
    assert ("dana", "account paused", "dana", "5 failed logins in a row") in await rig.audit()
    rig.clock.advance(15 * 60)
    await sign_in(page, rig, "dana")
    assert await heading(page) == "Home"


# ------------------------------------------------------------------ sessions and CSRF


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
        rig: Rig, page: Page, context: BrowserContext) -> None:
    await rig.active_user("emre")
    await sign_in(page, rig, "emre")
    missing = await page.request.post(f"{rig.url}/logout", form={})
    assert missing.status == 403
    assert "nothing was changed" in await missing.text()
    await page.locator("input[name=csrf]").evaluate("input => input.value = 'f00d'")
    await page.get_by_role("button", name="Sign out").click()
    assert await heading(page) == "Please try again"
    token = await page.locator("input[name=csrf]").input_value()  # the refusal page's own
    foreign = await page.request.post(f"{rig.url}/logout", form={"csrf": token},
                                      headers={"Origin": "http://attacker.invalid"})
    assert foreign.status == 403
    await page.goto(f"{rig.url}/")
    assert await heading(page) == "Home"  # still signed in: no logout happened
    assert not any(event == "logout" for _, event, _, _ in await rig.audit())
    await page.get_by_role("button", name="Sign out").click()  # the real form works
    assert "You have signed out" in await page.get_by_role("status").inner_text()
    assert await cookie(context, SESSION_COOKIE) is None


async def test_a_session_id_planted_before_login_is_not_the_one_after(
        rig: Rig, browser: Browser, page: Page, context: BrowserContext) -> None:
    await rig.active_user("femi")
    planted = "planted-by-someone-else-0123456789abcdef"
    await context.add_cookies([{"name": SESSION_COOKIE, "value": planted,
                                "domain": "127.0.0.1", "path": "/", "secure": True,
                                "httpOnly": True, "sameSite": "Strict"}])
    await page.goto(f"{rig.url}/login")
    pre_login = await cookie(context, PRE_COOKIE)
    assert pre_login
    await sign_in(page, rig, "femi")
    assert await heading(page) == "Home"
    after = await cookie(context, SESSION_COOKIE)
    assert after and after not in (planted, pre_login)
    assert await cookie(context, PRE_COOKIE) is None
    other = await browser.new_context()  # whoever planted it, with the planted id
    try:
        await other.add_cookies([{"name": SESSION_COOKIE, "value": planted,
                                  "domain": "127.0.0.1", "path": "/", "secure": True}])
        intruder = await other.new_page()
        await intruder.goto(f"{rig.url}/")
        assert intruder.url == f"{rig.url}/login"
    finally:
        await other.close()


async def test_an_idle_session_sends_the_person_back_to_sign_in(
        rig: Rig, page: Page, context: BrowserContext) -> None:
    await rig.active_user("gwen")
    await sign_in(page, rig, "gwen")
    rig.clock.advance(19 * 60)
    await page.reload()
    assert await heading(page) == "Home"  # active within the idle time: still signed in
    rig.clock.advance(20 * 60 + 1)
    await page.reload()
    assert page.url == f"{rig.url}/login?notice=idle"
    assert "signed out after a while" in await page.get_by_role("status").inner_text()
    assert await cookie(context, SESSION_COOKIE) is None
    assert ("gwen", "signed out", "gwen", "idle") in await rig.audit()


# ------------------------------------------------------------------ pages


async def test_every_page_has_the_strict_csp_no_inline_script_and_labelled_fields(
        rig: Rig, page: Page) -> None:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: violations.append(str(error)))
    link = await rig.accounts.add_user("hana", "admin")
    seen: dict[str, str] = {}

    async def check(label: str) -> None:
        assert await page.evaluate("""() => {
            const all = [...document.querySelectorAll('*')];
            return {
              inline: document.querySelectorAll('script:not([src])').length,
              handlers: all.filter(e => [...e.attributes].some(a => a.name.startsWith('on')))
                           .length,
              styles: all.filter(e => e.hasAttribute('style')).length,
              external: [...document.querySelectorAll('[src],link[href]')]
                           .filter(e => !(e.src || e.href).startsWith(location.origin))
                           .length,
              unlabelled: [...document.querySelectorAll('input:not([type=hidden])')]
                           .filter(e => e.labels.length === 0).length,
            };
        }""") == {"inline": 0, "handlers": 0, "styles": 0, "external": 0,
                  "unlabelled": 0}, label
        seen[label] = page.url

    response = await page.goto(f"{rig.url}/login")
    assert response is not None
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    await check("login")
    await page.goto(rig.link(link.token))
    await check("setup")
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_label("The same password again").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await check("setup code")  # with the QR code, an SVG made on the server
    assert await page.locator(".qr svg path").count() >= 1
    await page.goto(f"{rig.url}/login")
    await rig.active_user("ines", "supervisor")
    await sign_in(page, rig, "ines")
    await check("home")
    await page.goto(f"{rig.url}/audit")
    await check("audit")
    await page.goto(f"{rig.url}/stats")
    await check("statistics")
    missing = await page.goto(f"{rig.url}/nothing-here")
    assert missing is not None and missing.status == 404
    assert "content-security-policy" in missing.headers
    await check("not found")
    script = await page.request.get(f"{rig.url}/static/console.js")
    assert script.status == 200 and "content-security-policy" in script.headers
    assert violations == []


async def test_an_advocate_cannot_open_the_audit_log_and_a_supervisor_can(
        rig: Rig, browser: Browser, page: Page) -> None:
    await rig.active_user("jo", "advocate")
    await sign_in(page, rig, "jo")
    assert await page.get_by_role("link", name="Audit log").count() == 0
    response = await page.goto(f"{rig.url}/audit")
    assert response is not None and response.status == 403
    assert await heading(page) == "Not available to your role"
    assert await page.locator("table").count() == 0
    await rig.active_user("kim", "supervisor")
    other = await browser.new_context()
    try:
        supervisor = await other.new_page()
        await sign_in(supervisor, rig, "kim")
        await supervisor.get_by_role("link", name="Audit log").first.click()
        assert await heading(supervisor) == "Audit log"
        rows = await supervisor.locator("tbody tr").all_inner_texts()
        assert any("jo" in row and "login" in row for row in rows)
    finally:
        await other.close()


async def test_supervisors_read_the_statistics_with_small_counts_hidden(
        rig: Rig, browser: Browser, page: Page) -> None:
    stats = Stats(rig.store.database)
    for _ in range(6):
        await stats.count("lookup", rig.clock.now, "telegram", "en", "shelter")
    for _ in range(2):
        await stats.count("lookup", rig.clock.now, "signal", "es", "legal")
    await rig.active_user("lu", "advocate")
    await sign_in(page, rig, "lu")
    assert await page.get_by_role("link", name="Statistics").count() == 0
    refused = await page.goto(f"{rig.url}/stats")
    assert refused is not None and refused.status == 403
    await rig.active_user("sam", "supervisor")
    other = await browser.new_context()
    try:
        supervisor = await other.new_page()
        await sign_in(supervisor, rig, "sam")
        await supervisor.get_by_role("link", name="Statistics").first.click()
        assert await heading(supervisor) == "Statistics"
        rows = [r.split("\t") for r in await supervisor.locator("tbody tr").all_inner_texts()]
        week = week_of(rig.clock.now)
        assert [r[0] for r in rows[:2]] == [week, week]
        assert [(r[2], r[-1]) for r in rows] == [
            ("legal", "<5"), ("shelter", "6"), ("legal", "<5"), ("shelter", "6"),
            ("all", "hidden")]
    finally:
        await other.close()


# ------------------------------------------------------------------ accessibility


async def test_sign_in_works_with_the_keyboard_alone_with_a_visible_focus(
        rig: Rig, page: Page) -> None:
    await rig.active_user("lena")
    await page.goto(f"{rig.url}/login")
    unlabelled = await page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), button')]"
        ".filter(e => e.tagName === 'INPUT' ? e.labels.length === 0 : !e.innerText.trim())"
        ".length")
    assert unlabelled == 0
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.innerText") == "Skip to content"
    order = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate(
            "() => document.activeElement.id || document.activeElement.innerText"))
        outline = await page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
        assert outline[0] == "solid" and outline[1] >= 2, (order[-1], outline)
    assert order == ["name", "password", "code", "Sign in"]
    await page.get_by_label("User name").focus()
    await page.keyboard.type("lena")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Tab")
    await page.keyboard.type(await rig.code("lena", steps_later=1))
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{rig.url}/")
    assert await heading(page) == "Home"


@pytest.mark.parametrize(("width", "height", "scale"), [(375, 667, 2), (640, 400, 2)],
                         ids=["phone", "200% zoom"])
async def test_the_pages_fit_a_phone_and_200_percent_zoom_without_sideways_scrolling(
        rig: Rig, browser: Browser, width: int, height: int, scale: int) -> None:
    await rig.active_user("mo", "supervisor")
    small = await browser.new_context(viewport={"width": width, "height": height},
                                      device_scale_factor=scale)
    try:
        page = await small.new_page()
        await page.goto(f"{rig.url}/login")
        fits = "() => document.documentElement.scrollWidth <= window.innerWidth"
        assert await page.evaluate(fits)
        await sign_in(page, rig, "mo")
        assert await heading(page) == "Home"
        assert await page.evaluate(fits)
        await page.goto(f"{rig.url}/audit")
        assert await page.evaluate(fits)
        await page.goto(f"{rig.url}/stats")
        assert await page.evaluate(fits)
    finally:
        await small.close()
