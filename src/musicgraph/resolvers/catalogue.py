"""Catalogue lookups and searches (open to anyone)."""

from __future__ import annotations

from musicgraph.graph.identity import normalise
from musicgraph.schema.context import Context
from musicgraph.schema.types.catalogue import Artist, Tag, Track
from musicgraph.schema.types.connection import (
    Connection,
    Window,
    offset_page,
)


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
    async def fetch(window: Window) -> list[Track]:
        rows = await ctx.store.search_tracks(query, offset=window.offset, limit=window.limit)
        return [Track.from_model(t) for t in rows]

    return await offset_page(
        fetch,
        total=await ctx.store.count_search_tracks(query),
        max_page=ctx.settings.max_page_size,
        first=first,
        after=after,
        last=last,
        before=before,
    )


async def search_artists(
    ctx: Context,
    query: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Artist]:
    async def fetch(window: Window) -> list[Artist]:
        rows = await ctx.store.search_artists(query, offset=window.offset, limit=window.limit)
        return [Artist.from_model(a) for a in rows]

    return await offset_page(
        fetch,
        total=await ctx.store.count_search_artists(query),
        max_page=ctx.settings.max_page_size,
        first=first,
        after=after,
        last=last,
        before=before,
    )
