"""Who a mutation acts for: the viewer, or (for the admin) the user it names."""

from __future__ import annotations

from musicgraph.graph.models import Playlist
from musicgraph.schema.context import Context
from musicgraph.schema.types.errors import AccessDenied, NotFound

DENIED_ANONYMOUS = "this needs a token: send Authorization: Bearer <token>"


async def acting_user(ctx: Context, user: str | None) -> str | AccessDenied | NotFound:
    """The id of the user a request acts for. A user acts only for themself (naming another user
    is refused); the admin must name the user; anonymous requests are refused."""
    viewer = ctx.viewer
    if viewer.is_admin:
        if user is None:
            return AccessDenied(message="the admin token acts for no user: pass the user argument")
        found = await ctx.loaders.user.load(user)
        if found is None:
            return NotFound(message=f"no user with id {user!r}", id=user)
        return found.id
    if viewer.user is None:
        return AccessDenied(message=DENIED_ANONYMOUS)
    if user is not None and user != viewer.user.id:
        return AccessDenied(message="a user can only act on their own data")
    return viewer.user.id


def denied(ctx: Context, what: str) -> AccessDenied:
    if ctx.viewer.anonymous:
        return AccessDenied(message=f"{what}: {DENIED_ANONYMOUS}")
    return AccessDenied(message=f"{what}: not yours")


async def owned_playlist(ctx: Context, playlist_id: str) -> Playlist | AccessDenied | NotFound:
    """The playlist, when the viewer may change it (its owner or the admin). A private playlist
    of someone else is reported as not found, so its existence does not leak."""
    found = await ctx.loaders.playlist.load(playlist_id)
    if found is None or not ctx.may_see_playlist(found):
        return NotFound(message=f"no playlist with id {playlist_id!r}", id=playlist_id)
    if not ctx.may_read_private(found.owner_id):
        return denied(ctx, f"playlist {playlist_id!r}")
    return found
