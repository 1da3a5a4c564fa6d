"""Neo4jGraphStore behaviour that only Neo4j has: schema on open, MERGE under concurrency, errors."""

from __future__ import annotations

import asyncio

import pytest
from neo4j import AsyncGraphDatabase
from tests.support.neo4j_server import Neo4jServer, free_port

from musicgraph.errors import NotFoundError, StoreError, StoreUnavailableError
from musicgraph.graph import identity
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, TrackRef
from musicgraph.graph.neo4j_store import Neo4jGraphStore

pytestmark = pytest.mark.neo4j

MBID = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"


def _listen(user_id: str, at: int, title: str = "Song", **track: str) -> ListenInput:
    return ListenInput(
        user_id=user_id, track=TrackRef("Band", title, **track), listened_at=at, source="test"
    )


async def test_open_creates_constraints_and_indexes_idempotently(
    neo4j_store: GraphStore, neo4j_server: Neo4jServer
) -> None:
    """Opening a second store on the same database keeps one copy of each constraint and index."""
    async with AsyncGraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        again = Neo4jGraphStore(driver, database=neo4j_server.database)
        await again.open()
        records, _, _ = await driver.execute_query(
            "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names",
            database_=neo4j_server.database,
        )
        names = records[0]["names"]
        indexes, _, _ = await driver.execute_query(
            "SHOW INDEXES YIELD name, state RETURN collect([name, state]) AS pairs",
            database_=neo4j_server.database,
        )
    for wanted in ("user_id", "user_name_key", "artist_id", "track_id", "tag_name", "playlist_id"):
        assert names.count(wanted) == 1
    states = dict(indexes[0]["pairs"])
    assert states["track_mbid"] == "ONLINE"
    assert states["artist_name_norm"] == "ONLINE"


async def test_store_satisfies_the_protocol(neo4j_store: GraphStore) -> None:
    """The Neo4j store is a GraphStore by the runtime protocol check."""
    assert isinstance(neo4j_store, GraphStore)


async def test_ids_are_the_identity_module_ids(neo4j_store: GraphStore) -> None:
    """Users, artists and tracks get the ids musicgraph.graph.identity mints (as SQLite does)."""
    [user] = await neo4j_store.ensure_users(["Zoë"])
    [track] = await neo4j_store.resolve_tracks([TrackRef("Björk", "Jóga")])
    assert user.id == identity.user_id_for("Zoë")
    assert track.id == identity.track_id_for_key(identity.track_key("Björk", "Jóga"))
    assert track.artist_ids == (identity.artist_id_for("Björk"),)


async def test_record_listens_twice_adds_nothing_the_second_time(neo4j_store: GraphStore) -> None:
    """Recording the same batch again inserts nothing and leaves the aggregates as they were."""
    [user] = await neo4j_store.ensure_users(["ana"])
    batch = [_listen(user.id, 1_600_000_000 + i, title=f"t{i % 3}") for i in range(9)]
    first = await neo4j_store.record_listens(batch)
    second = await neo4j_store.record_listens(batch)
    assert (first.inserted, first.duplicates) == (9, 0)
    assert first.new_mask == (True,) * 9
    assert (second.inserted, second.duplicates) == (0, 9)
    assert second.new_mask == (False,) * 9
    [aggregates] = await neo4j_store.get_aggregates([user.id])
    assert sorted(a.count for a in aggregates) == [3, 3, 3]


async def test_concurrent_overlapping_batches_store_each_listen_once(
    neo4j_store: GraphStore,
) -> None:
    """Two writers racing with overlapping batches store every listen once and count it once."""
    [user] = await neo4j_store.ensure_users(["racer"])
    a = [_listen(user.id, 1_600_000_000 + i) for i in range(0, 300)]
    b = [_listen(user.id, 1_600_000_000 + i) for i in range(150, 450)]
    r1, r2 = await asyncio.gather(neo4j_store.record_listens(a), neo4j_store.record_listens(b))
    assert r1.inserted + r2.inserted == 450
    assert await neo4j_store.count_listens(user.id) == 450
    [[aggregate]] = await neo4j_store.get_aggregates([user.id])
    assert aggregate.count == 450


