"""``Listen``: one play in a user's history (readable by that user and the admin only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from musicgraph.graph import models
from musicgraph.schema.context import Info
from musicgraph.schema.types.catalogue import Track

if TYPE_CHECKING:
    from musicgraph.schema.types.user import User


@strawberry.type(description="A listen. Times are seconds since the Unix epoch, UTC.")
class Listen:
    listened_at: int
    source: str
    ms_played: int | None
    skipped: bool
    track_id: strawberry.ID
    user_id: strawberry.ID

    @classmethod
    def from_model(cls, listen: models.Listen) -> Listen:
        return cls(
            listened_at=listen.listened_at,
            source=listen.source,
            ms_played=listen.ms_played,
            skipped=listen.skipped,
            track_id=strawberry.ID(listen.track_id),
            user_id=strawberry.ID(listen.user_id),
        )

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None

    @strawberry.field
    async def user(
        self, info: Info
    ) -> Annotated[User, strawberry.lazy("musicgraph.schema.types.user")] | None:
        from musicgraph.schema.types.user import User

        found = await info.context.loaders.user.load(str(self.user_id))
        return User.from_model(found) if found is not None else None
