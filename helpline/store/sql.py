"""The connections a part's SQL runs on, whichever database holds it: SQLite's (the
embedded default) or PostgreSQL's (``helpline.store.postgres``), which takes the same SQL
and answers in the same shapes (rows read by column name, ``rowcount``, ``lastrowid``)."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from helpline.store.postgres import PgAsync, PgSync

# A work's connection: it runs in the core connection's thread and blocks it.
SyncConn = sqlite3.Connection | PgSync
# The features' connection, awaited on the event loop.
AsyncConn = aiosqlite.Connection | PgAsync
# A row: read by column name or position.
Row = Any
