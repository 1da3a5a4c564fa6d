"""Last.fm API 2.0: tags with counts, listener counts, SIMILAR edges with their match score.

Contract (https://www.last.fm/api): ``GET /2.0/?method=...&api_key=...&format=json``; per track
``track.getInfo`` (listeners, MBID, duration, album), ``track.getTopTags`` (tags with counts) and
``track.getSimilar`` (tracks with ``match`` in 0..1); per artist ``artist.getSimilar`` (cached, so
asked once per artist). Errors arrive as ``{"error": code, "message": ...}``, sometimes with HTTP
200: 6 = not found (the track is skipped), 29 = rate limit exceeded (back off and retry, counted
against the breaker), 11/16/8 = temporary (retry), 26 = suspended key and 10 = invalid key (the
breaker opens and the source is reported disabled for this run).

Track MBIDs are MusicBrainz's to set (also those of similar tracks, which are matched by artist
and title): if Last.fm wrote them too, what MusicBrainz asks (a lookup or a search) would depend
on which source reached a track first, and a second run could not be answered from the cache.
"""

from __future__ import annotations

from typing import Any

import httpx

from musicgraph.enrichment.http import ApiResponse, ResponseCache, RetryableError, SourceClient
from musicgraph.enrichment.sources.base import (
    DAY,
    WEEK,
    EnrichmentResult,
    Outcome,
    OwnsClient,
    SimilarArtist,
    SimilarTrack,
    TrackContext,
    client_config,
    http_error,
)
from musicgraph.errors import EnrichmentError, SourceDisabledError
from musicgraph.graph.identity import is_mbid
from musicgraph.graph.models import ArtistRef, TrackRef, TrackUpdate
from musicgraph.health.monitor import HealthMonitor
from musicgraph.settings import Settings

NAME = "lastfm"
NOT_FOUND = 6
RATE_LIMITED = 29
SUSPENDED = 26
INVALID_KEY = 10
TEMPORARY = frozenset({8, 11, 16})
MAX_TAGS = 10
MAX_SIMILAR = 20


class _KeyRejectedError(SourceDisabledError):
    """Last.fm refused the API key (suspended or invalid)."""


def _error_code(r: ApiResponse) -> tuple[int, str] | None:
    if not r.body.startswith(b"{") or b'"error"' not in r.body[:40]:
        return None
    data = r.json()
    if isinstance(data, dict) and isinstance(data.get("error"), int):
        return int(data["error"]), str(data.get("message", ""))
    return None


def check(r: ApiResponse) -> None:
    """Turn Last.fm's in-body errors into the HTTP layer's vocabulary (runs inside the breaker)."""
    err = _error_code(r)
    if err is None:
        return
    code, message = err
    if code == RATE_LIMITED:
        raise RetryableError(
            f"lastfm: error 29 (rate limit exceeded): {message}", kind="rate_limited"
        )
    if code in TEMPORARY:
        raise RetryableError(f"lastfm: error {code} (temporary): {message}", kind="http_5xx")
    if code in (SUSPENDED, INVALID_KEY):
        what = "suspended" if code == SUSPENDED else "invalid"
        raise _KeyRejectedError(
            f"lastfm: error {code}: the API key is {what} ({message}); "
            "check MUSICGRAPH_LASTFM_API_KEY"
        )


def _ttl(r: ApiResponse) -> float | None:
    err = _error_code(r)
    if err is None:
        return WEEK if r.ok else None
    return DAY if err[0] == NOT_FOUND else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _list(value: Any) -> list[dict[str, Any]]:
    """Last.fm returns a bare object instead of a one-element list: accept both."""
    if isinstance(value, dict):
        return [value]
    return [v for v in value or [] if isinstance(v, dict)]


