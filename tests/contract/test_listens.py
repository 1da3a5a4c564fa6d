"""Listens: PLAYED history, LISTENED aggregates, duplicates, failing batches, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from musicgraph.errors import NotFoundError, StoreError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ArtistListen, ArtistRef, Listen, ListenAggregate, User

from .conftest import MBID_A, T0, listen, snapshot


async def test_record_listens_reports_tracks_and_new_ones(store: GraphStore, alice: User) -> None:
    """The result names each input's track, marks the new listens and the new tracks."""
    result = await store.record_listens(
        [
            listen(alice, "Sigur Rós", "Hoppípolla", T0),
            listen(alice, "坂本龍一", "Merry Christmas Mr. Lawrence", T0 + 300),
            listen(alice, "sigur rós", "hoppípolla", T0 + 600),
        ]
    )
    assert (result.inserted, result.duplicates) == (3, 0)
    assert result.new_mask == (True, True, True)
    assert result.track_ids[0] == result.track_ids[2] != result.track_ids[1]
    assert sorted(result.new_track_ids) == sorted(set(result.track_ids))
    tracks = await store.get_tracks(list(result.track_ids))
    assert [t.title for t in tracks if t] == [
        "Hoppípolla",
        "Merry Christmas Mr. Lawrence",
        "Hoppípolla",
    ]
    again = await store.record_listens([listen(alice, "Sigur Rós", "Hoppípolla", T0 + 900)])
    assert again.new_track_ids == ()


async def test_aggregates_count_listens_and_skips(store: GraphStore, alice: User) -> None:
    """LISTENED counts plays, skips separately, and spans first to last play."""
    result = await store.record_listens(
        [
            listen(alice, "A", "Song", T0 + 100),
            listen(alice, "A", "Song", T0),
            listen(alice, "A", "Song", T0 + 50, skipped=True),
            listen(alice, "B", "Other", T0 + 10),
        ]
    )
    song, other = result.track_ids[0], result.track_ids[3]
    [aggs] = await store.get_aggregates([alice.id])
    assert aggs == [
        ListenAggregate(alice.id, song, count=2, skips=1, first_at=T0, last_at=T0 + 100),
        ListenAggregate(alice.id, other, count=1, skips=0, first_at=T0 + 10, last_at=T0 + 10),
    ]
    await store.record_listens([listen(alice, "A", "Song", T0 - 100)])
    [aggs] = await store.get_aggregates([alice.id])
    assert aggs[0] == ListenAggregate(alice.id, song, 3, 1, T0 - 100, T0 + 100)
    counts = await store.counts()
    assert (counts.listens, counts.skips, counts.listened) == (4, 1, 2)


async def test_duplicates_across_batches_add_nothing(store: GraphStore, alice: User) -> None:
    """Recording the same listens again inserts none and leaves the aggregates unchanged."""
    batch = [listen(alice, "A", "Song", T0 + i * 60, skipped=i == 2) for i in range(5)]
    first = await store.record_listens(batch)
    before = await snapshot(store)
    second = await store.record_listens(batch)
    assert (second.inserted, second.duplicates) == (0, 5)
    assert second.new_mask == (False,) * 5
    assert second.track_ids == first.track_ids
    assert second.new_track_ids == ()
    assert await snapshot(store) == before


async def test_duplicates_within_a_batch_count_once(store: GraphStore, alice: User) -> None:
    """A listen repeated inside one batch is stored once; only its first occurrence is new."""
    result = await store.record_listens(
        [
            listen(alice, "A", "Song", T0),
            listen(alice, "a", "SONG", T0),  # the same track, the same time
            listen(alice, "A", "Song", T0 + 1),
            listen(alice, "A", "Song", T0),
        ]
    )
    assert (result.inserted, result.duplicates) == (2, 2)
    assert result.new_mask == (True, False, True, False)
    [[agg]] = await store.get_aggregates([alice.id])
    assert (agg.count, agg.skips) == (2, 0)


async def test_partly_known_batch_adds_only_the_new(store: GraphStore, alice: User) -> None:
    """A batch mixing stored and new listens adds exactly the new ones to the aggregate."""
    await store.record_listens([listen(alice, "A", "Song", T0)])
    result = await store.record_listens(
        [listen(alice, "A", "Song", T0), listen(alice, "A", "Song", T0 + 60)]
    )
    assert result.new_mask == (False, True)
    [[agg]] = await store.get_aggregates([alice.id])
    assert agg.count == 2


async def test_same_time_different_tracks_are_different_listens(
    store: GraphStore, alice: User
) -> None:
    """A listen is keyed by (user, track, time): two tracks at one time are two listens."""
    result = await store.record_listens(
        [listen(alice, "A", "One", T0), listen(alice, "A", "Two", T0)]
    )
    assert result.inserted == 2


async def test_same_track_by_mbid_and_name_in_listens(store: GraphStore, alice: User) -> None:
    """Listens naming a track by MBID and by name fold into one aggregate."""
    result = await store.record_listens(
        [
            listen(alice, "Radiohead", "Creep", T0, mbid=MBID_A),
            listen(alice, "radiohead", "creep", T0 + 300),
        ]
    )
    assert result.track_ids[0] == result.track_ids[1]
    [[agg]] = await store.get_aggregates([alice.id])
    assert agg.count == 2


async def test_unknown_user_fails_the_whole_batch(store: GraphStore, alice: User) -> None:
    """A batch with one listen of an unknown user raises NotFoundError and writes nothing."""
    await store.record_listens([listen(alice, "Known", "Track", T0)])
    before = await snapshot(store)
    with pytest.raises(NotFoundError, match="u_nobody"):
        await store.record_listens(
            [
                listen(alice, "New Artist", "New Track", T0 + 60),
                listen(alice, "Known", "Track", T0 + 120),
                listen("u_nobody", "Known", "Track", T0 + 180),
            ]
        )
    assert await snapshot(store) == before


