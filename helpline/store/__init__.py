"""Persistence: SQLite through aiosqlite, numbered migrations, encrypted fields."""

from helpline.store.sqlite import OutboxItem, PendingDelete, PersonRow, Store

__all__ = ["OutboxItem", "PendingDelete", "PersonRow", "Store"]
