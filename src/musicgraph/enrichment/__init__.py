"""Enrichment from MusicBrainz, Last.fm, Spotify and Cyanite: one resilient HTTP layer, one
source module per API, and a durable pipeline over the store's queue.

What the rest of musicgraph uses:

- :class:`EnrichmentPipeline` (``run``, ``start``, ``stop``, ``wake``, ``snapshot``) and
  :func:`start_enrichment` (the ``startEnrichment`` mutation's entry point);
- :func:`build_sources` (register every source with a health monitor, for its probes);
- :class:`SourceClient`, :class:`ResponseCache` for a new source.
"""

from __future__ import annotations

from musicgraph.enrichment.http import ApiResponse, ClientConfig, ResponseCache, SourceClient
from musicgraph.enrichment.pipeline import (
    EnrichmentPipeline,
    SourceProgress,
    build_sources,
    default_cache_path,
    start_enrichment,
)

__all__ = [
    "ApiResponse",
    "ClientConfig",
    "EnrichmentPipeline",
    "ResponseCache",
    "SourceClient",
    "SourceProgress",
    "build_sources",
    "default_cache_path",
    "start_enrichment",
]
