"""DataLoaders, built fresh for every request, for every nested field that reads the store.

Each batch function is one store call for all the keys a request level asked for, and returns
exactly one value per key, in key order (the store's batched reads promise the same). So a query
for 100 tracks with their artists and tags costs one round trip per level, not one per track.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import (
    Artist,
    ArtistListen,
    ListenAggregate,
    Playlist,
    Tagging,
    Track,
    User,
)

K = TypeVar("K")
V = TypeVar("V")


def _loader(fn: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
    return DataLoader(load_fn=fn)


class Loaders:
    """The request's loaders. ``page_size`` is the largest first page a nested list may ask for."""

    def __init__(self, store: GraphStore, *, page_size: int = 100) -> None:
        self.page_size = page_size
        self._store = store
        self._top_artists: dict[int, DataLoader[str, list[ArtistListen]]] = {}
        self.user: DataLoader[str, User | None] = _loader(store.get_users)
        self.track: DataLoader[str, Track | None] = _loader(store.get_tracks)
        self.artist: DataLoader[str, Artist | None] = _loader(store.get_artists)
        self.playlist: DataLoader[str, Playlist | None] = _loader(store.get_playlists)

        async def track_tags(ids: list[str]) -> list[list[Tagging]]:
            return await store.get_tags("track", ids)

        async def artist_tags(ids: list[str]) -> list[list[Tagging]]:
            return await store.get_tags("artist", ids)

        async def artist_tracks(ids: list[str]) -> list[list[Track]]:
            return await store.tracks_by_artists(ids, limit=page_size)

        async def friends(ids: list[str]) -> list[list[str]]:
            # The store has no batched read for friends; a profile page asks for one user.
            return [await store.get_friends(i) for i in ids]

        self.track_tags: DataLoader[str, list[Tagging]] = _loader(track_tags)
        self.artist_tags: DataLoader[str, list[Tagging]] = _loader(artist_tags)
        #: the first ``page_size`` tracks of each artist, by title
        self.artist_tracks: DataLoader[str, list[Track]] = _loader(artist_tracks)
        self.artist_track_count: DataLoader[str, int] = _loader(store.count_tracks_by_artists)
        self.aggregates: DataLoader[str, list[ListenAggregate]] = _loader(store.get_aggregates)
        self.friends: DataLoader[str, list[str]] = _loader(friends)

    def top_artists(self, limit: int) -> DataLoader[str, list[ArtistListen]]:
        """Each user's ``limit`` most played artists (one loader, one batch, per limit)."""
        loader = self._top_artists.get(limit)
        if loader is None:
            store = self._store

            async def load(ids: list[str]) -> list[list[ArtistListen]]:
                return await store.top_artists(ids, limit=limit)

            loader = self._top_artists[limit] = _loader(load)
        return loader
