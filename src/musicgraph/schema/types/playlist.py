"""``Playlist`` and its entries. Public playlists are readable by anyone, private ones by their
owner and the admin (the resolvers that hand out a playlist check that)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from musicgraph.graph import models
from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.types.catalogue import Track
from musicgraph.schema.types.connection import Connection, offset_connection, offset_window

if TYPE_CHECKING:
    from musicgraph.schema.types.user import User


@strawberry.type(description="A track at a position (0-based) of a playlist.")
class PlaylistEntry:
    position: int
    added_at: int
    track_id: strawberry.ID

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None


@strawberry.type
class Playlist:
    id: strawberry.ID
    name: str
    description: str
    public: bool
    created_at: int
    updated_at: int
    owner_id: strawberry.ID

    @classmethod
    def from_model(cls, p: models.Playlist) -> Playlist:
        return cls(
            id=strawberry.ID(p.id),
            name=p.name,
            description=p.description,
            public=p.public,
            created_at=p.created_at,
            updated_at=p.updated_at,
            owner_id=strawberry.ID(p.owner_id),
        )

    @field(description="The owner, when their profile is visible to the viewer.")
    async def owner(
        self, info: Info
    ) -> Annotated[User, strawberry.lazy("musicgraph.schema.types.user")] | None:
        from musicgraph.schema.types.user import User

        found = await info.context.loaders.user.load(str(self.owner_id))
        if found is None or not info.context.may_see_user(found):
            return None
        return User.from_model(found)

    @field(description="Paths of this playlist as JSPF, XSPF and M3U8 files.")
    def export_paths(self) -> list[str]:
        return [f"/playlists/{self.id}.{ext}" for ext in ("jspf", "xspf", "m3u8")]

    @field(description="The entries, in playlist order.")
    async def tracks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[PlaylistEntry]:
        ctx = info.context
        total = await ctx.store.count_playlist_entries(str(self.id))
        window = offset_window(
            first=first,
            after=after,
            last=last,
            before=before,
            total=total,
            max_page=ctx.settings.max_page_size,
        )
        rows = await ctx.store.playlist_entries(
            str(self.id), offset=window.offset, limit=window.limit
        )
        page = [
            PlaylistEntry(
                position=e.position, added_at=e.added_at, track_id=strawberry.ID(e.track_id)
            )
            for e in rows
        ]
        return offset_connection(page, window, total)
