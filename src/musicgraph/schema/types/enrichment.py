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


@strawberry.type(description="An ``enrichment.progress`` event of the pipeline.")
class EnrichmentProgress:
    source: str | None
    track_id: strawberry.ID | None
    status: str | None
    message: str | None
    queues: list[EnrichmentQueue]

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EnrichmentProgress:
        counts = payload.get("counts") or {}
        queues = (
            [EnrichmentQueue.from_counts(s, c) for s, c in sorted(counts.items())]
            if isinstance(counts, dict)
            else []
        )
        track_id = payload.get("track_id")
        return cls(
            source=payload.get("source"),
            track_id=strawberry.ID(str(track_id)) if track_id else None,
            status=payload.get("status"),
            message=payload.get("message") or payload.get("error"),
            queues=queues,
        )
