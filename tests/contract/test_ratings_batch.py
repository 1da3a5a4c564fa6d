"""Many ratings written in one transaction (``set_ratings``), on every store."""

from __future__ import annotations

import pytest

from musicgraph.errors import NotFoundError, StoreError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Rating, TrackRef, User

from .conftest import T0


async def test_set_ratings_likes_dislikes_and_clears_in_one_call(
    store: GraphStore, alice: User
) -> None:
    """A batch likes, dislikes and (score 0) clears ratings; the last row for a track wins."""
    t1, t2, t3 = await store.resolve_tracks(
        [TrackRef("A", "One"), TrackRef("A", "Two"), TrackRef("A", "Three")]
    )
    await store.set_rating(alice.id, t3.id, 1, T0)
    await store.set_ratings(
        [
            Rating(alice.id, t1.id, 1, T0 + 1),
            Rating(alice.id, t2.id, 1, T0 + 2),
            Rating(alice.id, t2.id, -1, T0 + 3),
            Rating(alice.id, t3.id, 0, T0 + 4),
        ]
    )
    assert await store.get_ratings(alice.id) == [
        Rating(alice.id, t2.id, -1, T0 + 3),
        Rating(alice.id, t1.id, 1, T0 + 1),
    ]
    await store.set_ratings([])
    await store.set_ratings([Rating(alice.id, t3.id, 0, T0 + 5)])  # clearing twice is harmless
    assert (await store.counts()).ratings == 2


async def test_set_ratings_with_an_unknown_track_writes_nothing(
    store: GraphStore, alice: User
) -> None:
    """A batch naming an unknown track raises NotFoundError and none of its rows land."""
    [t] = await store.resolve_tracks([TrackRef("A", "One")])
    with pytest.raises(NotFoundError):
        await store.set_ratings([Rating(alice.id, t.id, 1, T0), Rating(alice.id, "tr_nope", 1, T0)])
    with pytest.raises(StoreError):
        await store.set_ratings([Rating(alice.id, t.id, 2, T0)])
    assert await store.get_ratings(alice.id) == []


async def test_only_newer_rows_replace_or_clear_a_stored_rating(
    store: GraphStore, alice: User
) -> None:
    """With only_newer a row writes over a stored rating only when it is later (an older like
    or clear leaves what is stored, as a rating given meanwhile must stay), a later one
    replaces or clears it, a new one is written; the rows written are returned. Without it,
    every row is written."""
    t1, t2, t3, t4 = await store.resolve_tracks(
        [TrackRef("A", "One"), TrackRef("A", "Two"), TrackRef("A", "Three"), TrackRef("A", "Four")]
    )
    for t, score in ((t1, 1), (t2, -1), (t3, 1)):
        await store.set_rating(alice.id, t.id, score, T0 + 10)
    rows = [
        Rating(alice.id, t1.id, -1, T0 + 5),  # older: the stored like stays
        Rating(alice.id, t2.id, 0, T0 + 10),  # as old: the stored dislike stays
        Rating(alice.id, t3.id, 0, T0 + 20),  # later: cleared
        Rating(alice.id, t4.id, -1, T0 + 1),  # none stored: written
    ]
    assert await store.set_ratings(rows, only_newer=True) == rows[2:]
    assert set(await store.get_ratings(alice.id)) == {
        Rating(alice.id, t1.id, 1, T0 + 10),
        Rating(alice.id, t2.id, -1, T0 + 10),
        Rating(alice.id, t4.id, -1, T0 + 1),
    }
    assert await store.set_ratings(rows, only_newer=True) == []  # again: nothing newer
    older = [Rating(alice.id, t1.id, -1, T0 + 5), Rating(alice.id, t2.id, 0, T0 + 5)]
    assert await store.set_ratings(older) == older
    assert await store.get_ratings(alice.id) == [  # newest first
        Rating(alice.id, t1.id, -1, T0 + 5),
        Rating(alice.id, t4.id, -1, T0 + 1),
    ]


async def test_a_cleared_rating_does_not_come_back_from_an_older_import(
    store: GraphStore, alice: User
) -> None:
    """A clearing is remembered: an only-newer row older than it (an export imported again)
    writes nothing, a later one is written; the clearing itself is never read as a rating."""
    t1, t2, t3 = await store.resolve_tracks(
        [TrackRef("A", "One"), TrackRef("A", "Two"), TrackRef("A", "Three")]
    )
    await store.set_rating(alice.id, t1.id, 1, T0)
    await store.set_rating(alice.id, t1.id, None, T0 + 10)  # cleared in the app
    await store.set_ratings([Rating(alice.id, t2.id, -1, T0)])
    await store.set_ratings([Rating(alice.id, t2.id, 0, T0 + 10)])  # cleared by a batch
    await store.set_ratings([Rating(alice.id, t3.id, 0, T0 + 10)])  # cleared, never rated
    assert await store.get_ratings(alice.id) == []
    assert (await store.counts()).ratings == 0
    old_export = [
        Rating(alice.id, t1.id, 1, T0),
        Rating(alice.id, t2.id, -1, T0 + 10),  # as old as the clearing: not later
        Rating(alice.id, t3.id, 1, T0 + 5),
    ]
    assert await store.set_ratings(old_export, only_newer=True) == []
    assert await store.get_ratings(alice.id) == []
    assert [r async for chunk in store.iter_ratings() for r in chunk] == []
    later = [Rating(alice.id, t1.id, -1, T0 + 11), Rating(alice.id, t3.id, 1, T0 + 12)]
    assert await store.set_ratings(later, only_newer=True) == later
    assert await store.get_ratings(alice.id) == later[::-1]
    # an older clearing does not move the remembered time back
    await store.set_ratings([Rating(alice.id, t2.id, 0, T0 + 1)])
    assert await store.set_ratings([Rating(alice.id, t2.id, 1, T0 + 5)], only_newer=True) == []
    # without only_newer (a rating given now) the clearing does not stand in the way
    assert await store.set_ratings([Rating(alice.id, t2.id, 1, T0 + 5)]) == [
        Rating(alice.id, t2.id, 1, T0 + 5)
    ]
