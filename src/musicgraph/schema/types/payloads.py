"""What mutations answer when they succeed (the failures are in :mod:`.errors`)."""

from __future__ import annotations

import strawberry

from musicgraph.schema.context import Info
from musicgraph.schema.types.catalogue import Track
from musicgraph.schema.types.enrichment import EnrichmentProgress
from musicgraph.schema.types.playlist import Playlist


@strawberry.type(description="The playlist as it is after the change.")
class PlaylistSuccess:
    playlist: Playlist


@strawberry.type
class PlaylistDeleted:
    id: strawberry.ID


@strawberry.type(description="An input listen that was stored (or was already there).")
class StoredListen:
    index: int = strawberry.field(description="Position in the input list (0-based).")
    listened_at: int
    new: bool = strawberry.field(description="False when the same listen was already stored.")
    track_id: strawberry.ID

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None


@strawberry.type(description="An input listen that was refused, and why.")
class RejectedListen:
    index: int
    reason: str
    field: str | None
    message: str


@strawberry.type
class RecordListensSuccess:
    user_id: strawberry.ID
    inserted: int
    duplicates: int
    stored: list[StoredListen]
    rejected: list[RejectedListen]


@strawberry.type
class RateTrackSuccess:
    track_id: strawberry.ID
    score: int | None = strawberry.field(description="+1 like, -1 dislike, null cleared")

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None


@strawberry.type
class EnrichmentStarted:
    queued: int = strawberry.field(description="(track, source) pairs newly queued")
    sources: list[str]
    started: bool = strawberry.field(
        description="False when a run was already going (it picks the new work up)"
    )
    progress: list[EnrichmentProgress]
