"""Streaming reads for the projection, and counts."""

from __future__ import annotations

from typing import Any

import pytest

from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import (
    ArtistListen,
    ArtistRef,
    Friendship,
    GraphCounts,
    Similarity,
    Tagging,
    User,
)

from .conftest import T0, listen


async def chunks(aiter: Any) -> list[list[Any]]:
    """The raw chunks of an iter_* stream."""
    return [chunk async for chunk in aiter]


async def test_empty_store_counts_and_streams(store: GraphStore) -> None:
    """A fresh store counts zero everywhere and every stream yields nothing."""
    assert await store.counts() == GraphCounts()
    for stream in (
        store.iter_aggregates(),
        store.iter_listens(),
        store.iter_artist_listens(),
        store.iter_track_artists(),
        store.iter_tags("artist"),
        store.iter_tags("track"),
        store.iter_friendships(),
        store.iter_ratings(),
        store.iter_playlist_entries(),
        store.iter_similar("track"),
        store.iter_similar("artist"),
        store.iter_tracks(),
        store.iter_artists(),
        store.iter_users(),
    ):
        assert [c for c in await chunks(stream) if c] == []


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
async def test_iter_listens_every_row_once_in_order(
    store: GraphStore, alice: User, bob: User, chunk_size: int
) -> None:
    """Listens stream in chunks of at most chunk_size, by (user, time), each exactly once."""
    await store.record_listens(
        [
            listen(u, "A", f"T{i % 4}", T0 + i * 10, skipped=i % 5 == 0)
            for u in (alice, bob)
            for i in range(20)
        ]
    )
    got = await chunks(store.iter_listens(chunk_size=chunk_size))
    assert all(0 < len(c) <= chunk_size for c in got)
    flat = [x for c in got for x in c]
    assert len(flat) == 32  # 40 plays, 8 of them skips
    keys = [(x.user_id, x.listened_at) for x in flat]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert not any(x.skipped for x in flat)
    since = [
        x
        for c in await chunks(store.iter_listens(since=T0 + 100, chunk_size=chunk_size))
        for x in c
    ]
    assert {x.listened_at for x in since} == {
        x.listened_at for x in flat if x.listened_at >= T0 + 100
    }


async def test_every_stream_yields_each_row_once(store: GraphStore, alice: User, bob: User) -> None:
    """Each iter_* yields exactly the rows written, in chunks no larger than asked."""
    users = [alice, bob] + await store.ensure_users([f"user{i}" for i in range(5)])
    result = await store.record_listens(
        [listen(u, f"Artist {i % 3}", f"Song {i}", T0 + i) for i, u in enumerate(users * 3)]
    )
    track_ids = sorted(set(result.track_ids))
    artists = await store.upsert_artists([ArtistRef(f"Artist {i}") for i in range(3)])
    await store.set_artist_listens([ArtistListen(u.id, a.id, 3) for u in users for a in artists])
    await store.set_tags(
        [Tagging("artist", a.id, f"tag{j}", j + 1) for a in artists for j in range(2)]
        + [Tagging("track", t, "chill") for t in track_ids]
    )
    await store.add_friendships([Friendship(a.id, b.id) for a in users for b in users if a != b])
    for i, t in enumerate(track_ids[:5]):
        await store.set_rating(alice.id, t, 1 if i % 2 else -1, T0)
    p = await store.create_playlist(alice.id, "P", track_ids=track_ids[:4], at=T0)
    await store.add_to_playlist(p.id, track_ids[4:6], at=T0)
    await store.set_similar(
        [
            Similarity("track", a, b, 0.5, "x")
            for a in track_ids[:4]
            for b in track_ids[:4]
            if a != b
        ]
        + [Similarity("artist", artists[0].id, artists[1].id, 0.1, "x")]
    )
    counts = await store.counts()
    expected = {
        "aggregates": (store.iter_aggregates, counts.listened),
        "listens": (store.iter_listens, counts.listens),
        "artist_listens": (store.iter_artist_listens, counts.artist_listens),
        "track_artists": (store.iter_track_artists, counts.track_artists),
        "friendships": (store.iter_friendships, counts.friendships),
        "ratings": (store.iter_ratings, counts.ratings),
        "entries": (store.iter_playlist_entries, counts.playlist_entries),
        "tracks": (store.iter_tracks, counts.tracks),
        "artists": (store.iter_artists, counts.artists),
        "users": (store.iter_users, counts.users),
    }
    assert (counts.users, counts.tracks, counts.artists, counts.listens) == (7, 21, 3, 21)
    assert (counts.friendships, counts.ratings, counts.playlist_entries) == (42, 5, 6)
    for name, (make, n) in expected.items():
        got = await chunks(make(chunk_size=4))
        assert all(0 < len(c) <= 4 for c in got), name
        flat = [x for c in got for x in c]
        assert len(flat) == n, name
        assert len({repr(x) for x in flat}) == n, name
    tags = [x for c in await chunks(store.iter_tags("artist", chunk_size=4)) for x in c]
    track_tags = [x for c in await chunks(store.iter_tags("track", chunk_size=4)) for x in c]
    assert len(tags) + len(track_tags) == counts.taggings == 6 + 21
    similar = [x for c in await chunks(store.iter_similar("track", chunk_size=5)) for x in c]
    artist_similar = [x for c in await chunks(store.iter_similar("artist")) for x in c]
    assert len(similar) + len(artist_similar) == counts.similarities == 13
    streamed_tracks = [x for c in await chunks(store.iter_tracks(chunk_size=4)) for x in c]
    assert sorted(t.id for t in streamed_tracks) == track_ids
    assert all(len(t.artist_ids) == 1 for t in streamed_tracks)
    assert {
        e.position for e in [x for c in await chunks(store.iter_playlist_entries()) for x in c]
    } == set(range(6))


async def test_ping_answers_on_an_open_store(store: GraphStore) -> None:
    """ping returns quietly when the store is reachable."""
    await store.ping()


async def test_data_version_changes_with_every_commit(store: GraphStore) -> None:
    """data_version, where the store offers one, stays put while nothing is written and changes
    when a write commits; a store that cannot tell cheaply says None every time."""
    before = store.data_version()
    if before is None:
        await store.create_user("dv-user")
        assert store.data_version() is None
        return
    assert store.data_version() == before
    await store.create_user("dv-user")
    after = store.data_version()
    assert after is not None and after != before
    assert store.data_version() == after


async def test_sqlite_data_version_sees_commits_of_other_connections(
    sqlite_store: GraphStore, tmp_path: Any
) -> None:
    """A commit through another SqliteGraphStore on the same file (another worker process, say)
    changes this store's data_version."""
    from musicgraph.graph.sqlite_store import SqliteGraphStore

    assert isinstance(sqlite_store, SqliteGraphStore)
    before = sqlite_store.data_version()
    assert before is not None
    async with SqliteGraphStore(sqlite_store.path) as other:
        await other.create_user("written-elsewhere")
    assert sqlite_store.data_version() not in (None, before)
