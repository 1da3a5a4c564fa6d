"""The health monitor: per outside source and for the store, what is working and what is not.

Every request an enrichment source sends is recorded here (latency, outcome, kind of error), and
every circuit-breaker transition too. From that the monitor keeps, per source: breaker state,
latency percentiles over a sliding window of recent requests, success rate over the same window,
request and error counts by kind, the last error and when, the remaining rate budget, and features
that degraded (Spotify's audio features answering 403). The store gets the same record from
:meth:`HealthMonitor.check_store` (a ping).

Consumers:

- the GraphQL ``health`` query reads :meth:`HealthMonitor.snapshot`;
- the ``apiHealth`` subscription listens to ``"health.changed"`` events, published when a source's
  status or breaker state changes and every ``interval`` seconds while :meth:`start` runs; the
  payload is ``{"reason": str, "source": str | None, "sources": [asdict(SourceHealth), ...]}``;
- ``/metrics`` serves :meth:`HealthMonitor.prometheus_text`; ``/readyz`` uses :meth:`readiness`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from musicgraph.events import Event, EventBus
from musicgraph.health.metrics import BREAKER_STATE_VALUES, Metrics
from musicgraph.logging import get_logger

__all__ = ["HealthMonitor", "SourceHealth", "SourceStatus"]

log = get_logger(__name__)

SourceStatus = Literal["ok", "degraded", "down", "disabled", "unknown"]
STORE = "store"


class _Pingable(Protocol):
    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What the monitor knows about one source (or the store, ``name == "store"``) right now."""

    name: str
    kind: Literal["source", "store"]
    status: SourceStatus
    enabled: bool
    breaker_state: str
    disabled_reason: str | None
    requests: int
    errors: int
    errors_by_kind: dict[str, int]
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
    degraded: tuple[str, ...]
    checked_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class _Record:
    name: str
    kind: Literal["source", "store"]
    window: int
    enabled: bool = True
    disabled_reason: str | None = None
    breaker_state: str = "closed"
    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    latencies: deque[float] = field(init=False)
    outcomes: deque[bool] = field(init=False)
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None
    rate_limit: float | None = None
    budget: Callable[[], float] | None = None
    probe: Callable[[], Awaitable[None]] | None = None
    degraded: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.latencies = deque(maxlen=self.window)
        self.outcomes = deque(maxlen=self.window)

    def status(self) -> SourceStatus:
        if not self.enabled:
            return "disabled"
        if self.breaker_state == "open" or (
            self.kind == "store" and self.outcomes and not self.outcomes[-1]
        ):
            return "down"
        if not self.outcomes:
            return "unknown" if not self.degraded else "degraded"
        if self.breaker_state == "half-open" or self.degraded or not self.outcomes[-1]:
            return "degraded"
        return "ok"