async def test_invalid_identifier_fails_the_whole_batch(store: GraphStore, alice: User) -> None:
    """A listen with an invalid MBID raises StoreError naming its index; nothing is written."""
    before = await snapshot(store)
    with pytest.raises(StoreError, match="listen 1"):
        await store.record_listens(
            [listen(alice, "A", "Fine", T0), listen(alice, "B", "Bad", T0 + 1, mbid="not-a-uuid")]
        )
    assert await snapshot(store) == before


async def test_empty_batch_is_a_no_op(store: GraphStore, alice: User) -> None:
    """Recording no listens returns an empty result and changes nothing."""
    result = await store.record_listens([])
    assert (result.inserted, result.duplicates, result.track_ids) == (0, 0, ())
    assert (await store.counts()).listens == 0


async def test_recent_listens_newest_first_with_paging(store: GraphStore, alice: User) -> None:
    """History is newest first, pages with ``before``, and shows skips only when asked."""
    await store.record_listens(
        [listen(alice, "A", f"T{i}", T0 + i * 60, skipped=i == 3) for i in range(6)]
    )
    recent = await store.recent_listens(alice.id, limit=3)
    assert [x.listened_at for x in recent] == [T0 + 300, T0 + 240, T0 + 120]
    assert all(isinstance(x, Listen) and x.source == "test" for x in recent)
    older = await store.recent_listens(alice.id, before=T0 + 120, limit=10)
    assert [x.listened_at for x in older] == [T0 + 60, T0]
    with_skips = await store.recent_listens(alice.id, limit=3, include_skips=True)
    assert [(x.listened_at, x.skipped) for x in with_skips] == [
        (T0 + 300, False),
        (T0 + 240, False),
        (T0 + 180, True),
    ]
    assert await store.count_listens(alice.id) == 5
    assert await store.count_listens(alice.id, include_skips=True) == 6
    assert await store.recent_listens("u_nobody") == []
    assert await store.count_listens("u_nobody") == 0


async def test_listens_between_is_half_open_oldest_first(store: GraphStore, alice: User) -> None:
    """listens_between returns non-skipped listens with start <= at < end, oldest first."""
    await store.record_listens(
        [listen(alice, "A", f"T{i}", T0 + i * 60, skipped=i == 2) for i in range(5)]
    )
    between = await store.listens_between(alice.id, T0 + 60, T0 + 240)
    assert [x.listened_at for x in between] == [T0 + 60, T0 + 180]


async def test_listens_keep_ms_played_and_source(store: GraphStore, alice: User) -> None:
    """The PLAYED edge keeps how long it played and where the listen came from."""
    item = listen(alice, "A", "B", T0, source="spotify")
    from dataclasses import replace

    await store.record_listens([replace(item, ms_played=12_345)])
    [stored] = await store.recent_listens(alice.id)
    assert (stored.ms_played, stored.source, stored.skipped) == (12_345, "spotify", False)


async def test_aggregates_per_user_in_order(store: GraphStore, alice: User, bob: User) -> None:
    """get_aggregates returns one list per user, in order, empty for unknown users."""
    await store.record_listens(
        [
            listen(alice, "A", "One", T0),
            listen(bob, "A", "Two", T0),
            listen(bob, "A", "Two", T0 + 1),
            listen(bob, "A", "One", T0 + 2),
        ]
    )
    per = await store.get_aggregates([bob.id, "u_nobody", alice.id])
    assert [[(a.count) for a in aggs] for aggs in per] == [[2, 1], [], [1]]
    assert await store.get_aggregates([]) == []


async def test_concurrent_batches_on_one_store(store: GraphStore, alice: User, bob: User) -> None:
    """Batches written concurrently all land, and overlapping ones count each listen once."""
    batches = [
        [listen(u, "Shared", f"Song {i % 7}", T0 + i) for i in range(start, start + 50)]
        for u in (alice, bob)
        for start in (0, 25, 50, 75)
    ]
    results = await asyncio.gather(*(store.record_listens(b) for b in batches))
    assert sum(r.inserted for r in results) == 2 * 125
    counts = await store.counts()
    assert (counts.listens, counts.tracks, counts.artists) == (250, 7, 1)
    for aggs in await store.get_aggregates([alice.id, bob.id]):
        assert sum(a.count for a in aggs) == 125


async def test_set_artist_listens_replaces_counts(store: GraphStore, alice: User) -> None:
    """LISTENED_ARTIST edges are upserted with the count replaced, ordered by count."""
    a, b = await store.upsert_artists([ArtistRef("A"), ArtistRef("B")])
    await store.set_artist_listens(
        [ArtistListen(alice.id, a.id, 5), ArtistListen(alice.id, b.id, 9)]
    )
    await store.set_artist_listens([ArtistListen(alice.id, a.id, 12)])
    assert await store.get_artist_listens([alice.id, "u_nobody"]) == [
        [ArtistListen(alice.id, a.id, 12), ArtistListen(alice.id, b.id, 9)],
        [],
    ]
    assert (await store.counts()).artist_listens == 2
    await store.set_artist_listens([])
    assert await store.get_artist_listens([]) == []


async def test_set_artist_listens_unknown_ids_fail(store: GraphStore, alice: User) -> None:
    """An artist listen for an unknown artist raises NotFoundError and writes nothing."""
    [a] = await store.upsert_artists([ArtistRef("A")])
    with pytest.raises(NotFoundError):
        await store.set_artist_listens(
            [ArtistListen(alice.id, a.id, 1), ArtistListen(alice.id, "ar_nope", 1)]
        )
    assert await store.get_artist_listens([alice.id]) == [[]]
