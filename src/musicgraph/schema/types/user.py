"""``User``: a listener. Name and public flag are visible with the profile; listens, ratings,
private playlists and statistics only to the user themself and the admin (``null`` otherwise)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from musicgraph.errors import RecommenderError
from musicgraph.graph import models
from musicgraph.schema.context import Info, PublicError
from musicgraph.schema.decorators import field
from musicgraph.schema.selection import selects
from musicgraph.schema.types.catalogue import Track
from musicgraph.schema.types.connection import (
    DEFAULT_PAGE,
    Connection,
    Edge,
    PageInfo,
    check_page_size,
    decode_cursor,
    encode_cursor,
)
from musicgraph.schema.types.listen import Listen, attach_tracks
from musicgraph.schema.types.playlist import Playlist
from musicgraph.schema.types.recommendation import TasteCluster
from musicgraph.schema.types.stats import (
    ArtistCount,
    ListeningStats,
    Period,
    TrackCount,
    attach_artists_to_counts,
)

#: how far past a ``before`` cursor one scan for newer listens looks at first (doubles each time)
_SCAN_SECONDS = 7 * 86400


@strawberry.type(description="A like (+1) or dislike (-1) of a track.")
class Rating:
    score: int
    at: int
    track_id: strawberry.ID

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None


async def _listen_connection(
    info: Info,
    rows: list[models.Listen],
    count: Callable[[], Awaitable[int]],
    *,
    has_next: bool,
    has_previous: bool,
) -> Connection[Listen]:
    listens = [Listen.from_model(r) for r in rows]
    # Load the page's tracks (and their artists) here, one batch each, when the query asks for
    # them: the listens' `track` and the tracks' `artists` then resolve synchronously.
    for node in ("edges", "node"), ("nodes",):
        if selects(info, *node, "track"):
            await attach_tracks(
                info.context.loaders, listens, with_artists=selects(info, *node, "track", "artists")
            )
            break
    edges = [
        Edge(cursor=encode_cursor("t", r.listened_at), node=n)
        for r, n in zip(rows, listens, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    created_at: int
    public: bool

    @classmethod
    def from_model(cls, u: models.User) -> User:
        return cls(id=strawberry.ID(u.id), name=u.name, created_at=u.created_at, public=u.public)

    @field(
        description="Listens, newest first. Page forward with first/after; backward with "
        "last/before (before is required then). Cursors are listen times."
    )
    async def listens(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        include_skips: bool = False,
    ) -> Connection[Listen] | None:
        ctx = info.context
        uid = str(self.id)
        if not ctx.may_read_private(uid):
            return None
        max_page = ctx.settings.max_page_size
        check_page_size(first, "first", max_page)
        check_page_size(last, "last", max_page)

        def total() -> Awaitable[int]:
            return ctx.store.count_listens(uid, include_skips=include_skips)

        if last is None:
            n = first if first is not None else min(DEFAULT_PAGE, max_page)
            older_than = decode_cursor("t", after, "after") if after is not None else None
            rows = await ctx.store.recent_listens(
                uid, before=older_than, limit=n + 1, include_skips=include_skips
            )
            return await _listen_connection(
                info, rows[:n], total, has_next=len(rows) > n, has_previous=after is not None
            )
        if before is None or include_skips:
            raise PublicError(
                "listens: last needs a before cursor and cannot include skips; "
                "page from the newest listen with first/after"
            )
        newer_than = decode_cursor("t", before, "before")
        span, now = _SCAN_SECONDS, 2**62
        rows = []
        while True:  # the `last` listens just newer than the cursor, oldest first
            end = min(newer_than + 1 + span, now)
            rows = await ctx.store.listens_between(uid, newer_than + 1, end)
            if len(rows) > last or end >= now:
                break
            span *= 4
        page = rows[:last]
        page.reverse()
        return await _listen_connection(
            info, page, total, has_next=True, has_previous=len(rows) > last
        )

    @strawberry.field
    async def listen_count(self, info: Info) -> int | None:
        if not info.context.may_read_private(str(self.id)):
            return None
        return await info.context.store.count_listens(str(self.id))

    @field(description="Playlists the viewer may see (private ones only for the owner).")
    async def playlists(self, info: Info) -> list[Playlist]:
        ctx = info.context
        found = await ctx.store.list_playlists(
            str(self.id), include_private=ctx.may_read_private(str(self.id))
        )
        return [Playlist.from_model(p) for p in found]

    @strawberry.field
    async def ratings(self, info: Info) -> list[Rating] | None:
        ctx = info.context
        if not ctx.may_read_private(str(self.id)):
            return None
        rows = await ctx.store.get_ratings(str(self.id))
        return [Rating(score=r.score, at=r.at, track_id=strawberry.ID(r.track_id)) for r in rows]

    @field(description="All-time top artists by play count.")
    async def top_artists(self, info: Info, limit: int = 10) -> list[ArtistCount] | None:
        from musicgraph.resolvers.stats import top_artists

        if not info.context.may_read_private(str(self.id)):
            return None
        check_page_size(limit, "limit", info.context.settings.max_page_size)
        counts = await top_artists(info.context, str(self.id), limit)
        if selects(info, "artist"):
            await attach_artists_to_counts(info.context.loaders, counts)
        return counts

    @field(description="All-time top tracks by play count.")
    async def top_tracks(self, info: Info, limit: int = 10) -> list[TrackCount] | None:
        from musicgraph.resolvers.stats import top_tracks

        if not info.context.may_read_private(str(self.id)):
            return None
        check_page_size(limit, "limit", info.context.settings.max_page_size)
        return await top_tracks(info.context, str(self.id), limit)

    @strawberry.field
    async def stats(self, info: Info, period: Period = Period.MONTH) -> ListeningStats | None:
        from musicgraph.resolvers.stats import listening_stats

        if not info.context.may_read_private(str(self.id)):
            return None
        return await listening_stats(info.context, str(self.id), period)

    @field(description="The user's tastes: communities of their artists (null when not theirs).")
    async def taste_clusters(self, info: Info) -> list[TasteCluster] | None:
        ctx = info.context
        engine = ctx.state.engine
        if engine is None or not ctx.may_read_private(str(self.id)):
            return None
        try:
            clusters = engine.taste_clusters(str(self.id))
        except RecommenderError:
            return []
        return [
            TasteCluster(
                label=c.label,
                share=float(c.share),
                top_tags=list(c.top_tags),
                artist_ids=[strawberry.ID(a) for a in c.artist_ids],
            )
            for c in clusters
        ]

    @field(description="Friends whose profiles the viewer may see.")
    async def friends(self, info: Info) -> list[User]:
        ctx = info.context
        if not (self.public or ctx.may_read_private(str(self.id))):
            return []
        ids = await ctx.loaders.friends.load(str(self.id))
        found = await ctx.loaders.user.load_many(ids)
        return [User.from_model(u) for u in found if u is not None and ctx.may_see_user(u)]
