"""What every enrichment source is: a name, whether it can run, and ``enrich(context) -> result``.

A source never writes to the store: it returns an :class:`EnrichmentResult` and the pipeline writes
results in batches (properties, TAGGED and SIMILAR edges, artist identifiers) and publishes the
events. A source raises :class:`~musicgraph.errors.SourceUnavailableError` or
:class:`~musicgraph.errors.RateLimitedError` (from its :class:`~musicgraph.enrichment.http.SourceClient`)
when the outside API cannot answer now, :class:`~musicgraph.errors.SourceDisabledError` when it
will not answer at all (bad or suspended credentials), and another
:class:`~musicgraph.errors.EnrichmentError` when this one track failed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from musicgraph.enrichment.http import ApiResponse, ClientConfig, SourceClient
from musicgraph.errors import EnrichmentError
from musicgraph.graph.identity import fold_featuring, normalise
from musicgraph.graph.models import Artist, ArtistRef, EnrichmentState, Track, TrackRef, TrackUpdate
from musicgraph.settings import Settings

__all__ = [
    "DAY",
    "EnrichmentResult",
    "EnrichmentSource",
    "Outcome",
    "SimilarArtist",
    "SimilarTrack",
    "TrackContext",
    "client_config",
    "same_name",
]

DAY = 86_400.0
WEEK = 7 * DAY
MONTH = 30 * DAY


class Outcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class TrackContext:
    """A track to enrich, with its artists (in BY order) and a way to read its queue states."""

    track: Track
    artists: tuple[Artist, ...] = ()
    states: Callable[[], Awaitable[list[EnrichmentState]]] | None = None
    #: the sources with a running worker in this run (a source may wait for another's result)
    active_sources: frozenset[str] = frozenset()
    #: how many times this (track, source) was tried or polled before, and why it was deferred
    attempts: int = 0
    last_reason: str | None = None

    @property
    def artist_name(self) -> str:
        return self.artists[0].name if self.artists else ""


@dataclass(frozen=True, slots=True)
class SimilarTrack:
    ref: TrackRef
    score: float


@dataclass(frozen=True, slots=True)
class SimilarArtist:
    """``artist_id`` (ours) is similar to ``ref`` (theirs, resolved by the pipeline)."""

    artist_id: str
    ref: ArtistRef
    score: float


@dataclass(frozen=True, slots=True)
class EnrichmentResult:
    """What a source learned about one track, or why it learned nothing (yet)."""

    outcome: Outcome
    update: TrackUpdate | None = None
    tags: tuple[tuple[str, int], ...] = ()
    artists: tuple[ArtistRef, ...] = ()
    similar_tracks: tuple[SimilarTrack, ...] = ()
    similar_artists: tuple[SimilarArtist, ...] = ()
    reason: str | None = None
    retry_in: float | None = None
    extra: dict[str, Any] | None = None

    @classmethod
    def skipped(cls, reason: str) -> EnrichmentResult:
        return cls(Outcome.SKIPPED, reason=reason)

    @classmethod
    def deferred(cls, reason: str, retry_in: float) -> EnrichmentResult:
        return cls(Outcome.DEFERRED, reason=reason, retry_in=retry_in)


class OwnsClient:
    """The client a source owns: ``None`` while the source is disabled, closed by ``aclose``."""

    client: SourceClient | None = None

    @property
    def _c(self) -> SourceClient:
        assert self.client is not None, "a disabled source makes no requests"
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class EnrichmentSource(Protocol):
    """One outside API as the pipeline drives it."""

    name: str
    enabled: bool
    disabled_reason: str | None
    client: SourceClient | None

    async def enrich(self, ctx: TrackContext) -> EnrichmentResult: ...

    async def probe(self) -> None:
        """A light request showing whether the API answers (the health monitor's probe)."""

    async def aclose(self) -> None: ...


def client_config(
    settings: Settings, *, name: str, base_url: str, rate: float, **extra: Any
) -> ClientConfig:
    """A :class:`ClientConfig` with the shared HTTP settings (timeouts, retries, breaker)."""
    return ClientConfig(
        name=name,
        base_url=base_url,
        rate=rate,
        timeout=settings.http_timeout,
        max_retries=settings.http_max_retries,
        backoff=settings.http_backoff,
        breaker_fail_max=settings.breaker_fail_max,
        breaker_reset=settings.breaker_reset,
        max_connections=max(8, settings.enrich_concurrency * 2),
        **extra,
    )


def same_name(a: str, b: str) -> bool:
    """Whether two artist names or titles are the same after normalisation and "feat." folding."""
    return normalise(fold_featuring(a)) == normalise(fold_featuring(b))


def year_of(date: str | None) -> int | None:
    """The year of an ISO-ish date ("1997", "1997-05", "1997-05-21"), if there is one."""
    if date and re.match(r"^\d{4}", date):
        year = int(date[:4])
        return year if 1000 <= year <= 2999 else None
    return None


def http_error(source: str, response: ApiResponse, what: str) -> EnrichmentError:
    """An error for an unexpected HTTP answer, naming the source, the request and the status."""
    detail = response.body[:160].decode("utf-8", "replace")
    return EnrichmentError(f"{source}: unexpected HTTP {response.status} for {what}: {detail}")
