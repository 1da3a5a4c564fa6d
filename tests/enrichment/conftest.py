"""Fixtures for enrichment tests: the fake APIs on 127.0.0.1 and settings pointing at them.

Rates are high (tests stay fast) except where a test is about the limit; breakers reset in half a
second and backoffs are short, so faults play out in a second or two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ENRICHMENT_SOURCES, Track, TrackRef
from musicgraph.settings import Settings
from tests.support.fake_apis import FakeApis, FakeWorld

FAST = {
    "musicbrainz_rate": 1000.0,
    "lastfm_rate": 1000.0,
    "spotify_rate": 1000.0,
    "cyanite_rate": 1000.0,
    "http_timeout": 1.0,
    "http_backoff": 0.02,
    "http_max_retries": 4,
    "breaker_fail_max": 3,
    "breaker_reset": 0.5,
    "enrich_retry_delay": 1.0,
    "enrich_max_attempts": 3,
    "cyanite_poll": 1.0,
    "health_interval": 3600.0,
}


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(timeout_sleep=2.0)


@pytest.fixture
def fake(world: FakeWorld) -> Iterator[FakeApis]:
    with FakeApis(world) as apis:
        yield apis


def make_settings(fake: FakeApis, tmp_path: Path, **overrides: Any) -> Settings:
    values = {**FAST, **overrides}
    return Settings.from_env(
        fake.env(),
        env_file=None,
        db_path=tmp_path / "graph.db",
        http_cache=tmp_path / "http-cache.db",
        **values,
    )


@pytest.fixture
def settings_for(fake: FakeApis, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(fake, tmp_path, **overrides)

    return build


def catalogue(n: int, *, artists: int = 5, obscure: int = 0) -> list[tuple[str, str]]:
    pairs = [(f"Band {i % artists}", f"Song number {i}") for i in range(n)]
    pairs += [(f"Nobody {i}", f"An obscure demo {i}") for i in range(obscure)]
    return pairs


async def seed(
    store: GraphStore,
    world: FakeWorld,
    pairs: Sequence[tuple[str, str]],
    *,
    sources: Sequence[str] = ENRICHMENT_SOURCES,
) -> list[Track]:
    """Create the tracks in the store, teach the fake APIs about them, queue them."""
    world.add_tracks([p for p in pairs if "obscure" not in p[1]])
    tracks = await store.resolve_tracks([TrackRef(artist=a, title=t) for a, t in pairs])
    await store.enqueue_enrichment([t.id for t in tracks], sources)
    return tracks


async def wait_for(predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
