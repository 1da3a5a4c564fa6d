"""Listens written as columns (what importers send): the same store, result and errors as
``record_listens``, and new tracks queued for enrichment in the same call."""

from __future__ import annotations

import pytest

from musicgraph.errors import NotFoundError, StoreError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenColumns, TrackRef, User

from .conftest import MBID_A, T0, listen, snapshot


async def test_columns_store_what_listens_store(store: GraphStore, alice: User) -> None:
    """A batch given as columns is stored, counted and reported exactly as the same listens."""
    listens = [
        listen(alice, "Sigur Rós", "Hoppípolla", T0 + 20),
        listen(alice, "A", "Song", T0, mbid=MBID_A),
        listen(alice, "A", "Song", T0 + 5, skipped=True),
        listen(alice, "sigur rós", "hoppípolla", T0 + 10, source="other"),
        listen(alice, "A", "Song", T0),  # a repeat inside the batch
    ]
    result = await store.record_listen_columns(ListenColumns.of(listens))
    assert (result.inserted, result.duplicates) == (4, 1)
    assert result.new_mask == (True, True, True, True, False)
    assert result.track_ids[0] == result.track_ids[3]
    assert result.track_ids[1] == result.track_ids[2] == result.track_ids[4]
    assert sorted(result.new_track_ids) == sorted(set(result.track_ids))
    stored = await snapshot(store)
    again = await store.record_listens(listens)
    assert (again.inserted, again.track_ids) == (0, result.track_ids)
    assert await snapshot(store) == stored
    counts = await store.counts()
    assert (counts.listens, counts.skips, counts.listened) == (3, 1, 2)


async def test_plain_import_batch_in_time_order(store: GraphStore, alice: User) -> None:
    """One user's listens from one source in time order (an import) fold into the aggregates."""
    refs = [TrackRef("A", "One"), TrackRef("A", "Two")]
    batch = ListenColumns(
        refs=refs,
        tracks=[0, 1, 0, 0],
        listened_at=[T0, T0 + 1, T0 + 2, T0 + 3],
        user_ids=[alice.id] * 4,
        sources=["listenbrainz"] * 4,
        ms_played=[None] * 4,
        skipped=[False] * 4,
    )
    result = await store.record_listen_columns(batch)
    assert result.inserted == 4
    [aggs] = await store.get_aggregates([alice.id])
    assert [(a.track_id, a.count, a.first_at, a.last_at) for a in aggs] == [
        (result.track_ids[0], 3, T0, T0 + 3),
        (result.track_ids[1], 1, T0 + 1, T0 + 1),
    ]
    history = await store.recent_listens(alice.id, limit=10)
    assert [(x.track_id, x.listened_at, x.source) for x in history] == [
        (result.track_ids[i], T0 + 3 - j, "listenbrainz") for j, i in enumerate([0, 0, 1, 0])
    ]


async def test_new_tracks_are_queued_in_the_same_call(store: GraphStore, alice: User) -> None:
    """enrich_sources queues each track the batch created, once per source, and no other."""
    known = await store.record_listens([listen(alice, "A", "Known", T0)])
    batch = ListenColumns.of(
        [listen(alice, "A", "Known", T0 + 1), listen(alice, "B", "New", T0 + 2)]
    )
    result = await store.record_listen_columns(batch, enrich_sources=["lastfm", "musicbrainz"])
    assert result.new_track_ids == (result.track_ids[1],)
    assert await store.enrichment_counts() == {
        "lastfm": {"pending": 1},
        "musicbrainz": {"pending": 1},
    }
    assert await store.get_enrichment_states(known.track_ids[0]) == []


async def test_unknown_user_writes_nothing(store: GraphStore, alice: User) -> None:
    """A batch naming an unknown user raises NotFoundError and stores none of its listens."""
    batch = ListenColumns.of([listen(alice, "A", "Song", T0), listen("u_nobody", "B", "X", T0)])
    with pytest.raises(NotFoundError):
        await store.record_listen_columns(batch, enrich_sources=["lastfm"])
    counts = await store.counts()
    assert (counts.listens, counts.tracks, counts.enrichment) == (0, 0, {})


async def test_bad_ref_names_its_listen(store: GraphStore, alice: User) -> None:
    """An unusable ref fails the batch with a StoreError naming the first listen that uses it."""
    batch = ListenColumns.of(
        [listen(alice, "A", "Song", T0), listen(alice, "B", "Bad", T0 + 1, mbid="nope")]
    )
    with pytest.raises(StoreError, match="listen 1"):
        await store.record_listen_columns(batch)
    assert (await store.counts()).listens == 0
