"""Each source against its fake API's documented contract: request shapes, auth, errors, parsing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pybreaker
import pytest

from musicgraph.enrichment.http import ResponseCache
from musicgraph.enrichment.sources.base import Outcome, TrackContext
from musicgraph.enrichment.sources.cyanite import CyaniteSource, parse_key
from musicgraph.enrichment.sources.lastfm import LastfmSource
from musicgraph.enrichment.sources.musicbrainz import MusicBrainzSource, lucene_phrase
from musicgraph.enrichment.sources.spotify import SpotifySource
from musicgraph.errors import SourceDisabledError
from musicgraph.graph.models import Artist, Track
from musicgraph.health.monitor import HealthMonitor
from musicgraph.settings import Settings
from tests.support.fake_apis import FakeWorld, recording_for


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[ResponseCache]:
    c = await ResponseCache(tmp_path / "cache.db").open()
    yield c
    await c.close()


def ctx(artist: str, title: str, **track: object) -> TrackContext:
    return TrackContext(
        Track(id="tr_1", title=title, artist_ids=("ar_1",), **track),  # type: ignore[arg-type]
        (Artist(id="ar_1", name=artist),),
    )


async def test_musicbrainz_search_then_lookup(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """A track without ids is found by a Lucene search, then looked up with inc=...: MBIDs,
    ISRC, year, genres, tags and the artist's MBID come back."""
    monitor = HealthMonitor()
    src = MusicBrainzSource(settings_for(), monitor=monitor, cache=cache)
    rec = recording_for("Slowdive", 'Alison "live"')
    try:
        r = await src.enrich(ctx("Slowdive", 'Alison "live"'))
        assert r.outcome is Outcome.DONE and r.update is not None
        assert r.update.mbid == rec.mbid and r.update.isrc == rec.isrc
        assert r.update.year == rec.year and r.update.genres
        assert dict(r.tags)
        assert r.artists[0].mbid == rec.artist_mbid
        assert (
            src.user_agent.startswith("musicgraph/")
            and "( tests@musicgraph.invalid )" in src.user_agent
        )
        assert world.stats()["musicbrainz"]["ok_total"] == 2
    finally:
        await src.aclose()


