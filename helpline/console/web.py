"""The console's pages, served by aiohttp: sign-in, account set-up, home, the audit log.

Security, in the order a request meets it (``guard``):

- Every response carries a strict Content-Security-Policy (scripts, styles and images from
  the console itself only; no inline script or style; no framing), ``no-store``, a
  referrer for the console's own pages only (with ``no-referrer`` browsers send
  ``Origin: null`` on forms), ``nosniff``. Every asset is served from ``static/``;
  nothing comes from a CDN.
- The session is a random id in a ``__Host-`` cookie (Secure, HttpOnly, SameSite=Strict,
  path /); the database keeps only its SHA-256. A new id is made at every login (a planted
  one is never taken over); it ends after ``idle_minutes`` without a request, after
  ``session_hours`` in all, at logout, and when the account is reset or disabled.
- Every request that changes anything (any POST) must carry the page's CSRF token: an HMAC,
  under a key derived from the secret, of the session id (or, before login, of a random
  pre-login cookie). A request from another site (``Origin``, ``Sec-Fetch-Site``) is refused
  as well.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2
import segno
from aiohttp import web

from helpline.console.accounts import Accounts, Enrolment, Session
from helpline.console.passwords import MIN_LENGTH
from helpline.console.roles import Role
from helpline.digits import is_number
from helpline.stats.counts import Stats, week_of
from helpline.stats.report import table

if TYPE_CHECKING:
    from helpline.console.feature import Desking

log = logging.getLogger("helpline.console")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SESSION_COOKIE = "__Host-helpline-console"
PRE_COOKIE = "__Host-helpline-pre"  # before login: what the sign-in form's CSRF token binds
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_LABEL = b"helpline console csrf v1"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
MAX_BODY = 64 * 1024  # the console takes forms, nothing larger
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# Short notices the sign-in page shows, chosen by a fixed key in its address.
NOTICES = {
    "ready": "Your account is ready. You can sign in now.",
    "out": "You have signed out.",
    "idle": "You were signed out after a while without activity. Please sign in again.",
}
FAILED = ("That did not match. Please check your user name, password and code, and try "
          "again.")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONSOLE_KEY: web.AppKey[Console] = web.AppKey("console")
SESSION_KEY: web.RequestKey[Session | None] = web.RequestKey("session")
CSRF_KEY: web.RequestKey[str] = web.RequestKey("csrf", str)


@dataclass(frozen=True)
class Statistics:
    """What the supervisors' statistics page reads: the counts, the smallest count shown
    (``[stats] min_count``) and how many weeks back it shows."""

    stats: Stats
    min_count: int = 5
    weeks: int = 12


# The campaigns' status lines (helpline.outreach.report.status_lines), when outreach is on.
OutreachStatus = Callable[[], Awaitable[list[str]]]


class Console:
    """The console's web application over one ``Accounts`` (and, where statistics are on,
    a page of them for supervisors)."""

    def __init__(self, accounts: Accounts, public_url: str,
                 statistics: Statistics | None = None, desking: Desking | None = None,
                 outreach: OutreachStatus | None = None) -> None:
        self.accounts = accounts
        self.statistics = statistics
        self.outreach = outreach  # the campaigns' status lines, when outreach is on
        self.desking = desking  # the console is a desk: the queue and the case pages
        self.public_url = public_url.rstrip("/")
        parts = urlsplit(self.public_url)
        self.public_origin = f"{parts.scheme}://{parts.netloc}"
        self.https = parts.scheme == "https"
        self._csrf_key = accounts.vault.check_value(CSRF_LABEL)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["when"] = _when

    def csrf(self, binding: str) -> str:
        return hmac.new(self._csrf_key, binding.encode("utf-8"), hashlib.sha256).hexdigest()

    def application(self) -> web.Application:
        app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
        app[CONSOLE_KEY] = self
        app.router.add_get("/", home)
        app.router.add_get("/login", login_page)
        app.router.add_post("/login", login)
        app.router.add_post("/logout", logout)
        app.router.add_get("/setup", setup_page)
        app.router.add_post("/setup", setup_password)
        app.router.add_post("/setup/code", setup_code)
        app.router.add_get("/audit", audit_page)
        app.router.add_get("/stats", stats_page)
        app.router.add_get("/outreach", outreach_page)
        if self.desking is not None:
            from helpline.console.casepages import add_routes

            add_routes(app)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        app.on_response_prepare.append(_security_headers)
        return app

    def page(self, request: web.Request, template: str, status: int = 200,
             **values: Any) -> web.Response:
        session = request.get(SESSION_KEY)
        html = self.templates.get_template(template).render(
            user=session.user if session else None, csrf=request.get(CSRF_KEY, ""),
            idle_minutes=self.accounts.policy.idle_minutes, desk=self.desking is not None,
            **values)
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            status=status)

    def set_session_cookie(self, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(SESSION_COOKIE, value, path="/", secure=True, httponly=True,
                            samesite="Strict")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    headers["Cache-Control"] = "no-store"
    console = request.app[CONSOLE_KEY]
    if console.https:  # browsers heed it only over TLS (the reverse proxy's)
        headers["Strict-Transport-Security"] = "max-age=31536000"


def _cross_site(request: web.Request, console: Console) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null":
        return origin not in (console.public_origin, f"{request.scheme}://{request.host}")
    # No Origin (an older browser, a script) or "null" (a privacy setting): the browser's
    # own word on where the request came from, when it gives one; the token decides.
    return request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE_KEY]
    if request.path.startswith("/static/"):
        return await _handled(request, handler, console)
    token = request.cookies.get(SESSION_COOKIE)
    found = await console.accounts.session(token) if token else None
    if found == "expired":  # back to sign-in, saying why; nothing is carried out
        back = see_other("/login?notice=idle")
        back.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                        samesite="Strict")
        return back
    session = found if isinstance(found, Session) else None
    request[SESSION_KEY] = session
    new_pre = None
    if session is not None and token:
        binding: str | None = token
    else:
        binding = request.cookies.get(PRE_COOKIE)
        if not binding and request.method in SAFE_METHODS:
            binding = new_pre = secrets.token_urlsafe(32)
    request[CSRF_KEY] = console.csrf(binding) if binding else ""
    if request.method not in SAFE_METHODS:
        if _cross_site(request, console):
            return console.page(request, "refused.html", 403, reason="cross-site")
        form = await request.post()
        sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, ""))
        if not binding or not hmac.compare_digest(sent.encode(), console.csrf(binding).encode()):
            reason = "cookies" if not binding else "token"
            return console.page(request, "refused.html", 403, reason=reason)
    response = await _handled(request, handler, console)
    if new_pre is not None:
        response.set_cookie(PRE_COOKIE, new_pre, path="/", secure=True, httponly=True,
                            samesite="Strict")
    return response


async def _handled(request: web.Request, handler: Handler, console: Console
                   ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return console.page(request, "missing.html", 404)
    except web.HTTPMethodNotAllowed:
        return console.page(request, "missing.html", 405)
    except web.HTTPException as exc:
        return web.Response(status=exc.status, text=exc.reason)


def see_other(location: str) -> web.Response:
    """A redirect after a form (303: the browser follows with a GET)."""
    return web.Response(status=303, headers={"Location": location})


def _signed_in(request: web.Request, role: Role = "advocate") -> Session | web.Response:
    """The request's session with ``role`` (or higher); otherwise the response to give."""
    session: Session | None = request[SESSION_KEY]
    if session is None:
        return see_other("/login")
    if not session.user.may(role):
        console = request.app[CONSOLE_KEY]
        return console.page(request, "forbidden.html", 403, role=role)
    return session


