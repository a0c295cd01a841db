"""Nothing identifying reaches the database file (or its WAL) or the logs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from helpline.events import Inbound, RawInbound
from helpline.privacy import SecretError, Vault
from tests.conftest import SECRET, Harness, logged

PHONE = "+15550123987"
CHAT_ID = "987654321012"
USER_NAME = "canary_username_zq"
TEXT = "my secret canary sentence xq7"


def raw_bytes(db: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(str(db) + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


async def test_canaries_reach_neither_database_nor_logs(
    basic: Harness, all_logs: pytest.LogCaptureFixture
) -> None:
    async def say(text: str) -> None:
        await basic.app.handle(RawInbound(
            channel="terminal", platform_id=f"{CHAT_ID}:{USER_NAME}", address=PHONE,
            inbound=Inbound(kind="text", at=0, text=text), message_id="77"))

    await say("hi")
    await say("1")
    await say(TEXT)  # saved as the 'name' variable: captured free text
    await say("33")
    person = await basic.app.store.person(basic.app.vault.pseudonym(
        "terminal", f"{CHAT_ID}:{USER_NAME}"))
    assert person is not None and person.state.vars["name"] == TEXT
    assert person.address == PHONE
    data = raw_bytes(basic.app.settings.db)
    logs = logged(all_logs)
    assert "terminal:" in logs  # the pipeline did log, by pseudonym
    for canary in (PHONE, CHAT_ID, USER_NAME, TEXT, "canary"):
        for form in (canary.encode(), canary.encode("utf-16-le")):
            assert form not in data, canary
        assert canary not in logs, canary


def test_pseudonyms_are_keyed_and_stable() -> None:
    one, other = Vault(SECRET), Vault(SECRET[::-1])
    assert one.pseudonym("telegram", "1") == one.pseudonym("telegram", "1")
    assert one.pseudonym("telegram", "1") != one.pseudonym("signal", "1")
    assert one.pseudonym("telegram", "1") != other.pseudonym("telegram", "1")
    token = one.encrypt_text("hello")
    assert one.decrypt_text(token) == "hello"
    with pytest.raises(SecretError):
        other.decrypt_text(token)
    with pytest.raises(SecretError):
        Vault("short")


def test_values_are_aes_gcm_and_older_fernet_values_still_read() -> None:
    vault = Vault(SECRET)
    token = vault.encrypt(b"state")
    assert token[:1] == b"\x01" and len(token) == 1 + 12 + len(b"state") + 16
    assert vault.encrypt(b"state") != token  # a fresh nonce each time
    tampered = token[:-1] + bytes([token[-1] ^ 1])
    with pytest.raises(SecretError):
        vault.decrypt(tampered)
    with pytest.raises(SecretError):
        vault.decrypt(b"\x01short")
    # A value written before the GCM form: a Fernet token under the key of the time.
    older = Fernet(base64.urlsafe_b64encode(HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"helpline/v1", info=b"field-encryption",
    ).derive(SECRET.encode()))).encrypt(b"kept from before")
    assert older.startswith(b"gAAAAA")
    assert vault.decrypt(older) == b"kept from before"
    with pytest.raises(SecretError):
        Vault(SECRET[::-1]).decrypt(older)


def test_nonces_are_read_from_the_os_in_blocks_and_never_repeat(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import threading

    from helpline import privacy

    calls: list[int] = []
    real = os.urandom

    def counted(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(privacy, "NONCES", privacy.Nonces())
    monkeypatch.setattr(os, "urandom", counted)
    vault = Vault(SECRET)
    tokens = [vault.encrypt(b"x") for _ in range(1000)]
    # os.urandom hands the interpreter to other threads: one call per value cost more
    # than the encryption under load.
    assert 1 <= len(calls) <= 1000 // privacy.NONCES_DRAWN + 1
    seen: list[bytes] = [t[1:13] for t in tokens]

    def draw() -> None:
        for _ in range(2000):
            seen.append(privacy.NONCES.take())

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == len(seen) == 9000
    assert all(vault.decrypt(t) == b"x" for t in tokens)
    privacy.NONCES._forget()  # what a forked child does first: nothing of the parent's
    assert privacy.NONCES.take() not in set(seen)