class HealthMonitor:
    """Health of every outside source and of the store; see the module docstring."""

    def __init__(
        self,
        bus: EventBus | None = None,
        *,
        window: int = 512,
        interval: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.interval = interval
        self.metrics = Metrics()
        self._window = window
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._statuses: dict[str, tuple[SourceStatus, str]] = {}
        self._store: _Pingable | None = None
        self._task: asyncio.Task[None] | None = None
        self._record(STORE, kind="store")

    # --- registration ------------------------------------------------------------------------------
    def _record(self, name: str, *, kind: Literal["source", "store"] = "source") -> _Record:
        rec = self._records.get(name)
        if rec is None:
            rec = self._records[name] = _Record(name=name, kind=kind, window=self._window)
        return rec

    def register_source(
        self,
        name: str,
        *,
        enabled: bool = True,
        disabled_reason: str | None = None,
        rate_limit: float | None = None,
        budget: Callable[[], float] | None = None,
        probe: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Declare a source (again: a new pipeline run re-registers its clients' callbacks)."""
        rec = self._record(name)
        rec.enabled = enabled
        rec.disabled_reason = None if enabled else disabled_reason
        rec.rate_limit = rate_limit
        rec.budget = budget
        rec.probe = probe
        if not enabled:
            rec.breaker_state = "disabled"
        elif rec.breaker_state == "disabled":
            rec.breaker_state = "closed"
        self.metrics.breaker.labels(name).set(BREAKER_STATE_VALUES[rec.breaker_state])
        if rate_limit is not None:
            self.metrics.rate_limit.labels(name).set(rate_limit)
        self._changed(name, "registered")

    def detach_source(self, name: str) -> None:
        """Forget a source's probe and budget callbacks (its client is closing); keep its record."""
        rec = self._records.get(name)
        if rec is not None:
            rec.probe = None
            rec.budget = None

    def attach_store(self, store: _Pingable) -> None:
        """The store :meth:`start`'s periodic loop pings."""
        self._store = store

    @property
    def source_names(self) -> list[str]:
        return [n for n, r in self._records.items() if r.kind == "source"]

    # --- recording -------------------------------------------------------------------------------------
    def record_success(self, name: str, latency: float) -> None:
        rec = self._record(name)
        rec.requests += 1
        rec.latencies.append(latency)
        rec.outcomes.append(True)
        rec.last_success_at = self._clock()
        self.metrics.requests.labels(name, "ok").inc()
        self.metrics.latency.labels(name).observe(latency)
        self._changed(name, "success")

    def record_failure(
        self, name: str, kind: str, message: str, *, latency: float | None = None
    ) -> None:
        """A failed request (``kind``: timeout, connect, http_5xx, rate_limited, api_error, ...)."""
        rec = self._record(name)
        rec.requests += 1
        rec.errors += 1
        rec.errors_by_kind[kind] = rec.errors_by_kind.get(kind, 0) + 1
        rec.outcomes.append(False)
        if latency is not None:
            rec.latencies.append(latency)
            self.metrics.latency.labels(name).observe(latency)
        rec.last_error = message
        rec.last_error_at = self._clock()
        self.metrics.requests.labels(name, "error").inc()
        self.metrics.errors.labels(name, kind).inc()
        self._changed(name, "error")

    def record_cache_hit(self, name: str) -> None:
        self._record(name).cache_hits += 1
        self.metrics.cache_hits.labels(name).inc()

    def set_breaker_state(self, name: str, state: str) -> None:
        """Called by the breaker listener on every transition (closed, open, half-open)."""
        rec = self._record(name)
        if rec.breaker_state != state:
            log.info("breaker state changed", source=name, state=state, was=rec.breaker_state)
        rec.breaker_state = state
        self.metrics.breaker.labels(name).set(BREAKER_STATE_VALUES.get(state, -1.0))
        self._changed(name, "breaker")

    def set_disabled(self, name: str, reason: str) -> None:
        """A source that cannot work at all (no credentials, suspended key)."""
        rec = self._record(name)
        rec.enabled = False
        rec.disabled_reason = reason
        rec.breaker_state = "disabled"
        self.metrics.breaker.labels(name).set(BREAKER_STATE_VALUES["disabled"])
        self._changed(name, "disabled")

    def set_degraded(self, name: str, feature: str, reason: str | None) -> None:
        """Mark (``reason``) or clear (``None``) a feature of a source that stopped working."""
        rec = self._record(name)
        if reason is None:
            rec.degraded.pop(feature, None)
        else:
            rec.degraded[feature] = reason
        self._changed(name, "degraded")

    def set_enrichment_counts(self, counts: dict[str, dict[str, int]]) -> None:
        for source, by_status in counts.items():
            for status, n in by_status.items():
                self.metrics.enrichment.labels(source, status).set(n)

    # --- reading ---------------------------------------------------------------------------------------
    def _health(self, rec: _Record) -> SourceHealth:
        lat = sorted(rec.latencies)
        ms = [v * 1000.0 for v in lat]
        budget: float | None = None
        if rec.budget is not None:
            with contextlib.suppress(Exception):  # a budget callback must never break a snapshot
                budget = float(rec.budget())
                self.metrics.budget.labels(rec.name).set(budget)
        outcomes = rec.outcomes
        return SourceHealth(
            name=rec.name,
            kind=rec.kind,
            status=rec.status(),
            enabled=rec.enabled,
            breaker_state=rec.breaker_state,
            disabled_reason=rec.disabled_reason,
            requests=rec.requests,
            errors=rec.errors,
            errors_by_kind=dict(rec.errors_by_kind),
            cache_hits=rec.cache_hits,
            success_rate=(sum(outcomes) / len(outcomes)) if outcomes else None,
            latency_p50_ms=_percentile(ms, 0.50) if ms else None,
            latency_p95_ms=_percentile(ms, 0.95) if ms else None,
            latency_p99_ms=_percentile(ms, 0.99) if ms else None,
            rate_limit=rec.rate_limit,
            rate_budget=budget,
            last_error=rec.last_error,
            last_error_at=rec.last_error_at,
            last_success_at=rec.last_success_at,
            degraded=tuple(f"{k}: {v}" for k, v in sorted(rec.degraded.items())),
            checked_at=self._clock(),
        )

    def snapshot(self) -> list[SourceHealth]:
        """Every source (in registration order), then the store."""
        sources = [self._health(r) for r in self._records.values() if r.kind == "source"]
        return [*sources, self._health(self._records[STORE])]

    def get(self, name: str) -> SourceHealth | None:
        rec = self._records.get(name)
        return None if rec is None else self._health(rec)

    def prometheus_text(self) -> bytes:
        """What ``/metrics`` serves (refreshes the budget gauges first)."""
        for rec in self._records.values():
            self._health(rec)
        return self.metrics.render()

    # --- store -------------------------------------------------------------------------------------------
    async def check_store(self, store: _Pingable | None = None) -> SourceHealth:
        """Ping the store (the attached one by default) and record the outcome."""
        target = store if store is not None else self._store
        rec = self._records[STORE]
        if target is None:
            return self._health(rec)
        start = time.perf_counter()
        try:
            await target.ping()
        except Exception as exc:
            self.metrics.store_up.set(0)
            self.record_failure(STORE, "unavailable", f"store ping failed: {exc}")
        else:
            latency = time.perf_counter() - start
            self.metrics.store_up.set(1)
            self.metrics.store_latency.set(latency)
            self.record_success(STORE, latency)
        return self._health(rec)

    async def readiness(
        self, store: _Pingable | None = None, *, projection_ready: bool | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """``(ready, details)`` for ``/readyz``: the store answers and the projection is built."""
        health = await self.check_store(store)
        store_ok = health.status == "ok"
        details: dict[str, Any] = {
            "store": {"ok": store_ok, "error": None if store_ok else health.last_error},
            "sources": {h.name: h.status for h in self.snapshot() if h.kind == "source"},
        }
        ready = store_ok
        if projection_ready is not None:
            details["projection"] = {"ok": projection_ready}
            ready = ready and projection_ready
        return ready, details

    # --- publishing and probing ------------------------------------------------------------------------
    def _changed(self, name: str, reason: str) -> None:
        rec = self._records[name]
        key = (rec.status(), rec.breaker_state)
        if self._statuses.get(name) == key:
            return
        self._statuses[name] = key
        self.publish(reason, source=name)

    def publish(self, reason: str, *, source: str | None = None) -> None:
        """Publish the whole snapshot as a ``"health.changed"`` event."""
        if self.bus is None:
            return
        self.bus.publish(
            Event(
                "health.changed",
                {
                    "reason": reason,
                    "source": source,
                    "sources": [h.as_dict() for h in self.snapshot()],
                },
            )
        )

    async def probe(self, name: str) -> SourceHealth | None:
        """Run the light probe of one source (its outcome is recorded like any request)."""
        rec = self._records.get(name)
        if rec is None:
            return None
        if rec.enabled and rec.probe is not None:
            with contextlib.suppress(Exception):  # the client already recorded the failure
                await rec.probe()
        return self._health(rec)

    async def probe_all(self) -> list[SourceHealth]:
        await asyncio.gather(*(self.probe(n) for n in self.source_names))
        await self.check_store()
        return self.snapshot()

    def start(self, *, probes: bool = True) -> None:
        """Probe every source and the store every ``interval`` seconds and publish the snapshot."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(probes))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, probes: bool) -> None:
        while True:
            try:
                if probes:
                    await self.probe_all()
                else:
                    await self.check_store()
                self.publish("interval")
            except Exception as exc:  # the loop must outlive any one bad probe
                log.warning("health probe round failed", error=str(exc))
            await asyncio.sleep(self.interval)
