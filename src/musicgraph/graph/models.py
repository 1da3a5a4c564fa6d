"""Plain frozen records of the listening graph (DESIGN.md section 2).

Times are integer seconds since the Unix epoch, UTC. Identifiers are opaque strings made by
:mod:`musicgraph.graph.identity`; both stores produce the same ids for the same input, so a graph
exported from one store and imported into the other keeps its ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

ItemKind = Literal["track", "artist"]

#: The outside APIs that enrich tracks; every new track gets a pending queue entry for each.
ENRICHMENT_SOURCES: tuple[str, ...] = ("musicbrainz", "lastfm", "spotify", "cyanite")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    created_at: int
    public: bool = False


@dataclass(frozen=True, slots=True)
class Artist:
    id: str
    name: str
    mbid: str | None = None
    spotify_id: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Track:
    id: str
    title: str
    artist_ids: tuple[str, ...] = ()
    album: str | None = None
    mbid: str | None = None
    isrc: str | None = None
    spotify_id: str | None = None
    duration_ms: int | None = None
    bpm: float | None = None
    key: int | None = None
    mode: int | None = None
    energy: float | None = None
    valence: float | None = None
    moods: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    year: int | None = None


@dataclass(frozen=True, slots=True)
class Playlist:
    id: str
    owner_id: str
    name: str
    description: str = ""
    public: bool = False
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    playlist_id: str
    track_id: str
    position: int
    added_at: int


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArtistRef:
    """An artist as an input names it: by name, with an MBID or Spotify id when known."""

    name: str
    mbid: str | None = None
    spotify_id: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class TrackRef:
    """A track as an input names it. Matched by MBID, then ISRC, then Spotify id, then the
    normalised (artist, title) pair; see :func:`musicgraph.graph.identity.track_keys`."""

    artist: str
    title: str
    album: str | None = None
    mbid: str | None = None
    isrc: str | None = None
    spotify_id: str | None = None
    duration_ms: int | None = None
    artist_mbid: str | None = None


@dataclass(frozen=True, slots=True)
class ListenInput:
    """One listen to record: the PLAYED edge, and through it the LISTENED aggregate.

    ``skipped`` listens (a Rockbox ``S`` line, a Spotify play under 30 seconds) are kept in the
    history but count towards ``skips``, not ``count``.
    """

    user_id: str
    track: TrackRef
    listened_at: int
    source: str
    ms_played: int | None = None
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class ListenColumns:
    """A batch of listens column by column: what importers hand the store, so a batch of
    20,000 listens is a few lists instead of 20,000 objects.

    Listen ``i`` is ``user_ids[i]`` playing ``refs[tracks[i]]`` at ``listened_at[i]`` from
    ``sources[i]`` (with ``ms_played[i]``, ``skipped[i]``); every column has one entry per
    listen, and ``refs`` holds each track ref once. Same contract as a list of
    :class:`ListenInput`; :meth:`of` converts one.
    """

    refs: Sequence[TrackRef]
    tracks: Sequence[int]
    listened_at: Sequence[int]
    user_ids: Sequence[str]
    sources: Sequence[str]
    ms_played: Sequence[int | None]
    skipped: Sequence[bool]

    def __len__(self) -> int:
        return len(self.tracks)

    @staticmethod
    def of(listens: Sequence[ListenInput]) -> ListenColumns:
        """The columns of ``listens`` (each distinct ref once: by object, then by value)."""
        refs: list[TrackRef] = []
        by_object: dict[int, int] = {}
        by_value: dict[TrackRef, int] = {}
        tracks: list[int] = []
        for listen in listens:
            ref = listen.track
            slot = by_object.get(id(ref))
            if slot is None:
                slot = by_value.get(ref)
                if slot is None:
                    slot = by_value[ref] = len(refs)
                    refs.append(ref)
                by_object[id(ref)] = slot
            tracks.append(slot)
        return ListenColumns(
            refs=refs,
            tracks=tracks,
            listened_at=[x.listened_at for x in listens],
            user_ids=[x.user_id for x in listens],
            sources=[x.source for x in listens],
            ms_played=[x.ms_played for x in listens],
            skipped=[x.skipped for x in listens],
        )

    def check(self) -> None:
        """Raise ``ValueError`` naming what is wrong: columns of different lengths, a time that
        is not whole seconds (``listen i: ...``), a track index outside ``refs``."""
        n = len(self.tracks)
        for name in ("listened_at", "user_ids", "sources", "ms_played", "skipped"):
            size = len(getattr(self, name))
            if size != n:
                raise ValueError(f"listen columns: {name} has {size} entries, tracks {n}")
        if set(map(type, self.listened_at)) - {int}:  # bool is not a time either
            for i, at in enumerate(self.listened_at):
                if at.__class__ is not int:
                    raise ValueError(
                        f"listen {i}: listened_at must be whole seconds since the epoch, got {at!r}"
                    )
        if n and (min(self.tracks) < 0 or max(self.tracks) >= len(self.refs)):
            raise ValueError(f"listen columns: track indexes outside 0..{len(self.refs) - 1}")

    def first_listen_of(self, ref_index: int) -> int:
        """The first listen naming ``refs[ref_index]`` (what an error about that ref names)."""
        return list(self.tracks).index(ref_index)

    def listen(self, i: int) -> ListenInput:
        """Listen ``i`` as a :class:`ListenInput`."""
        return ListenInput(
            self.user_ids[i],
            self.refs[self.tracks[i]],
            self.listened_at[i],
            self.sources[i],
            self.ms_played[i],
            self.skipped[i],
        )


@dataclass(frozen=True, slots=True)
class ListenBatchResult:
    """What one ``record_listens`` batch did.

    ``track_ids`` and ``new_mask`` have one entry per input, in order: the resolved track and whether
    that listen was new (False for a listen already stored or repeated earlier in the batch).
    ``new_track_ids`` are tracks this batch created (to be queued for enrichment).
    """

    inserted: int
    duplicates: int
    track_ids: tuple[str, ...]
    new_mask: tuple[bool, ...] = ()
    new_track_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """Properties an enrichment source learned about a track; ``None`` leaves a field as it is."""

    track_id: str
    mbid: str | None = None
    isrc: str | None = None
    spotify_id: str | None = None
    duration_ms: int | None = None
    album: str | None = None
    year: int | None = None
    bpm: float | None = None
    key: int | None = None
    mode: int | None = None
    energy: float | None = None
    valence: float | None = None
    moods: tuple[str, ...] | None = None
    genres: tuple[str, ...] | None = None


# --- edges --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listen:
    """A PLAYED edge: one listen in a user's history."""

    user_id: str
    track_id: str
    listened_at: int
    source: str
    ms_played: int | None = None
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class ListenAggregate:
    """A LISTENED edge: the aggregate every algorithm reads."""

    user_id: str
    track_id: str
    count: int
    skips: int
    first_at: int
    last_at: int


