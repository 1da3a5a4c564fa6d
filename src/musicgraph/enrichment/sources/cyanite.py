"""Cyanite: BPM, key, mode, moods, energy and valence from its audio analysis.

Contract (https://api-docs.cyanite.ai): one GraphQL endpoint (``POST /graphql``) with a bearer
token. Cyanite analyses Spotify tracks by Spotify id: ``spotifyTrack(id:)`` returns a
``SpotifyTrack`` (or a ``SpotifyTrackError``) whose ``audioAnalysisV6`` is one of
``AudioAnalysisV6NotStarted | Enqueued | Processing | Finished | Failed``. Analysis is
asynchronous, so a worker never waits for it: NotStarted -> ``spotifyTrackEnqueue`` and come back
later; Enqueued/Processing -> come back later (the queue entry is re-queued with ``not_before``);
Finished -> results; Failed -> skipped with Cyanite's message. Only finished analyses are cached.

A track without a Spotify id waits (while the Spotify source may still find one) or is skipped.
Genres stay MusicBrainz's (one owner per field keeps the result independent of which source
answers first); Cyanite contributes the audio side. Mapping: ``keyPrediction`` "FsharpMinor" -> key 6, mode 0; ``energyLevel`` low/medium/high ->
0.2/0.5/0.8; ``valence`` in -1..1 -> 0..1.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from musicgraph.enrichment.http import ApiResponse, ResponseCache, SourceClient
from musicgraph.enrichment.sources.base import (
    MONTH,
    EnrichmentResult,
    Outcome,
    OwnsClient,
    TrackContext,
    client_config,
    http_error,
)
from musicgraph.errors import EnrichmentError, SourceDisabledError
from musicgraph.graph.models import EnrichmentState, EnrichmentStatus, TrackUpdate
from musicgraph.health.monitor import HealthMonitor
from musicgraph.settings import Settings

NAME = "cyanite"
#: When to look again at a track whose Spotify id must come from a run that includes Spotify.
LATER = 3600.0
REREAD = "Spotify has finished this track; reading it again for its Spotify id"

ANALYSIS_QUERY = """
query SpotifyTrackAnalysis($id: ID!) {
  spotifyTrack(id: $id) {
    __typename
    ... on SpotifyTrackError { message }
    ... on SpotifyTrack {
      id
      audioAnalysisV6 {
        __typename
        ... on AudioAnalysisV6Finished {
          result {
            bpmPrediction { value confidence }
            keyPrediction { value confidence }
            moodTags
            genreTags
            energyLevel
            valence
            arousal
          }
        }
        ... on AudioAnalysisV6Failed { error { message } }
      }
    }
  }
}
"""

ENQUEUE_MUTATION = """
mutation SpotifyTrackEnqueue($input: SpotifyTrackEnqueueInput!) {
  spotifyTrackEnqueue(input: $input) {
    __typename
    ... on SpotifyTrackEnqueueSuccess { enqueuedSpotifyTrack { id audioAnalysisV6 { __typename } } }
    ... on SpotifyTrackEnqueueError { message }
  }
}
"""

_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY = re.compile(r"^([A-G])(sharp|flat|#|b)?\s*(major|minor)$", re.IGNORECASE)
_ENERGY = {"low": 0.2, "medium": 0.5, "high": 0.8, "variable": 0.5}


def parse_key(value: str | None) -> tuple[int, int] | None:
    """Cyanite's key name as (pitch class 0..11, mode 1 major / 0 minor)."""
    m = _KEY.match((value or "").strip())
    if m is None:
        return None
    pitch = _PITCH[m.group(1).upper()]
    accidental = (m.group(2) or "").lower()
    pitch += 1 if accidental in ("sharp", "#") else -1 if accidental in ("flat", "b") else 0
    return pitch % 12, 1 if m.group(3).lower() == "major" else 0


def _finished(r: ApiResponse) -> float | None:
    return MONTH if r.ok and b"AudioAnalysisV6Finished" in r.body else None


