"""``Recommendation``: a recommended track or artist, its score and why it was recommended."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import strawberry

from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.types.catalogue import Artist, Track


@strawberry.enum
class ItemKind(Enum):
    TRACK = "track"
    ARTIST = "artist"


Item = Annotated[Track | Artist, strawberry.union("Item")]


async def load_item(info: Info, kind: str, item_id: str) -> Track | Artist | None:
    loaders = info.context.loaders
    if kind == "track":
        track = await loaders.track.load(item_id)
        return Track.from_model(track) if track is not None else None
    if kind == "artist":
        artist = await loaders.artist.load(item_id)
        return Artist.from_model(artist) if artist is not None else None
    return None


@strawberry.type(description="One seed's part in a recommendation, with the evidence.")
class Reason:
    seed_id: str
    seed_kind: str
    share: float = strawberry.field(description="The seed's share of the item's score (0..1).")
    evidence: str = strawberry.field(description='Why, in words: "14 listeners of X also play Y".')
    shared_listeners: int
    shared_tags: list[str]
    friends: int
    playlists: int

    @field(description="The seed, when it is a track or an artist.")
    async def seed(self, info: Info) -> Item | None:
        return await load_item(info, self.seed_kind, self.seed_id)


@strawberry.type
class Recommendation:
    item_id: strawberry.ID
    kind: ItemKind
    score: float
    reasons: list[Reason]

    @strawberry.field
    async def item(self, info: Info) -> Item | None:
        return await load_item(info, self.kind.value, str(self.item_id))


@strawberry.type(description="A ranked list of recommendations and how it was computed.")
class RecommendationList:
    user_id: strawberry.ID | None
    kind: ItemKind
    method: str
    elapsed_ms: float
    items: list[Recommendation]


def recommendation_list(result: Any, user_id: str | None, kind: ItemKind) -> RecommendationList:
    """Map the engine's ``RecommendationResult`` to the schema type."""
    return RecommendationList(
        user_id=strawberry.ID(user_id) if user_id else None,
        kind=kind,
        method=str(result.method),
        elapsed_ms=float(result.elapsed_ms),
        items=[
            Recommendation(
                item_id=strawberry.ID(r.item_id),
                kind=ItemKind(r.kind),
                score=float(r.score),
                reasons=[
                    Reason(
                        seed_id=str(x.seed_id),
                        seed_kind=str(x.seed_kind),
                        share=float(x.share),
                        evidence=str(x.evidence),
                        shared_listeners=int(x.shared_listeners),
                        shared_tags=list(x.shared_tags),
                        friends=int(x.friends),
                        playlists=int(x.playlists),
                    )
                    for x in r.reasons
                ],
            )
            for r in result.items
        ],
    )


@strawberry.type(description="One community of a user's artists (their tastes), heaviest first.")
class TasteCluster:
    label: str = strawberry.field(description="The cluster's most played artist.")
    share: float = strawberry.field(description="Its share of the user's listening (0..1).")
    top_tags: list[str]
    artist_ids: list[strawberry.ID]

    @strawberry.field
    async def artists(self, info: Info, limit: int = 10) -> list[Artist]:
        ids = [str(a) for a in self.artist_ids[: max(limit, 0)]]
        found = await info.context.loaders.artist.load_many(ids)
        return [Artist.from_model(a) for a in found if a is not None]