async def test_unknown_user_rolls_back_the_whole_batch(neo4j_store: GraphStore) -> None:
    """A batch naming an unknown user raises NotFoundError and creates no track or artist."""
    [user] = await neo4j_store.ensure_users(["kim"])
    batch = [_listen(user.id, 1_600_000_000, title="New"), _listen("u_nobody", 1_600_000_001)]
    with pytest.raises(NotFoundError, match="u_nobody"):
        await neo4j_store.record_listens(batch)
    counts = await neo4j_store.counts()
    assert (counts.tracks, counts.artists, counts.listens) == (0, 0, 0)


async def test_invalid_mbid_is_a_store_error_naming_the_listen(neo4j_store: GraphStore) -> None:
    """An invalid MBID in listen 1 raises StoreError naming that listen and writes nothing."""
    [user] = await neo4j_store.ensure_users(["lee"])
    batch = [_listen(user.id, 1_600_000_000), _listen(user.id, 1_600_000_001, mbid="nope")]
    with pytest.raises(StoreError, match="listen 1"):
        await neo4j_store.record_listens(batch)
    assert (await neo4j_store.counts()).tracks == 0


async def test_streams_come_in_chunks_of_the_requested_size(neo4j_store: GraphStore) -> None:
    """iter_listens yields every non-skipped listen in chunks of at most chunk_size, in order."""
    [user] = await neo4j_store.ensure_users(["streamer"])
    await neo4j_store.record_listens(
        [_listen(user.id, 1_600_000_000 + i, title=f"s{i}") for i in range(25)]
    )
    chunks = [chunk async for chunk in neo4j_store.iter_listens(chunk_size=10)]
    assert [len(c) for c in chunks] == [10, 10, 5]
    times = [x.listened_at for c in chunks for x in c]
    assert times == sorted(times)


async def test_unreachable_server_is_store_unavailable() -> None:
    """A store whose server does not answer raises StoreUnavailableError from ping."""
    driver = AsyncGraphDatabase.driver(
        f"bolt://127.0.0.1:{free_port()}", auth=None, connection_timeout=1.0
    )
    store = Neo4jGraphStore(driver, owns_driver=True)
    try:
        with pytest.raises(StoreUnavailableError, match="cannot be reached"):
            await store.ping()
    finally:
        await store.close()


async def test_listens_older_than_the_newest_stored_are_still_checked(
    neo4j_store: GraphStore,
) -> None:
    """After newer listens are stored, an older repeat is a duplicate and an older new one is new."""
    [user] = await neo4j_store.ensure_users(["late"])
    await neo4j_store.record_listens([_listen(user.id, 1_600_000_100)])
    result = await neo4j_store.record_listens(
        [_listen(user.id, 1_600_000_100), _listen(user.id, 1_600_000_050)]
    )
    assert result.new_mask == (False, True)
    [[aggregate]] = await neo4j_store.get_aggregates([user.id])
    assert (aggregate.count, aggregate.first_at, aggregate.last_at) == (
        2,
        1_600_000_050,
        1_600_000_100,
    )


async def test_a_remembered_track_deleted_elsewhere_is_resolved_again(
    neo4j_store: GraphStore, neo4j_server: Neo4jServer
) -> None:
    """A track the store remembers from an earlier batch but that was deleted since is created
    again, and the new listen lands on it."""
    [user] = await neo4j_store.ensure_users(["gone"])
    await neo4j_store.record_listens([_listen(user.id, 1_600_000_000)])
    async with AsyncGraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        await driver.execute_query(
            "MATCH (t:Track) DETACH DELETE t", database_=neo4j_server.database
        )
    result = await neo4j_store.record_listens([_listen(user.id, 1_600_000_100)])
    assert (result.inserted, result.new_track_ids) == (1, result.track_ids)
    assert await neo4j_store.get_tracks(list(result.track_ids)) != [None]
    [[aggregate]] = await neo4j_store.get_aggregates([user.id])
    assert (aggregate.count, aggregate.first_at) == (1, 1_600_000_100)
