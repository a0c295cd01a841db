"""Persistence: SQLite through aiosqlite, numbered migrations, encrypted fields."""

from helpline.store.sqlite import (
    InboxRow,
    KeyMismatch,
    Operation,
    PendingDelete,
    PersonRow,
    Store,
)

__all__ = ["InboxRow", "KeyMismatch", "Operation", "PendingDelete", "PersonRow", "Store"]