# ------------------------------------------------------------------ pages


async def home(request: web.Request) -> web.StreamResponse:
    session = _signed_in(request)
    if not isinstance(session, Session):
        return session
    console = request.app[CONSOLE_KEY]
    if console.desking is not None:
        from helpline.console.casepages import queue_page

        return await queue_page(request, session)
    return console.page(request, "home.html")


async def login_page(request: web.Request) -> web.StreamResponse:
    if request[SESSION_KEY] is not None:
        return see_other("/")
    notice = NOTICES.get(request.query.get("notice", ""))
    return request.app[CONSOLE_KEY].page(request, "login.html", notice=notice, error=None,
                                         name="")


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE_KEY]
    form = await request.post()
    name = str(form.get("name", "")).strip()
    result = await console.accounts.login(name, str(form.get("password", "")),
                                          str(form.get("code", "")))
    if result.user is None or result.session is None:
        error = FAILED
        if result.locked_minutes:
            error = (f"This account is paused for {result.locked_minutes:g} minutes after "
                     "several tries that did not match. You can try again after that, or "
                     "ask a supervisor or an admin to help.")
        return console.page(request, "login.html", notice=None, error=error, name=name)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await console.accounts.end_session(old)
    response = see_other("/")
    console.set_session_cookie(response, result.session)
    response.del_cookie(PRE_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    log.debug("console: a login")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session: Session | None = request[SESSION_KEY]
    console = request.app[CONSOLE_KEY]
    if session is not None:
        await console.accounts.logout(session)
        if console.desking is not None:  # signed out is off shift: no case is given them
            await console.desking.desk.set_presence(session.user.id, False)
    response = see_other("/login?notice=out")
    response.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                        samesite="Strict")
    return response


