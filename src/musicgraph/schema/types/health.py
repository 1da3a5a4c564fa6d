"""``SourceHealth``: what the health monitor knows about an outside source or the store."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type(description="Count of errors of one kind.")
class ErrorCount:
    kind: str
    count: int


@strawberry.type(description="An outside API (or the store, kind 'store') right now.")
class SourceHealth:
    name: str
    kind: str
    status: str = strawberry.field(description="ok, degraded, down, disabled or unknown")
    enabled: bool
    breaker_state: str
    disabled_reason: str | None
    requests: int
    errors: int
    errors_by_kind: list[ErrorCount]
    cache_hits: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    rate_limit: float | None
    rate_budget: float | None
    last_error: str | None
    last_error_at: float | None
    last_success_at: float | None
    degraded: list[str]
    checked_at: float

    @classmethod
    def from_monitor(cls, h: Any) -> SourceHealth:
        """From a :class:`musicgraph.health.SourceHealth` or its ``as_dict()`` (event payloads)."""
        d: dict[str, Any] = h if isinstance(h, dict) else h.as_dict()
        return cls(
            name=d["name"],
            kind=d["kind"],
            status=d["status"],
            enabled=d["enabled"],
            breaker_state=d["breaker_state"],
            disabled_reason=d.get("disabled_reason"),
            requests=d.get("requests", 0),
            errors=d.get("errors", 0),
            errors_by_kind=[
                ErrorCount(kind=k, count=v) for k, v in sorted(d.get("errors_by_kind", {}).items())
            ],
            cache_hits=d.get("cache_hits", 0),
            success_rate=d.get("success_rate"),
            latency_p50_ms=d.get("latency_p50_ms"),
            latency_p95_ms=d.get("latency_p95_ms"),
            latency_p99_ms=d.get("latency_p99_ms"),
            rate_limit=d.get("rate_limit"),
            rate_budget=d.get("rate_budget"),
            last_error=d.get("last_error"),
            last_error_at=d.get("last_error_at"),
            last_success_at=d.get("last_success_at"),
            degraded=list(d.get("degraded", ())),
            checked_at=d.get("checked_at", 0.0),
        )
