"""The durable pipeline on the real SQLite store against the fake APIs, with faults injected.

Each fault test ends the same way: the breaker and the health monitor report the fault, the other
sources carry on, and once the fault clears every track is enriched, each answer fetched once
(counted by the servers).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from musicgraph.enrichment.pipeline import GAVE_UP, EnrichmentPipeline, start_enrichment
from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import EnrichmentStatus, ListenInput, TrackRef
from musicgraph.health.monitor import HealthMonitor
from musicgraph.ingest.service import record_listens
from musicgraph.settings import Settings
from tests.enrichment.conftest import catalogue, seed, wait_for
from tests.support.fake_apis import FakeWorld

SOURCES = ("musicbrainz", "lastfm", "spotify", "cyanite")


def assert_each_answer_fetched_once(world: FakeWorld, *apis: str) -> None:
    for api in apis or ("musicbrainz", "lastfm", "spotify"):
        counts = world.ok_counts(api)
        repeated = {k: n for k, n in counts.items() if n > 1}
        assert not repeated, f"{api} answered these more than once: {repeated}"
    # Cyanite is polled by design; what must happen once is the enqueue of each analysis
    enqueues = {k: n for k, n in world.ok_counts("cyanite").items() if k.startswith("enqueue:")}
    assert all(n == 1 for n in enqueues.values()), enqueues


async def final_counts(store: GraphStore) -> dict[str, dict[str, int]]:
    return await store.enrichment_counts()


async def test_full_run_enriches_every_track_and_publishes_events(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Every source enriches every known track once; unknown tracks are skipped; properties,
    tags and SIMILAR edges land in the graph and go out as events."""
    tracks = await seed(sqlite_store, world, catalogue(24, obscure=2))
    bus = EventBus()
    sub = bus.subscribe(
        ["tracks.updated", "tags.changed", "similarity.added", "enrichment.progress"]
    )
    pipeline = EnrichmentPipeline(sqlite_store, settings_for(), bus)
    progress = await pipeline.run()
    assert await final_counts(sqlite_store) == {s: {"done": 24, "skipped": 2} for s in SOURCES}
    assert all(p.state == "finished" and p.done == 24 for p in progress.values())
    (t,) = await sqlite_store.get_tracks([tracks[0].id])
    assert t is not None and t.mbid and t.isrc and t.spotify_id and t.year and t.bpm
    assert t.moods and t.genres and t.key is not None and t.valence is not None
    assert await sqlite_store.get_tags("track", [t.id]) != [[]]
    similar = await sqlite_store.get_similar("track", t.id)
    assert similar and {s.target_id for s in similar} <= {x.id for x in tracks}
    assert await sqlite_store.get_similar("artist", t.artist_ids[0])
    (artist,) = await sqlite_store.get_artists([t.artist_ids[0]])
    assert artist is not None and artist.mbid
    topics = Counter()
    last_progress = {}
    while not sub.queue.empty():
        event = await sub.get()
        topics[event.topic] += 1
        if event.topic == "enrichment.progress":
            last_progress[event.payload["source"]] = event.payload
    assert topics["tracks.updated"] and topics["tags.changed"] and topics["similarity.added"]
    assert last_progress["lastfm"]["done"] == 24 and last_progress["lastfm"]["pending"] == 0
    assert set(last_progress["lastfm"]) >= {"failed", "skipped", "rate", "eta_seconds", "state"}
    assert_each_answer_fetched_once(world)