async def test_musicbrainz_by_isrc_and_unknown(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """An ISRC goes through /ws/2/isrc/<isrc>; a recording nobody knows is skipped, not failed."""
    monitor = HealthMonitor()
    src = MusicBrainzSource(settings_for(), monitor=monitor, cache=cache)
    (rec,) = world.add_tracks([("Ride", "Vapour Trail")])
    try:
        r = await src.enrich(ctx("ignored", "Vapour Trail", isrc=rec.isrc))
        assert r.update is not None and r.update.mbid == rec.mbid and r.update.isrc is None
        assert any(k.startswith("isrc:") for k in world.ok_counts("musicbrainz"))
        skipped = await src.enrich(ctx("Nobody", "An obscure demo"))
        assert skipped.outcome is Outcome.SKIPPED and "no MusicBrainz recording" in (
            skipped.reason or ""
        )
    finally:
        await src.aclose()


def test_lucene_phrase_escapes_quotes() -> None:
    """Titles with quotes and backslashes stay one phrase in the search query."""
    assert lucene_phrase('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'


async def test_lastfm_tags_similar_and_listeners(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """track.getInfo/getTopTags/getSimilar and artist.getSimilar give tags with counts,
    listeners, and similar tracks and artists with their match scores."""
    world.add_tracks([("Slowdive", "Alison"), ("Ride", "Vapour Trail"), ("Lush", "De-Luxe")])
    src = LastfmSource(settings_for(), monitor=HealthMonitor(), cache=cache)
    try:
        r = await src.enrich(ctx("Slowdive", "Alison"))
        assert r.outcome is Outcome.DONE
        assert r.tags and all(count >= 1 for _, count in r.tags)
        assert [s.ref.title for s in r.similar_tracks] == ["Vapour Trail", "De-Luxe"]
        assert r.similar_tracks[0].score == 1.0
        assert {a.ref.name for a in r.similar_artists} == {"Ride", "Lush"}
        assert r.extra and r.extra["listeners"] > 0
        missing = await src.enrich(ctx("Nobody", "An obscure demo"))
        assert missing.outcome is Outcome.SKIPPED
    finally:
        await src.aclose()


async def test_lastfm_error_29_with_http_200_backs_off(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """Error 29 inside an HTTP 200 is a rate limit: retried after a pause, counted as such."""
    monitor = HealthMonitor()
    src = LastfmSource(settings_for(), monitor=monitor, cache=cache)
    world.inject("lastfm", "lastfm29", count=2)
    try:
        r = await src.enrich(ctx("Slowdive", "Alison"))
        assert r.outcome is Outcome.DONE
        assert monitor.get("lastfm").errors_by_kind == {"rate_limited": 2}  # type: ignore[union-attr]
        # the error answers were not cached: a second run asks nothing and gets real data
        assert (await src.enrich(ctx("Slowdive", "Alison"))).outcome is Outcome.DONE
    finally:
        await src.aclose()


async def test_lastfm_suspended_key_opens_the_breaker(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """Error 26 (suspended key) opens the breaker at once and says which setting to check."""
    monitor = HealthMonitor()
    src = LastfmSource(settings_for(), monitor=monitor, cache=cache)
    world.set_suspended()
    try:
        with pytest.raises(SourceDisabledError, match=r"suspended.*MUSICGRAPH_LASTFM_API_KEY"):
            await src.enrich(ctx("Slowdive", "Alison"))
        assert src.client is not None and src.client.breaker.current_state == pybreaker.STATE_OPEN
        h = monitor.get("lastfm")
        assert h is not None and h.breaker_state == "open" and "suspended" in (h.last_error or "")
    finally:
        await src.aclose()


async def test_sources_without_credentials_are_disabled() -> None:
    """No key, no client credentials, no token: the source says it is disabled and why."""
    s = Settings.from_env({}, env_file=None)
    monitor = HealthMonitor()
    for cls, setting in (
        (LastfmSource, "MUSICGRAPH_LASTFM_API_KEY"),
        (SpotifySource, "MUSICGRAPH_SPOTIFY_CLIENT_ID"),
        (CyaniteSource, "MUSICGRAPH_CYANITE_TOKEN"),
    ):
        src = cls(s, monitor=monitor)
        assert not src.enabled and src.client is None
        assert setting in (src.disabled_reason or "")


async def test_spotify_token_refresh_isrc_search_and_403_features(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """Client-credentials token (fetched when needed, refreshed when it expires), search by name
    then by isrc:, and a 403 on audio features reported as degraded and not asked again."""
    world.token_ttl = 1.0
    monitor = HealthMonitor()
    src = SpotifySource(settings_for(), monitor=monitor, cache=cache)
    # a title the name search cannot find: the ISRC search is the fallback that finds it
    a, b = world.add_tracks([("Slowdive", "An obscure b-side"), ("Ride", "Vapour Trail")])
    try:
        r = await src.enrich(ctx("Slowdive", "An obscure b-side", isrc=a.isrc))
        assert r.update is not None and r.update.spotify_id == a.spotify_id
        assert r.update.duration_ms == a.length_ms and r.update.bpm is None
        assert src.features_forbidden
        h = monitor.get("spotify")
        assert h is not None and h.status == "degraded" and "audio_features" in h.degraded[0]
        await asyncio.sleep(1.1)  # the token has expired by now
        r2 = await src.enrich(ctx("Ride", "Vapour Trail"))
        assert r2.update is not None and r2.update.spotify_id == b.spotify_id
        assert world.token_requests == 2
        assert world.ok_counts("spotify")["audio-features:403"] == 1
    finally:
        await src.aclose()


async def test_spotify_audio_features_when_allowed(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """An app that still may read audio features gets tempo, key, mode, energy and valence."""
    world.audio_features_forbidden = False
    src = SpotifySource(settings_for(), monitor=HealthMonitor(), cache=cache)
    try:
        r = await src.enrich(ctx("Slowdive", "Alison"))
        assert r.update is not None and r.update.bpm is not None and r.update.key is not None
        assert 0.0 <= (r.update.energy or 0.0) <= 1.0
    finally:
        await src.aclose()


async def test_spotify_bad_credentials_disable_the_source(
    settings_for: Callable[..., Settings], cache: ResponseCache
) -> None:
    """Refused client credentials name the settings to check instead of crashing."""
    src = SpotifySource(
        settings_for(spotify_client_secret="wrong"), monitor=HealthMonitor(), cache=cache
    )
    try:
        with pytest.raises(SourceDisabledError, match="MUSICGRAPH_SPOTIFY_CLIENT_SECRET"):
            await src.enrich(ctx("Slowdive", "Alison"))
    finally:
        await src.aclose()


async def test_cyanite_async_analysis_states(
    settings_for: Callable[..., Settings], world: FakeWorld, cache: ResponseCache
) -> None:
    """NotStarted -> enqueued and deferred; Enqueued/Processing -> deferred; Finished -> BPM,
    key, moods, genres, energy and valence; Failed -> skipped. No call ever waits."""
    world.cyanite_preanalysed = False
    world.cyanite_delay = 0.6
    a, b = world.add_tracks([("Slowdive", "Alison"), ("Ride", "Vapour Trail")])
    world.cyanite_failing.add(b.spotify_id)
    src = CyaniteSource(settings_for(), monitor=HealthMonitor(), cache=cache)
    try:
        first = await src.enrich(ctx("Slowdive", "Alison", spotify_id=a.spotify_id))
        assert first.outcome is Outcome.DEFERRED and first.reason == "Cyanite analysis enqueued"
        second = await src.enrich(ctx("Slowdive", "Alison", spotify_id=a.spotify_id))
        assert second.outcome is Outcome.DEFERRED
        await asyncio.sleep(0.7)
        done = await src.enrich(ctx("Slowdive", "Alison", spotify_id=a.spotify_id))
        assert done.outcome is Outcome.DONE and done.update is not None
        u = done.update
        assert u.bpm and u.key is not None and u.mode in (0, 1) and u.moods
        assert 0.0 <= (u.valence or 0) <= 1.0 and u.energy in (0.2, 0.5, 0.8)
        assert world.ok_counts("cyanite")[f"enqueue:{a.spotify_id}"] == 1
        await src.enrich(ctx("Ride", "Vapour Trail", spotify_id=b.spotify_id))
        await asyncio.sleep(0.7)
        failed = await src.enrich(ctx("Ride", "Vapour Trail", spotify_id=b.spotify_id))
        assert failed.outcome is Outcome.SKIPPED and "decoded" in (failed.reason or "")
        unknown = await src.enrich(ctx("x", "y", spotify_id="0" * 22))
        assert unknown.outcome is Outcome.SKIPPED
    finally:
        await src.aclose()


def test_cyanite_key_names() -> None:
    """Cyanite key names map to pitch class and mode."""
    assert parse_key("Cmajor") == (0, 1)
    assert parse_key("FsharpMinor") == (6, 0)
    assert parse_key("Ebmajor") == (3, 1)
    assert parse_key("nonsense") is None


async def test_cyanite_rereads_a_track_spotify_just_finished(
    settings_for: Callable[..., Settings], cache: ResponseCache
) -> None:
    """A track read before Spotify stored its id is deferred once to be read again, not skipped;
    if the id is still missing after that, it is skipped; while Spotify is pending it waits."""
    from musicgraph.enrichment.sources.cyanite import REREAD
    from musicgraph.graph.models import EnrichmentState, EnrichmentStatus

    src = CyaniteSource(settings_for(), monitor=HealthMonitor(), cache=cache)

    def with_spotify(status: EnrichmentStatus, **kw: object) -> TrackContext:
        async def states() -> list[EnrichmentState]:
            return [EnrichmentState("tr_1", "spotify", status)]

        base = ctx("Slowdive", "Alison")
        return TrackContext(base.track, base.artists, states, frozenset({"spotify"}), **kw)  # type: ignore[arg-type]

    try:
        first = await src.enrich(with_spotify(EnrichmentStatus.DONE))
        assert first.outcome is Outcome.DEFERRED and first.reason == REREAD
        again = await src.enrich(with_spotify(EnrichmentStatus.DONE, last_reason=REREAD))
        assert again.outcome is Outcome.SKIPPED
        waiting = await src.enrich(with_spotify(EnrichmentStatus.PENDING))
        assert waiting.outcome is Outcome.DEFERRED and "waiting" in (waiting.reason or "")
    finally:
        await src.aclose()
