"""``ListeningStats``: what a user played over a period."""

from __future__ import annotations

from collections.abc import Awaitable
from enum import Enum

import strawberry

from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.loaders import Loaders
from musicgraph.schema.types.catalogue import Artist, TagCount, Track, load_artists


@strawberry.enum(description="A period ending now.")
class Period(Enum):
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ALL_TIME = "all_time"


PERIOD_SECONDS: dict[Period, int | None] = {
    Period.WEEK: 7 * 86400,
    Period.MONTH: 30 * 86400,
    Period.YEAR: 365 * 86400,
    Period.ALL_TIME: None,
}


@strawberry.type
class ArtistCount:
    artist_id: strawberry.ID
    count: int
    #: set (with the artist, or ``None`` when it does not exist) by
    #: :func:`attach_artists_to_counts`
    artist_attached: strawberry.Private[bool] = False
    attached_artist: strawberry.Private[Artist | None] = None

    @field(
        description="The artist counted.",
        graphql_type=Artist | None,
        prefetched=("artist_attached", "attached_artist"),
    )
    def artist(self, info: Info) -> Artist | Awaitable[Artist | None] | None:
        if self.artist_attached:  # synchronous: the parent loaded the artists
            return self.attached_artist
        return self._load_artist(info.context.loaders)

    async def _load_artist(self, loaders: Loaders) -> Artist | None:
        found = await loaders.artist.load(str(self.artist_id))
        return Artist.from_model(found) if found is not None else None


async def attach_artists_to_counts(loaders: Loaders, counts: list[ArtistCount]) -> None:
    """Load the artists of ``counts`` in one DataLoader batch and attach them (nothing, when the
    load fails: each ``artist`` field then reports the failure itself, as without prefetching)."""
    try:
        artists = await load_artists(loaders, (str(c.artist_id) for c in counts))
    except Exception:
        return
    for c in counts:
        c.attached_artist = artists.get(str(c.artist_id))
        c.artist_attached = True


@strawberry.type
class TrackCount:
    track_id: strawberry.ID
    count: int

    @strawberry.field
    async def track(self, info: Info) -> Track | None:
        found = await info.context.loaders.track.load(str(self.track_id))
        return Track.from_model(found) if found is not None else None


@strawberry.type(description="Listens on one UTC day (YYYY-MM-DD).")
class DayCount:
    day: str
    count: int


@strawberry.type
class ListeningStats:
    period: Period
    start: int | None
    end: int
    listen_count: int
    unique_tracks: int
    unique_artists: int
    top_artists: list[ArtistCount]
    top_tracks: list[TrackCount]
    top_tags: list[TagCount]
    listens_per_day: list[DayCount]
    diversity: float = strawberry.field(
        description="Shannon entropy of the listens over artists, divided by its maximum "
        "(0: one artist only, 1: every artist equally often)."
    )
