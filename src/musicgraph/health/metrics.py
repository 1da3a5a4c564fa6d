"""Prometheus metrics of the outside sources and the store, in a registry of their own.

Each :class:`~musicgraph.health.monitor.HealthMonitor` owns one :class:`Metrics` (and so one
``CollectorRegistry``), so two monitors in one process (tests, several apps) never collide on the
global registry. ``render()`` is what ``/metrics`` serves.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["BREAKER_STATE_VALUES", "CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: How a breaker state is exported as a number (``disabled`` sources export -1).
BREAKER_STATE_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0, "disabled": -1.0}


class Metrics:
    """The counters, histograms and gauges the health monitor keeps up to date."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "musicgraph_source_requests",
            "HTTP requests sent to an outside source, by outcome (ok or error).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "musicgraph_source_errors",
            "Failed requests to an outside source, by kind of error.",
            ["source", "kind"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "musicgraph_source_cache_hits",
            "Responses served from the persistent cache (no request, no rate budget).",
            ["source"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "musicgraph_source_request_seconds",
            "Latency of requests to an outside source.",
            ["source"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.breaker = Gauge(
            "musicgraph_source_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open, -1 disabled.",
            ["source"],
            registry=self.registry,
        )
        self.budget = Gauge(
            "musicgraph_source_rate_budget_remaining",
            "Requests that may be sent right now without waiting for the rate limiter.",
            ["source"],
            registry=self.registry,
        )
        self.rate_limit = Gauge(
            "musicgraph_source_rate_limit",
            "Configured rate limit of a source, in requests per second.",
            ["source"],
            registry=self.registry,
        )
        self.store_up = Gauge(
            "musicgraph_store_up",
            "1 when the last store ping succeeded, else 0.",
            registry=self.registry,
        )
        self.store_latency = Gauge(
            "musicgraph_store_ping_seconds",
            "Latency of the last store ping.",
            registry=self.registry,
        )
        self.enrichment = Gauge(
            "musicgraph_enrichment_states",
            "Enrichment queue entries by source and status.",
            ["source", "status"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
