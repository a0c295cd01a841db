"""Persistence: SQLite through aiosqlite, numbered migrations, encrypted fields."""

from helpline.store.sqlite import OutboxItem, PersonRow, Store

__all__ = ["OutboxItem", "PersonRow", "Store"]