class CyaniteSource(OwnsClient):
    name = NAME

    def __init__(
        self,
        settings: Settings,
        *,
        monitor: HealthMonitor,
        cache: ResponseCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.token = settings.cyanite_token
        self.poll = settings.cyanite_poll
        self.spotify_configured = bool(
            settings.spotify_client_id and settings.spotify_client_secret
        )
        self.enabled = bool(self.token)
        self.disabled_reason: str | None = (
            None if self.enabled else "no access token (set MUSICGRAPH_CYANITE_TOKEN)"
        )
        self.client: SourceClient | None = None
        if self.enabled:
            self.client = SourceClient(
                client_config(
                    settings,
                    name=NAME,
                    base_url=settings.cyanite_url,
                    rate=settings.cyanite_rate,
                    headers={"Authorization": f"Bearer {self.token}"},
                ),
                monitor=monitor,
                cache=cache,
                transport=transport,
            )

    async def _graphql(
        self, query: str, variables: dict[str, Any], *, cache: bool
    ) -> dict[str, Any]:
        r = await self._c.request(
            "POST",
            "/graphql",
            json_body={"query": query, "variables": variables},
            ttl=_finished if cache else None,
        )
        if r.status in (401, 403):
            raise SourceDisabledError(
                f"cyanite: the access token was refused (HTTP {r.status}); check MUSICGRAPH_CYANITE_TOKEN"
            )
        body = r.json() if r.body.startswith(b"{") else None
        if not isinstance(body, dict):
            raise http_error(NAME, r, "POST /graphql")
        if body.get("errors") and not body.get("data"):
            messages = "; ".join(str(e.get("message")) for e in body["errors"])
            raise EnrichmentError(f"cyanite: GraphQL errors: {messages}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise http_error(NAME, r, "POST /graphql")
        return data

    async def probe(self) -> None:
        await self._graphql("query Probe { __typename }", {}, cache=False)

    async def enrich(self, ctx: TrackContext) -> EnrichmentResult:
        track = ctx.track
        if not track.spotify_id:
            spotify = await self._spotify_state(ctx) if self.spotify_configured else None
            if (
                spotify is not None
                and spotify.status is EnrichmentStatus.DONE
                and ctx.last_reason != REREAD
            ):
                # Spotify finished after this track was read: read it again (once) shortly.
                return EnrichmentResult.deferred(REREAD, 1.0)
            if (
                spotify is not None
                and spotify.status
                in (
                    EnrichmentStatus.PENDING,
                    EnrichmentStatus.FAILED,
                )
                and spotify.not_before < 2**61
            ):
                if "spotify" in ctx.active_sources:
                    return EnrichmentResult.deferred(
                        "waiting for the Spotify source to find a Spotify id", self.poll
                    )
                return EnrichmentResult.deferred(
                    "waiting for a Spotify id (the Spotify source is not running)", LATER
                )
            return EnrichmentResult.skipped("no Spotify id for Cyanite to analyse")
        data = await self._graphql(ANALYSIS_QUERY, {"id": track.spotify_id}, cache=True)
        node = data.get("spotifyTrack") or {}
        if node.get("__typename") != "SpotifyTrack":
            return EnrichmentResult.skipped(
                f"Cyanite: {node.get('message', 'unknown Spotify track')}"
            )
        analysis = node.get("audioAnalysisV6") or {}
        state = str(analysis.get("__typename", "")).removeprefix("AudioAnalysisV6")
        if state == "Finished":
            return self._result(ctx, analysis.get("result") or {})
        if state == "Failed":
            message = (analysis.get("error") or {}).get("message", "no reason given")
            return EnrichmentResult.skipped(f"Cyanite analysis failed: {message}")
        if state == "NotStarted":
            enq = await self._graphql(
                ENQUEUE_MUTATION, {"input": {"spotifyTrackId": track.spotify_id}}, cache=False
            )
            result = enq.get("spotifyTrackEnqueue") or {}
            if result.get("__typename") != "SpotifyTrackEnqueueSuccess":
                return EnrichmentResult.skipped(
                    f"Cyanite refused the analysis: {result.get('message')}"
                )
            return EnrichmentResult.deferred("Cyanite analysis enqueued", self.poll)
        if state in ("Enqueued", "Processing"):
            return EnrichmentResult.deferred(f"Cyanite analysis {state.lower()}", self.poll)
        raise EnrichmentError(f"cyanite: unexpected analysis state {analysis.get('__typename')!r}")

    async def _spotify_state(self, ctx: TrackContext) -> EnrichmentState | None:
        if ctx.states is None:
            return None
        for state in await ctx.states():
            if state.source == "spotify":
                return state
        return None

    def _result(self, ctx: TrackContext, result: dict[str, Any]) -> EnrichmentResult:
        bpm = (result.get("bpmPrediction") or {}).get("value")
        key = parse_key((result.get("keyPrediction") or {}).get("value"))
        valence = result.get("valence")
        moods = tuple(str(m) for m in result.get("moodTags") or [])
        update = TrackUpdate(
            track_id=ctx.track.id,
            bpm=float(bpm) if bpm is not None else None,
            key=key[0] if key else None,
            mode=key[1] if key else None,
            energy=_ENERGY.get(str(result.get("energyLevel", "")).lower()),
            valence=(float(valence) + 1.0) / 2.0 if valence is not None else None,
            moods=moods or None,
        )
        return EnrichmentResult(Outcome.DONE, update=update)
