"""Persistence: SQLite through aiosqlite, each part's numbered migrations, encrypted fields."""

from helpline.store.database import Database, KeyMismatch
from helpline.store.sqlite import (
    InboxRow,
    Operation,
    PendingDelete,
    PersonRow,
    Store,
)

__all__ = ["Database", "InboxRow", "KeyMismatch", "Operation", "PendingDelete", "PersonRow",
           "Store"]
