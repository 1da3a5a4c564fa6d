"""Switching a SQLite file to WAL while other processes may be opening it too.

``PRAGMA journal_mode = WAL`` needs the file to itself for a moment. When two processes open a
new file at once (the workers of ``musicgraph serve --workers 2`` with their event outbox, HTTP
cache, claim journal and store), SQLite refuses one of them at once with "database is locked":
the busy timeout does not apply to that lock, as waiting could deadlock. Measured: one of two
processes starting together failed in 122 of 200 tries. The mode is kept in the file, so once
any process has switched it the others find it done; a refused switch is simply tried again.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def enable_wal(conn: sqlite3.Connection, *, timeout: float) -> str:
    """Put ``conn``'s file in WAL mode, trying again for up to ``timeout`` seconds while another
    connection holds it; returns the journal mode the file is in then (``"wal"``, or another
    mode SQLite would not leave, e.g. ``"memory"``)."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return str(row[0]).lower()
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or (
                time.monotonic() >= deadline
            ):
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def enable_wal_file(path: Path | str, *, timeout: float) -> str:
    """:func:`enable_wal` through a connection of its own (for files opened with aiosqlite:
    the switch lasts, and their own connections then find the file in WAL mode)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        return enable_wal(conn, timeout=timeout)
    finally:
        conn.close()
