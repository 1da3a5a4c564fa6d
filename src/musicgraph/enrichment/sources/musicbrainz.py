"""MusicBrainz WS/2: recording and artist MBIDs, ISRCs, release year, tags and genres.

Contract (https://musicbrainz.org/doc/MusicBrainz_API): no key, but a User-Agent naming the
application, its version and a contact (``musicgraph/0.1.0 ( you@example.org )``); about one
request per second per client, and 503 when over it; ``fmt=json``. A track is found by its MBID
(a lookup), else by ISRC (``/ws/2/isrc/<isrc>``), else by a Lucene search
``recording:"<title>" AND artist:"<artist>"`` whose best hit must score at least 90 and carry the
same title and artist after normalisation. The lookup asks for
``inc=artist-credits+isrcs+releases+tags+genres``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from musicgraph import __version__
from musicgraph.enrichment.http import ApiResponse, ResponseCache, SourceClient
from musicgraph.enrichment.sources.base import (
    DAY,
    MONTH,
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
from musicgraph.graph.identity import is_mbid
from musicgraph.graph.models import ArtistRef, TrackUpdate
from musicgraph.health.monitor import HealthMonitor
from musicgraph.settings import Settings

NAME = "musicbrainz"
LOOKUP_INC = "artist-credits+isrcs+releases+tags+genres"
MIN_SCORE = 90
_LUCENE_QUOTED = re.compile(r'(["\\])')


def lucene_phrase(text: str) -> str:
    """``text`` as a quoted Lucene phrase (only ``"`` and ``\\`` need escaping inside quotes)."""
    return '"' + _LUCENE_QUOTED.sub(r"\\\1", text) + '"'


def _ttl_found(long: float) -> Any:
    def rule(r: ApiResponse) -> float | None:
        if r.ok:
            return long
        return DAY if r.status == 404 else None

    return rule


class MusicBrainzSource(OwnsClient):
    name = NAME

    def __init__(
        self,
        settings: Settings,
        *,
        monitor: HealthMonitor,
        cache: ResponseCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.enabled = True
        self.disabled_reason: str | None = None
        self.user_agent = f"musicgraph/{__version__} ( {settings.contact} )"
        self.client: SourceClient | None = SourceClient(
            client_config(
                settings,
                name=NAME,
                base_url=settings.musicbrainz_url,
                rate=settings.musicbrainz_rate,
                headers={"User-Agent": self.user_agent, "Accept": "application/json"},
                rate_limit_statuses=frozenset({429, 503}),
            ),
            monitor=monitor,
            cache=cache,
            transport=transport,
        )

    async def probe(self) -> None:
        await self._c.get("/ws/2/genre/all", params={"limit": 1, "fmt": "json"})

    async def enrich(self, ctx: TrackContext) -> EnrichmentResult:
        track = ctx.track
        mbid = track.mbid
        if not mbid and track.isrc:
            mbid = await self._by_isrc(track.isrc, track.title)
        if not mbid:
            if not ctx.artist_name:
                return EnrichmentResult.skipped("no artist name to search MusicBrainz with")
            mbid = await self._search(ctx.artist_name, track.title)
            if mbid is None:
                return EnrichmentResult.skipped(
                    f"no MusicBrainz recording matches {ctx.artist_name!r} - {track.title!r}"
                )
        path = f"/ws/2/recording/{mbid}"
        r = await self._c.get(
            path, params={"inc": LOOKUP_INC, "fmt": "json"}, ttl=_ttl_found(MONTH)
        )
        if r.status == 404:
            return EnrichmentResult.skipped(f"MusicBrainz does not know recording {mbid}")
        if not r.ok:
            raise http_error(NAME, r, path)
        return self._result(ctx, r.json())

    async def _by_isrc(self, isrc: str, title: str) -> str | None:
        path = f"/ws/2/isrc/{isrc}"
        r = await self._c.get(path, params={"fmt": "json"}, ttl=_ttl_found(MONTH))
        if r.status in (400, 404):
            return None
        if not r.ok:
            raise http_error(NAME, r, path)
        recordings = (r.json() or {}).get("recordings") or []
        for rec in recordings:
            if same_name(str(rec.get("title", "")), title):
                return str(rec["id"])
        return str(recordings[0]["id"]) if recordings else None

    async def _search(self, artist: str, title: str) -> str | None:
        query = f"recording:{lucene_phrase(title)} AND artist:{lucene_phrase(artist)}"
        r = await self._c.get(
            "/ws/2/recording", params={"query": query, "limit": 5, "fmt": "json"}, ttl=WEEK
        )
        if not r.ok:
            raise http_error(NAME, r, f"/ws/2/recording?query={query}")
        for rec in (r.json() or {}).get("recordings") or []:
            if int(rec.get("score", 0)) < MIN_SCORE:
                continue
            credit = " ".join(
                str(c.get("name", "")) + str(c.get("joinphrase", ""))
                for c in rec.get("artist-credit") or []
            )
            if same_name(str(rec.get("title", "")), title) and same_name(credit.strip(), artist):
                return str(rec["id"])
        return None

    def _result(self, ctx: TrackContext, data: dict[str, Any]) -> EnrichmentResult:
        track = ctx.track
        mbid = str(data.get("id", ""))
        isrcs = [str(i) for i in data.get("isrcs") or []]
        length = data.get("length")
        years = [
            y
            for y in (
                year_of(data.get("first-release-date")),
                *(year_of(rel.get("date")) for rel in data.get("releases") or []),
            )
            if y is not None
        ]
        genres = tuple(
            str(g["name"])
            for g in sorted(data.get("genres") or [], key=lambda g: -int(g.get("count", 0)))
        )
        tags = tuple(
            (str(t["name"]), max(1, int(t.get("count", 1))))
            for t in data.get("tags") or []
            if t.get("name")
        )
        artists = tuple(
            ArtistRef(
                name=str(c["artist"].get("name") or c.get("name")), mbid=str(c["artist"]["id"])
            )
            for c in data.get("artist-credit") or []
            if isinstance(c.get("artist"), dict) and is_mbid(str(c["artist"].get("id", "")))
        )
        releases = data.get("releases") or []
        update = TrackUpdate(
            track_id=track.id,
            mbid=mbid if (not track.mbid and is_mbid(mbid)) else None,
            isrc=isrcs[0] if (not track.isrc and isrcs) else None,
            duration_ms=int(length) if (track.duration_ms is None and length) else None,
            album=str(releases[0]["title"]) if (track.album is None and releases) else None,
            year=min(years) if years else None,
            genres=genres or None,
        )
        return EnrichmentResult(
            Outcome.DONE, update=update, tags=tags, artists=artists, extra={"mbid": mbid}
        )
