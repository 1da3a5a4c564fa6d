"""Spotify Web API: Spotify ids, durations, albums; audio features where still allowed.

Contract (https://developer.spotify.com/documentation/web-api): a client-credentials token from
the accounts service (``POST /api/token``, HTTP Basic with the client id and secret), fetched only
when a request has to be sent, refreshed a little before ``expires_in`` runs out (and once on a
401); ``GET /v1/tracks/{id}`` when the track has a Spotify id, else ``GET /v1/search?type=track``
with ``q=track:<title> artist:<artist>`` (a hit must carry the same title and artist after
normalisation), then with ``q=isrc:<ISRC>``. 429 comes with ``Retry-After``. Since November 2024
apps created after that date get 403 on ``/v1/audio-features``: the first 403 marks the feature
as degraded in the health monitor and the source stops asking for it, while everything else goes
on.

The name search comes first and ISRCs are MusicBrainz's to set, so what this source asks does not
depend on whether MusicBrainz reached the track before it (and a second run is answered from the
cache)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import httpx

from musicgraph.enrichment.http import ApiResponse, ResponseCache, SourceClient
from musicgraph.enrichment.sources.base import (
    DAY,
    WEEK,
    EnrichmentResult,
    Outcome,
    OwnsClient,
    TrackContext,
    client_config,
    http_error,
    same_name,
    year_of,
)
from musicgraph.errors import EnrichmentError, SourceDisabledError
from musicgraph.graph.identity import clean_isrc, spotify_track_id
from musicgraph.graph.models import TrackUpdate
from musicgraph.health.monitor import HealthMonitor
from musicgraph.settings import Settings

NAME = "spotify"
FEATURES = "audio_features"


def is_isrc(value: str) -> bool:
    try:
        return clean_isrc(value) == value
    except ValueError:
        return False


def is_spotify_id(value: str) -> bool:
    try:
        return spotify_track_id(value) == value
    except ValueError:
        return False


def _features_ttl(r: ApiResponse) -> float | None:
    """Audio features, and the 403 saying this app may not read them, are kept like the rest."""
    return DAY if r.status == 403 else _ttl(r)


def _ttl(r: ApiResponse) -> float | None:
    if r.ok:
        return WEEK
    return DAY if r.status == 404 else None


class SpotifySource(OwnsClient):
    name = NAME

    def __init__(
        self,
        settings: Settings,
        *,
        monitor: HealthMonitor,
        cache: ResponseCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.monitor = monitor
        self.client_id = settings.spotify_client_id
        self.client_secret = settings.spotify_client_secret
        self.auth_url = settings.spotify_auth_url.rstrip("/")
        self.enabled = bool(self.client_id and self.client_secret)
        self.disabled_reason: str | None = (
            None
            if self.enabled
            else "no client credentials (set MUSICGRAPH_SPOTIFY_CLIENT_ID and _SECRET)"
        )
        self.client: SourceClient | None = None
        self._features_access = "unknown"  # unknown, allowed or forbidden (403 since Nov 2024)
        self._features_lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_lock = asyncio.Lock()
        if self.enabled:
            self.client = SourceClient(
                client_config(
                    settings, name=NAME, base_url=settings.spotify_url, rate=settings.spotify_rate
                ),
                monitor=monitor,
                cache=cache,
                transport=transport,
            )

    @property
    def features_forbidden(self) -> bool:
        """Whether Spotify answered 403 on audio features (then they are no longer asked for)."""
        return self._features_access == "forbidden"

    # --- token -----------------------------------------------------------------------------------------
    async def token(self, *, force: bool = False) -> str:
        """A valid access token, fetched or refreshed when it is about to expire."""
        async with self._token_lock:
            if not force and self._token and time.monotonic() < self._expires_at:
                return self._token
            assert self.client_id is not None and self.client_secret is not None
            r = await self._c.request(
                "POST",
                f"{self.auth_url}/api/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
                limited=False,
            )
            body = r.json() if r.body.startswith(b"{") else {}
            if r.status in (400, 401, 403):
                raise SourceDisabledError(
                    f"spotify: the accounts service refused the client credentials "
                    f"({body.get('error', r.status)}: {body.get('error_description', '')}); "
                    "check MUSICGRAPH_SPOTIFY_CLIENT_ID and MUSICGRAPH_SPOTIFY_CLIENT_SECRET"
                )
            if not r.ok or "access_token" not in body:
                raise http_error(NAME, r, "POST /api/token")
            lifetime = float(body.get("expires_in", 3600))
            # Refresh a little early: a minute, or a tenth of a short lifetime.
            self._expires_at = time.monotonic() + lifetime - min(60.0, lifetime / 10)
            self._token = str(body["access_token"])
            return self._token

    async def _api(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        cache: bool = True,
        ttl: Callable[[ApiResponse], float | None] | None = None,
    ) -> ApiResponse:
        for attempt in range(2):

            async def bearer(force: bool = attempt > 0) -> dict[str, str]:
                return {"Authorization": f"Bearer {await self.token(force=force)}"}

            rule = (ttl or _ttl) if cache else None
            r = await self._c.get(path, params=params, headers=bearer, ttl=rule)
            if r.status != 401:
                return r
        raise EnrichmentError(f"spotify: {path} answered 401 even with a fresh token")

    async def probe(self) -> None:
        r = await self._api("/v1/markets", cache=False)
        if not r.ok:
            raise http_error(NAME, r, "/v1/markets")

    # --- enrichment -----------------------------------------------------------------------------------
    async def enrich(self, ctx: TrackContext) -> EnrichmentResult:
        track = ctx.track
        found: dict[str, Any] | None = None
        if track.spotify_id and is_spotify_id(track.spotify_id):
            path = f"/v1/tracks/{track.spotify_id}"
            r = await self._api(path)
            if r.ok:
                found = r.json()
            elif r.status not in (400, 404):
                raise http_error(NAME, r, path)
        if found is None and ctx.artist_name:
            found = await self._search(
                f"track:{track.title} artist:{ctx.artist_name}",
                track.title,
                ctx.artist_name,
                exact=True,
            )
        if found is None and track.isrc and is_isrc(track.isrc):
            found = await self._search(
                f"isrc:{track.isrc}", track.title, ctx.artist_name, exact=False
            )
        if found is None:
            return EnrichmentResult.skipped(
                f"Spotify has no track matching {ctx.artist_name!r} - {track.title!r}"
            )
        sid = str(found.get("id", ""))
        album = found.get("album") or {}
        update = TrackUpdate(
            track_id=track.id,
            spotify_id=sid if (track.spotify_id != sid and is_spotify_id(sid)) else None,
            duration_ms=int(found["duration_ms"])
            if (track.duration_ms is None and found.get("duration_ms"))
            else None,
            album=str(album["name"]) if (track.album is None and album.get("name")) else None,
            year=year_of(album.get("release_date")) if track.year is None else None,
        )
        features = await self._features(sid) if is_spotify_id(sid) else None
        if features:
            tempo, key, mode = features.get("tempo"), features.get("key"), features.get("mode")
            energy, valence = features.get("energy"), features.get("valence")
            update = dataclasses.replace(
                update,
                bpm=float(tempo) if tempo else None,
                key=int(key) if key is not None and int(key) >= 0 else None,
                mode=int(mode) if mode is not None else None,
                energy=float(energy) if energy is not None else None,
                valence=float(valence) if valence is not None else None,
            )
        return EnrichmentResult(Outcome.DONE, update=update, extra={"spotify_id": sid})

    async def _search(
        self, q: str, title: str, artist: str, *, exact: bool
    ) -> dict[str, Any] | None:
        r = await self._api("/v1/search", {"q": q, "type": "track", "limit": 5})
        if not r.ok:
            raise http_error(NAME, r, f"/v1/search?q={q}")
        items = [i for i in ((r.json() or {}).get("tracks") or {}).get("items") or [] if i]
        for item in items:
            names = " ".join(str(a.get("name", "")) for a in item.get("artists") or [])
            if same_name(str(item.get("name", "")), title) and (
                not artist
                or any(same_name(str(a.get("name", "")), artist) for a in item.get("artists") or [])
                or same_name(names, artist)
            ):
                return dict(item)
        if not exact and items:
            return dict(items[0])  # an ISRC names one recording, whatever its spelling
        return None

    async def _features(self, sid: str) -> dict[str, Any] | None:
        if self.features_forbidden:
            return None
        path = f"/v1/audio-features/{sid}"
        if self._features_access != "allowed":
            # Until one answer says whether this app may read audio features, ask one at a time.
            async with self._features_lock:
                if self._features_access == "forbidden":
                    return None
                r = await self._api(path, ttl=_features_ttl)
                if r.status != 403:
                    self._features_access = "allowed"
        else:
            r = await self._api(path, ttl=_features_ttl)
        if r.status == 403:
            self._features_access = "forbidden"
            self.monitor.set_degraded(
                NAME,
                FEATURES,
                "403 Forbidden on /v1/audio-features (Spotify closed it to apps created after "
                "November 2024); tracks get ids and durations only",
            )
            return None
        if r.status == 404 or not r.ok:
            return None
        data = r.json()
        return data if isinstance(data, dict) else None
