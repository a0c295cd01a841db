"""Pseudonymous ids and field encryption, both keyed by the one secret.

* A person is known by HMAC-SHA256(key, channel + platform id): stable, not reversible.
* Reply addresses and conversation state (which holds any free text a flow captured) are
  encrypted with AES-256-GCM (from ``cryptography``), with a key derived from the secret by
  HKDF. The database file alone reveals neither who wrote nor what they wrote.

A stored value is ``0x01 | 12-byte random nonce | ciphertext and 16-byte tag``. Random
nonces are safe for about 2**32 values under one key (NIST SP 800-38D), far beyond what a
helpline writes. Values written before this format are Fernet tokens (AES-CBC + HMAC, always
beginning with ``gAAAAA``): they are still read, and replaced by the new form the next time
the row is written. GCM costs a tenth of Fernet's time, which is paid several times a message.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_LENGTH = 32
GCM_FORMAT = b"\x01"  # the first byte of a value in the current form
NONCE_BYTES = 12
NONCES_DRAWN = 256  # nonces read from the OS at once


class Nonces:
    """Random nonces, read from the OS ``NONCES_DRAWN`` at a time and never handed out
    twice (a lock, as the database thread encrypts too). ``os.urandom`` releases the GIL:
    called once a value, under load each call handed the interpreter to the database thread
    and waited to get it back (about 10 us a call where the call itself takes 0.5 us). A
    child made by ``fork`` starts with none, so parent and child never share one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0

    def take(self) -> bytes:
        with self._lock:
            at = self._at
            if at >= len(self._pool):
                self._pool, at = os.urandom(NONCE_BYTES * NONCES_DRAWN), 0
            self._at = at + NONCE_BYTES
            return self._pool[at:at + NONCE_BYTES]


NONCES = Nonces()  # one for the process: every vault draws from it


def random_id() -> str:
    """96 random bits as hex, from the same pool (an id for an event the platform gave none)."""
    return NONCES.take().hex()


class SecretError(ValueError):
    pass


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"helpline/v1", info=purpose).derive(
        secret.encode("utf-8")
    )


class Vault:
    """Everything that needs the secret key: pseudonyms, encryption and decryption."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise SecretError(
                f"the secret key must be at least {MIN_SECRET_LENGTH} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        self._id_key = _derive(secret, b"pseudonym")
        self._check_key = _derive(secret, b"key-check")
        self._aead = AESGCM(_derive(secret, b"field-encryption/aes-gcm"))
        # Reads values written before the GCM form (its own key, as then).
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"field-encryption")))

    def pseudonym(self, channel: str, platform_id: str) -> str:
        message = f"{channel}\x00{platform_id}".encode()
        return hmac.new(self._id_key, message, hashlib.sha256).hexdigest()

    def check_value(self, label: bytes) -> bytes:
        """An HMAC of a fixed label under a key of its own: kept in the database so that a
        start with another secret is refused; it reveals nothing of the key."""
        return hmac.new(self._check_key, label, hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = NONCES.take()
        return GCM_FORMAT + nonce + self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, token: bytes) -> bytes:
        try:
            if token[:1] == GCM_FORMAT:
                return self._aead.decrypt(token[1:1 + NONCE_BYTES], token[1 + NONCE_BYTES:],
                                          None)
            return self._fernet.decrypt(token)
        except (InvalidTag, InvalidToken, ValueError) as exc:
            raise SecretError("stored data cannot be read with this secret key") from exc

    def encrypt_text(self, text: str) -> bytes:
        return self.encrypt(text.encode("utf-8"))

    def decrypt_text(self, token: bytes) -> str:
        return self.decrypt(token).decode("utf-8")


def private_folder(path: Path) -> None:
    """Create ``path`` and any missing parents as 0700, whatever the umask (mkdir's mode is
    reduced by it; a umask of 000 made ``var/`` 0777). Existing folders are left as they are."""
    missing: list[Path] = []
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)


def private_file(path: Path) -> None:
    """Make sure ``path`` exists and only its owner can read or write it (0600), whatever
    the umask. SQLite gives its -wal and -shm files the database file's mode, so creating
    the database this way keeps all three private."""
    private_folder(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def private_database(path: Path) -> None:
    """The database file 0600 in a 0700 folder, and its -wal, -shm and -journal files
    tightened too if an earlier version left them readable."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if side.stat().st_mode & 0o077:
                os.chmod(side, 0o600)


def local_secret(path: Path) -> str:
    """Read the local secret for the simulator, creating it (mode 0600) on first use.
    A key file that group or others can read is refused: the key opens every stored value."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecretError(f"{path} can be read by others (mode {mode:04o}); "
                              f"make it private with: chmod 600 {path}")
        return path.read_text(encoding="utf-8").strip()
    private_folder(path.parent)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret
