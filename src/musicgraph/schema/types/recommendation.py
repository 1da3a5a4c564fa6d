"""``Recommendation``: a recommended track or artist, its score and why it was recommended."""

from __future__ import annotations

from collections.abc import Awaitable
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.loaders import Loaders
from musicgraph.schema.selection import selects
from musicgraph.schema.types.catalogue import Artist, Track, load_artists, load_tracks


@strawberry.enum
class ItemKind(Enum):
    TRACK = "track"
    ARTIST = "artist"


Item = Annotated[Track | Artist, strawberry.union("Item")]


async def load_item(info: Info, kind: str, item_id: str) -> Track | Artist | None:
    return await _load_item(info.context.loaders, kind, item_id)


async def _load_item(loaders: Loaders, kind: str, item_id: str) -> Track | Artist | None:
    if kind == "track":
        track = await loaders.track.load(item_id)
        return Track.from_model(track) if track is not None else None
    if kind == "artist":
        artist = await loaders.artist.load(item_id)
        return Artist.from_model(artist) if artist is not None else None
    return None


@strawberry.type(description="One seed's part in a recommendation, with the evidence.")
class Reason:
    """The GraphQL face of :class:`musicgraph.recommender.explain.Reason`, whose objects answer
    for it directly (``recommendation_list``): keep the two field lists the same."""

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
    #: set (with the item, or ``None`` when it does not exist) by :func:`attach_items`
    item_attached: strawberry.Private[bool] = False
    attached_item: strawberry.Private[Track | Artist | None] = None

    @field(
        description="The recommended track or artist.",
        graphql_type=Item | None,
        prefetched=("item_attached", "attached_item"),
    )
    def item(self, info: Info) -> Track | Artist | Awaitable[Track | Artist | None] | None:
        if self.item_attached:  # synchronous: the list's resolver loaded the items
            return self.attached_item
        return _load_item(info.context.loaders, self.kind.value, str(self.item_id))


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
                # The engine's reasons as they are: they have this type's fields, by the same
                # names and of the same types (the fields read them by name; copying twenty
                # items' sixty reasons into new objects cost ~0.1 ms an answer).
                reasons=cast(list[Reason], r.reasons),
            )
            for r in result.items
        ],
    )


async def attach_items(info: Info, result: RecommendationList) -> None:
    """When the query asks for ``items { item }``, load the items in one DataLoader batch per
    kind (the tracks' artists in one more, when asked for) and attach them, so ``item`` and the
    tracks' ``artists`` answer synchronously. ``info`` is the field returning ``result``. When
    a load fails nothing is attached: each ``item`` then reports the failure itself, as without
    prefetching (the DataLoader keeps the failed load: no further store call)."""
    if not result.items or not selects(info, "items", "item"):
        return
    loaders = info.context.loaders
    ids = {kind: [str(r.item_id) for r in result.items if r.kind is kind] for kind in ItemKind}
    items: dict[tuple[ItemKind, str], Track | Artist] = {}
    try:
        if ids[ItemKind.TRACK]:
            with_artists = selects(info, "items", "item", "artists")
            tracks = await load_tracks(loaders, ids[ItemKind.TRACK], with_artists=with_artists)
            items.update(((ItemKind.TRACK, i), t) for i, t in tracks.items())
        if ids[ItemKind.ARTIST]:
            artists = await load_artists(loaders, ids[ItemKind.ARTIST])
            items.update(((ItemKind.ARTIST, i), a) for i, a in artists.items())
    except Exception:
        return
    for r in result.items:
        r.attached_item = items.get((r.kind, str(r.item_id)))
        r.item_attached = True


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