@dataclass(frozen=True, slots=True)
class ArtistListen:
    """A LISTENED_ARTIST edge: artist-level play counts where no tracks are known (HetRec)."""

    user_id: str
    artist_id: str
    count: int


@dataclass(frozen=True, slots=True)
class TrackArtist:
    """A BY edge."""

    track_id: str
    artist_id: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class Tagging:
    """A TAGGED edge from an artist or a track to a tag. Writing it again replaces the count."""

    item_kind: ItemKind
    item_id: str
    tag: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Friendship:
    """A FRIEND edge, directed as stored; HetRec lists both directions."""

    user_id: str
    friend_id: str


@dataclass(frozen=True, slots=True)
class Rating:
    """A RATED edge: +1 like, -1 dislike."""

    user_id: str
    track_id: str
    score: int
    at: int


@dataclass(frozen=True, slots=True)
class Similarity:
    """A SIMILAR edge between two tracks or two artists, from one source (e.g. ``lastfm``)."""

    item_kind: ItemKind
    source_id: str
    target_id: str
    score: float
    source: str


class EnrichmentStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class EnrichmentState:
    """The durable queue entry for one (track, source)."""

    track_id: str
    source: str
    status: EnrichmentStatus
    attempts: int = 0
    last_error: str | None = None
    updated_at: int = 0
    not_before: int = 0


@dataclass(frozen=True, slots=True)
class GraphCounts:
    """Counts per node and edge type, as ``musicgraph stats`` prints them."""

    users: int = 0
    artists: int = 0
    tracks: int = 0
    tags: int = 0
    playlists: int = 0
    listens: int = 0
    skips: int = 0
    listened: int = 0
    artist_listens: int = 0
    track_artists: int = 0
    taggings: int = 0
    friendships: int = 0
    ratings: int = 0
    playlist_entries: int = 0
    similarities: int = 0
    enrichment: dict[str, int] = field(default_factory=dict)
