"""A user's top artists in one store call: track plays credited to the first artist, plus
artist-level counts, ranked exactly as summing the aggregates by hand ranks them."""

from __future__ import annotations

from collections import Counter

from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ArtistListen, ArtistRef

from .conftest import T0, listen


async def by_hand(store: GraphStore, user_id: str, limit: int) -> list[tuple[str, int]]:
    """The top artists from the aggregates, tracks and artist counts (the oracle)."""
    (aggregates,) = await store.get_aggregates([user_id])
    tracks = await store.get_tracks([a.track_id for a in aggregates])
    counts: Counter[str] = Counter()
    for agg, track in zip(aggregates, tracks, strict=True):
        if track is not None and track.artist_ids:
            counts[track.artist_ids[0]] += agg.count
    for row in (await store.get_artist_listens([user_id]))[0]:
        counts[row.artist_id] += row.count
    return counts.most_common(limit)


async def test_top_artists_sum_plays_per_artist_and_match_the_aggregates(
    store: GraphStore,
) -> None:
    """Plays of an artist's tracks add up with its artist-level count; ties keep the order in
    which the artists first appear (track plays before artist counts); limit cuts the list;
    users without plays and unknown ids get empty lists, in the order asked."""
    alice, bob = await store.ensure_users(["alice", "bob"])
    plays = [("A", "x", 3), ("A", "y", 1), ("B", "z", 4), ("C", "w", 2), ("E", "v", 5)]
    listens = [
        listen(alice, artist, title, T0 + 10 * n + k)
        for n, (artist, title, times) in enumerate(plays)
        for k in range(times)
    ]
    await store.record_listens(listens)
    a, d = await store.upsert_artists([ArtistRef("A"), ArtistRef("D")])
    await store.set_artist_listens(
        [ArtistListen(alice.id, d.id, 5), ArtistListen(alice.id, a.id, 1)]
    )
    names = {x.id: x.name for x in await store.search_artists("", limit=100)}

    top = await store.top_artists([alice.id, bob.id, "u_missing", alice.id], limit=10)
    assert [[(names[r.artist_id], r.count) for r in rows] for rows in top] == [
        [("E", 5), ("A", 5), ("D", 5), ("B", 4), ("C", 2)],
        [],
        [],
        [("E", 5), ("A", 5), ("D", 5), ("B", 4), ("C", 2)],
    ]
    assert all(r.user_id == alice.id for r in top[0])
    for limit in (1, 3, 10):
        (rows,) = await store.top_artists([alice.id], limit=limit)
        assert [(r.artist_id, r.count) for r in rows] == await by_hand(store, alice.id, limit)
    assert await store.top_artists([], limit=10) == []


async def test_top_artists_follow_every_write(store: GraphStore) -> None:
    """Asked again after new listens or artist counts (even with the same limit and user), the
    top artists are those of the data as it is now."""
    (alice,) = await store.ensure_users(["alice"])
    await store.record_listens([listen(alice, "A", "x", T0), listen(alice, "B", "y", T0 + 1)])
    first = await store.top_artists([alice.id], limit=5)
    assert first == await store.top_artists([alice.id], limit=5)
    await store.record_listens([listen(alice, "B", "y", T0 + 2 + k) for k in range(3)])
    (rows,) = await store.top_artists([alice.id], limit=5)
    assert [(r.artist_id, r.count) for r in rows] == await by_hand(store, alice.id, 5)
    assert rows[0].count == 4
    (b,) = await store.upsert_artists([ArtistRef("B")])
    await store.set_artist_listens([ArtistListen(alice.id, b.id, 10)])
    (rows,) = await store.top_artists([alice.id], limit=5)
    assert [(r.artist_id, r.count) for r in rows] == await by_hand(store, alice.id, 5)
    assert rows[0].count == 14
