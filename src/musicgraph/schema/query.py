"""The ``Query`` root: each field delegates to a thin resolver in :mod:`musicgraph.resolvers`."""

from __future__ import annotations

from typing import Annotated

import strawberry

from musicgraph.resolvers import catalogue, enrichment, playlists, recommendations, stats, users
from musicgraph.resolvers.access import denied
from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.inputs import RecommendationControls
from musicgraph.schema.selection import selects
from musicgraph.schema.types.catalogue import Artist, Tag, Track
from musicgraph.schema.types.connection import Connection
from musicgraph.schema.types.enrichment import EnrichmentJob, EnrichmentQueue
from musicgraph.schema.types.errors import AccessDenied, InvalidInput, NotFound, Unavailable
from musicgraph.schema.types.health import SourceHealth
from musicgraph.schema.types.playlist import Playlist
from musicgraph.schema.types.recommendation import ItemKind, RecommendationList, attach_items
from musicgraph.schema.types.stats import ListeningStats, Period
from musicgraph.schema.types.user import User

RecommendationsResult = Annotated[
    RecommendationList | AccessDenied | InvalidInput | NotFound | Unavailable,
    strawberry.union("RecommendationsResult"),
]
SimilarResult = Annotated[
    RecommendationList | NotFound | InvalidInput | Unavailable, strawberry.union("SimilarResult")
]
ListeningStatsResult = Annotated[
    ListeningStats | AccessDenied | NotFound, strawberry.union("ListeningStatsResult")
]


@strawberry.type
class Query:
    @field(description="The user the bearer token belongs to (null when anonymous).")
    async def me(self, info: Info) -> User | None:
        return await users.me(info.context)

    @field(description="A user by id or by name, when the profile is visible.")
    async def user(
        self, info: Info, id: strawberry.ID | None = None, name: str | None = None
    ) -> User | None:
        return await users.user(info.context, id, name)

    @strawberry.field
    async def track(self, info: Info, id: strawberry.ID) -> Track | None:
        return await catalogue.track(info.context, id)

    @strawberry.field
    async def artist(self, info: Info, id: strawberry.ID) -> Artist | None:
        return await catalogue.artist(info.context, id)

    @field(description="A tag by name (null when nothing carries it).")
    async def tag(self, info: Info, name: str) -> Tag | None:
        return await catalogue.tag(info.context, name)

    @field(description="A playlist, when it is public or the viewer's.")
    async def playlist(self, info: Info, id: strawberry.ID) -> Playlist | None:
        return await playlists.playlist(info.context, id)

    @field(description="Public playlists, newest first.")
    async def public_playlists(
        self, info: Info, offset: int = 0, limit: int = 20
    ) -> list[Playlist]:
        return await playlists.public_playlists(info.context, offset, limit)

    @field(description="Tracks whose title contains the query.")
    async def search_tracks(
        self,
        info: Info,
        query: str,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Track]:
        return await catalogue.search_tracks(info.context, query, first, after, last, before)

    @field(description="Artists whose name contains the query.")
    async def search_artists(
        self,
        info: Info,
        query: str,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Artist]:
        return await catalogue.search_artists(info.context, query, first, after, last, before)

    @field(
        description="Recommended tracks or artists for a user (default: the viewer), or from "
        "seeds alone (anyone may ask with seeds)."
    )
    async def recommendations(
        self,
        info: Info,
        user: strawberry.ID | None = None,
        kind: ItemKind = ItemKind.TRACK,
        limit: int = 20,
        seeds: list[strawberry.ID] | None = None,
        controls: RecommendationControls | None = None,
    ) -> RecommendationsResult:
        result = await recommendations.recommend(
            info.context,
            user,
            kind,
            limit,
            [str(s) for s in seeds or []],
            controls,
            reasons=selects(info, "items", "reasons"),
        )
        if isinstance(result, RecommendationList):
            await attach_items(info, result)
        return result

    @field(description="Tracks listened to by the same people, with the evidence.")
    async def similar_tracks(self, info: Info, id: strawberry.ID, limit: int = 20) -> SimilarResult:
        result = await recommendations.similar(info.context, id, ItemKind.TRACK, limit)
        if isinstance(result, RecommendationList):
            await attach_items(info, result)
        return result

    @field(description="Artists listened to by the same people, with the evidence.")
    async def similar_artists(
        self, info: Info, id: strawberry.ID, limit: int = 20
    ) -> SimilarResult:
        result = await recommendations.similar(info.context, id, ItemKind.ARTIST, limit)
        if isinstance(result, RecommendationList):
            await attach_items(info, result)
        return result

    @field(description="What a user played over a period (their own, or any: admin).")
    async def listening_stats(
        self, info: Info, user: strawberry.ID | None = None, period: Period = Period.MONTH
    ) -> ListeningStatsResult:
        ctx = info.context
        user_id = user if user is not None else ctx.viewer.user_id
        if user_id is None:
            return denied(ctx, "listeningStats")
        if not ctx.may_read_private(user_id):
            return denied(ctx, f"listening stats of user {user_id!r}")
        if await ctx.loaders.user.load(user_id) is None:
            return NotFound(message=f"no user with id {user_id!r}", id=user_id)
        return await stats.listening_stats(ctx, user_id, period)

    @field(description="Every outside source and the store, as the monitor sees them.")
    async def health(self, info: Info) -> list[SourceHealth]:
        return await enrichment.health(info.context)

    @field(description="The enrichment state of a track, per source.")
    async def enrichment_jobs(self, info: Info, track_id: strawberry.ID) -> list[EnrichmentJob]:
        return await enrichment.enrichment_jobs(info.context, track_id)

    @field(description="How many tracks each source has pending, done, failed, skipped.")
    async def enrichment_queues(self, info: Info) -> list[EnrichmentQueue]:
        return await enrichment.enrichment_queues(info.context)
