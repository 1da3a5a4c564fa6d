"""The health monitor: per-source numbers, change events, Prometheus text, store readiness, probes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from musicgraph.enrichment.pipeline import build_sources
from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.sqlite_store import SqliteGraphStore
from musicgraph.health import HealthMonitor
from musicgraph.settings import Settings
from tests.support.fake_apis import FakeApis, FakeWorld


def drain(sub: object) -> list[dict[str, object]]:
    queue = sub.queue  # type: ignore[attr-defined]
    out = []
    while not queue.empty():
        out.append(queue.get_nowait().payload)
    return out


def test_latency_percentiles_and_success_rate() -> None:
    """p50/p95/p99 and the success rate come from the sliding window of recent requests."""
    monitor = HealthMonitor(window=100)
    monitor.register_source("musicbrainz", rate_limit=1.0)
    for ms in range(1, 101):
        monitor.record_success("musicbrainz", ms / 1000)
    for _ in range(25):
        monitor.record_failure("musicbrainz", "http_5xx", "HTTP 500 from /ws/2/recording")
    h = monitor.get("musicbrainz")
    assert h is not None
    assert h.requests == 125 and h.errors == 25 and h.errors_by_kind == {"http_5xx": 25}
    # the window holds the last 100 outcomes: 75 successes and the 25 failures
    assert h.success_rate == pytest.approx(0.75)
    assert h.latency_p50_ms == pytest.approx(50.0) and h.latency_p99_ms == pytest.approx(99.0)
    assert h.last_error == "HTTP 500 from /ws/2/recording" and h.last_error_at is not None
    assert h.rate_limit == 1.0 and h.status == "degraded"


def test_changes_are_published_once_not_on_every_request() -> None:
    """health.changed goes out when a source's status or breaker state changes, with the whole
    snapshot in the payload; a run of successes publishes nothing more."""
    bus = EventBus()
    sub = bus.subscribe(["health.changed"])
    monitor = HealthMonitor(bus)
    monitor.register_source("spotify")
    drain(sub)
    for _ in range(10):
        monitor.record_success("spotify", 0.01)
    assert len(drain(sub)) == 1  # unknown -> ok
    monitor.set_breaker_state("spotify", "open")
    (event,) = drain(sub)
    assert event["reason"] == "breaker" and event["source"] == "spotify"
    spotify = next(s for s in event["sources"] if s["name"] == "spotify")  # type: ignore[union-attr]
    assert spotify["breaker_state"] == "open" and spotify["status"] == "down"
    monitor.set_degraded("spotify", "audio_features", "403 Forbidden")
    monitor.set_breaker_state("spotify", "closed")
    payloads = drain(sub)
    assert payloads[-1]["sources"][0]["status"] == "degraded"  # type: ignore[index]


def test_disabled_source_is_reported_with_its_reason() -> None:
    """A source without credentials shows as disabled, with the setting to fix, everywhere."""
    monitor = HealthMonitor()
    monitor.register_source(
        "cyanite", enabled=False, disabled_reason="no access token (set MUSICGRAPH_CYANITE_TOKEN)"
    )
    h = monitor.get("cyanite")
    assert h is not None and h.status == "disabled" and h.breaker_state == "disabled"
    assert "MUSICGRAPH_CYANITE_TOKEN" in (h.disabled_reason or "")
    assert b'musicgraph_source_breaker_state{source="cyanite"} -1.0' in monitor.prometheus_text()


def test_prometheus_text_has_every_family() -> None:
    """/metrics text carries requests, errors by kind, latency, breaker, budget and cache hits."""
    monitor = HealthMonitor()
    monitor.register_source("lastfm", rate_limit=5.0, budget=lambda: 3.0)
    monitor.record_success("lastfm", 0.02)
    monitor.record_failure("lastfm", "rate_limited", "error 29", latency=0.01)
    monitor.record_cache_hit("lastfm")
    monitor.set_enrichment_counts({"lastfm": {"done": 4, "pending": 2}})
    text = monitor.prometheus_text().decode()
    for needle in (
        'musicgraph_source_requests_total{outcome="ok",source="lastfm"} 1.0',
        'musicgraph_source_errors_total{kind="rate_limited",source="lastfm"} 1.0',
        'musicgraph_source_cache_hits_total{source="lastfm"} 1.0',
        'musicgraph_source_request_seconds_count{source="lastfm"} 2.0',
        'musicgraph_source_breaker_state{source="lastfm"} 0.0',
        'musicgraph_source_rate_budget_remaining{source="lastfm"} 3.0',
        'musicgraph_source_rate_limit{source="lastfm"} 5.0',
        'musicgraph_enrichment_states{source="lastfm",status="pending"} 2.0',
    ):
        assert needle in text, needle
    # two monitors in one process do not collide on a global registry
    HealthMonitor().register_source("lastfm")


async def test_store_ping_and_readiness(sqlite_store: GraphStore, tmp_path: Path) -> None:
    """The store is ready when its ping answers; a closed store is reported down with why."""
    monitor = HealthMonitor()
    ready, details = await monitor.readiness(sqlite_store, projection_ready=True)
    assert ready and details["store"]["ok"] and details["projection"]["ok"]
    assert monitor.get("store").status == "ok"  # type: ignore[union-attr]
    assert b"musicgraph_store_up 1.0" in monitor.prometheus_text()
    closed = SqliteGraphStore(tmp_path / "other.db")
    await closed.open()
    await closed.close()
    ready, details = await monitor.readiness(closed, projection_ready=True)
    assert not ready and "store ping failed" in details["store"]["error"]
    assert monitor.get("store").status == "down"  # type: ignore[union-attr]
    ready, _ = await monitor.readiness(sqlite_store, projection_ready=False)
    assert not ready


@pytest.fixture
def fake_world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def fake(fake_world: FakeWorld) -> Iterator[FakeApis]:
    with FakeApis(fake_world) as apis:
        yield apis


@pytest.fixture
async def sources_monitor(fake: FakeApis, tmp_path: Path) -> AsyncIterator[HealthMonitor]:
    settings = Settings.from_env(
        fake.env(), env_file=None, breaker_fail_max=2, http_backoff=0.01, http_max_retries=1
    )
    bus = EventBus()
    monitor = HealthMonitor(bus, interval=0.2)
    sources = build_sources(settings, monitor)
    yield monitor
    await monitor.stop()
    for s in sources:
        await s.aclose()


async def test_periodic_probes_reach_every_source(
    sources_monitor: HealthMonitor, fake_world: FakeWorld
) -> None:
    """The periodic light probe asks every source something cheap and publishes the result."""
    bus = sources_monitor.bus
    assert bus is not None
    sub = bus.subscribe(["health.changed"])
    sources_monitor.start()
    for _ in range(100):
        if sum(1 for p in drain(sub) if p["reason"] == "interval") or all(
            (h.requests > 0) for h in sources_monitor.snapshot() if h.kind == "source"
        ):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    snapshot = {h.name: h for h in sources_monitor.snapshot()}
    for name in ("musicbrainz", "lastfm", "spotify", "cyanite"):
        assert snapshot[name].status == "ok", snapshot[name]
        assert fake_world.stats()[name]["requests"] >= 1


async def test_probe_of_a_failing_source_is_recorded(
    sources_monitor: HealthMonitor, fake_world: FakeWorld
) -> None:
    """A probe that fails counts as a failed request; enough of them open the breaker."""
    fake_world.set_down("musicbrainz")
    for _ in range(3):
        await sources_monitor.probe("musicbrainz")
    h = sources_monitor.get("musicbrainz")
    assert h is not None and h.breaker_state == "open" and h.errors_by_kind["http_5xx"] >= 2
    assert sources_monitor.get("lastfm").requests == 0  # type: ignore[union-attr]
