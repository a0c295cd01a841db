"""Outreach's repository: campaigns, their recipients, the suppression list, the people on
Signal it must know of (who answered, who said when a message is safe), and the times of
sends. Numbers are kept only encrypted, and as keyed hashes made
with labels of their own (``rkey`` to find a recipient, ``skey`` for the suppression list):
neither is a person's pseudonym, so no row here joins a conversation's."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from helpline.store import Store
from helpline.store.sql import Row, SyncConn

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
STATES = ("ready", "running", "paused", "done", "closed")
# Recipients' statuses: waiting, being sent now, sent, refused for good, an answer that
# does not say whether it went out, on the suppression list.
OPEN = ("pending", "sending")


def keyed(secret: bytes, label: str, number: str) -> str:
    return hmac.new(secret, f"{label}\x00{number}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    state: str
    message: str
    followup: str | None
    followup_days: float
    language: str
    flow: str
    engaged: tuple[str, ...]
    keyword: str
    code: str
    reveal: bool
    paused: str
    challenge: str
    created_at: float
    last_send_at: float | None


@dataclass(frozen=True)
class Claimed:
    """A recipient taken for a send: its row, number (decrypted) and suppression hash."""

    id: int
    campaign: int
    number: str
    skey: str
    followup: bool


@dataclass(frozen=True)
class Answered:
    """A campaign that wrote to a number that has just answered."""

    campaign: int
    skey: str
    ids: tuple[str, ...]  # the bridge's ids of what it sent them
    sent_at: float | None


@dataclass(frozen=True)
class Counts:
    pending: int
    sent: int
    failed: int
    suppressed: int
    unknown: int
    followups_due: int
    skipped: int = 0  # they said to write only after they write


class CampaignError(ValueError):
    """A campaign cannot be made or changed as asked (the message says what to do)."""


class Campaigns:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.database
        self.vault = store.vault
        self._secret: bytes | None = None

    async def secret(self) -> bytes:
        """Outreach's key for its hashes of numbers (made the first time it is needed)."""
        if self._secret is None:
            row = await self.db.row("SELECT secret FROM outreach_key WHERE id = 1")
            if row is None:
                fresh = self.vault.encrypt(os.urandom(32))
                await self.db.write(lambda db: db.execute(
                    "INSERT OR IGNORE INTO outreach_key (id, secret) VALUES (1, ?)", (fresh,)))
                row = await self.db.row("SELECT secret FROM outreach_key WHERE id = 1")
            assert row is not None
            self._secret = self.vault.decrypt(bytes(row["secret"]))
        return self._secret

    async def rkey(self, number: str) -> str:
        """The keyed hash a recipient is found by when they answer."""
        return keyed(await self.secret(), "recipient", number)

    async def skey(self, number: str) -> str:
        """The keyed hash a number is suppressed by (permanent; it names no one)."""
        return keyed(await self.secret(), "suppress", number)

    # ------------------------------------------------------------- campaigns

    async def create(self, name: str, message: str, numbers: Sequence[str], now: float, *,
                     language: str, keep_days: float, flow: str = "",
                     engaged: Sequence[str] = (), keyword: str = "", reveal: bool = False,
                     followup: str | None = None, followup_days: float = 0.0
                     ) -> tuple[int, int]:
        """A new campaign (ready, not started) with its recipients; numbers on the
        suppression list are left out. Returns (recipients kept, suppressed left out)."""
        if not NAME.fullmatch(name):
            raise CampaignError(f"'{name}' cannot name a campaign; use lower-case letters, "
                                "digits, - and _ (up to 40)")
        if await self.by_name(name) is not None:
            raise CampaignError(f"a campaign '{name}' exists already; choose another name")
        if keyword and await self.by_keyword(keyword) is not None:
            raise CampaignError("another open campaign has that keyword; choose another")
        secret = await self.secret()
        keys = [(keyed(secret, "recipient", n), keyed(secret, "suppress", n),
                 self.vault.encrypt_text(n)) for n in numbers]
        body = self.vault.encrypt_text(message)
        follow = None if followup is None else self.vault.encrypt_text(followup)
        code = secrets.token_urlsafe(9).replace("-", "a").replace("_", "b")
        kept = suppressed = 0

        def work(db: SyncConn) -> None:
            nonlocal kept, suppressed
            cursor = db.execute(
                "INSERT INTO outreach_campaigns (name, state, message, followup, "
                "followup_days, language, flow, engaged, keyword, code, reveal, keep_days, "
                "created_at) VALUES (?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, body, follow, followup_days, language, flow, ",".join(engaged),
                 keyword, code, int(reveal), keep_days, now))
            campaign = cursor.lastrowid
            blocked = _suppressed(db, [s for _, s, _ in keys])
            rows = []
            for rkey, skey, address in keys:
                if skey in blocked:
                    suppressed += 1
                    continue
                rows.append((campaign, rkey, skey, address))
            db.executemany("INSERT OR IGNORE INTO outreach_recipients (campaign, rkey, skey, "
                           "address, status) VALUES (?, ?, ?, ?, 'pending')", rows)
            kept = len(rows)

        await self.db.write(work)
        return kept, suppressed

    async def by_name(self, name: str) -> Campaign | None:
        row = await self.db.row("SELECT * FROM outreach_campaigns WHERE name = ?", (name,))
        return None if row is None else self._campaign(row)

    async def by_keyword(self, keyword: str) -> Campaign | None:
        row = await self.db.row("SELECT * FROM outreach_campaigns WHERE keyword = ? AND "
                                "keyword != '' AND state != 'closed'", (keyword,))
        return None if row is None else self._campaign(row)

    async def by_code(self, code: str) -> Campaign | None:
        row = await self.db.row("SELECT * FROM outreach_campaigns WHERE code = ? AND "
                                "state != 'closed'", (code,))
        return None if row is None else self._campaign(row)

    async def by_id(self, campaign: int) -> Campaign | None:
        row = await self.db.row("SELECT * FROM outreach_campaigns WHERE id = ?", (campaign,))
        return None if row is None else self._campaign(row)

    async def all(self, states: Sequence[str] = STATES) -> list[Campaign]:
        marks = ",".join("?" for _ in states)
        rows = await self.db.rows(f"SELECT * FROM outreach_campaigns WHERE state IN ({marks}) "
                                  "ORDER BY id", tuple(states))
        return [self._campaign(r) for r in rows]

    def _campaign(self, row: Row) -> Campaign:
        follow = row["followup"]
        return Campaign(
            row["id"], row["name"], row["state"], self.vault.decrypt_text(row["message"]),
            None if follow is None else self.vault.decrypt_text(follow),
            float(row["followup_days"]), row["language"], row["flow"],
            tuple(f for f in str(row["engaged"]).split(",") if f), row["keyword"],
            row["code"], bool(row["reveal"]), row["paused"], row["challenge"],
            float(row["created_at"]), row["last_send_at"])

    async def set_state(self, campaign: int, state: str, paused: str = "",
                        challenge: str = "") -> None:
        assert state in STATES
        await self.db.write(lambda db: db.execute(
            "UPDATE outreach_campaigns SET state = ?, paused = ?, challenge = ? WHERE id = ?",
            (state, paused, challenge, campaign)))

    async def close(self, campaign: int, now: float) -> int:
        """The campaign ends: its recipients (the numbers) are deleted now."""
        def work(db: SyncConn) -> int:
            gone = db.execute("DELETE FROM outreach_recipients WHERE campaign = ?",
                              (campaign,)).rowcount
            db.execute("UPDATE outreach_campaigns SET state = 'closed', paused = '', "
                       "challenge = '', closed_at = ? WHERE id = ?", (now, campaign))
            return int(gone)
        return await self.db.write(work)

    async def counts(self, campaign: int, now: float, followup_days: float) -> Counts:
        rows = await self.db.rows("SELECT status, followup, sent_at FROM outreach_recipients "
                                  "WHERE campaign = ?", (campaign,))
        by: dict[str, int] = {}
        due = 0
        for r in rows:
            by[r["status"]] = by.get(r["status"], 0) + 1
            if (followup_days and r["status"] == "sent" and r["followup"] == ""
                    and r["sent_at"] is not None
                    and r["sent_at"] + followup_days * 86400 <= now):
                due += 1
        return Counts(by.get("pending", 0) + by.get("sending", 0), by.get("sent", 0),
                      by.get("failed", 0), by.get("suppressed", 0), by.get("unknown", 0),
                      due, by.get("skipped", 0))

    # ------------------------------------------------------------- sending

    async def claim(self, campaign: Campaign, now: float,
                    safe: Callable[[str, float], float | None] | None = None
                    ) -> Claimed | None:
        """The next recipient to write to, taken in one transaction: a follow-up that is
        due first, else the next new one. One on the suppression list is marked so and
        passed over. ``safe(choice, now)``: for someone who said when a message is safe,
        when the next safe moment is (None: never write first; they are skipped); a
        recipient whose moment is later waits for it. None: nothing to send now."""
        def work(db: SyncConn) -> tuple[int, bytes, str, bool] | None:
            while True:
                row = None
                if campaign.followup is not None:
                    row = db.execute(
                        "SELECT id, address, skey FROM outreach_recipients WHERE campaign = ? "
                        "AND status = 'sent' AND followup = '' AND sent_at <= ? AND "
                        "not_before <= ? ORDER BY id LIMIT 1",
                        (campaign.id, now - campaign.followup_days * 86400, now)).fetchone()
                follow = row is not None
                if row is None:
                    row = db.execute(
                        "SELECT id, address, skey FROM outreach_recipients WHERE campaign = ? "
                        "AND status = 'pending' AND not_before <= ? ORDER BY id LIMIT 1",
                        (campaign.id, now)).fetchone()
                if row is None:
                    return None
                rid, address, skey = row
                if _suppressed(db, [skey]):
                    db.execute("UPDATE outreach_recipients SET status = 'suppressed', "
                               "address = NULL WHERE id = ?", (rid,))
                    continue
                said = db.execute("SELECT safe FROM outreach_people WHERE skey = ? AND "
                                  "safe != '' LIMIT 1", (skey,)).fetchone()
                if said is not None and safe is not None:
                    when = safe(str(said[0]), now)
                    if when is None:
                        column = "followup" if follow else "status"
                        db.execute(f"UPDATE outreach_recipients SET {column} = 'skipped' "
                                   "WHERE id = ?", (rid,))
                        continue
                    if when > now:
                        db.execute("UPDATE outreach_recipients SET not_before = ? "
                                   "WHERE id = ?", (when, rid))
                        continue
                if follow:
                    db.execute("UPDATE outreach_recipients SET followup = 'sending' "
                               "WHERE id = ?", (rid,))
                else:
                    db.execute("UPDATE outreach_recipients SET status = 'sending' "
                               "WHERE id = ?", (rid,))
                return int(rid), bytes(address), str(skey), follow

        found = await self.db.write(work)
        if found is None:
            return None
        rid, address, skey, follow = found
        return Claimed(rid, campaign.id, self.vault.decrypt_text(address), skey, follow)

    async def finish(self, claimed: Claimed, outcome: str, now: float,
                     ids: Sequence[str] = ()) -> None:
        """A claimed send's outcome: sent, failed (refused for good), unknown (may have
        gone out: never sent again) or pending (it did not go out: try again later).
        ``ids``: the bridge's ids of what went out (a quick exit deletes them)."""
        column = "followup" if claimed.followup else "status"
        value = ("" if claimed.followup else "pending") if outcome == "pending" else outcome

        def work(db: SyncConn) -> None:
            if outcome == "sent" and not claimed.followup:
                db.execute("UPDATE outreach_recipients SET status = 'sent', sent_at = ? "
                           "WHERE id = ?", (now, claimed.id))
            else:
                db.execute(f"UPDATE outreach_recipients SET {column} = ? WHERE id = ?",
                           (value, claimed.id))
            if ids:
                db.execute("UPDATE outreach_recipients SET ids = trim(ids || ',' || ?, ',') "
                           "WHERE id = ?", (",".join(ids), claimed.id))
                db.executemany(  # awaiting their delivery receipts
                    "INSERT OR IGNORE INTO outreach_sent_ids (sent_id, recipient, followup) "
                    "VALUES (?, ?, ?)", [(i, claimed.id, int(claimed.followup)) for i in ids])
            if outcome in ("sent", "unknown"):
                db.execute("INSERT INTO outreach_sends (at) VALUES (?)", (now,))
                db.execute("UPDATE outreach_campaigns SET last_send_at = ? WHERE id = ?",
                           (now, claimed.campaign))

        await self.db.write(work)

    async def delivered(self, ids: Sequence[str]) -> list[tuple[int, bool]]:
        """Signal's delivery receipt for the messages ``ids`` (the bridge's timestamps):
        each campaign message it names is marked delivered once; returns (campaign, a
        follow-up?) for each newly marked (a message in parts is marked at its first).
        A receipt for any other message (most are) costs one read by key."""
        marks = ",".join("?" * len(ids))
        found = await self.db.rows(
            "SELECT s.sent_id, s.recipient, s.followup, r.campaign FROM outreach_sent_ids s "
            f"JOIN outreach_recipients r ON r.id = s.recipient WHERE s.sent_id IN ({marks})",
            list(ids)) if ids else []
        if not found:
            return []

        def work(db: SyncConn) -> list[tuple[int, bool]]:
            marked: list[tuple[int, bool]] = []
            for row in found:
                which = "followup" if row["followup"] else "first"
                got = db.execute("SELECT delivered FROM outreach_recipients WHERE id = ?",
                                 (row["recipient"],)).fetchone()
                db.execute("DELETE FROM outreach_sent_ids WHERE recipient = ? AND followup = ?",
                           (row["recipient"], row["followup"]))  # its other parts too
                done = [d for d in str(got["delivered"]).split(",") if d] if got else []
                if got is None or which in done:
                    continue
                db.execute("UPDATE outreach_recipients SET delivered = ? WHERE id = ?",
                           (",".join(sorted([*done, which])), row["recipient"]))
                marked.append((int(row["campaign"]), which == "followup"))
            return marked

        return await self.db.write(work)

    async def recover(self) -> int:
        """After a restart: a send that was under way may have gone out; it is never sent
        again (marked unknown)."""
        def work(db: SyncConn) -> int:
            n = db.execute("UPDATE outreach_recipients SET status = 'unknown' "
                           "WHERE status = 'sending'").rowcount
            n += db.execute("UPDATE outreach_recipients SET followup = 'unknown' "
                            "WHERE followup = 'sending'").rowcount
            return int(n)
        return await self.db.write(work)

    async def left_to_send(self, campaign: Campaign, now: float) -> bool:
        """Whether anything is still to go out, now or later (a follow-up not yet due)."""
        row = await self.db.row(
            "SELECT 1 FROM outreach_recipients WHERE campaign = ? AND (status IN "
            "('pending', 'sending') OR (? AND status = 'sent' AND followup IN ('', "
            "'sending'))) LIMIT 1",
            (campaign.id, int(campaign.followup is not None)))
        return row is not None

    async def load(self, now: float, day_start: float, reply_hours: float) -> tuple[int, int,
                                                                                   int, int]:
        hour = await self.db.row("SELECT COUNT(*) AS n FROM outreach_sends WHERE at > ?",
                                 (now - 3600,))
        day = await self.db.row("SELECT COUNT(*) AS n FROM outreach_sends WHERE at >= ?",
                                (day_start,))
        waiting = await self.db.row(
            "SELECT COUNT(*) AS n FROM outreach_recipients WHERE status = 'sent' AND "
            "sent_at > ?", (now - reply_hours * 3600,))
        cases = 0
        if await self.db.row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                             "name = 'cases'") is not None:
            row = await self.db.row("SELECT COUNT(*) AS n FROM cases WHERE status != 'closed'")
            cases = int(row["n"]) if row else 0
        return (int(hour["n"]) if hour else 0, int(day["n"]) if day else 0,
                int(waiting["n"]) if waiting else 0, cases)

    async def last_send(self) -> float | None:
        row = await self.db.row("SELECT MAX(at) AS at FROM outreach_sends")
        return None if row is None or row["at"] is None else float(row["at"])

    # ------------------------------------------------------------- replies

    async def any_waiting(self) -> bool:
        row = await self.db.row("SELECT 1 FROM outreach_recipients WHERE status IN "
                                "('sent', 'unknown') LIMIT 1")
        return row is not None

    async def answered(self, number: str) -> list[Answered]:
        """A message from ``number``: the campaigns that wrote to it and wait for an answer.
        Their recipient rows are deleted: from now on nothing ties this number or the
        conversation to the campaign."""
        rkey = await self.rkey(number)
        select = ("SELECT id, campaign, skey, ids, sent_at FROM outreach_recipients WHERE "
                  "rkey = ? AND status IN ('sent', 'unknown')")
        if not await self.db.rows(select, (rkey,)):  # the usual case: a read, no write
            return []

        def work(db: SyncConn) -> list[Answered]:
            rows = db.execute(select, (rkey,)).fetchall()
            db.executemany("DELETE FROM outreach_recipients WHERE id = ?",
                           [(r[0],) for r in rows])
            return [Answered(int(r[1]), str(r[2]), tuple(i for i in str(r[3]).split(",") if i),
                             r[4]) for r in rows]

        return await self.db.write(work)

    # ------------------------------------------------------------- suppression

    async def suppress(self, skey: str, why: str, now: float) -> bool:
        """Put a suppression hash on the list for good (True when it was not there);
        recipients waiting under it in any campaign are passed over from now on."""
        def work(db: SyncConn) -> bool:
            added = db.execute("INSERT OR IGNORE INTO outreach_suppressed (skey, why, at) "
                               "VALUES (?, ?, ?)", (skey, why, now)).rowcount
            db.execute("UPDATE outreach_recipients SET status = 'suppressed', address = NULL "
                       "WHERE skey = ? AND status = 'pending'", (skey,))
            return bool(added)
        return await self.db.write(work)

    async def suppress_number(self, number: str, why: str, now: float) -> bool:
        return await self.suppress(await self.skey(number), why, now)

    async def is_suppressed(self, skey: str) -> bool:
        return await self.db.row("SELECT 1 FROM outreach_suppressed WHERE skey = ?",
                                 (skey,)) is not None

    async def suppressed_count(self) -> int:
        row = await self.db.row("SELECT COUNT(*) AS n FROM outreach_suppressed")
        return int(row["n"]) if row else 0

    async def reached(self, pid: str, skey: str, now: float,
                      deletes: tuple[str, Sequence[str], float] | None = None) -> None:
        """This person answered a campaign message (their number's suppression hash);
        ``deletes``: the number, the ids of the campaign messages and until when they can
        be deleted (their quick exit deletes them)."""
        body = None if deletes is None else self.vault.encrypt(json.dumps(
            {"to": deletes[0], "ids": list(deletes[1])}).encode())
        until = None if deletes is None else deletes[2]
        await self.db.write(lambda db: db.execute(
            "INSERT INTO outreach_people (pid, skey, reached, deletes, deletes_until, at) "
            "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (pid) DO UPDATE SET skey = excluded.skey, "
            "reached = 1, deletes = excluded.deletes, deletes_until = excluded.deletes_until",
            (pid, skey, body, until, now)))

    async def leaving(self, pid: str, now: float) -> tuple[str | None, tuple[str, list[str]]
                                                           | None]:
        """For a quick exit or erasure: the suppression hash of someone who answered a
        campaign (None: no one outreach reached), and the campaign messages still to
        delete (the number and the ids), if any."""
        row = await self.db.row("SELECT skey, reached, deletes, deletes_until FROM "
                                "outreach_people WHERE pid = ?", (pid,))
        if row is None:
            return None, None
        skey = str(row["skey"]) if row["reached"] else None
        if row["deletes"] is None or (row["deletes_until"] or 0) < now:
            return skey, None
        data = json.loads(self.vault.decrypt(bytes(row["deletes"])))
        return skey, (str(data["to"]), [str(i) for i in data["ids"]])

    async def reached_key(self, pid: str) -> str | None:
        """The suppression hash of someone who answered a campaign message."""
        row = await self.db.row("SELECT skey FROM outreach_people WHERE pid = ? AND "
                                "reached = 1", (pid,))
        return None if row is None else str(row["skey"])

    async def known_key(self, pid: str) -> str | None:
        row = await self.db.row("SELECT skey FROM outreach_people WHERE pid = ?", (pid,))
        return None if row is None else str(row["skey"])

    async def safe_time(self, pid: str, skey: str, safe: str, now: float) -> None:
        """What this person said about when a message is safe ("" = nothing): campaigns
        keep to it. A row with nothing to keep is not written (or is deleted)."""
        def work(db: SyncConn) -> None:
            db.execute("INSERT INTO outreach_people (pid, skey, safe, at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (pid) DO UPDATE SET skey = excluded.skey, "
                       "safe = excluded.safe", (pid, skey, safe, now))
            db.execute("DELETE FROM outreach_people WHERE pid = ? AND reached = 0 AND "
                       "safe = ''", (pid,))
        await self.db.write(work)

    async def keywords(self) -> dict[str, str]:
        """The keywords of open campaigns, by keyword: the campaign's name."""
        rows = await self.db.rows("SELECT keyword, name FROM outreach_campaigns WHERE "
                                  "keyword != '' AND state != 'closed'")
        return {str(r["keyword"]): str(r["name"]) for r in rows}


def _suppressed(db: SyncConn, skeys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(skeys), 500):
        chunk = list(skeys[start:start + 500])
        marks = ",".join("?" for _ in chunk)
        found.update(r[0] for r in db.execute(
            f"SELECT skey FROM outreach_suppressed WHERE skey IN ({marks})", chunk))
    return found


__all__ = ["Answered", "Campaign", "CampaignError", "Campaigns", "Claimed", "Counts", "keyed"]
