"""The SQLite store's reads asked for in one turn of the event loop share one trip to the
connection's thread, each with its own answer or error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from musicgraph.errors import StoreError, StoreUnavailableError
from musicgraph.graph.models import ListenInput, TrackRef
from musicgraph.graph.sqlite_store import SqliteGraphStore


def count_trips(store: SqliteGraphStore) -> list[int]:
    """Count the functions queued to the store's aiosqlite thread from now on."""
    trips = [0]
    db: Any = store._db
    queue = db._tx
    put = queue.put_nowait

    class Counting:
        def put_nowait(self, item: Any) -> None:
            trips[0] += 1
            put(item)

        def __getattr__(self, name: str) -> Any:
            return getattr(queue, name)

    db._tx = Counting()
    return trips


async def test_concurrent_reads_share_one_trip_and_keep_their_own_answers(tmp_path: Path) -> None:
    """Five reads started together (as a GraphQL request's sibling loaders start them) cost one
    trip to the thread, and each gets exactly what it would have got alone."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        user = await store.create_user("ada")
        await store.record_listens(
            [
                ListenInput(user.id, TrackRef("Low", f"Song {i}"), 1_600_000_000 + i, "t")
                for i in range(3)
            ]
        )
        alone = [
            await store.get_users([user.id]),
            await store.count_listens(user.id),
            await store.recent_listens(user.id, limit=2),
            await store.count_users(),
            await store.get_users(["nobody"]),
        ]
        trips = count_trips(store)
        together = await asyncio.gather(
            store.get_users([user.id]),
            store.count_listens(user.id),
            store.recent_listens(user.id, limit=2),
            store.count_users(),
            store.get_users(["nobody"]),
        )
        assert list(together) == alone
        assert trips[0] == 1


async def test_a_failing_read_fails_alone(tmp_path: Path) -> None:
    """A read that raises in a shared trip gets its own translated error; the others answer."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        await store.create_user("ada")
        bad = store._rows("broken read", "SELECT no_such_column FROM users")
        good = store.count_users()
        results = await asyncio.gather(bad, good, return_exceptions=True)
        assert isinstance(results[0], StoreError) and "broken read" in str(results[0])
        assert results[1] == 1


async def test_a_read_after_close_says_the_store_is_not_open(tmp_path: Path) -> None:
    """Once closed, a read fails with StoreUnavailableError naming the file, as before."""
    store = SqliteGraphStore(tmp_path / "g.db")
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.count_users()


async def test_reads_racing_close_end_with_an_answer_or_an_error(tmp_path: Path) -> None:
    """Reads queued in the same turn as ``close()`` each end, with an answer or a StoreError,
    none left waiting."""
    store = SqliteGraphStore(tmp_path / "g.db")
    await store.open()
    reads = [asyncio.ensure_future(store.count_users()) for _ in range(3)]
    closing = asyncio.ensure_future(store.close())
    more = [asyncio.ensure_future(store.count_users()) for _ in range(3)]
    results = await asyncio.wait_for(
        asyncio.gather(*reads, closing, *more, return_exceptions=True), 10
    )
    for result in [*results[:3], *results[4:]]:
        assert result == 0 or isinstance(result, StoreError), result


async def test_top_artists_are_read_again_after_another_process_writes(tmp_path: Path) -> None:
    """A repeated top-artists read costs no trip while the file is unchanged, and reads again as
    soon as another connection (another process) commits listens to the same file."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path) as store, SqliteGraphStore(path) as other:
        user = await store.create_user("ada")
        one = ListenInput(
            user_id=user.id, track=TrackRef(title="x", artist="A"), listened_at=1, source="test"
        )
        await store.record_listens([one])
        (first,) = await store.top_artists([user.id], limit=5)
        trips = count_trips(store)
        assert await store.top_artists([user.id], limit=5) == [first]
        assert trips[0] == 0
        more = [
            ListenInput(
                user_id=user.id, track=TrackRef(title="y", artist="B"), listened_at=t, source="test"
            )
            for t in (2, 3)
        ]
        await other.record_listens(more)
        (rows,) = await store.top_artists([user.id], limit=5)
        assert trips[0] == 1
        assert [r.count for r in rows] == [2, 1]
