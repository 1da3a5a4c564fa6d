"""The ``Mutation`` root. Every field answers a union: its success type or a typed error."""

from __future__ import annotations

from typing import Annotated

import strawberry

from musicgraph.resolvers import enrichment, playlists, recommendations
from musicgraph.resolvers import listens as listen_resolvers
from musicgraph.schema.context import Info
from musicgraph.schema.decorators import mutation
from musicgraph.schema.inputs import (
    CreatePlaylistInput,
    GeneratePlaylistInput,
    ListenInput,
    TrackRating,
)
from musicgraph.schema.types.errors import AccessDenied, InvalidInput, NotFound, Unavailable
from musicgraph.schema.types.payloads import (
    EnrichmentStarted,
    PlaylistDeleted,
    PlaylistSuccess,
    RateTrackSuccess,
    RecordListensSuccess,
)

RecordListensResult = Annotated[
    RecordListensSuccess | AccessDenied | NotFound | InvalidInput,
    strawberry.union("RecordListensResult"),
]
RateTrackResult = Annotated[
    RateTrackSuccess | AccessDenied | NotFound, strawberry.union("RateTrackResult")
]
PlaylistResult = Annotated[
    PlaylistSuccess | NotFound | AccessDenied | InvalidInput, strawberry.union("PlaylistResult")
]
DeletePlaylistResult = Annotated[
    PlaylistDeleted | NotFound | AccessDenied, strawberry.union("DeletePlaylistResult")
]
GeneratePlaylistResult = Annotated[
    PlaylistSuccess | AccessDenied | InvalidInput | NotFound | Unavailable,
    strawberry.union("GeneratePlaylistResult"),
]
StartEnrichmentResult = Annotated[
    EnrichmentStarted | AccessDenied | InvalidInput, strawberry.union("StartEnrichmentResult")
]

USER_ARG = "acting user: the viewer by default; only the admin names another user"


@strawberry.type
class Mutation:
    @mutation(
        description="Record a batch of listens; answers per item what was stored and what was "
        "rejected, with the reason."
    )
    async def record_listens(
        self,
        info: Info,
        listens: list[ListenInput],
        user: Annotated[strawberry.ID | None, strawberry.argument(description=USER_ARG)] = None,
    ) -> RecordListensResult:
        return await listen_resolvers.record_listens(info.context, listens, user)

    @mutation(description="Like, dislike or clear a track.")
    async def rate_track(
        self,
        info: Info,
        track_id: strawberry.ID,
        rating: TrackRating,
        user: Annotated[strawberry.ID | None, strawberry.argument(description=USER_ARG)] = None,
    ) -> RateTrackResult:
        return await listen_resolvers.rate_track(info.context, track_id, rating, user)

    @strawberry.mutation
    async def create_playlist(
        self,
        info: Info,
        input: CreatePlaylistInput,
        user: Annotated[strawberry.ID | None, strawberry.argument(description=USER_ARG)] = None,
    ) -> PlaylistResult:
        return await playlists.create_playlist(
            info.context,
            user,
            input.name,
            input.description,
            input.public,
            [str(t) for t in input.track_ids],
        )

    @strawberry.mutation
    async def rename_playlist(self, info: Info, id: strawberry.ID, name: str) -> PlaylistResult:
        return await playlists.update_playlist(info.context, id, name=name)

    @strawberry.mutation
    async def describe_playlist(
        self, info: Info, id: strawberry.ID, description: str
    ) -> PlaylistResult:
        return await playlists.update_playlist(info.context, id, description=description)

    @strawberry.mutation
    async def set_playlist_public(
        self, info: Info, id: strawberry.ID, public: bool
    ) -> PlaylistResult:
        return await playlists.update_playlist(info.context, id, public=public)

    @mutation(description="Insert tracks at a position (append when omitted).")
    async def add_to_playlist(
        self,
        info: Info,
        id: strawberry.ID,
        track_ids: list[strawberry.ID],
        position: int | None = None,
    ) -> PlaylistResult:
        return await playlists.add_to_playlist(
            info.context, id, [str(t) for t in track_ids], position
        )

    @mutation(description="Remove the entries at these positions (0-based).")
    async def remove_from_playlist(
        self, info: Info, id: strawberry.ID, positions: list[int]
    ) -> PlaylistResult:
        return await playlists.remove_from_playlist(info.context, id, positions)

    @mutation(description="Move the entry at fromPosition to toPosition.")
    async def move_in_playlist(
        self, info: Info, id: strawberry.ID, from_position: int, to_position: int
    ) -> PlaylistResult:
        return await playlists.move_in_playlist(info.context, id, from_position, to_position)

    @strawberry.mutation
    async def delete_playlist(self, info: Info, id: strawberry.ID) -> DeletePlaylistResult:
        return await playlists.delete_playlist(info.context, id)

    @mutation(description="Make a playlist from recommendations (seeded or not).")
    async def generate_playlist(
        self,
        info: Info,
        input: GeneratePlaylistInput,
        user: Annotated[strawberry.ID | None, strawberry.argument(description=USER_ARG)] = None,
    ) -> GeneratePlaylistResult:
        return await recommendations.generate_playlist(info.context, user, input)

    @mutation(description="Queue tracks for enrichment (admin only).")
    async def start_enrichment(
        self,
        info: Info,
        track_ids: list[strawberry.ID],
        sources: list[str] | None = None,
    ) -> StartEnrichmentResult:
        return await enrichment.start_enrichment(info.context, [str(t) for t in track_ids], sources)
