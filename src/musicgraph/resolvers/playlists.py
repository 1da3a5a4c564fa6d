"""Playlists: lookups and every change (create, rename, describe, set public, add, remove, move,
delete). Only the owner and the admin change a playlist; every change publishes
``playlists.changed``."""

from __future__ import annotations

import time

import strawberry

from musicgraph.errors import NotFoundError
from musicgraph.events import Event
from musicgraph.graph.models import Playlist as PlaylistModel
from musicgraph.resolvers.access import acting_user, owned_playlist
from musicgraph.schema.context import Context, PublicError
from musicgraph.schema.types.errors import AccessDenied, InvalidInput, NotFound
from musicgraph.schema.types.payloads import PlaylistDeleted, PlaylistSuccess
from musicgraph.schema.types.playlist import Playlist

MAX_NAME = 200
MAX_DESCRIPTION = 5000


PlaylistResult = PlaylistSuccess | NotFound | AccessDenied | InvalidInput


async def playlist(ctx: Context, id: str) -> Playlist | None:
    found = await ctx.loaders.playlist.load(id)
    if found is None or not ctx.may_see_playlist(found):
        return None
    return Playlist.from_model(found)


async def public_playlists(ctx: Context, offset: int, limit: int) -> list[Playlist]:
    if not 0 <= limit <= ctx.settings.max_page_size or offset < 0:
        raise PublicError(
            f"publicPlaylists: limit must be between 0 and {ctx.settings.max_page_size} "
            "and offset at least 0"
        )
    rows = await ctx.store.list_public_playlists(offset=offset, limit=limit)
    return [Playlist.from_model(p) for p in rows]


def _check_name(name: str) -> str | InvalidInput:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        return InvalidInput(
            message=f"a playlist name needs 1 to {MAX_NAME} characters", field="name"
        )
    return name


def _changed(ctx: Context, p: PlaylistModel, action: str) -> PlaylistSuccess:
    ctx.bus.publish(
        Event("playlists.changed", {"playlist_id": p.id, "action": action}, user_id=p.owner_id)
    )
    return PlaylistSuccess(playlist=Playlist.from_model(p))


async def _missing_tracks(ctx: Context, track_ids: list[str]) -> NotFound | None:
    found = await ctx.loaders.track.load_many(track_ids)
    for tid, t in zip(track_ids, found, strict=True):
        if t is None:
            return NotFound(message=f"no track with id {tid!r}", id=tid)
    return None


async def create_playlist(
    ctx: Context,
    user: str | None,
    name: str,
    description: str,
    public: bool,
    track_ids: list[str],
) -> PlaylistResult:
    owner = await acting_user(ctx, user)
    if not isinstance(owner, str):
        return owner
    checked = _check_name(name)
    if isinstance(checked, InvalidInput):
        return checked
    if len(description) > MAX_DESCRIPTION:
        return InvalidInput(message=f"at most {MAX_DESCRIPTION} characters", field="description")
    if len(track_ids) > ctx.settings.max_listen_batch:
        return InvalidInput(
            message=f"at most {ctx.settings.max_listen_batch} tracks at once", field="trackIds"
        )
    missing = await _missing_tracks(ctx, track_ids)
    if missing is not None:
        return missing
    p = await ctx.store.create_playlist(
        owner, checked, description=description, public=public, track_ids=track_ids
    )
    return _changed(ctx, p, "created")


async def update_playlist(
    ctx: Context,
    id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    public: bool | None = None,
) -> PlaylistResult:
    found = await owned_playlist(ctx, id)
    if not isinstance(found, PlaylistModel):
        return found
    if name is not None:
        checked = _check_name(name)
        if isinstance(checked, InvalidInput):
            return checked
        name = checked
    if description is not None and len(description) > MAX_DESCRIPTION:
        return InvalidInput(message=f"at most {MAX_DESCRIPTION} characters", field="description")
    p = await ctx.store.update_playlist(
        id, name=name, description=description, public=public, at=int(time.time())
    )
    return _changed(ctx, p, "updated")


async def add_to_playlist(
    ctx: Context, id: str, track_ids: list[str], position: int | None
) -> PlaylistResult:
    found = await owned_playlist(ctx, id)
    if not isinstance(found, PlaylistModel):
        return found
    if not track_ids or len(track_ids) > ctx.settings.max_listen_batch:
        return InvalidInput(
            message=f"pass 1 to {ctx.settings.max_listen_batch} track ids", field="trackIds"
        )
    count = await ctx.store.count_playlist_entries(id)
    if position is not None and not 0 <= position <= count:
        return InvalidInput(message=f"position must be between 0 and {count}", field="position")
    missing = await _missing_tracks(ctx, track_ids)
    if missing is not None:
        return missing
    try:
        await ctx.store.add_to_playlist(id, track_ids, position=position, at=int(time.time()))
    except NotFoundError as exc:
        return NotFound(message=str(exc), id=id)
    return await _touched(ctx, id, "tracks_added")


async def remove_from_playlist(ctx: Context, id: str, positions: list[int]) -> PlaylistResult:
    found = await owned_playlist(ctx, id)
    if not isinstance(found, PlaylistModel):
        return found
    count = await ctx.store.count_playlist_entries(id)
    bad = [p for p in positions if not 0 <= p < count]
    if not positions or bad:
        return InvalidInput(
            message=f"positions must be between 0 and {count - 1} (got {bad or 'none'})",
            field="positions",
        )
    await ctx.store.remove_from_playlist(id, sorted(set(positions)))
    return await _touched(ctx, id, "tracks_removed")


async def move_in_playlist(
    ctx: Context, id: str, from_position: int, to_position: int
) -> PlaylistResult:
    found = await owned_playlist(ctx, id)
    if not isinstance(found, PlaylistModel):
        return found
    count = await ctx.store.count_playlist_entries(id)
    for value, field in ((from_position, "fromPosition"), (to_position, "toPosition")):
        if not 0 <= value < count:
            return InvalidInput(message=f"must be between 0 and {count - 1}", field=field)
    await ctx.store.move_in_playlist(id, from_position, to_position)
    return await _touched(ctx, id, "track_moved")


async def _touched(ctx: Context, id: str, action: str) -> PlaylistResult:
    p = await ctx.store.update_playlist(id, at=int(time.time()))
    return _changed(ctx, p, action)


async def delete_playlist(ctx: Context, id: str) -> PlaylistDeleted | NotFound | AccessDenied:
    found = await owned_playlist(ctx, id)
    if not isinstance(found, PlaylistModel):
        return found
    await ctx.store.delete_playlist(id)
    ctx.bus.publish(
        Event("playlists.changed", {"playlist_id": id, "action": "deleted"}, user_id=found.owner_id)
    )
    return PlaylistDeleted(id=strawberry.ID(id))
