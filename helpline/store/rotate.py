"""``helpline rotate-key``: every pseudonym and every encrypted value of a database moved
from one secret key to another, in one transaction.

A pseudonym is an HMAC of the channel and the person's platform id, which is stored
nowhere in the clear: it is the person's reply address on Telegram and Signal (the chat id,
the number or UUID), kept encrypted. Each person's new pseudonym is made from their address,
after checking that the address gives their old pseudonym under the old key (so nothing is
re-keyed on a guess). Each part's person tables (``Part.person_tables``), the operations
queue's keys and the unprocessed inbox follow the person; every encrypted column of every
part (``Part.encrypted``) is decrypted with the old key and encrypted with the new one; the
key's check value is replaced last. Processed inbox events keep only a keyed hash of the
platform's event id, against re-delivery; no key can re-make those, so they go.

One transaction: a rotation stopped half-way (killed, the power gone) leaves the database
as it was, with the old key; run it again. Nothing else may write meanwhile: the command
holds the run lock that ``helpline run`` takes (helpline.runlock).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpline.errors import HelplineError
from helpline.events import TERMINAL_PERSON
from helpline.privacy import Vault
from helpline.store.database import (
    KEY_CHECK_LABEL,
    KEY_MISMATCH,
    encrypted_columns,
    key_matches,
)
from helpline.store.schema import Part, schema_state

QUEUE_KEYS_OF_NO_ONE = ("x:", "desk:")  # tied to no one, or to a desk case: kept as they are


class RotationRefused(HelplineError):
    """The rotation cannot be done as asked; nothing was changed."""


@dataclass
class Rotated:
    people: int = 0
    values: int = 0  # encrypted values written again under the new key
    rows_rekeyed: dict[str, int] = field(default_factory=dict)
    processed_events_dropped: int = 0
    unmatched_people: int = 0  # forgotten (only with forget_unmatched)

    def lines(self) -> list[str]:
        tables = ", ".join(f"{t} {n}" for t, n in sorted(self.rows_rekeyed.items()) if n)
        out = [f"re-keyed {self.people} people ({tables or 'no other rows'}) and "
               f"{self.values} encrypted values",
               f"dropped {self.processed_events_dropped} processed events' hashes (no key "
               "can re-make them)"]
        if self.unmatched_people:
            out.append(f"forgot {self.unmatched_people} people whose address does not give "
                       "their pseudonym")
        return out


def _platform_id(old: Vault, pid: str, channel: str, address: str) -> str | None:
    for candidate in (address, TERMINAL_PERSON):
        if old.pseudonym(channel, candidate) == pid:
            return candidate
    return None


def _pid_tables(db: sqlite3.Connection) -> set[str]:
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t for t in tables
            if any(c[1] == "pid" for c in db.execute(f"PRAGMA table_info({t})"))}


def rotate(path: Path, old: Vault, new: Vault, parts: Sequence[Part],
           forget_unmatched: bool = False) -> Rotated:
    """Move the database at ``path`` from ``old``'s key to ``new``'s (module docstring)."""
    if old.check_value(KEY_CHECK_LABEL) == new.check_value(KEY_CHECK_LABEL):
        raise RotationRefused("the new key is the key in use; make a new one with: python -c "
                              "'import secrets; print(secrets.token_urlsafe(48))'")
    db = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        db.execute("PRAGMA secure_delete=ON")  # old ciphertexts are overwritten, not left
        db.execute("PRAGMA foreign_keys=ON")
        state = schema_state(db, parts)
        if state is None or state.behind or state.newer:
            raise RotationRefused("the database's schema is not this helpline's (start "
                                  "helpline run once to upgrade it, or use the helpline that "
                                  "wrote it); nothing was changed")
        if key_matches(db, old, encrypted_columns(parts)) is not True:
            raise RotationRefused(KEY_MISMATCH.replace("start with", "rotate from", 1))
        declared = {t for part in parts for t in part.person_tables} | {"inbox"}
        undeclared = _pid_tables(db) - declared
        if undeclared:
            raise RotationRefused(f"the tables {', '.join(sorted(undeclared))} have a pid "
                                  "column that no part declares; nothing was changed")
        db.execute("BEGIN EXCLUSIVE")
        try:
            done = _rotate(db, old, new, parts, forget_unmatched)
            db.execute("UPDATE key_check SET value = ? WHERE id = 1",
                       (new.check_value(KEY_CHECK_LABEL),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return done
    finally:
        db.close()


def _rotate(db: sqlite3.Connection, old: Vault, new: Vault, parts: Sequence[Part],
            forget_unmatched: bool) -> Rotated:
    done = Rotated()
    mapping: dict[str, str] = {}
    unmatched: list[str] = []
    for pid, channel, address in db.execute("SELECT pid, channel, address FROM people"):
        platform = _platform_id(old, pid, channel, old.decrypt_text(bytes(address)))
        if platform is None:
            unmatched.append(pid)
        else:
            mapping[pid] = new.pseudonym(channel, platform)
    if unmatched and not forget_unmatched:
        raise RotationRefused(
            f"{len(unmatched)} people's addresses do not give their pseudonyms, so they cannot "
            "be re-keyed; nothing was changed (--forget-unmatched forgets them instead: they "
            "start again as new people)")
    # Unprocessed events carry the person's platform id: their pid and their event hash
    # are made again from it. Processed ones keep only a hash: they go.
    inbox_rows: list[tuple[str, str, int]] = []
    for row_id, pid, channel, body in db.execute(
            "SELECT id, pid, channel, body FROM inbox WHERE done = 0"):
        raw = json.loads(old.decrypt(bytes(body)))
        platform = str(raw["platform_id"])
        if old.pseudonym(channel, platform) != pid:
            raise RotationRefused("an unprocessed event does not match its pseudonym; start "
                                  "helpline run once to process the inbox, then rotate")
        mapping.setdefault(pid, new.pseudonym(channel, platform))
        event_id = raw.get("event_id")
        event = (new.pseudonym(f"inbox:{channel}", str(event_id))[:32] if event_id
                 else secrets.token_hex(16))
        inbox_rows.append((mapping[pid], event, row_id))
    done.processed_events_dropped = db.execute("DELETE FROM inbox WHERE done = 1").rowcount
    db.executemany("UPDATE inbox SET pid = ?, event = ? WHERE id = ?", inbox_rows)
    done.rows_rekeyed["inbox"] = len(inbox_rows)

    for table in dict.fromkeys(t for part in parts for t in part.person_tables):
        pids = [r[0] for r in db.execute(f"SELECT DISTINCT pid FROM {table}")]
        gone = [(p,) for p in pids if p not in mapping]
        db.executemany(f"DELETE FROM {table} WHERE pid = ?", gone)  # no one's: not kept
        moved = [(mapping[p], p) for p in pids if p in mapping]
        db.executemany(f"UPDATE {table} SET pid = ? WHERE pid = ?", moved)
        done.rows_rekeyed[table] = int(db.execute(f"SELECT COUNT(*) FROM {table}"
                                                  ).fetchone()[0])
    keys = [r[0] for r in db.execute("SELECT DISTINCT key FROM operations")]
    orphans = [(k,) for k in keys
               if k not in mapping and not k.startswith(QUEUE_KEYS_OF_NO_ONE)]
    db.executemany("DELETE FROM operations WHERE key = ?", orphans)
    db.executemany("UPDATE operations SET key = ? WHERE key = ?",
                   [(mapping[k], k) for k in keys if k in mapping])
    done.rows_rekeyed["operations"] = sum(1 for k in keys if k in mapping)
    done.people = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    done.unmatched_people = len(unmatched)

    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, column in encrypted_columns(parts):
        if table not in tables:
            continue
        rows = db.execute(f"SELECT rowid, {column} FROM {table} "
                          f"WHERE {column} IS NOT NULL").fetchall()
        db.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                       [(new.encrypt(old.decrypt(bytes(value))), rowid)
                        for rowid, value in rows])
        done.values += len(rows)
    return done


__all__ = ["Rotated", "RotationRefused", "rotate"]
