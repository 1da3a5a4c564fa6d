"""Health of the outside sources and the store: breaker states, latencies, errors, metrics."""

from __future__ import annotations

from musicgraph.health.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from musicgraph.health.monitor import HealthMonitor, SourceHealth, SourceStatus

__all__ = ["METRICS_CONTENT_TYPE", "HealthMonitor", "SourceHealth", "SourceStatus"]
