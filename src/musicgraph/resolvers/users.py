"""``me`` and ``user``: a profile is visible when it is public, or to its owner and the admin."""

from __future__ import annotations

from musicgraph.schema.context import Context, PublicError
from musicgraph.schema.types.user import User


async def me(ctx: Context) -> User | None:
    return User.from_model(ctx.viewer.user) if ctx.viewer.user is not None else None


async def user(ctx: Context, id: str | None, name: str | None) -> User | None:
    if (id is None) == (name is None):
        raise PublicError("user: pass exactly one of id and name")
    found = (
        await ctx.loaders.user.load(id)
        if id is not None
        else await ctx.store.get_user_by_name(name or "")
    )
    if found is None or not ctx.may_see_user(found):
        return None
    return User.from_model(found)