async def setup_page(request: web.Request) -> web.StreamResponse:
    return request.app[CONSOLE_KEY].page(request, "setup.html", error=None, token="",
                                         min_length=MIN_LENGTH)


async def setup_password(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE_KEY]
    form = await request.post()
    token = str(form.get("token", "")).strip().lstrip("#")
    password = str(form.get("password", ""))

    def again(error: str) -> web.Response:
        return console.page(request, "setup.html", error=error, token=token,
                            min_length=MIN_LENGTH)

    if await console.accounts.setup_user(token) is None:
        return again("This set-up link has expired or was used already. An admin can "
                     "give you a new one.")
    if password != str(form.get("password2", "")):
        return again("The two passwords are not the same. Please type them again.")
    enrolment = await console.accounts.choose_password(token, password)
    if isinstance(enrolment, str):
        return again(enrolment)
    return _code_page(request, console, token, enrolment, None)


def _code_page(request: web.Request, console: Console, token: str, enrolment: Enrolment,
               error: str | None) -> web.Response:
    qr = segno.make(enrolment.uri, error="m").svg_inline(
        scale=5, border=4, light="#fff", title="QR code for your authenticator app",
        svgclass="qr-code", lineclass=None)
    grouped = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return console.page(request, "setup_code.html", token=token, secret=grouped,
                        uri=enrolment.uri, qr=qr, error=error)


async def setup_code(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE_KEY]
    form = await request.post()
    token = str(form.get("token", ""))
    user = await console.accounts.confirm_code(token, str(form.get("code", "")))
    if user is not None:
        log.debug("console: an account was set up")
        return see_other("/login?notice=ready")
    enrolment = await console.accounts.pending_enrolment(token)
    if enrolment is None:
        return console.page(request, "setup.html", token="", min_length=MIN_LENGTH,
                            error="This set-up link has expired or was used already. An "
                            "admin can give you a new one.")
    return _code_page(request, console, token, enrolment,
                      "That code did not match. Codes change every 30 seconds: please type "
                      "the one your app shows now.")


async def audit_page(request: web.Request) -> web.StreamResponse:
    session = _signed_in(request, "supervisor")
    if not isinstance(session, Session):
        return session
    console = request.app[CONSOLE_KEY]
    before = request.query.get("before", "")
    limit = 100
    entries = await console.accounts.audit_log(limit + 1,
                                               int(before) if is_number(before) else None)
    older = entries[limit - 1].id if len(entries) > limit else None
    return console.page(request, "audit.html", entries=entries[:limit], older=older)


async def outreach_page(request: web.Request) -> web.StreamResponse:
    """Outreach campaigns as ``helpline outreach status`` prints them: each campaign's
    state, what to do when the bridge paused it (a captcha), and its weekly counts with
    small ones hidden; no number anywhere."""
    session = _signed_in(request, "supervisor")
    if not isinstance(session, Session):
        return session
    console = request.app[CONSOLE_KEY]
    lines = await console.outreach() if console.outreach is not None else None
    return console.page(request, "outreach.html", lines=lines or [],
                        enabled=lines is not None)


async def stats_page(request: web.Request) -> web.StreamResponse:
    """The statistics of the last weeks, as ``helpline stats`` prints them: counts that
    identify no one, small ones and the totals that would reveal them hidden."""
    session = _signed_in(request, "supervisor")
    if not isinstance(session, Session):
        return session
    console = request.app[CONSOLE_KEY]
    shown = console.statistics
    if shown is None:
        return console.page(request, "stats.html", rows=[], weeks=("", ""), min_count=0,
                            enabled=False)
    now = console.accounts.clock()
    weeks = (week_of(now - (shown.weeks - 1) * 7 * 86400, shown.stats.zone),
             week_of(now, shown.stats.zone))
    rows = table(await shown.stats.counts(*weeks), shown.min_count)
    return console.page(request, "stats.html", rows=rows, weeks=weeks,
                        min_count=shown.min_count, enabled=True)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