async def test_second_run_repeats_no_finished_work(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """A second run over a finished queue sends no request at all."""
    await seed(sqlite_store, world, catalogue(6))
    await EnrichmentPipeline(sqlite_store, settings_for(), EventBus()).run()
    before = world.stats()
    await EnrichmentPipeline(sqlite_store, settings_for(), EventBus()).run()
    after = world.stats()
    assert all(after[a]["requests"] == before[a]["requests"] for a in SOURCES)


async def test_a_source_that_is_down_pauses_while_the_others_finish(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Last.fm answering 500 to everything: its breaker opens and health says so, the other
    sources finish; once it recovers, Last.fm finishes too, each answer fetched once."""
    await seed(sqlite_store, world, catalogue(12))
    world.set_down("lastfm")
    bus = EventBus()
    monitor = HealthMonitor(bus)
    health_events = bus.subscribe(["health.changed"])
    pipeline = EnrichmentPipeline(sqlite_store, settings_for(), bus, monitor)
    task = pipeline.start(until_idle=True)
    await wait_for(
        lambda: all(pipeline.progress[s].state == "finished" for s in ("musicbrainz", "spotify"))
    )
    await wait_for(lambda: monitor.get("lastfm").breaker_state == "open")  # type: ignore[union-attr]
    h = monitor.get("lastfm")
    assert h is not None and h.status == "down" and h.errors_by_kind.get("http_5xx", 0) >= 3
    assert pipeline.progress["lastfm"].done == 0
    seen_open = False
    while not health_events.queue.empty():
        event = await health_events.get()
        for source in event.payload["sources"]:
            seen_open = seen_open or (
                source["name"] == "lastfm" and source["breaker_state"] == "open"
            )
    assert seen_open
    world.set_down("lastfm", False)
    await asyncio.wait_for(task, 30)
    counts = await final_counts(sqlite_store)
    assert counts["lastfm"] == {"done": 12}
    assert counts["musicbrainz"] == {"done": 12}
    assert monitor.get("lastfm").breaker_state == "closed"  # type: ignore[union-attr]
    states = [
        s
        for s in await sqlite_store.get_enrichment_states(
            (await sqlite_store.search_tracks("Song number 1", limit=1))[0].id
        )
        if s.source == "lastfm"
    ]
    assert states[0].status is EnrichmentStatus.DONE
    assert_each_answer_fetched_once(world)


async def test_rate_limit_answers_are_absorbed(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Last.fm error 29 (HTTP 200), Spotify 429 and Cyanite 429 with Retry-After, MusicBrainz 503
    and timeouts: all retried, reported in health by kind, and every track ends done once."""
    await seed(sqlite_store, world, catalogue(10))
    world.inject("lastfm", "lastfm29", count=3)
    world.inject("spotify", "429", count=1, retry_after=1)
    world.inject("cyanite", "429", count=1, retry_after=1)
    world.inject("musicbrainz", "503", count=2)
    world.inject("musicbrainz", "timeout", count=1)
    monitor = HealthMonitor()
    await EnrichmentPipeline(sqlite_store, settings_for(), EventBus(), monitor).run()
    assert await final_counts(sqlite_store) == {s: {"done": 10} for s in SOURCES}
    assert monitor.get("lastfm").errors_by_kind == {"rate_limited": 3}  # type: ignore[union-attr]
    assert monitor.get("spotify").errors_by_kind == {"rate_limited": 1}  # type: ignore[union-attr]
    assert monitor.get("cyanite").errors_by_kind == {"rate_limited": 1}  # type: ignore[union-attr]
    mb = monitor.get("musicbrainz")
    assert mb is not None and mb.errors_by_kind == {"rate_limited": 2, "timeout": 1}
    assert_each_answer_fetched_once(world)


async def test_spotify_403_on_audio_features_degrades_cleanly(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Spotify's 403 on audio features is reported as degraded; ids and durations still land."""
    tracks = await seed(sqlite_store, world, catalogue(8), sources=["spotify"])
    monitor = HealthMonitor()
    await EnrichmentPipeline(
        sqlite_store, settings_for(), EventBus(), monitor, sources=["spotify"]
    ).run()
    assert (await final_counts(sqlite_store))["spotify"] == {"done": 8}
    h = monitor.get("spotify")
    assert h is not None and h.status == "degraded" and "403" in h.degraded[0]
    stored = await sqlite_store.get_tracks([t.id for t in tracks])
    assert all(t and t.spotify_id and t.duration_ms and t.bpm is None for t in stored)
    assert world.ok_counts("spotify")["audio-features:403"] == 1


async def test_cyanite_analyses_that_finish_later(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Analyses not started yet are enqueued once and polled later (the queue entry waits with
    not_before, no worker blocks); the run ends when all have finished."""
    world.cyanite_preanalysed = False
    world.cyanite_delay = 1.5
    tracks = await seed(sqlite_store, world, catalogue(6))
    pipeline = EnrichmentPipeline(sqlite_store, settings_for(), EventBus())
    progress = await pipeline.run()
    assert (await final_counts(sqlite_store))["cyanite"] == {"done": 6}
    assert progress["cyanite"].deferred >= 6
    stored = await sqlite_store.get_tracks([t.id for t in tracks])
    assert all(t and t.bpm and t.moods for t in stored)
    assert_each_answer_fetched_once(world)


async def test_suspended_lastfm_key_is_reported_and_others_go_on(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Error 26: Last.fm's breaker opens, the source is reported disabled for the run with the
    setting to check, its queue stays pending, and a later run with a good key finishes it."""
    await seed(sqlite_store, world, catalogue(6))
    world.set_suspended()
    monitor = HealthMonitor()
    progress = await EnrichmentPipeline(sqlite_store, settings_for(), EventBus(), monitor).run()
    counts = await final_counts(sqlite_store)
    assert counts["lastfm"] == {"pending": 6}
    assert counts["musicbrainz"] == {"done": 6}
    assert progress["lastfm"].state == "disabled"
    assert "MUSICGRAPH_LASTFM_API_KEY" in (progress["lastfm"].reason or "")
    h = monitor.get("lastfm")
    assert h is not None and h.status == "disabled" and "suspended" in (h.disabled_reason or "")
    world.set_suspended(False)
    await EnrichmentPipeline(sqlite_store, settings_for(), EventBus()).run()
    assert (await final_counts(sqlite_store))["lastfm"] == {"done": 6}


async def test_source_without_credentials_is_reported_not_run(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """No Cyanite token: the source is disabled and reported, its queue untouched."""
    await seed(sqlite_store, world, catalogue(4))
    monitor = HealthMonitor()
    progress = await EnrichmentPipeline(
        sqlite_store, settings_for(cyanite_token=""), EventBus(), monitor
    ).run()
    assert progress["cyanite"].state == "disabled"
    assert (await final_counts(sqlite_store))["cyanite"] == {"pending": 4}
    assert monitor.get("cyanite").status == "disabled"  # type: ignore[union-attr]
    assert world.stats()["cyanite"]["requests"] == 0


async def test_failing_track_is_retried_then_given_up(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """An answer that cannot be used fails the track: attempts, last error and not_before are
    recorded; it is retried after the delay, and given up after the last attempt."""
    (track,) = await seed(sqlite_store, world, catalogue(1), sources=["musicbrainz"])
    world.inject("musicbrainz", "garbage", count=10)
    progress = await EnrichmentPipeline(
        sqlite_store, settings_for(enrich_max_attempts=2), EventBus(), sources=["musicbrainz"]
    ).run()
    (state,) = await sqlite_store.get_enrichment_states(track.id)
    assert state.status is EnrichmentStatus.FAILED and state.attempts == 2
    assert "gave up after 2 attempts" in (state.last_error or "")
    assert "expected JSON" in (state.last_error or "")
    assert state.not_before == GAVE_UP
    assert progress["musicbrainz"].failed == 2


async def test_running_pipeline_picks_up_new_imports(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """Tracks imported while the pipeline runs (record_listens queues them) get enriched."""
    bus = EventBus()
    monitor = HealthMonitor(bus)
    pipeline, started = await start_enrichment(
        sqlite_store, settings_for(), bus, monitor, until_idle=False
    )
    again, started_again = await start_enrichment(sqlite_store, settings_for(), bus, monitor)
    assert started and not started_again and again is pipeline
    try:
        (user,) = await sqlite_store.ensure_users(["listener"])
        world.add_tracks([("Slowdive", "Alison")])
        await record_listens(
            sqlite_store,
            [ListenInput(user.id, TrackRef("Slowdive", "Alison"), 1_700_000_000, "test")],
            bus=bus,
        )

        async def done() -> bool:
            counts = await sqlite_store.enrichment_counts()
            return all(counts.get(s) == {"done": 1} for s in SOURCES)

        for _ in range(200):
            if await done():
                break
            await asyncio.sleep(0.05)
        assert await done()
    finally:
        await pipeline.stop()
    assert not pipeline.running


async def test_limit_claims_at_most_n_per_source(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """--limit N enriches at most N queue entries per source and leaves the rest pending."""
    await seed(sqlite_store, world, catalogue(10), sources=["musicbrainz", "lastfm"])
    await EnrichmentPipeline(
        sqlite_store, settings_for(), EventBus(), sources=["musicbrainz", "lastfm"]
    ).run(limit=4)
    counts = await final_counts(sqlite_store)
    assert counts["musicbrainz"] == {"done": 4, "pending": 6}
    assert counts["lastfm"] == {"done": 4, "pending": 6}


async def test_source_down_for_good_is_left_for_a_later_run(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """A run until idle does not wait forever on a source that stays down: after a while the
    source is reported unavailable, its work stays pending, the others finish."""
    await seed(sqlite_store, world, catalogue(4))
    world.set_down("spotify")
    progress = await EnrichmentPipeline(
        sqlite_store, settings_for(), EventBus(), give_up_after=1.5
    ).run()
    counts = await final_counts(sqlite_store)
    assert progress["spotify"].state == "unavailable"
    assert "HTTP 500" in (progress["spotify"].reason or "")
    assert counts["spotify"] == {"pending": 4}
    assert counts["musicbrainz"] == {"done": 4} and counts["lastfm"] == {"done": 4}


async def test_probes_after_a_run_do_not_touch_closed_clients(
    sqlite_store: GraphStore, world: FakeWorld, settings_for: Callable[..., Settings]
) -> None:
    """When a run ends its clients close; the monitor's periodic probes then skip those sources
    instead of reporting a closed client as a failing API."""
    await seed(sqlite_store, world, catalogue(2))
    monitor = HealthMonitor()
    await EnrichmentPipeline(sqlite_store, settings_for(), EventBus(), monitor).run()
    await monitor.probe_all()
    for h in monitor.snapshot():
        assert h.errors == 0 and h.breaker_state == "closed", h
