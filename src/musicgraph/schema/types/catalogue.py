"""The public catalogue: ``Track``, ``Artist`` and ``Tag`` (readable by anyone).

They refer to each other, so they live in one module. Every nested field reads through the
request's DataLoaders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable

import strawberry

from musicgraph.graph import models
from musicgraph.schema.context import Info
from musicgraph.schema.decorators import field
from musicgraph.schema.loaders import Loaders
from musicgraph.schema.types.connection import (
    Connection,
    Window,
    offset_connection,
    offset_page,
    offset_window,
)

MB_RECORDING = "https://musicbrainz.org/recording/"
MB_ARTIST = "https://musicbrainz.org/artist/"


@strawberry.type(description="A tag on a track or an artist, with how often it was applied.")
class TagCount:
    name: str
    count: int

    @strawberry.field
    def tag(self) -> Tag:
        return Tag(name=self.name)


@strawberry.type(description="A recording, with the audio features enrichment found.")
class Track:
    id: strawberry.ID
    title: str
    album: str | None
    mbid: str | None
    isrc: str | None
    spotify_id: str | None
    duration_ms: int | None
    year: int | None
    bpm: float | None
    key: int | None
    mode: int | None
    energy: float | None
    valence: float | None
    moods: list[str]
    genres: list[str]
    artist_ids: strawberry.Private[tuple[str, ...]]
    #: the credited artists, when the parent resolver loaded them (see :func:`attach_artists`)
    prefetched_artists: strawberry.Private[list[Artist] | None] = None

    @classmethod
    def from_model(cls, t: models.Track) -> Track:
        return cls(
            id=strawberry.ID(t.id),
            title=t.title,
            album=t.album,
            mbid=t.mbid,
            isrc=t.isrc,
            spotify_id=t.spotify_id,
            duration_ms=t.duration_ms,
            year=t.year,
            bpm=t.bpm,
            key=t.key,
            mode=t.mode,
            energy=t.energy,
            valence=t.valence,
            moods=list(t.moods),
            genres=list(t.genres),
            artist_ids=t.artist_ids,
        )

    @field(description="The MusicBrainz recording page, when the MBID is known.")
    def musicbrainz_url(self) -> str | None:
        return MB_RECORDING + self.mbid if self.mbid else None

    @field(
        description="The credited artists, in credit order.",
        graphql_type=list["Artist"],
        prefetched=("prefetched_artists", "prefetched_artists"),
    )
    def artists(self, info: Info) -> list[Artist] | Awaitable[list[Artist]]:
        # Synchronous when the parent attached the artists: a list of tracks then costs no
        # coroutine and no DataLoader future per track.
        if self.prefetched_artists is not None:
            return self.prefetched_artists
        return self._load_artists(info.context.loaders)

    async def _load_artists(self, loaders: Loaders) -> list[Artist]:
        found = await loaders.artist.load_many(list(self.artist_ids))
        return [Artist.from_model(a) for a in found if a is not None]

    @field(description="Tags, most applied first.")
    async def tags(self, info: Info, limit: int = 10) -> list[TagCount]:
        rows = await info.context.loaders.track_tags.load(str(self.id))
        return [TagCount(name=r.tag, count=r.count) for r in rows[: max(limit, 0)]]


@strawberry.type
class Artist:
    id: strawberry.ID
    name: str
    mbid: str | None
    spotify_id: str | None
    url: str | None

    @classmethod
    def from_model(cls, a: models.Artist) -> Artist:
        return cls(
            id=strawberry.ID(a.id), name=a.name, mbid=a.mbid, spotify_id=a.spotify_id, url=a.url
        )

    @strawberry.field
    def musicbrainz_url(self) -> str | None:
        return MB_ARTIST + self.mbid if self.mbid else None

    @field(description="Tags, most applied first.")
    async def tags(self, info: Info, limit: int = 10) -> list[TagCount]:
        rows = await info.context.loaders.artist_tags.load(str(self.id))
        return [TagCount(name=r.tag, count=r.count) for r in rows[: max(limit, 0)]]

    @field(description="The artist's tracks, by title.")
    async def tracks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Track]:
        ctx = info.context
        total = await ctx.loaders.artist_track_count.load(str(self.id))
        window = offset_window(
            first=first,
            after=after,
            last=last,
            before=before,
            total=total,
            max_page=ctx.settings.max_page_size,
        )
        end = window.offset + window.limit
        if end <= ctx.loaders.page_size:
            tracks = await ctx.loaders.artist_tracks.load(str(self.id))
        else:
            (tracks,) = await ctx.store.tracks_by_artists([str(self.id)], limit=end)
        page = [Track.from_model(t) for t in tracks[window.offset : end]]
        return offset_connection(page, window, total)


async def load_artists(loaders: Loaders, ids: Iterable[str]) -> dict[str, Artist]:
    """The artists of ``ids`` that exist, by id, in one DataLoader batch."""
    wanted = list(dict.fromkeys(ids))
    found = await loaders.artist.load_many(wanted)
    return {a.id: Artist.from_model(a) for a in found if a is not None}


async def attach_artists(loaders: Loaders, tracks: Iterable[Track]) -> None:
    """Load the credited artists of all ``tracks`` in one batch and attach them, so each
    track's ``artists`` field answers synchronously. When the load fails nothing is attached:
    each track's field then reports the failure itself, as it would without prefetching (the
    DataLoader keeps the failed load, so that costs no further store call)."""
    tracks = list(tracks)
    try:
        artists = await load_artists(loaders, (a for t in tracks for a in t.artist_ids))
    except Exception:
        return
    for t in tracks:
        t.prefetched_artists = [artists[a] for a in t.artist_ids if a in artists]


async def load_tracks(
    loaders: Loaders, ids: Iterable[str], *, with_artists: bool
) -> dict[str, Track]:
    """The tracks of ``ids`` that exist, by id, in one DataLoader batch (and their artists in a
    second one when ``with_artists``)."""
    wanted = list(dict.fromkeys(ids))
    found = await loaders.track.load_many(wanted)
    tracks = {t.id: Track.from_model(t) for t in found if t is not None}
    if with_artists:
        await attach_artists(loaders, tracks.values())
    return tracks


@strawberry.type(description="A tag, and the tracks and artists carrying it.")
class Tag:
    name: str

    @field(description="Tracks carrying the tag, most tagged first.")
    async def tracks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Track]:
        ctx = info.context

        async def fetch(window: Window) -> list[Track]:
            ids = await ctx.store.items_tagged(
                self.name, "track", offset=window.offset, limit=window.limit
            )
            found = await ctx.loaders.track.load_many(ids)
            return [Track.from_model(t) for t in found if t]

        return await offset_page(
            fetch,
            total=await ctx.store.count_items_tagged(self.name, "track"),
            max_page=ctx.settings.max_page_size,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @field(description="Artists carrying the tag, most tagged first.")
    async def artists(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Artist]:
        ctx = info.context

        async def fetch(window: Window) -> list[Artist]:
            ids = await ctx.store.items_tagged(
                self.name, "artist", offset=window.offset, limit=window.limit
            )
            found = await ctx.loaders.artist.load_many(ids)
            return [Artist.from_model(a) for a in found if a]

        return await offset_page(
            fetch,
            total=await ctx.store.count_items_tagged(self.name, "artist"),
            max_page=ctx.settings.max_page_size,
            first=first,
            after=after,
            last=last,
            before=before,
        )
