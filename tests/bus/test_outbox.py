"""The outbox bus between two processes on one SQLite file (next to the store's): each event once, both ways, never
echoed; old rows pruned; a new process starts after what is already there."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from musicgraph.bus import OutboxEventBus
from musicgraph.bus.outbox import OUTBOX_TABLE, outbox_path
from musicgraph.errors import StoreError
from musicgraph.events import Event
from musicgraph.graph.sqlite_store import SqliteGraphStore
from tests.bus.peers import exchange_both_ways


async def store_file(tmp_path: Path) -> Path:
    """The outbox file of a store's SQLite file, as serve uses it (next to the store's)."""
    path = tmp_path / "graph.db"
    store = SqliteGraphStore(path)
    await store.open()
    await store.close()
    return outbox_path(path)


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {OUTBOX_TABLE}").fetchone()[0])


async def test_events_cross_once_each_way(tmp_path: Path) -> None:
    """An event published in one process reaches the other process's subscribers exactly once
    and its own exactly once; recommendations.updated stays home."""
    path = await store_file(tmp_path)
    bus = OutboxEventBus(path, interval=0.05)
    await bus.start()
    try:
        await exchange_both_ways(bus, "outbox", path)
    finally:
        await bus.close()


async def test_a_new_process_starts_after_existing_rows(tmp_path: Path) -> None:
    """A bus that starts later does not replay what was published before it started (that is in
    the store it loads), but hears what comes after."""
    path = await store_file(tmp_path)
    early = OutboxEventBus(path, interval=0.05)
    await early.start()
    try:
        early.publish(Event("tags.changed", {"n": 1}))
        await early.close()
        assert rows(path) == 1
        await early.start()
        late = OutboxEventBus(path, interval=0.05)
        await late.start()
        try:
            sub = late.subscribe(["tags.changed"])
            early.publish(Event("tags.changed", {"n": 2}))
            assert (await asyncio.wait_for(sub.get(), 10)).payload == {"n": 2}
            await asyncio.sleep(0.2)
            assert sub.queue.empty()
        finally:
            await late.close()
    finally:
        await early.close()


async def test_old_rows_are_pruned(tmp_path: Path) -> None:
    """Rows older than the retention are deleted by the next write."""
    path = await store_file(tmp_path)
    bus = OutboxEventBus(path, interval=0.05, retention=0.2, prune_every=0.0)
    await bus.start()
    try:
        for n in range(5):
            bus.publish(Event("tags.changed", {"n": n}))
        await bus.close()  # writes what is queued
        assert rows(path) == 5
        await asyncio.sleep(0.3)
        await bus.start()
        bus.publish(Event("tags.changed", {"n": 5}))
    finally:
        await bus.close()
    assert rows(path) == 1


async def test_a_locked_file_is_reported_and_retried(tmp_path: Path) -> None:
    """While another connection holds the write lock past the busy timeout, the bus reports the
    failure in health and keeps the events; once the lock goes, they are written."""
    path = await store_file(tmp_path)
    bus = OutboxEventBus(path, interval=0.05, busy_timeout=0.1)
    await bus.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        bus.publish(Event("tags.changed", {"n": 1}))
        for _ in range(100):
            if not bus.health()["ok"]:
                break
            await asyncio.sleep(0.05)
        health = bus.health()
        assert not health["ok"] and "locked" in health["error"] and health["queued"] == 1
        blocker.execute("COMMIT")
        for _ in range(100):
            if bus.health()["ok"]:
                break
            await asyncio.sleep(0.05)
        assert bus.health()["ok"] and bus.health()["sent"] == 1
    finally:
        blocker.close()
        await bus.close()
    assert rows(path) == 1


async def test_an_unusable_file_is_a_store_error_naming_it(tmp_path: Path) -> None:
    """A database path that cannot be opened fails at start with the path in the message."""
    path = tmp_path / "no-such-dir" / "graph.db"
    with pytest.raises(StoreError, match="no-such-dir"):
        await OutboxEventBus(path).start()


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5])
async def test_events_published_just_before_close_are_written(tmp_path: Path, turns: int) -> None:
    """A short-lived process (a CLI command) that publishes and closes at once still leaves its
    events in the outbox, wherever in its write the background task was stopped."""
    path = tmp_path / "g.db-events"
    bus = OutboxEventBus(path)
    await bus.start()
    for n in range(3):
        bus.publish(Event("listens.recorded", payload={"n": n}, user_id="u1"))
    for _ in range(turns):
        await asyncio.sleep(0)
    await bus.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT COUNT(*) FROM {OUTBOX_TABLE}").fetchone() == (3,)
    assert bus.sent == 3
