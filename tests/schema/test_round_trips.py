"""DataLoaders keep the number of store round trips of a request independent of list lengths."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from musicgraph.auth import hash_token
from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, Tagging, TrackRef
from musicgraph.graph.sqlite_store import SqliteGraphStore
from musicgraph.schema.build import build_schema
from musicgraph.schema.context import AppState, Context, Viewer
from musicgraph.schema.loaders import Loaders
from musicgraph.settings import Settings


class CountingStore:
    """Wraps a store and counts every awaited call (one call = one round trip)."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await target(*args, **kwargs)

        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())


async def graph(path: Path, n: int) -> SqliteGraphStore:
    """``n`` tracks by ``n`` artists, every track and artist tagged twice, one user who listened
    to every track, and a playlist of all of them."""
    store = SqliteGraphStore(path)
    await store.open()
    tracks = await store.resolve_tracks(
        [TrackRef(artist=f"Artist {i:03}", title=f"Song {i:03}") for i in range(n)]
    )
    await store.set_tags(
        [Tagging("track", t.id, tag, 1) for t in tracks for tag in ("a", "b")]
        + [Tagging("artist", t.artist_ids[0], tag, 1) for t in tracks for tag in ("c", "d")]
    )
    user = await store.create_user("listener", token_hash=hash_token("tok"))
    now = int(time.time())
    await store.record_listens(
        [
            ListenInput(
                user.id,
                TrackRef(artist=f"Artist {i:03}", title=f"Song {i:03}"),
                now - 100 - i,
                "test",
            )
            for i in range(n)
        ]
    )
    await store.create_playlist(user.id, "all", public=True, track_ids=[t.id for t in tracks])
    return store


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[dict[int, SqliteGraphStore]]:
    built = {n: await graph(tmp_path / f"g{n}.db", n) for n in (10, 100)}
    yield built
    for s in built.values():
        await s.close()


async def run(
    store: GraphStore, query: str, *, user: bool = False
) -> tuple[dict[str, Any], CountingStore]:
    counting = CountingStore(store)
    settings = Settings.from_env({}, env_file=None)
    state = AppState(settings=settings, store=counting, bus=EventBus())  # type: ignore[arg-type]
    viewer = Viewer(user=await store.get_user_by_name("listener") if user else None)
    context = Context(state=state, viewer=viewer, loaders=Loaders(counting, page_size=100))  # type: ignore[arg-type]
    result = await build_schema(settings).execute(query, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data, counting


SEARCH = """{ searchTracks(query: "song", first: 100) { totalCount edges { node {
  title tags { name } artists { name tags { name } tracks(first: 5) { totalCount nodes { title } } }
} } } }"""

PLAYLIST = """query { me { playlists { tracks(first: 100) { totalCount nodes { position
  track { title tags { name } artists { name tags { name } } } } } } } }"""

HISTORY = """{ me { listens(first: 100) { totalCount edges { node { listenedAt
  track { title tags { name } artists { name tags { name } } } } } }
  topArtists(limit: 100) { count artist { name tags { name } } } } }"""


@pytest.mark.parametrize(
    ("name", "query"), [("search", SEARCH), ("playlist", PLAYLIST), ("history", HISTORY)]
)
async def test_round_trips_do_not_grow_with_the_list(
    stores: dict[int, SqliteGraphStore], name: str, query: str
) -> None:
    """A query for 100 tracks with their artists and tags makes exactly as many store calls as
    the same query for 10 tracks."""
    small, small_calls = await run(stores[10], query, user=True)
    large, large_calls = await run(stores[100], query, user=True)
    assert str(small).count("Song") > 0 and str(large).count("Song") > str(small).count("Song")
    assert large_calls.calls == small_calls.calls, (name, small_calls.calls, large_calls.calls)
    assert large_calls.total <= 12
