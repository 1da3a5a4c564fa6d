"""DataLoaders, built fresh for every request, for every nested field that reads the store.

Each batch function is one store call for all the keys a request level asked for, and returns
exactly one value per key, in key order (the store's batched reads promise the same). So a query
for 100 tracks with their artists and tags costs one round trip per level, not one per track.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader
from strawberry.exceptions import WrongNumberOfResultsReturned

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


class BulkLoader(DataLoader[K, V]):
    """A DataLoader whose ``load_many`` of several keys not yet asked for reads them at once.

    Strawberry's ``load_many`` is ``gather(*map(load, keys))``: a future, a queued task and a
    gather callback per key, and a scheduled batch. A page of 20 listens' tracks is known in
    full when it is asked for, so this reads the missing keys with one direct call of the batch
    function (still one store call) and leaves a settled future per key in the cache, where any
    later or concurrent ``load`` finds it. Single keys keep the batching path."""

    def load_many(self, keys: Iterable[K]) -> Awaitable[list[V]]:
        keys = list(keys)
        cache = self.cache_map
        missing = []
        for key in dict.fromkeys(keys):
            known = cache.get(key)
            if known is None or known.cancelled():
                missing.append(key)
        if len(missing) < 2:
            return super().load_many(keys)
        return self._load_now(keys, missing)

    async def _load_now(self, keys: list[K], missing: list[K]) -> list[V]:
        cache = self.cache_map
        loop = self.loop
        # The futures go in the cache here, once this runs, not when load_many is called: a list
        # load cancelled before it ever runs would otherwise leave its keys pending for good.
        futures: list[asyncio.Future[V]] = []
        for key in missing:
            future: asyncio.Future[V] = loop.create_future()
            cache.set(key, future)
            futures.append(future)
        try:
            values = list(await self.load_fn(missing))
            if len(values) != len(missing):
                raise WrongNumberOfResultsReturned(expected=len(missing), received=len(values))
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()  # the next load of the key reads it again
            raise
        except Exception as error:
            for future in futures:
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # retrieved: this call raises it
            raise
        for future, value in zip(futures, values, strict=True):
            if future.done():  # pragma: no cover - primed meanwhile
                continue
            if isinstance(value, BaseException):
                future.set_exception(value)
                future.exception()  # retrieved below, or by whoever loads the key
            else:
                future.set_result(value)
        out: list[V] = []
        for key in keys:
            known = cache.get(key)
            assert known is not None
            out.append(known.result() if known.done() else await known)
        return out


def _loader(fn: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
    return BulkLoader(load_fn=fn)


class Loaders:
    """The request's loaders, each made when the request first uses it (a user page needs four
    of the eleven). ``page_size`` is the largest first page a nested list may ask for."""

    def __init__(self, store: GraphStore, *, page_size: int = 100) -> None:
        self.page_size = page_size
        self._store = store
        self._top_artists: dict[int, DataLoader[str, list[ArtistListen]]] = {}

    @cached_property
    def user(self) -> DataLoader[str, User | None]:
        return _loader(self._store.get_users)

    @cached_property
    def track(self) -> DataLoader[str, Track | None]:
        return _loader(self._store.get_tracks)

    @cached_property
    def artist(self) -> DataLoader[str, Artist | None]:
        return _loader(self._store.get_artists)

    @cached_property
    def playlist(self) -> DataLoader[str, Playlist | None]:
        return _loader(self._store.get_playlists)

    @cached_property
    def track_tags(self) -> DataLoader[str, list[Tagging]]:
        store = self._store

        async def track_tags(ids: list[str]) -> list[list[Tagging]]:
            return await store.get_tags("track", ids)

        return _loader(track_tags)

    @cached_property
    def artist_tags(self) -> DataLoader[str, list[Tagging]]:
        store = self._store

        async def artist_tags(ids: list[str]) -> list[list[Tagging]]:
            return await store.get_tags("artist", ids)

        return _loader(artist_tags)

    @cached_property
    def artist_tracks(self) -> DataLoader[str, list[Track]]:
        """The first ``page_size`` tracks of each artist, by title."""
        store, page_size = self._store, self.page_size

        async def artist_tracks(ids: list[str]) -> list[list[Track]]:
            return await store.tracks_by_artists(ids, limit=page_size)

        return _loader(artist_tracks)

    @cached_property
    def artist_track_count(self) -> DataLoader[str, int]:
        return _loader(self._store.count_tracks_by_artists)

    @cached_property
    def aggregates(self) -> DataLoader[str, list[ListenAggregate]]:
        return _loader(self._store.get_aggregates)

    @cached_property
    def friends(self) -> DataLoader[str, list[str]]:
        store = self._store

        async def friends(ids: list[str]) -> list[list[str]]:
            # The store has no batched read for friends; a profile page asks for one user.
            return [await store.get_friends(i) for i in ids]

        return _loader(friends)

    def top_artists(self, limit: int) -> DataLoader[str, list[ArtistListen]]:
        """Each user's ``limit`` most played artists (one loader, one batch, per limit)."""
        loader = self._top_artists.get(limit)
        if loader is None:
            store = self._store

            async def load(ids: list[str]) -> list[list[ArtistListen]]:
                return await store.top_artists(ids, limit=limit)

            loader = self._top_artists[limit] = _loader(load)
        return loader
