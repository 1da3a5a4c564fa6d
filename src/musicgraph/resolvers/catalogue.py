"""Catalogue lookups and searches (open to anyone)."""

from __future__ import annotations

from musicgraph.graph.identity import normalise
from musicgraph.schema.context import Context
from musicgraph.schema.types.catalogue import Artist, Tag, Track
from musicgraph.schema.types.connection import Connection, offset_connection, offset_window


async def track(ctx: Context, id: str) -> Track | None:
    found = await ctx.loaders.track.load(id)
    return Track.from_model(found) if found is not None else None


async def artist(ctx: Context, id: str) -> Artist | None:
    found = await ctx.loaders.artist.load(id)
    return Artist.from_model(found) if found is not None else None


async def tag(ctx: Context, name: str) -> Tag | None:
    key = normalise(name)
    if not key:
        return None
    tracks = await ctx.store.count_items_tagged(key, "track")
    if tracks == 0 and await ctx.store.count_items_tagged(key, "artist") == 0:
        return None
    return Tag(name=key)


async def search_tracks(
    ctx: Context,
    query: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Track]:
    total = await ctx.store.count_search_tracks(query)
    window = offset_window(
        first=first,
        after=after,
        last=last,
        before=before,
        total=total,
        max_page=ctx.settings.max_page_size,
    )
    rows = await ctx.store.search_tracks(query, offset=window.offset, limit=window.limit)
    return offset_connection([Track.from_model(t) for t in rows], window, total)


async def search_artists(
    ctx: Context,
    query: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Artist]:
    total = await ctx.store.count_search_artists(query)
    window = offset_window(
        first=first,
        after=after,
        last=last,
        before=before,
        total=total,
        max_page=ctx.settings.max_page_size,
    )
    rows = await ctx.store.search_artists(query, offset=window.offset, limit=window.limit)
    return offset_connection([Artist.from_model(a) for a in rows], window, total)
