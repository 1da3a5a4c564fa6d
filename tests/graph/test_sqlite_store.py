"""What only the SQLite store has: the file, its pragmas, migrations and several processes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from musicgraph.errors import StoreError, StoreUnavailableError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, Rating, TrackRef
from musicgraph.graph.sqlite_store import MIGRATIONS, SqliteGraphStore

T0 = 1_600_000_000


def _listens(user_id: str, start: int, n: int) -> list[ListenInput]:
    return [
        ListenInput(user_id, TrackRef("Shared", f"Song {i % 11}"), T0 + i, "test")
        for i in range(start, start + n)
    ]


async def test_store_satisfies_the_protocol(tmp_path: Path) -> None:
    """SqliteGraphStore is a GraphStore (structurally, every method present)."""
    assert isinstance(SqliteGraphStore(tmp_path / "x.db"), GraphStore)


async def test_open_sets_pragmas_and_schema_version(tmp_path: Path) -> None:
    """An opened file is in WAL mode, at the latest schema version, with every table."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path) as store:
        assert await store.schema_version() == MIGRATIONS[-1][0]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "artists", "tracks", "tags", "playlists", "played", "listened"} <= tables
    assert {"artist_listens", "track_artists", "artist_tags", "track_tags", "friendships"} <= tables
    assert {"ratings", "cleared_ratings", "playlist_entries", "track_similar"} <= tables
    assert "artist_similar" in tables
    assert "enrichment" in tables


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    """The connection enforces foreign keys (checked through the store's own connection)."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        rows = await store._rows("test", "PRAGMA foreign_keys")
        assert rows == [(1,)]
        rows = await store._rows("test", "PRAGMA synchronous")
        assert rows == [(1,)]  # NORMAL


async def test_reopening_keeps_data_and_is_a_no_op(tmp_path: Path) -> None:
    """Opening the same file again migrates nothing and finds everything written before."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path) as store:
        alice = await store.create_user("Alice")
        await store.record_listens(_listens(alice.id, 0, 5))
    async with SqliteGraphStore(path) as store:
        assert await store.schema_version() == MIGRATIONS[-1][0]
        assert (await store.counts()).listens == 5
        assert await store.get_user_by_name("alice") == alice


async def test_old_file_is_upgraded_on_open(tmp_path: Path) -> None:
    """A file made by an older schema gets the newer migrations, once, keeping its data."""
    path = tmp_path / "g.db"
    first = MIGRATIONS[:1]
    async with SqliteGraphStore(path, migrations=first) as store:
        await store.create_user("Alice")
        assert await store.schema_version() == 1
    newer = [*first, (2, "0002_test.sql", "CREATE TABLE extra (x INTEGER);\n-- done\n")]
    async with SqliteGraphStore(path, migrations=newer) as store:
        assert await store.schema_version() == 2
        assert await store.count_users() == 1
    async with SqliteGraphStore(path, migrations=newer) as store:  # no-op the second time
        assert await store.schema_version() == 2


async def test_a_first_version_file_gets_cleared_ratings_keeping_its_ratings(
    tmp_path: Path,
) -> None:
    """A file of schema 1 (no remembered clearings) opens at the latest version with its
    ratings, and a clearing is remembered from then on."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path, migrations=MIGRATIONS[:1]) as store:
        alice = await store.create_user("Alice")
        [t1] = await store.resolve_tracks([TrackRef("A", "One")])
        await store.set_rating(alice.id, t1.id, 1, 100)
    async with SqliteGraphStore(path) as store:
        assert await store.schema_version() == MIGRATIONS[-1][0] >= 2
        assert await store.get_ratings(alice.id) == [Rating(alice.id, t1.id, 1, 100)]
        await store.set_rating(alice.id, t1.id, None, 200)
        assert await store.set_ratings([Rating(alice.id, t1.id, 1, 100)], only_newer=True) == []
        assert await store.get_ratings(alice.id) == []


async def test_failed_migration_leaves_the_file_at_its_version(tmp_path: Path) -> None:
    """A migration that fails raises StoreError naming it and applies nothing."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path, migrations=MIGRATIONS[:1]):
        pass
    broken = [*MIGRATIONS[:1], (2, "0002_broken.sql", "CREATE TABLE ok (x);\nNOT SQL;\n")]
    with pytest.raises(StoreError, match=r"0002_broken\.sql"):
        await SqliteGraphStore(path, migrations=broken).open()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "ok" not in names


async def test_newer_file_is_refused(tmp_path: Path) -> None:
    """A file from a newer musicgraph fails to open with a message saying so."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError, match="newer"):
        await SqliteGraphStore(path).open()


async def test_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    """A path that cannot hold a database raises StoreUnavailableError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailableError, match="file"):
        await SqliteGraphStore(blocker / "g.db").open()


async def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not SQLite fails to open with StoreError, not a sqlite3 error."""
    path = tmp_path / "g.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        await SqliteGraphStore(path).open()


async def test_calls_before_open_or_after_close_are_unavailable(tmp_path: Path) -> None:
    """Using a store that is not open raises StoreUnavailableError; ping says so too."""
    store = SqliteGraphStore(tmp_path / "g.db")
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.count_users()
    await store.open()
    await store.ping()
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.ping()
    await store.close()  # closing twice is harmless


async def test_two_instances_on_one_file_write_concurrently(tmp_path: Path) -> None:
    """Two stores on one file (as two processes would) write overlapping batches safely."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path) as a, SqliteGraphStore(path) as b:
        alice = await a.create_user("Alice")
        batches = [_listens(alice.id, start, 200) for start in range(0, 1000, 100)]
        results = await asyncio.gather(
            *((a if i % 2 else b).record_listens(batch) for i, batch in enumerate(batches))
        )
        assert sum(r.inserted for r in results) == 1100
        for store in (a, b):
            counts = await store.counts()
            assert (counts.listens, counts.tracks, counts.artists) == (1100, 11, 1)
            [aggs] = await store.get_aggregates([alice.id])
            assert sum(x.count for x in aggs) == 1100


