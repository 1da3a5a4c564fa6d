"""Helpers for the contract tests: they use only the ``GraphStore`` protocol, so every test runs
unchanged on SQLite and on Neo4j (the ``store`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, TrackRef, User

T0 = 1_600_000_000  # 2020-09-13, a plausible listen time

MBID_A = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
MBID_B = "1c1b34a0-8d3f-4b3a-9b70-0c5d3c3f1a2e"
ARTIST_MBID = "5b11f4ce-a62d-471e-81fc-a69a8278c7da"
ISRC = "USUM71703861"
SPOTIFY = "4uLU6hMCjMI75M1A2tKUQC"


def listen(
    user: User | str,
    artist: str,
    title: str,
    at: int,
    *,
    skipped: bool = False,
    source: str = "test",
    **ref: Any,
) -> ListenInput:
    """One listen of ``artist - title`` by ``user`` at ``at``."""
    user_id = user if isinstance(user, str) else user.id
    return ListenInput(
        user_id=user_id,
        track=TrackRef(artist=artist, title=title, **ref),
        listened_at=at,
        source=source,
        skipped=skipped,
    )


async def collect(aiter: Any) -> list[Any]:
    """Every record of an ``iter_*`` stream, flattened."""
    out: list[Any] = []
    async for chunk in aiter:
        out.extend(chunk)
    return out


async def snapshot(store: GraphStore) -> dict[str, Any]:
    """Everything the store holds, as comparable plain data (to prove a failed write changed
    nothing)."""
    return {
        "counts": asdict(await store.counts()),
        "users": sorted(await collect(store.iter_users()), key=lambda u: u.id),
        "artists": sorted(await collect(store.iter_artists()), key=lambda a: a.id),
        "tracks": sorted(await collect(store.iter_tracks()), key=lambda t: t.id),
        "aggregates": sorted(
            await collect(store.iter_aggregates()), key=lambda a: (a.user_id, a.track_id)
        ),
        "listens": sorted(
            await collect(store.iter_listens()), key=lambda x: (x.user_id, x.listened_at)
        ),
        "track_artists": sorted(
            await collect(store.iter_track_artists()), key=lambda x: (x.track_id, x.artist_id)
        ),
        "artist_listens": sorted(
            await collect(store.iter_artist_listens()), key=lambda x: (x.user_id, x.artist_id)
        ),
        "artist_tags": sorted(
            await collect(store.iter_tags("artist")), key=lambda x: (x.item_id, x.tag)
        ),
        "track_tags": sorted(
            await collect(store.iter_tags("track")), key=lambda x: (x.item_id, x.tag)
        ),
        "friends": sorted(
            await collect(store.iter_friendships()), key=lambda x: (x.user_id, x.friend_id)
        ),
        "ratings": sorted(
            await collect(store.iter_ratings()), key=lambda x: (x.user_id, x.track_id)
        ),
        "entries": sorted(
            await collect(store.iter_playlist_entries()),
            key=lambda x: (x.playlist_id, x.position),
        ),
        "track_similar": sorted(
            await collect(store.iter_similar("track")),
            key=lambda x: (x.source_id, x.target_id, x.source),
        ),
        "artist_similar": sorted(
            await collect(store.iter_similar("artist")),
            key=lambda x: (x.source_id, x.target_id, x.source),
        ),
    }


@pytest.fixture
async def alice(store: GraphStore) -> User:
    """A user named Alice in the store under test."""
    return await store.create_user("Alice", created_at=T0)


@pytest.fixture
async def bob(store: GraphStore) -> User:
    """A user named Bob in the store under test."""
    return await store.create_user("Bob", created_at=T0)
