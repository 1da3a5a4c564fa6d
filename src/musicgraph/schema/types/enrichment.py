"""Enrichment: the durable queue entries (``EnrichmentJob``), their counts, and progress events."""

from __future__ import annotations

from typing import Any

import strawberry

from musicgraph.graph import models
from musicgraph.schema.context import Info
from musicgraph.schema.types.catalogue import Track


@strawberry.type(description="The enrichment of one track by one source.")
class EnrichmentJob:
    track_id: strawberry.ID
    source: str
    status: str = strawberry.field(description="pending, done, failed or skipped")
    attempts: int
    last_error: str | None
    updated_at: int
    not_before: int

    @classmethod
    def from_model(cls, s: models.EnrichmentState) -> EnrichmentJob:
        return cls(
            track_id=strawberry.ID(s.track_id),
            source=s.source,
            status=str(s.status.value if hasattr(s.status, "value") else s.status),
            attempts=s.attempts,
            last_error=s.last_error,
            updated_at=s.updated_at,
            not_before=s.not_before,
        )

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None


@strawberry.type(description="How many tracks one source has in each state.")
class EnrichmentQueue:
    source: str
    pending: int
    done: int
    failed: int
    skipped: int

    @classmethod
    def from_counts(cls, source: str, counts: dict[str, int]) -> EnrichmentQueue:
        return cls(
            source=source,
            pending=counts.get("pending", 0),
            done=counts.get("done", 0),
            failed=counts.get("failed", 0),
            skipped=counts.get("skipped", 0),
        )


@strawberry.type(
    description="How one source's enrichment run is going (an enrichment.progress event)."
)
class EnrichmentProgress:
    source: str
    state: str = strawberry.field(
        description="starting, running, paused, waiting, idle, finished, disabled, unavailable "
        "or stopped"
    )
    done: int
    failed: int
    skipped: int
    deferred: int
    pending: int
    rate: float = strawberry.field(description="Items finished per second, recently.")
    eta_seconds: float | None
    reason: str | None
    totals: EnrichmentQueue = strawberry.field(description="The source's queue in the store.")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EnrichmentProgress:
        source = str(payload.get("source", ""))
        totals = payload.get("totals")
        return cls(
            source=source,
            state=str(payload.get("state", "")),
            done=int(payload.get("done", 0)),
            failed=int(payload.get("failed", 0)),
            skipped=int(payload.get("skipped", 0)),
            deferred=int(payload.get("deferred", 0)),
            pending=int(payload.get("pending", 0)),
            rate=float(payload.get("rate", 0.0)),
            eta_seconds=payload.get("eta_seconds"),
            reason=payload.get("reason"),
            totals=EnrichmentQueue.from_counts(source, totals if isinstance(totals, dict) else {}),
        )
