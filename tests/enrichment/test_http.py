"""The resilient HTTP layer against a real HTTP server: cache, retries, Retry-After, breaker, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pybreaker
import pytest

from musicgraph.enrichment.http import (
    ClientConfig,
    ResponseCache,
    SourceClient,
    cache_key,
    parse_retry_after,
)
from musicgraph.errors import SourceUnavailableError
from musicgraph.events import EventBus
from musicgraph.health.monitor import HealthMonitor
from musicgraph.settings import Settings
from tests.support.fake_apis import FakeApis, FakeWorld

UA = {"User-Agent": "musicgraph-tests/1 ( tests@musicgraph.invalid )"}


def mb_client(
    fake: FakeApis, monitor: HealthMonitor, cache: ResponseCache | None = None, **kw: object
) -> SourceClient:
    config = {
        "name": "musicbrainz",
        "base_url": f"{fake.url}/musicbrainz",
        "rate": 1000.0,
        "timeout": 1.0,
        "backoff": 0.02,
        "breaker_fail_max": 3,
        "breaker_reset": 0.5,
        "headers": UA,
        "rate_limit_statuses": frozenset({429, 503}),
        **kw,
    }
    return SourceClient(ClientConfig(**config), monitor=monitor, cache=cache)  # type: ignore[arg-type]


def genre_probe(client: SourceClient, **kw: object):  # type: ignore[no-untyped-def]
    return client.get("/ws/2/genre/all", params={"fmt": "json", "limit": 1}, **kw)  # type: ignore[arg-type]


async def test_cache_hit_costs_no_request_and_no_rate_budget(
    fake: FakeApis, tmp_path: Path
) -> None:
    """A cached answer is served without a request and without taking from the rate limiter."""
    monitor = HealthMonitor()
    cache = await ResponseCache(tmp_path / "cache.db").open()
    client = mb_client(fake, monitor, cache, rate=1.0)
    try:
        first = await genre_probe(client, ttl=60.0)
        budget = client.budget()
        second = await genre_probe(client, ttl=60.0)
        assert not first.from_cache and second.from_cache
        assert second.body == first.body
        assert fake.world.stats()["musicbrainz"]["requests"] == 1
        assert client.budget() >= budget  # nothing was taken for the hit
        assert monitor.get("musicbrainz").cache_hits == 1  # type: ignore[union-attr]
    finally:
        await client.aclose()
        await cache.close()


async def test_cache_survives_a_restart_and_expires(fake: FakeApis, tmp_path: Path) -> None:
    """Cached responses persist in the SQLite file across instances, until their TTL runs out."""
    cache = await ResponseCache(tmp_path / "cache.db").open()
    await cache.put("k", "musicbrainz", 200, b"{}", ttl=60)
    await cache.put("old", "musicbrainz", 200, b"{}", ttl=0.01)
    await cache.close()
    await asyncio.sleep(0.02)
    again = await ResponseCache(tmp_path / "cache.db").open()
    try:
        assert await again.get("k") == (200, b"{}")
        assert await again.get("old") is None
    finally:
        await again.close()


def test_cache_key_ignores_credentials() -> None:
    """Two requests differing only in their api_key share one cache entry (keys never stored)."""
    a = cache_key("lastfm", "GET", "/2.0/", {"method": "track.getInfo", "api_key": "one"})
    b = cache_key("lastfm", "GET", "/2.0/", {"method": "track.getInfo", "api_key": "two"})
    assert a == b
    assert cache_key("lastfm", "GET", "/2.0/", {"method": "x"}) != a


def test_retry_after_parses_seconds_and_dates() -> None:
    """Retry-After is honoured both as delta-seconds and as an HTTP date."""
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(
        10.0
    )
    assert parse_retry_after("soon") is None


async def test_burst_of_5xx_is_retried_and_reported(fake: FakeApis, world: FakeWorld) -> None:
    """Two 500s then success: the caller gets the answer; health counts the errors by kind."""
    monitor = HealthMonitor()
    client = mb_client(fake, monitor)
    world.inject("musicbrainz", "500", count=2)
    try:
        r = await genre_probe(client)
        assert r.ok
        h = monitor.get("musicbrainz")
        assert h is not None
        assert h.errors_by_kind == {"http_5xx": 2}
        assert h.requests == 3 and h.last_error and "HTTP 500" in h.last_error
        assert h.breaker_state == "closed"
    finally:
        await client.aclose()


async def test_timeout_is_retried(fake: FakeApis, world: FakeWorld) -> None:
    """A request that times out is retried and the timeout is reported as such."""
    monitor = HealthMonitor()
    client = mb_client(fake, monitor, timeout=0.3)
    world.inject("musicbrainz", "timeout", count=1)
    try:
        assert (await genre_probe(client)).ok
        assert monitor.get("musicbrainz").errors_by_kind == {"timeout": 1}  # type: ignore[union-attr]
    finally:
        await client.aclose()


async def test_429_retry_after_pauses_the_source(fake: FakeApis, world: FakeWorld) -> None:
    """A 429 with Retry-After: 1 holds the source for at least that second, then succeeds."""
    monitor = HealthMonitor()
    client = mb_client(fake, monitor)
    world.inject("musicbrainz", "429", count=1, retry_after=1)
    try:
        started = time.monotonic()
        assert (await genre_probe(client)).ok
        assert time.monotonic() - started >= 0.95
        assert monitor.get("musicbrainz").errors_by_kind == {"rate_limited": 1}  # type: ignore[union-attr]
    finally:
        await client.aclose()


async def test_breaker_opens_reports_and_recovers(fake: FakeApis, world: FakeWorld) -> None:
    """A source that keeps failing opens its breaker (published as health.changed); once the
    fault clears, the next call after the reset timeout half-opens and closes it again."""
    bus = EventBus()
    monitor = HealthMonitor(bus)
    sub = bus.subscribe(["health.changed"])
    client = mb_client(fake, monitor)
    world.set_down("musicbrainz")
    try:
        with pytest.raises(SourceUnavailableError, match="circuit breaker"):
            await genre_probe(client)
        assert client.breaker.current_state == pybreaker.STATE_OPEN
        h = monitor.get("musicbrainz")
        assert h is not None and h.status == "down" and h.breaker_state == "open"
        requests_while_open = world.stats()["musicbrainz"]["requests"]
        with pytest.raises(SourceUnavailableError):
            await genre_probe(client)
        assert world.stats()["musicbrainz"]["requests"] == requests_while_open  # not even sent
        states = []
        while not sub.queue.empty():
            event = await sub.get()
            states.append(event.payload["sources"][0]["breaker_state"])
        assert "open" in states
        world.set_down("musicbrainz", False)
        await asyncio.sleep(0.6)
        assert (await genre_probe(client)).ok
        assert client.breaker.current_state == pybreaker.STATE_CLOSED
        assert monitor.get("musicbrainz").breaker_state == "closed"  # type: ignore[union-attr]
    finally:
        await client.aclose()


async def test_client_keeps_the_servers_rate_limit(fake: FakeApis, world: FakeWorld) -> None:
    """At the server's own limit (20/s, enforced), 40 requests draw no rate-limit answer."""
    world.set_rate("musicbrainz", 20.0)
    monitor = HealthMonitor()
    client = mb_client(fake, monitor, rate=20.0)
    try:
        await asyncio.gather(*(genre_probe(client) for _ in range(40)))
        stats = world.stats()["musicbrainz"]
        assert stats["rate_limited"] == 0
        assert stats["accepted"] == 40
    finally:
        await client.aclose()