async def test_writes_do_not_block_the_event_loop(tmp_path: Path) -> None:
    """While a large batch is written, other coroutines keep running."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        alice = await store.create_user("Alice")
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await store.record_listens(_listens(alice.id, 0, 20_000))
        done.set()
        await task
        assert ticks > 10


async def test_sparse_history_is_deduplicated_by_probe(tmp_path: Path) -> None:
    """Re-recording a few listens spread over a long stored history still adds nothing."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        alice = await store.create_user("Alice")
        await store.record_listens(_listens(alice.id, 0, 3000))
        sparse = [_listens(alice.id, 0, 1)[0], _listens(alice.id, 2999, 1)[0]]
        result = await store.record_listens(sparse)
        assert (result.inserted, result.duplicates) == (0, 2)
        stored = ListenInput(alice.id, TrackRef("Shared", f"Song {1500 % 11}"), T0 + 1500, "x")
        other = ListenInput(alice.id, TrackRef("Shared", f"Song {1501 % 11}"), T0 + 1500, "x")
        result = await store.record_listens([*sparse, stored, other])
        assert result.new_mask == (False, False, False, True)


async def test_listened_at_must_be_whole_seconds(tmp_path: Path) -> None:
    """A listen time that is not an int raises StoreError naming the listen."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        alice = await store.create_user("Alice")
        bad = ListenInput(alice.id, TrackRef("A", "B"), 1.5, "x")  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="listen 0"):
            await store.record_listens([bad])


async def test_locked_file_is_unavailable_after_the_busy_timeout(tmp_path: Path) -> None:
    """A write that waits longer than the busy timeout for another writer's lock raises
    StoreUnavailableError caused by the sqlite3 error, and the store works once the lock is gone."""
    path = tmp_path / "g.db"
    async with SqliteGraphStore(path, busy_timeout=0.2) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailableError, match="locked") as info:
                await store.create_user("Alice")
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            assert await store.count_users() == 0  # readers are not blocked in WAL mode
            other.execute("ROLLBACK")
        finally:
            other.close()
        await store.create_user("Alice")
        assert await store.count_users() == 1


async def test_sqlite_errors_are_translated_with_their_cause(tmp_path: Path) -> None:
    """A file that is not a database fails with StoreError whose cause is the sqlite3 error."""
    path = tmp_path / "g.db"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StoreError) as info:
        await SqliteGraphStore(path).open()
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert str(path) in str(info.value)


async def test_plain_and_general_batch_writes_store_the_same(tmp_path: Path) -> None:
    """A one-user, one-source batch in time order (the import's short way) stores the same
    listens and aggregates as the same listens shuffled (the general way)."""
    import random

    refs = [TrackRef("Shared", f"Song {i % 7}") for i in range(60)]
    stored = []
    for name, order in (("plain", False), ("general", True)):
        async with SqliteGraphStore(tmp_path / f"{name}.db") as store:
            alice = await store.create_user("Alice")
            batch = [ListenInput(alice.id, ref, T0 + i // 2, "test") for i, ref in enumerate(refs)]
            if order:
                random.Random(1).shuffle(batch)
            result = await store.record_listens(batch)
            assert (result.inserted, result.duplicates) == (60, 0)
            stored.append(
                (
                    await store.get_aggregates([alice.id]),
                    await store.listens_between(alice.id, T0, T0 + 100),
                )
            )
    assert stored[0] == stored[1]


async def test_listen_fields_survive_the_json_batch(tmp_path: Path) -> None:
    """Sources with quotes and non-ASCII text, play times and skips are stored as given."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        alice = await store.create_user("Alice")
        source = 'ünïcode "quoted" \\ 🎵'
        batch = [
            ListenInput(alice.id, TrackRef("A", "B"), T0, source, ms_played=1234),
            ListenInput(alice.id, TrackRef("A", "B"), T0 + 1, source, skipped=True),
        ]
        await store.record_listens(batch)
        listens = await store.recent_listens(alice.id, include_skips=True)
        assert [(x.source, x.ms_played, x.skipped) for x in listens] == [
            (source, None, True),
            (source, 1234, False),
        ]
        (aggregates,) = await store.get_aggregates([alice.id])
        assert [(a.count, a.skips) for a in aggregates] == [(1, 1)]


async def test_equal_refs_in_new_objects_resolve_to_the_remembered_track(tmp_path: Path) -> None:
    """A ref built anew for every listen (not the same object) still finds the track an earlier
    batch resolved, and an equal ref object seen before is recognised as well."""
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        alice = await store.create_user("Alice")
        ref = TrackRef("A", "B", mbid="8f3471b5-7e6a-48da-86a9-c1c07a0f47ae")
        first = await store.record_listens([ListenInput(alice.id, ref, T0, "x")])
        again = await store.record_listens(
            [
                ListenInput(alice.id, ref, T0 + 1, "x"),
                ListenInput(alice.id, TrackRef("A", "B", mbid=ref.mbid), T0 + 2, "x"),
            ]
        )
        assert again.track_ids == first.track_ids * 2
        assert again.new_track_ids == ()
