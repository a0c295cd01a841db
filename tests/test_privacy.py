"""Nothing identifying reaches the database file (or its WAL) or the logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline.events import Inbound, RawInbound
from helpline.privacy import SecretError, Vault
from tests.conftest import SECRET, Harness

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
    logs = all_logs.text
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
