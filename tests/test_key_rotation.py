"""``helpline rotate-key``: every pseudonym and encrypted value moves to a new key, nothing a
person had is lost (conversation, case, check-in, saved service, queued reply, unprocessed
event), a rotation stopped half-way leaves the database as it was, and nothing else may
run on the database meanwhile (the run lock, which ``helpline run`` holds too)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpline.cli import main
from helpline.events import Inbound, Message, RawInbound
from helpline.handoff.cases import Cases
from helpline.parts import ALL
from helpline.privacy import Vault
from helpline.resources.store import Directory
from helpline.runlock import run_alone
from helpline.state import State
from helpline.store import PendingDelete, Store
from helpline.store.database import KeyMismatch
from helpline.store.rotate import RotationRefused, rotate
from tests.conftest import SECRET

NEW_SECRET = "the-new-secret-key-after-a-suspected-compromise-0123456789"
OLD, NEW = Vault(SECRET), Vault(NEW_SECRET)
NOW = time.time()
PEOPLE = [("telegram", "918273645"), ("telegram", "1002003004"), ("signal", "+34600111222"),
          ("signal", "8c0f2f5e-3b7e-4f0e-9d55-3c2d1b0a9f88")]


def raw(channel: str, who: str, text: str, event: str) -> RawInbound:
    return RawInbound(channel, who, who, Inbound(kind="text", at=0.0, text=text),
                      event_id=event)


async def _everything(db: Path) -> None:
    """Each person with a conversation, a kept message id and a queued reply; the first
    with an open case, the second with a check-in and a saved service, the third with an
    event not processed yet; processed events; deletes tied to no one."""
    store = await Store.open(db, OLD)
    try:
        for n, (channel, who) in enumerate(PEOPLE):
            pid = OLD.pseudonym(channel, who)
            await store.save_turn(pid, channel, who, State(turn=n + 1, vars={"area": f"a{n}"}),
                                  [Message(f"reply {n}")], NOW, inbound_msg_id=str(10 + n))
        first, second, third = (OLD.pseudonym(c, w) for c, w in PEOPLE[:3])
        await Cases(store).open(first, "telegram", {"need": "shelter"}, "es", NOW)
        await store.jobs.add(second, "checkin", NOW + 86400, {"flow": "checkin"}, NOW)
        assert await Directory(store).save(second, "svc-1")
        ids = await store.accept([(OLD.pseudonym(*PEOPLE[2]), "signal",
                                   OLD.pseudonym("inbox:signal", "e-3")[:32],
                                   raw("signal", PEOPLE[2][1], "are you there", "e-3")),
                                  (third, "signal", OLD.pseudonym("inbox:signal", "e-0")[:32],
                                   raw("signal", PEOPLE[2][1], "hello", "e-0"))], NOW)
        assert ids[1] is not None
        await store.inbox_done(ids[1])
        await store.keep_deletes(PendingDelete("telegram", "918273645", ("55",), NOW + 3600,
                                               NOW))
    finally:
        await store.close()


def _key_file(tmp_path: Path, key: str = NEW_SECRET) -> Path:
    path = tmp_path / "new.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def db(cli_db: Path) -> Path:
    return cli_db


async def _as_seen_with(db: Path, vault: Vault) -> dict[str, object]:
    """What each person has, looked up the way the bot looks people up (by the pseudonym
    it makes from their platform id with ``vault``)."""
    store = await Store.open(db, vault)
    try:
        seen: dict[str, object] = {}
        cases, directory = Cases(store), Directory(store)
        for channel, who in PEOPLE:
            pid = vault.pseudonym(channel, who)
            person = await store.person(pid)
            case = await cases.open_for(pid)
            seen[who] = (
                None if person is None else (person.address, person.state.turn,
                                             person.state.vars),
                [op.message.text for op in await store.operations(pid) if op.message],
                await store.message_ids(pid, 0),
                None if case is None else (case.handle, case.summary, case.locale),
                await directory.saved(pid),
            )
        seen["jobs"] = [(j.kind, j.body) for j in await store.jobs.due(NOW + 2 * 86400)
                        if j.pid == vault.pseudonym(*PEOPLE[1])]
        seen["inbox"] = [(r.pid == vault.pseudonym(*PEOPLE[2]), r.raw.inbound.text)
                         for r in await store.unprocessed()]
        anonymous = [op for op in await store.operations() if op.key.startswith("x:")]
        seen["deletes"] = [(op.kind, op.body, op.address) for op in anonymous]
        return seen
    finally:
        await store.close()


def test_everyone_keeps_everything_under_the_new_key_and_the_old_key_opens_nothing(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_everything(db))
    before = asyncio.run(_as_seen_with(db, OLD))
    assert before["918273645"] == (("918273645", 1, {"area": "a0"}), ["reply 0"], ["10"],
                                   (before["918273645"][3][0], {"need": "shelter"}, "es"), [])  # type: ignore[index]
    assert before["jobs"] == [("checkin", {"flow": "checkin"})]
    assert before["inbox"] == [(True, "are you there")]

    assert main(["rotate-key", "--new-key-file", str(_key_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("re-keyed 4 people (")
    assert "dropped 1 processed events' hashes" in out
    assert NEW_SECRET not in out and SECRET not in out

    assert asyncio.run(_as_seen_with(db, NEW)) == before
    with pytest.raises(KeyMismatch):
        asyncio.run(Store.open(db, OLD))
    # No pseudonym of the old key is left anywhere in the file.
    data = b"".join(p.read_bytes() for p in tmp_path.glob("helpline.db*"))
    for channel, who in PEOPLE:
        assert OLD.pseudonym(channel, who).encode() not in data
        assert OLD.pseudonym(channel, who)[:32].encode() not in data


def test_a_re_delivered_event_is_still_known_after_the_rotation(db: Path, tmp_path: Path) -> None:
    asyncio.run(_everything(db))
    assert main(["rotate-key", "--new-key-file", str(_key_file(tmp_path))]) == 0

    async def again() -> list[int | None]:
        store = await Store.open(db, NEW)
        try:
            pid = NEW.pseudonym(*PEOPLE[2])
            return await store.accept([(pid, "signal", NEW.pseudonym("inbox:signal", "e-3")[:32],
                                        raw("signal", PEOPLE[2][1], "are you there", "e-3"))],
                                      NOW)
        finally:
            await store.close()

    assert asyncio.run(again()) == [None]  # the unprocessed one, re-keyed: a duplicate


def _many(db: Path, people: int) -> None:
    """A database of ``people`` people (each with state, a reply address, a kept message id
    and a queued reply), written directly for speed."""
    asyncio.run(_close_after_open(db))  # the schema
    state = OLD.encrypt(State(turn=3, vars={"area": "north"}).to_json().encode())
    with sqlite3.connect(db) as conn:
        rows = [(OLD.pseudonym("telegram", str(10**9 + n)), OLD.encrypt_text(str(10**9 + n)))
                for n in range(people)]
        conn.executemany("INSERT INTO people (pid, channel, address, state, created_at, "
                         "updated_at) VALUES (?, 'telegram', ?, ?, ?, ?)",
                         [(pid, addr, state, NOW, NOW) for pid, addr in rows])
        conn.executemany("INSERT INTO message_ids (pid, platform_msg_id, at, from_bot) "
                         "VALUES (?, '7', ?, 1)", [(pid, NOW) for pid, _ in rows])
        body = OLD.encrypt(b'{"text": "see you"}')
        conn.executemany("INSERT INTO operations (key, channel, kind, body, created_at, "
                         "not_before, expires_at, next_try_at) VALUES (?, 'telegram', 'send', "
                         "?, ?, ?, ?, ?)",
                         [(pid, body, NOW, NOW, NOW + 86400, NOW) for pid, _ in rows])


async def _close_after_open(db: Path) -> None:
    store = await Store.open(db, OLD)
    await store.close()


def _consistent_under(db: Path, vault: Vault, people: int) -> bool:
    """Every row opens with ``vault`` and every pseudonym is the one ``vault`` makes."""
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT pid, address, state FROM people").fetchall()
        assert len(found) == people
        for pid, address, state in found:
            who = vault.decrypt_text(address)
            assert pid == vault.pseudonym("telegram", who)
            assert State.from_json(vault.decrypt(state)).vars == {"area": "north"}
        ops = conn.execute("SELECT key, body FROM operations").fetchall()
        assert len(ops) == people and {k for k, _ in ops} == {p for p, _, _ in found}
        for _, body in ops:
            vault.decrypt(body)
        assert conn.execute("SELECT COUNT(*) FROM message_ids WHERE pid IN "
                            "(SELECT pid FROM people)").fetchone()[0] == people
    return True


def test_ten_thousand_people_are_re_keyed(tmp_path: Path) -> None:
    db = tmp_path / "helpline.db"
    _many(db, 10_000)
    done = rotate(db, OLD, NEW, ALL)
    assert done.people == 10_000 and done.values == 30_000
    assert done.rows_rekeyed["operations"] == 10_000
    assert _consistent_under(db, NEW, 10_000)


def test_a_rotation_that_fails_half_way_changes_nothing(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "helpline.db"
    _many(db, 300)
    calls = 0
    real = Vault.encrypt

    def failing(self: Vault, plaintext: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls > 500:  # half-way through the encrypted values
            raise OSError("the disk is full")
        return real(self, plaintext)

    monkeypatch.setattr(Vault, "encrypt", failing)
    with pytest.raises(OSError):
        rotate(db, OLD, NEW, ALL)
    monkeypatch.undo()
    assert _consistent_under(db, OLD, 300)
    assert asyncio.run(_opens(db, OLD))


async def _opens(db: Path, vault: Vault) -> bool:
    store = await Store.open(db, vault)
    await store.close()
    return True


def test_a_rotation_killed_half_way_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "helpline.db"
    _many(db, 20_000)
    key = _key_file(tmp_path)
    env = {**os.environ, "HELPLINE_DB": str(db), "HELPLINE_SECRET_KEY": SECRET}
    wal = Path(f"{db}-wal")
    start = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "helpline", "rotate-key", "--new-key-file",
                             str(key)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while (not wal.exists() or wal.stat().st_size <= start) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)  # until the rotation's transaction writes pages
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert killed, "the rotation ended before it could be killed; make the database bigger"
    # Killed inside its transaction: the database is as it was, and opens with the old key.
    assert _consistent_under(db, OLD, 20_000)
    assert asyncio.run(_opens(db, OLD))
    # Run again, it completes.
    assert rotate(db, OLD, NEW, ALL).people == 20_000
    assert _consistent_under(db, NEW, 20_000)


def test_what_is_refused_changes_nothing(db: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_everything(db))
    with pytest.raises(RotationRefused, match="the new key is the key in use"):
        rotate(db, OLD, Vault(SECRET), ALL)
    with pytest.raises(RotationRefused, match="written with another secret key"):
        rotate(db, Vault("yet-another-key-that-never-wrote-this-database-0123"), NEW, ALL)
    readable = _key_file(tmp_path)
    readable.chmod(0o644)
    assert main(["rotate-key", "--new-key-file", str(readable)]) == 2
    assert "can be read by others (mode 0644)" in capsys.readouterr().err
    with run_alone(db, "a test"):  # as helpline run holds it
        assert main(["rotate-key", "--new-key-file", str(_key_file(tmp_path))]) == 2
    assert "another helpline process is using" in capsys.readouterr().err
    assert asyncio.run(_opens(db, OLD))


def test_helpline_run_refuses_a_database_another_process_runs_on(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    env = {**os.environ, "HELPLINE_DB": str(db), "HELPLINE_SECRET_KEY": SECRET,
           "HELPLINE_TELEGRAM_TOKEN": "123456:ABC",
           "HELPLINE_TELEGRAM_API_URL": "http://127.0.0.1:9"}
    with run_alone(db, "a test"):
        done = subprocess.run([sys.executable, "-m", "helpline", "run"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"helpline: another helpline process is using {db} (helpline run or rotate-key holds "
        "h.db.lock); stop it before starting helpline run again")
