"""Tags, friends, ratings and similarity edges."""

from __future__ import annotations

import pytest

from musicgraph.errors import NotFoundError, StoreError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import (
    ArtistRef,
    Friendship,
    Rating,
    Similarity,
    Tagging,
    TrackRef,
    User,
)

from .conftest import T0


async def test_tags_are_normalised_and_replaced(store: GraphStore) -> None:
    """Tags are stored normalised; writing a tagging again replaces its count."""
    a, b = await store.upsert_artists([ArtistRef("A"), ArtistRef("B")])
    await store.set_tags(
        [
            Tagging("artist", a.id, "Post-Rock", 3),
            Tagging("artist", a.id, "ambient", 7),
            Tagging("artist", b.id, "post-rock", 5),
            Tagging("artist", a.id, "Íslenska 🇮🇸", 1),
        ]
    )
    await store.set_tags([Tagging("artist", a.id, "POST-ROCK", 10)])
    per = await store.get_tags("artist", [a.id, "ar_nope", b.id])
    assert [[(t.tag, t.count) for t in tags] for tags in per] == [
        [("post-rock", 10), ("ambient", 7), ("íslenska 🇮🇸", 1)],
        [],
        [("post-rock", 5)],
    ]
    assert await store.items_tagged("Post-Rock", "artist") == [a.id, b.id]
    assert await store.items_tagged("post-rock", "artist", offset=1, limit=1) == [b.id]
    assert await store.count_items_tagged("POST-ROCK", "artist") == 2
    assert await store.items_tagged("post-rock", "track") == []
    counts = await store.counts()
    assert (counts.tags, counts.taggings) == (3, 4)


async def test_track_tags_are_separate_from_artist_tags(store: GraphStore) -> None:
    """A tag on a track is found with kind track, not artist."""
    [t] = await store.resolve_tracks([TrackRef("A", "Song")])
    await store.set_tags([Tagging("track", t.id, "chill", 2)])
    assert await store.items_tagged("chill", "track") == [t.id]
    assert await store.items_tagged("chill", "artist") == []
    assert await store.get_tags("track", [t.id]) == [[Tagging("track", t.id, "chill", 2)]]


async def test_tagging_unknown_item_fails_the_batch(store: GraphStore) -> None:
    """Tagging an unknown item raises NotFoundError and stores none of the batch."""
    [a] = await store.upsert_artists([ArtistRef("A")])
    with pytest.raises(NotFoundError):
        await store.set_tags([Tagging("artist", a.id, "x"), Tagging("artist", "ar_nope", "y")])
    assert await store.get_tags("artist", [a.id]) == [[]]
    assert (await store.counts()).tags == 0


async def test_empty_tag_reads(store: GraphStore) -> None:
    """Empty inputs and unknown tags give empty results."""
    await store.set_tags([])
    assert await store.get_tags("artist", []) == []
    assert await store.items_tagged("nothing", "artist") == []
    assert await store.count_items_tagged("nothing", "track") == 0


async def test_friendships_are_directed_and_idempotent(
    store: GraphStore, alice: User, bob: User
) -> None:
    """FRIEND edges are stored as given, once each."""
    carol = await store.create_user("Carol")
    await store.add_friendships(
        [Friendship(alice.id, bob.id), Friendship(alice.id, carol.id), Friendship(bob.id, alice.id)]
    )
    await store.add_friendships([Friendship(alice.id, bob.id)])
    assert await store.get_friends(alice.id) == sorted([bob.id, carol.id])
    assert await store.get_friends(bob.id) == [alice.id]
    assert await store.get_friends(carol.id) == []
    assert (await store.counts()).friendships == 3
    await store.add_friendships([])


async def test_friendship_with_unknown_user_fails(store: GraphStore, alice: User) -> None:
    """A friendship naming an unknown user raises NotFoundError and writes nothing."""
    with pytest.raises(NotFoundError):
        await store.add_friendships([Friendship(alice.id, "u_nobody")])
    assert await store.get_friends(alice.id) == []


async def test_ratings_like_dislike_clear(store: GraphStore, alice: User) -> None:
    """A like, then a dislike, replaces the rating; clearing removes it."""
    t1, t2 = await store.resolve_tracks([TrackRef("A", "One"), TrackRef("A", "Two")])
    await store.set_rating(alice.id, t1.id, 1, T0)
    await store.set_rating(alice.id, t2.id, 1, T0 + 1)
    await store.set_rating(alice.id, t1.id, -1, T0 + 2)
    assert await store.get_ratings(alice.id) == [
        Rating(alice.id, t1.id, -1, T0 + 2),
        Rating(alice.id, t2.id, 1, T0 + 1),
    ]
    await store.set_rating(alice.id, t1.id, None, T0 + 3)
    assert await store.get_ratings(alice.id) == [Rating(alice.id, t2.id, 1, T0 + 1)]
    await store.set_rating(alice.id, t1.id, None, T0 + 4)  # clearing twice is harmless
    assert (await store.counts()).ratings == 1


async def test_rating_unknown_ids_or_bad_score_fail(store: GraphStore, alice: User) -> None:
    """Rating an unknown track or user raises NotFoundError; a score other than ±1 StoreError."""
    [t] = await store.resolve_tracks([TrackRef("A", "One")])
    with pytest.raises(NotFoundError):
        await store.set_rating(alice.id, "tr_nope", 1, T0)
    with pytest.raises(NotFoundError):
        await store.set_rating("u_nobody", t.id, 1, T0)
    with pytest.raises(StoreError):
        await store.set_rating(alice.id, t.id, 5, T0)
    assert await store.get_ratings(alice.id) == []


async def test_similarity_edges_upsert_per_source(store: GraphStore) -> None:
    """SIMILAR edges are keyed by (kind, from, to, source) and read by score descending."""
    t1, t2, t3 = await store.resolve_tracks(
        [TrackRef("A", "1"), TrackRef("A", "2"), TrackRef("A", "3")]
    )
    await store.set_similar(
        [
            Similarity("track", t1.id, t2.id, 0.5, "lastfm"),
            Similarity("track", t1.id, t3.id, 0.9, "lastfm"),
            Similarity("track", t1.id, t2.id, 0.7, "co-listening"),
        ]
    )
    await store.set_similar([Similarity("track", t1.id, t2.id, 0.95, "lastfm")])
    assert await store.get_similar("track", t1.id) == [
        Similarity("track", t1.id, t2.id, 0.95, "lastfm"),
        Similarity("track", t1.id, t3.id, 0.9, "lastfm"),
        Similarity("track", t1.id, t2.id, 0.7, "co-listening"),
    ]
    assert len(await store.get_similar("track", t1.id, limit=1)) == 1
    assert await store.get_similar("track", t2.id) == []
    assert await store.get_similar("artist", t1.id) == []
    assert (await store.counts()).similarities == 3


async def test_artist_similarity_and_unknown_ids(store: GraphStore) -> None:
    """Artist SIMILAR edges work the same; an unknown id fails the batch with NotFoundError."""
    a, b = await store.upsert_artists([ArtistRef("A"), ArtistRef("B")])
    await store.set_similar([Similarity("artist", a.id, b.id, 0.3, "lastfm")])
    with pytest.raises(NotFoundError):
        await store.set_similar(
            [
                Similarity("artist", b.id, a.id, 0.3, "lastfm"),
                Similarity("artist", a.id, "ar_nope", 0.1, "lastfm"),
            ]
        )
    assert await store.get_similar("artist", a.id) == [
        Similarity("artist", a.id, b.id, 0.3, "lastfm")
    ]
    assert await store.get_similar("artist", b.id) == []
    await store.set_similar([])