class LastfmSource(OwnsClient):
    name = NAME

    def __init__(
        self,
        settings: Settings,
        *,
        monitor: HealthMonitor,
        cache: ResponseCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_key = settings.lastfm_api_key
        self.enabled = bool(self.api_key)
        self.disabled_reason: str | None = (
            None if self.enabled else "no API key (set MUSICGRAPH_LASTFM_API_KEY)"
        )
        self.client: SourceClient | None = None
        if self.enabled:
            self.client = SourceClient(
                client_config(
                    settings, name=NAME, base_url=settings.lastfm_url, rate=settings.lastfm_rate
                ),
                monitor=monitor,
                cache=cache,
                transport=transport,
            )

    async def _call(
        self, method: str, *, ttl: bool = True, **params: Any
    ) -> tuple[ApiResponse, Any]:
        query = {"method": method, "api_key": self.api_key, "format": "json", **params}
        try:
            r = await self._c.get("/2.0/", params=query, ttl=_ttl if ttl else None, check=check)
        except _KeyRejectedError as exc:
            self._c.trip(str(exc))
            raise
        if not r.ok and _error_code(r) is None:
            raise http_error(NAME, r, method)
        return r, r.json()

    async def probe(self) -> None:
        await self._call("chart.getTopTags", ttl=False, limit=1)

    async def enrich(self, ctx: TrackContext) -> EnrichmentResult:
        track = ctx.track
        artist = ctx.artist_name
        if not artist:
            return EnrichmentResult.skipped("no artist name to ask Last.fm with")
        ident: dict[str, Any] = {"artist": artist, "track": track.title, "autocorrect": 1}
        r, info = await self._call("track.getInfo", **ident)
        err = _error_code(r)
        if err is not None:
            if err[0] == NOT_FOUND:
                return EnrichmentResult.skipped(
                    f"Last.fm does not know {artist!r} - {track.title!r}"
                )
            raise EnrichmentError(f"lastfm: error {err[0]} for track.getInfo: {err[1]}")
        data = (info or {}).get("track") or {}
        _, top = await self._call("track.getTopTags", **ident)
        tags = [
            (str(t["name"]).strip(), max(1, _int(t.get("count")) or 1))
            for t in _list(((top or {}).get("toptags") or {}).get("tag"))
            if str(t.get("name", "")).strip()
        ][:MAX_TAGS]
        if not tags:  # getInfo's toptags have no counts; better than nothing
            tags = [
                (str(t["name"]).strip(), 1)
                for t in _list((data.get("toptags") or {}).get("tag"))
                if str(t.get("name", "")).strip()
            ][:MAX_TAGS]
        _, sim = await self._call("track.getSimilar", limit=MAX_SIMILAR, **ident)
        similar = tuple(
            SimilarTrack(
                ref=TrackRef(
                    artist=str((s.get("artist") or {}).get("name", "")),
                    title=str(s.get("name", "")),
                    # no track MBID: those are MusicBrainz's to set (see the module docstring)
                    artist_mbid=(
                        str(s["artist"]["mbid"])
                        if is_mbid(str((s.get("artist") or {}).get("mbid") or ""))
                        else None
                    ),
                ),
                score=float(s.get("match") or 0.0),
            )
            for s in _list(((sim or {}).get("similartracks") or {}).get("track"))
            if s.get("name") and (s.get("artist") or {}).get("name")
        )
        similar_artists: tuple[SimilarArtist, ...] = ()
        if ctx.artists:
            _, asim = await self._call("artist.getSimilar", artist=artist, limit=10, autocorrect=1)
            similar_artists = tuple(
                SimilarArtist(
                    artist_id=ctx.artists[0].id,
                    ref=ArtistRef(
                        name=str(a["name"]),
                        mbid=str(a["mbid"]) if is_mbid(str(a.get("mbid") or "")) else None,
                    ),
                    score=float(a.get("match") or 0.0),
                )
                for a in _list(((asim or {}).get("similarartists") or {}).get("artist"))
                if a.get("name")
            )
        duration = _int(data.get("duration"))
        album = (data.get("album") or {}).get("title")
        update = TrackUpdate(
            track_id=track.id,
            duration_ms=duration if (track.duration_ms is None and duration) else None,
            album=str(album) if (track.album is None and album) else None,
        )
        return EnrichmentResult(
            Outcome.DONE,
            update=update,
            tags=tuple(tags),
            similar_tracks=similar,
            similar_artists=similar_artists,
            extra={
                "listeners": _int(data.get("listeners")),
                "playcount": _int(data.get("playcount")),
            },
        )
