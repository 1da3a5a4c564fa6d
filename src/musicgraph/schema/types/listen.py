"""``Listen``: one play in a user's history (readable by that user and the admin only)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Annotated

import strawberry

from musicgraph.graph import models
from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.loaders import Loaders
from musicgraph.schema.types.catalogue import Track, load_tracks

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
    #: set (with the track, or ``None`` when it does not exist) by :func:`attach_tracks`
    track_attached: strawberry.Private[bool] = False
    attached_track: strawberry.Private[Track | None] = None

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

    @field(
        description="The track played.",
        graphql_type=Track | None,
        prefetched=("track_attached", "attached_track"),
    )
    def track(self, info: Info) -> Track | Awaitable[Track | None] | None:
        if self.track_attached:  # synchronous: the listens' resolver loaded the tracks
            return self.attached_track
        return self._load_track(info.context.loaders)

    async def _load_track(self, loaders: Loaders) -> Track | None:
        found = await loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None

    @strawberry.field
    async def user(
        self, info: Info
    ) -> Annotated[User, strawberry.lazy("musicgraph.schema.types.user")] | None:
        from musicgraph.schema.types.user import User

        found = await info.context.loaders.user.load(str(self.user_id))
        return User.from_model(found) if found is not None else None


async def attach_tracks(loaders: Loaders, listens: list[Listen], *, with_artists: bool) -> None:
    """Load the tracks of ``listens`` in one DataLoader batch (their artists in a second one when
    ``with_artists``) and attach them, so ``track`` answers synchronously. When the load fails
    nothing is attached: each listen's ``track`` then reports the failure where it happened, as
    without prefetching (the DataLoader keeps the failed load: no further store call)."""
    try:
        tracks = await load_tracks(
            loaders, (str(x.track_id) for x in listens), with_artists=with_artists
        )
    except Exception:
        return
    for x in listens:
        x.attached_track = tracks.get(str(x.track_id))
        x.track_attached = True