async def test_identical_requests_in_flight_are_sent_once(fake: FakeApis, tmp_path: Path) -> None:
    """Concurrent identical cacheable requests share one HTTP exchange."""
    monitor = HealthMonitor()
    cache = await ResponseCache(tmp_path / "c.db").open()
    client = mb_client(fake, monitor, cache)
    try:
        answers = await asyncio.gather(*(genre_probe(client, ttl=60.0) for _ in range(5)))
        assert len({a.body for a in answers}) == 1
        assert fake.world.stats()["musicbrainz"]["requests"] == 1
    finally:
        await client.aclose()
        await cache.close()


def test_settings_name_each_source_alike(settings_for: Callable[..., Settings]) -> None:
    """Base URLs, credentials and rates come from MUSICGRAPH_<SOURCE>_* settings."""
    s = Settings.from_env(
        {"MUSICGRAPH_MUSICBRAINZ_URL": "http://mirror.local", "MUSICGRAPH_MUSICBRAINZ_RATE": "50"},
        env_file=None,
    )
    assert s.musicbrainz_url == "http://mirror.local" and s.musicbrainz_rate == 50.0
    assert s.lastfm_api_key is None and s.spotify_client_id is None and s.cyanite_token is None


async def test_fake_server_enforces_its_limit(fake: FakeApis, world: FakeWorld) -> None:
    """A client going faster than the server's limit gets 503s (and retries through them)."""
    world.set_rate("musicbrainz", 10.0)
    monitor = HealthMonitor()
    client = mb_client(
        fake, monitor, rate=200.0, max_retries=10, backoff=0.2, breaker_fail_max=1000
    )
    try:
        await asyncio.gather(*(genre_probe(client) for _ in range(40)))
        assert world.stats()["musicbrainz"]["rate_limited"] > 0
        assert monitor.get("musicbrainz").errors_by_kind["rate_limited"] > 0  # type: ignore[union-attr]
    finally:
        await client.aclose()
