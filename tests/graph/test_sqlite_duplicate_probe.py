"""The SQLite store's duplicate-listen probe looks each key up by the primary key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from musicgraph.graph.sqlite_store import _KNOWN_KEYS, SqliteGraphStore


async def test_probe_reads_one_primary_key_row_per_key(tmp_path: Path) -> None:
    """The batch's keys are the outer loop and each is one primary-key search of ``played``
    (the planner otherwise scanned all of the user's listens for every key)."""
    store = SqliteGraphStore(tmp_path / "g.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "g.db") as conn:
        conn.execute("ANALYZE")
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _KNOWN_KEYS, ("[]", "u"))]
    assert plan[0].startswith("SCAN j")
    assert plan[1] == "SEARCH p USING PRIMARY KEY (user_id=? AND listened_at=? AND track_id=?)"
