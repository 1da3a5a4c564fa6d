"""Playlists: ownership, visibility, and positions that stay contiguous through every edit."""

from __future__ import annotations

import pytest

from musicgraph.errors import NotFoundError, StoreError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Playlist, Track, TrackRef, User

from .conftest import T0


@pytest.fixture
async def tracks(store: GraphStore) -> list[Track]:
    """Six tracks, T0..T5."""
    return await store.resolve_tracks([TrackRef("Artist", f"T{i}") for i in range(6)])


async def titles(store: GraphStore, playlist_id: str, tracks: list[Track]) -> list[str]:
    """The playlist's track titles in order, after checking positions are 0..n-1."""
    entries = await store.playlist_entries(playlist_id)
    assert [e.position for e in entries] == list(range(len(entries)))
    assert await store.count_playlist_entries(playlist_id) == len(entries)
    by_id = {t.id: t.title for t in tracks}
    return [by_id[e.track_id] for e in entries]


async def test_create_and_read_playlist(
    store: GraphStore, alice: User, tracks: list[Track]
) -> None:
    """A created playlist reads back with its tracks in order and its times."""
    p = await store.create_playlist(
        alice.id,
        "Morning ☀️",
        description="calm",
        public=True,
        track_ids=[tracks[2].id, tracks[0].id, tracks[2].id],
        at=T0,
    )
    assert p == Playlist(p.id, alice.id, "Morning ☀️", "calm", True, T0, T0)
    assert await store.get_playlists(["pl_nope", p.id]) == [None, p]
    assert await titles(store, p.id, tracks) == ["T2", "T0", "T2"]
    entries = await store.playlist_entries(p.id, offset=1, limit=1)
    assert [(e.position, e.track_id, e.added_at) for e in entries] == [(1, tracks[0].id, T0)]
    assert await store.get_playlists([]) == []


async def test_create_playlist_unknown_owner_or_track(
    store: GraphStore, alice: User, tracks: list[Track]
) -> None:
    """An unknown owner or track raises NotFoundError and creates no playlist."""
    with pytest.raises(NotFoundError):
        await store.create_playlist("u_nobody", "x")
    with pytest.raises(NotFoundError):
        await store.create_playlist(alice.id, "x", track_ids=[tracks[0].id, "tr_nope"])
    assert await store.list_playlists(alice.id) == []
    assert (await store.counts()).playlists == 0


async def test_update_and_delete_playlist(store: GraphStore, alice: User) -> None:
    """Updates change only the given fields; delete reports whether it existed."""
    p = await store.create_playlist(alice.id, "Old", at=T0)
    q = await store.update_playlist(p.id, name="New", public=True, at=T0 + 5)
    assert q == Playlist(p.id, alice.id, "New", "", True, T0, T0 + 5)
    r = await store.update_playlist(p.id, description="words", at=T0 + 6)
    assert (r.name, r.description, r.public, r.updated_at) == ("New", "words", True, T0 + 6)
    with pytest.raises(NotFoundError):
        await store.update_playlist("pl_nope", name="x")
    assert await store.delete_playlist(p.id) is True
    assert await store.delete_playlist(p.id) is False
    assert await store.get_playlists([p.id]) == [None]
    assert await store.playlist_entries(p.id) == []


async def test_list_playlists_by_owner_and_public(
    store: GraphStore, alice: User, bob: User
) -> None:
    """Owners see their playlists by name; others see only public ones, newest first."""
    b = await store.create_playlist(alice.id, "b private", at=T0)
    a = await store.create_playlist(alice.id, "a public", public=True, at=T0 + 1)
    c = await store.create_playlist(bob.id, "c public", public=True, at=T0 + 2)
    assert await store.list_playlists(alice.id) == [a, b]
    assert await store.list_playlists(alice.id, include_private=False) == [a]
    assert await store.list_playlists("u_nobody") == []
    assert await store.list_public_playlists() == [c, a]
    assert await store.list_public_playlists(offset=1, limit=5) == [a]


async def test_positions_stay_contiguous_through_edits(
    store: GraphStore, alice: User, tracks: list[Track]
) -> None:
    """Append, insert, remove and move keep positions 0..n-1 with the right order."""
    t = tracks
    p = await store.create_playlist(alice.id, "Mix", track_ids=[t[0].id, t[1].id], at=T0)
    await store.add_to_playlist(p.id, [t[2].id, t[3].id], at=T0 + 1)
    assert await titles(store, p.id, t) == ["T0", "T1", "T2", "T3"]
    await store.add_to_playlist(p.id, [t[4].id, t[5].id], position=1, at=T0 + 2)
    assert await titles(store, p.id, t) == ["T0", "T4", "T5", "T1", "T2", "T3"]
    await store.add_to_playlist(p.id, [t[0].id], position=0, at=T0 + 3)
    assert await titles(store, p.id, t) == ["T0", "T0", "T4", "T5", "T1", "T2", "T3"]
    await store.remove_from_playlist(p.id, [0, 3, 6])
    assert await titles(store, p.id, t) == ["T0", "T4", "T1", "T2"]
    await store.move_in_playlist(p.id, 0, 3)
    assert await titles(store, p.id, t) == ["T4", "T1", "T2", "T0"]
    await store.move_in_playlist(p.id, 2, 0)
    assert await titles(store, p.id, t) == ["T2", "T4", "T1", "T0"]
    await store.move_in_playlist(p.id, 1, 1)
    assert await titles(store, p.id, t) == ["T2", "T4", "T1", "T0"]
    entries = await store.playlist_entries(p.id)
    assert [e.added_at for e in entries] == [T0 + 1, T0 + 2, T0, T0]
    [updated] = await store.get_playlists([p.id])
    assert updated is not None and updated.updated_at >= T0 + 3


async def test_bad_positions_and_unknown_ids_change_nothing(
    store: GraphStore, alice: User, tracks: list[Track]
) -> None:
    """Out-of-range positions raise StoreError, unknown ids NotFoundError; entries stay."""
    t = tracks
    p = await store.create_playlist(alice.id, "Mix", track_ids=[t[0].id, t[1].id], at=T0)
    with pytest.raises(StoreError):
        await store.add_to_playlist(p.id, [t[2].id], position=5)
    with pytest.raises(NotFoundError):
        await store.add_to_playlist(p.id, [t[2].id, "tr_nope"])
    with pytest.raises(NotFoundError):
        await store.add_to_playlist("pl_nope", [t[2].id])
    with pytest.raises(StoreError):
        await store.remove_from_playlist(p.id, [0, 2])
    with pytest.raises(StoreError):
        await store.move_in_playlist(p.id, 0, 2)
    with pytest.raises(NotFoundError):
        await store.remove_from_playlist("pl_nope", [0])
    assert await titles(store, p.id, t) == ["T0", "T1"]


async def test_empty_playlist_edits(store: GraphStore, alice: User) -> None:
    """An empty playlist has no entries; adding or removing nothing is a no-op."""
    p = await store.create_playlist(alice.id, "Empty", at=T0)
    await store.add_to_playlist(p.id, [])
    await store.remove_from_playlist(p.id, [])
    assert await store.playlist_entries(p.id) == []
    assert await store.count_playlist_entries(p.id) == 0
