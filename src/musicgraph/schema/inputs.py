"""GraphQL input types."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.input(description="One listen to record. Times are seconds since the Unix epoch, UTC.")
class ListenInput:
    artist: str
    title: str
    listened_at: int
    album: str | None = None
    mbid: str | None = strawberry.field(default=None, description="MusicBrainz recording MBID")
    isrc: str | None = None
    spotify_id: str | None = strawberry.field(default=None, description="id, URI or URL")
    duration_ms: int | None = None
    ms_played: int | None = None
    skipped: bool = False
    artist_mbid: str | None = None


@strawberry.input(description="An inclusive range; either end may be left open.")
class FloatRange:
    min: float | None = None
    max: float | None = None


@strawberry.input(description="How recommendations are chosen and filtered.")
class RecommendationControls:
    exclude_heard: bool = True
    exclude_heard_within_days: int | None = None
    max_per_artist: int | None = None
    include_tags: list[str] = strawberry.field(default_factory=list)
    exclude_tags: list[str] = strawberry.field(default_factory=list)
    novelty: float = strawberry.field(
        default=0.0, description="0 = as popular as it comes, 1 = strongly prefer the obscure"
    )
    bpm: FloatRange | None = None
    energy: FloatRange | None = None
    valence: FloatRange | None = None
    explain: bool = True


@strawberry.enum
class TrackRating(Enum):
    LIKE = "like"
    DISLIKE = "dislike"
    CLEAR = "clear"


@strawberry.input
class CreatePlaylistInput:
    name: str
    description: str = ""
    public: bool = False
    track_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class GeneratePlaylistInput:
    name: str | None = None
    seeds: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="track ids; the user's own taste when empty"
    )
    length: int = 25
    public: bool = False
    controls: RecommendationControls | None = None
