"""The console's accounts without a browser: the admin's commands, set-up links, password
rules, Argon2 and TOTP at rest, lockout, sessions, retention, no secret in any log, and
``helpline run`` serving the console only when it is enabled."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
import pyotp
import pytest
import pytest_asyncio
from yarl import URL

from helpline import cli
from helpline.config import ConfigError, Settings, load_settings
from helpline.console.accounts import Accounts, Session
from helpline.console.passwords import password_problem
from helpline.console.server import start_console
from helpline.console.web import SESSION_COOKIE
from helpline.privacy import Vault
from helpline.serve import serve
from helpline.store import Store
from tests.conftest import BASIC_FLOWS, SECRET, Clock, make_settings
from tests.console_rig import CHEAP, PASSWORD, Rig, console_rig
from tests.fakes.telegram_bot_api import FakeBotAPI

T = TypeVar("T")


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with console_rig(tmp_path) as found:
        yield found


def db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# ------------------------------------------------------------------ the admin's commands


def _cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path,
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("HELPLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HELPLINE_DB", str(db))
    monkeypatch.setenv("HELPLINE_CONSOLE_PUBLIC_URL", "https://console.example.org")
    code = cli.main(["console", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _run(coro: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coro
    return asyncio.run(wrapped())


async def _with_accounts(db: Path, clock: Clock | None = None) -> tuple[Store, Accounts]:
    store = await Store.open(db, Vault(SECRET))
    if clock is None:
        return store, Accounts(store.database, store.vault, hasher=CHEAP)
    return store, Accounts(store.database, store.vault, hasher=CHEAP, clock=clock)


def test_add_user_prints_a_one_time_link_that_is_stored_only_as_a_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "helpline.db"
    code, _, err = _cli(capsys, monkeypatch, db, "add-user", "amira", "--role", "supervisor")
    assert code == 1 and "no database at" in err and "--create" in err
    assert not db.exists()  # a wrong path leaves no empty database that looks real
    code, out, _ = _cli(capsys, monkeypatch, db, "add-user", "amira", "--role", "supervisor",
                        "--create")
    assert code == 0
    found = re.search(r"https://console\.example\.org/setup#([\w-]{40,})", out)
    assert found, out
    token = found.group(1)
    until = re.search(r"It works once, until (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", out)
    assert until, out
    expires = datetime.strptime(until.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    hours = (expires - datetime.now(UTC)).total_seconds() / 3600
    assert 23.9 < hours <= 24
    assert token.encode() not in db_bytes(db)
    with sqlite3.connect(db) as conn:
        [(stored,)] = conn.execute("SELECT token_hash FROM console_setup").fetchall()
    assert stored == hashlib.sha256(token.encode()).digest()
    code, out, _ = _cli(capsys, monkeypatch, db, "list-users")
    assert re.search(r"^amira\s+supervisor\s+not set up yet$", out, re.M), out
    code, _, err = _cli(capsys, monkeypatch, db, "add-user", "Amira", "--role", "admin")
    assert code == 1 and "already a user named 'Amira'" in err
    code, _, err = _cli(capsys, monkeypatch, db, "add-user", "amira ali", "--role", "admin")
    assert code == 1 and "cannot be a user name" in err


def test_the_console_commands_need_the_secret_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPLINE_DB", str(tmp_path / "helpline.db"))
    monkeypatch.delenv("HELPLINE_SECRET_KEY", raising=False)
    assert cli.main(["console", "add-user", "x-ray", "--role", "admin", "--create"]) == 2
    assert "HELPLINE_SECRET_KEY" in capsys.readouterr().err
    assert not (tmp_path / "helpline.db").exists()


def test_disable_and_reset_stop_the_old_password_code_and_sessions_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "helpline.db"
    clock = Clock()

    async def set_up_and_sign_in() -> str:
        store, accounts = await _with_accounts(db, clock)
        try:
            link = await accounts.add_user("bea", "advocate")
            enrolment = await accounts.choose_password(link.token, PASSWORD)
            assert not isinstance(enrolment, str)
            assert await accounts.confirm_code(
                link.token, pyotp.TOTP(enrolment.secret).at(clock.now))
            clock.advance(30)
            result = await accounts.login("bea", PASSWORD,
                                          pyotp.TOTP(enrolment.secret).at(clock.now))
            assert result.session is not None
            return result.session
        finally:
            await store.close()

    async def after(session: str) -> tuple[object, object]:
        store, accounts = await _with_accounts(db, clock)
        try:
            clock.advance(30)
            found = await accounts.session(session)
            row = await store.database.row(
                "SELECT totp_secret FROM console_users WHERE name = 'bea'")
            secret = store.vault.decrypt_text(row["totp_secret"]) if row and row[0] else None
            login = await accounts.login("bea", PASSWORD,
                                         pyotp.TOTP(secret).at(clock.now) if secret else "")
            return found, login.user
        finally:
            await store.close()

    session = _run(set_up_and_sign_in())
    code, out, _ = _cli(capsys, monkeypatch, db, "disable-user", "bea")
    assert code == 0 and "bea is disabled" in out
    assert _run(after(session)) == (None, None)
    code, out, _ = _cli(capsys, monkeypatch, db, "list-users")
    assert re.search(r"^bea\s+advocate\s+disabled$", out, re.M)
    code, out, _ = _cli(capsys, monkeypatch, db, "reset-user", "bea")
    assert code == 0 and "/setup#" in out and "no longer work" in out
    assert _run(after(session)) == (None, None)  # no password or second factor any more
    code, _, err = _cli(capsys, monkeypatch, db, "reset-user", "nobody")
    assert code == 1 and "no user named 'nobody'" in err
    with sqlite3.connect(db) as conn:
        events = [r[0] for r in conn.execute("SELECT event FROM console_audit ORDER BY id")]
        actors = {r[0] for r in conn.execute(
            "SELECT actor FROM console_audit WHERE event IN ('user disabled', 'user reset')")}
    assert events.index("user disabled") < events.index("user reset")
    assert actors == {"command line"}


# ------------------------------------------------------------------ set-up links


async def test_a_set_up_link_expires_and_works_once(rig: Rig) -> None:
    late = await rig.accounts.add_user("cleo", "advocate")
    rig.clock.advance(24 * 3600 + 1)
    assert await rig.accounts.setup_user(late.token) is None
    assert await rig.accounts.choose_password(late.token, PASSWORD) == (
        "This set-up link has expired or was used already.")
    link = await rig.accounts.add_user("dev", "advocate")
    enrolment = await rig.accounts.choose_password(link.token, PASSWORD)
    assert not isinstance(enrolment, str)
    right = pyotp.TOTP(enrolment.secret).at(rig.clock.now)
    assert await rig.accounts.confirm_code(link.token, f"{(int(right) + 1) % 10**6:06d}") is None
    assert await rig.accounts.setup_user(link.token) is not None  # a wrong code uses nothing
    user = await rig.accounts.confirm_code(link.token, right)
    assert user is not None and user.status == "active"
    assert await rig.accounts.setup_user(link.token) is None
    assert await rig.accounts.confirm_code(
        link.token, pyotp.TOTP(enrolment.secret).at(rig.clock.now)) is None


async def test_the_password_is_not_in_force_until_the_code_is_confirmed(rig: Rig) -> None:
    link = await rig.accounts.add_user("eli", "advocate")
    enrolment = await rig.accounts.choose_password(link.token, PASSWORD)
    assert not isinstance(enrolment, str)
    code = pyotp.TOTP(enrolment.secret).at(rig.clock.now)
    assert (await rig.accounts.login("eli", PASSWORD, code)).user is None
    assert ("eli", "login refused", "eli", "account pending") in await rig.audit()


@pytest.mark.parametrize(("password", "problem"), [
    ("short phrase", None),
    ("eleven char", "at least 12 characters"),
    ("Password1234!", "most common"),
    ("qwertyuiop123", "most common"),
    ("123456789012", "most common"),
    ("letmeinletmein", "most common"),
    ("zzzzzzzzzzzzzz", "most common"),
    ("abcabcabcabc", "most common"),
    ("x" * 257, "at most 256"),
    ("frank-is-my-name", "your user name"),
])
def test_password_rules(password: str, problem: str | None) -> None:
    found = password_problem(password, "frank")
    assert (found is None) if problem is None else (found is not None and problem in found)
    assert password_problem("quiet river lamp stone", "a") is None  # too short a name


async def test_a_weak_password_is_refused_with_the_reason(rig: Rig) -> None:
    link = await rig.accounts.add_user("gus", "advocate")
    reason = await rig.accounts.choose_password(link.token, "password1234")
    assert isinstance(reason, str) and "most common" in reason


async def test_passwords_are_argon2id_with_rfc_9106_parameters_and_totp_secrets_encrypted(
        tmp_path: Path) -> None:
    clock = Clock()
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        accounts = Accounts(store.database, store.vault, clock=clock)  # the real hasher
        link = await accounts.add_user("hal", "admin")
        enrolment = await accounts.choose_password(link.token, PASSWORD)
        assert not isinstance(enrolment, str)
        assert enrolment.uri.startswith("otpauth://totp/Helpline%20console:hal?secret=")
        await accounts.confirm_code(link.token, pyotp.TOTP(enrolment.secret).at(clock.now))
        row = await store.database.row(
            "SELECT password_hash, totp_secret FROM console_users WHERE name = 'hal'")
        assert row is not None
        assert row["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert bytes(row["totp_secret"])[:1] == b"\x01"  # the vault's AES-GCM form
    finally:
        await store.close()
    stored = db_bytes(tmp_path / "helpline.db")
    assert enrolment.secret.encode() not in stored and PASSWORD.encode() not in stored


# ------------------------------------------------------------------ signing in


async def test_a_code_works_once(rig: Rig) -> None:
    await rig.active_user("ida")
    code = await rig.code("ida", steps_later=1)
    assert (await rig.accounts.login("ida", PASSWORD, code)).user is not None
    assert (await rig.accounts.login("ida", PASSWORD, code)).user is None
    assert (await rig.audit())[-1] == ("ida", "login failed", "ida", "wrong code")
    late = pyotp.TOTP(await rig.secret("ida")).at(rig.clock.now - 30)  # the step before
    assert (await rig.accounts.login("ida", PASSWORD, late)).user is None
    assert (await rig.accounts.login("ida", PASSWORD, await rig.code("ida", 1))).user


async def test_a_code_in_another_script_s_digits_is_taken_and_odd_input_refused(
        rig: Rig) -> None:
    await rig.active_user("ibn")
    code = await rig.code("ibn", steps_later=1)
    arabic = "".join(chr(0x0660 + int(d)) for d in code)  # Arabic-Indic digits
    assert (await rig.accounts.login("ibn", PASSWORD, arabic)).user is not None
    for odd in ("12345", "1234567", "12a456", "١٢٣٤٥x", "\x00" * 6):
        assert (await rig.accounts.login("ibn", PASSWORD, odd)).user is None


async def test_the_same_code_sent_twice_at_once_signs_in_once(rig: Rig) -> None:
    await rig.active_user("oli")
    code = await rig.code("oli", steps_later=1)
    results = await asyncio.gather(*(rig.accounts.login("oli", PASSWORD, code)
                                     for _ in range(2)))
    assert sorted(r.user is not None for r in results) == [False, True]
    assert len(await rig.store.database.rows("SELECT 1 FROM console_sessions")) == 1


async def test_a_hash_made_with_older_parameters_is_made_again_at_sign_in(
        rig: Rig) -> None:
    await rig.active_user("pat")  # hashed with the tests' cheap parameters
    current = Accounts(rig.store.database, rig.store.vault, clock=rig.clock)
    assert (await current.login("pat", PASSWORD, await rig.code("pat", 1))).user
    row = await rig.store.database.row(
        "SELECT password_hash FROM console_users WHERE name = 'pat'")
    assert row is not None and row[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert (await current.login("pat", PASSWORD, await rig.code("pat", 1))).user


async def test_a_code_a_step_off_is_taken_for_a_phone_clock_a_little_off(rig: Rig) -> None:
    await rig.active_user("jan")
    rig.clock.advance(90)
    ahead = pyotp.TOTP(await rig.secret("jan")).at(rig.clock.now + 30)
    assert (await rig.accounts.login("jan", PASSWORD, ahead)).user is not None
    far = pyotp.TOTP(await rig.secret("jan")).at(rig.clock.now + 120)
    assert (await rig.accounts.login("jan", PASSWORD, far)).user is None


async def test_a_success_clears_the_failures_and_a_pause_ends(rig: Rig) -> None:
    await rig.active_user("kai")
    for _ in range(4):
        assert (await rig.accounts.login("kai", "wrong", "123456")).locked_minutes == 0
    assert (await rig.accounts.login("kai", PASSWORD, await rig.code("kai", 1))).user
    for _ in range(4):
        assert (await rig.accounts.login("kai", "wrong", "123456")).locked_minutes == 0
    assert (await rig.accounts.login("kai", "wrong", "123456")).locked_minutes == 15
    code = await rig.code("kai", 1)
    assert (await rig.accounts.login("kai", PASSWORD, code)).locked_minutes == 15
    rig.clock.advance(15 * 60)
    assert (await rig.accounts.login("kai", PASSWORD, await rig.code("kai", 1))).user


async def test_names_that_are_no_account_pause_alike_so_names_cannot_be_told_apart(
        rig: Rig) -> None:
    await rig.active_user("lou")
    real = [(await rig.accounts.login("lou", "wrong", "123456")).locked_minutes
            for _ in range(6)]
    unknown = [(await rig.accounts.login("nobody", "wrong", "123456")).locked_minutes
               for _ in range(6)]
    assert real == unknown == [0, 0, 0, 0, 15, 15]
    assert ("", "login failed", "", "no such account") in await rig.audit()
    assert not any("nobody" in " ".join(entry) for entry in await rig.audit())


async def test_a_session_ends_after_its_idle_time_and_after_its_hours_in_all(
        rig: Rig) -> None:
    await rig.active_user("max")
    result = await rig.accounts.login("max", PASSWORD, await rig.code("max", 1))
    assert result.session is not None
    for _ in range(12 * 3 + 1):  # a request every 20 minutes, for 12 hours
        assert isinstance(await rig.accounts.session(result.session), Session)
        rig.clock.advance(19 * 60 + 59)
    # seen 19:59 ago, so not idle; but 12 h 19 min since the login
    assert await rig.accounts.session(result.session) == "expired"
    assert await rig.accounts.session(result.session) is None  # ended, not just refused
    assert ("max", "signed out", "max", "session too old") in await rig.audit()


async def test_the_purge_drops_expired_links_old_sessions_and_old_audit_entries(
        rig: Rig) -> None:
    await rig.active_user("nia")
    await rig.accounts.login("nia", PASSWORD, await rig.code("nia", 1))
    await rig.accounts.add_user("oto", "advocate")
    rig.clock.advance(2 * 86400)
    await rig.accounts.audit("nia", "login")  # a recent entry
    counts = await rig.store.purge(rig.clock.now, 90, 48, {"case_days": 1.5})
    assert counts["console_setup"] == 1 and counts["console_sessions"] == 1
    assert counts["console_audit"] >= 3
    assert [e[:2] for e in await rig.audit()] == [("nia", "login")]


# ------------------------------------------------------------------ over HTTP


async def test_no_password_code_secret_token_or_session_id_reaches_a_log(
        rig: Rig, all_logs: pytest.LogCaptureFixture) -> None:
    link = await rig.accounts.add_user("pia", "advocate")
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[URL(rig.url)])
    async with aiohttp.ClientSession(rig.url, cookie_jar=jar) as http:
        async def csrf(path: str) -> str:
            async with http.get(path) as response:
                found = re.search(r'name="csrf" value="(\w+)"', await response.text())
            assert found
            return found.group(1)

        async with http.post("/setup", data={
                "csrf": await csrf("/setup"), "token": link.token, "password": PASSWORD,
                "password2": PASSWORD}) as response:
            page = await response.text()
        secret = re.search(r'<code id="secret">([A-Z2-7 ]+)</code>', page)
        assert secret
        key = secret.group(1).replace(" ", "")
        token = await csrf("/setup")
        async with http.post("/setup/code", data={
                "csrf": token, "token": link.token,
                "code": pyotp.TOTP(key).at(rig.clock.now)}, allow_redirects=False) as done:
            assert done.status == 303 and done.headers["Location"] == "/login?notice=ready"
        rig.clock.advance(30)
        code = pyotp.TOTP(key).at(rig.clock.now)
        async with http.post("/login", data={
                "csrf": await csrf("/login"), "name": "pia", "password": PASSWORD,
                "code": code}, allow_redirects=False) as response:
            assert response.status == 303
            session = response.cookies[SESSION_COOKIE].value
            assert "Secure" in response.headers["Set-Cookie"]
        async with http.get("/") as response:
            assert "signed in as <strong id=\"who-name\">pia</strong>" in await response.text()
        async with http.post("/login", data={"csrf": "nope", "name": "pia"}) as response:
            assert response.status == 403
        async with http.post("/logout", data={"csrf": "ünïcödé"}) as response:
            assert response.status == 403
    text = all_logs.text
    for secret_text in (PASSWORD, link.token, key, session, code, "pia"):
        assert secret_text not in text


async def test_a_form_larger_than_the_console_takes_is_refused(rig: Rig) -> None:
    async with aiohttp.ClientSession(rig.url) as http, http.post(
            "/login", data={"name": "x" * 100_000}) as response:
        assert response.status == 413


# ------------------------------------------------------------------ settings and helpline run


def test_the_console_is_off_unless_enabled_and_its_settings_are_checked(
        tmp_path: Path) -> None:
    settings = load_settings(None, {}, cwd=tmp_path)
    assert settings.console.enabled is False
    assert settings.console.listen == "127.0.0.1:8081"
    on = load_settings(None, {"HELPLINE_CONSOLE_ENABLED": "true",
                              "HELPLINE_CONSOLE_LISTEN": "[::1]:9000"}, cwd=tmp_path)
    assert on.console.enabled and on.console.listen == "[::1]:9000"
    with pytest.raises(ConfigError, match="is not host:port"):
        load_settings(None, {"HELPLINE_CONSOLE_LISTEN": "8081"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="is not a web address"):
        load_settings(None, {"HELPLINE_CONSOLE_PUBLIC_URL": "console.example.org"},
                      cwd=tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_helpline_run_serves_the_console_only_when_enabled(tmp_path: Path) -> None:
    from helpline.channels.telegram import TelegramChannel, TelegramOptions
    from helpline.config import Console

    port = _free_port()
    off = make_settings(tmp_path, BASIC_FLOWS)
    store = await Store.open(off.db, Vault(SECRET))
    try:
        assert await start_console(off, store.database) is None
    finally:
        await store.close()
    settings: Settings = make_settings(
        tmp_path, BASIC_FLOWS, console=Console(enabled=True, listen=f"127.0.0.1:{port}"))
    async with FakeBotAPI() as api:
        channel = TelegramChannel(TelegramOptions(token="123:console-test-token-abcdefghij",
                                                  api_url=api.root))
        stop = asyncio.Event()
        serving = asyncio.create_task(serve(settings, [channel], stop))
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/login") as response:
                            assert response.status == 200
                            assert "Sign in" in await response.text()
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
                else:
                    pytest.fail("the console did not start")
        finally:
            stop.set()
            await asyncio.wait_for(serving, 10)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # stopped with helpline run


async def test_a_console_address_in_use_is_one_clear_error(tmp_path: Path) -> None:
    from helpline.config import Console
    from helpline.errors import HelplineError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(tmp_path, BASIC_FLOWS,
                                 console=Console(enabled=True, listen=f"127.0.0.1:{port}"))
        store = await Store.open(settings.db, Vault(SECRET))
        try:
            with pytest.raises(HelplineError, match=f"cannot listen on 127.0.0.1:{port}"):
                await start_console(settings, store.database)
        finally:
            await store.close()


async def test_doctor_says_whether_the_console_is_on_and_what_would_stop_a_sign_in(
        tmp_path: Path) -> None:
    from helpline.config import Console
    from helpline.console.doctor import check_console
    from helpline.doctor import offline_findings

    def said(**console: object) -> list[str]:
        settings = make_settings(tmp_path, BASIC_FLOWS, console=Console(**console))
        return [str(f) for f in check_console(settings)]

    assert said() == ["ok       console: off ([console] enabled = false)"]
    settings = make_settings(tmp_path, BASIC_FLOWS)
    assert "ok       console: off ([console] enabled = false)" in [
        str(f) for f in offline_findings(settings, None)]
    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    try:
        accounts = Accounts(store.database, store.vault, hasher=CHEAP)
        await accounts.add_user("quinn", "admin")
        assert said(enabled=True) == [
            "warning  console: no active account yet: helpline console add-user NAME --role "
            "admin, then follow the set-up link"]
        await store.database.conn.execute(
            "UPDATE console_users SET status = 'active'")
        await store.database.conn.commit()
    finally:
        await store.close()
    assert said(enabled=True, public_url="https://console.example.org") == [
        "ok       console: on, listening on 127.0.0.1:8081 for https://console.example.org, "
        "1 active account(s); cases on the Telegram desk"]
    assert said(enabled=True, public_url="https://console.example.org", desk="both") == [
        "warning  console: [console] desk = both, but no Telegram staff group is set "
        "([handoff] staff_chat): cases go to the console alone"]
    warned = said(enabled=True, listen="0.0.0.0:8081", public_url="http://console.example.org")
    assert len(warned) == 2 and all(w.startswith("warning") for w in warned)
    assert "plain HTTP" in warned[0] and "is not https" in warned[1]


async def test_the_audit_log_pages_back_through_older_entries(rig: Rig) -> None:
    for n in range(5):
        await rig.accounts.audit("rae", "login", "rae", f"entry {n}")
    newest = await rig.accounts.audit_log(2)
    assert [e.detail for e in newest] == ["entry 4", "entry 3"]
    older = await rig.accounts.audit_log(2, before=newest[-1].id)
    assert [e.detail for e in older] == ["entry 2", "entry 1"]


async def test_behind_https_the_console_asks_for_strict_transport_security(
        tmp_path: Path) -> None:
    from helpline.console.server import serve_console
    from helpline.console.web import Console as ConsoleApp

    store = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    server = await serve_console(
        ConsoleApp(Accounts(store.database, store.vault, hasher=CHEAP),
                   "https://console.example.org"), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            async with http.get("/login") as response:
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            async with http.post("/login", data={"csrf": "x"}, headers={
                    "Origin": "https://console.example.org"}) as refused:
                assert refused.status == 403  # the right origin, but no pre-login cookie
                assert "needs cookies" in await refused.text()
                assert "Content-Security-Policy" in refused.headers
    finally:
        await server.stop()
        await store.close()
