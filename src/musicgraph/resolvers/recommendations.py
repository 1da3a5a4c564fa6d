"""``recommendations``, ``similarTracks`` / ``similarArtists`` and ``generatePlaylist``: thin calls
into :class:`musicgraph.recommender.engine.RecommendationEngine`, which answers from its in-memory
projection (no store reads on this path, apart from loading the items to show)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

from musicgraph.errors import NotFoundError, RecommenderError
from musicgraph.events import Event
from musicgraph.resolvers.access import acting_user, denied
from musicgraph.schema.context import Context
from musicgraph.schema.inputs import FloatRange, GeneratePlaylistInput, RecommendationControls
from musicgraph.schema.types.errors import AccessDenied, InvalidInput, NotFound, Unavailable
from musicgraph.schema.types.payloads import PlaylistSuccess
from musicgraph.schema.types.playlist import Playlist
from musicgraph.schema.types.recommendation import (
    ItemKind,
    RecommendationList,
    recommendation_list,
)

if TYPE_CHECKING:
    from musicgraph.recommender.engine import Controls

MAX_PLAYLIST_LENGTH = 200

RecommendationsResult = RecommendationList | AccessDenied | InvalidInput | NotFound | Unavailable


def _range(r: FloatRange | None) -> tuple[float, float] | None:
    if r is None:
        return None
    return (
        r.min if r.min is not None else float("-inf"),
        r.max if r.max is not None else float("inf"),
    )


def build_controls(
    limit: int, seeds: list[str], controls: RecommendationControls | None
) -> Controls:
    """The engine's ``Controls`` for the GraphQL arguments."""
    from musicgraph.recommender.engine import Controls

    c = controls or RecommendationControls()
    return Controls(
        limit=limit,
        seeds=tuple(seeds),
        exclude_heard=c.exclude_heard,
        exclude_heard_within_days=c.exclude_heard_within_days,
        max_per_artist=c.max_per_artist,
        include_tags=tuple(c.include_tags),
        exclude_tags=tuple(c.exclude_tags),
        novelty=c.novelty,
        bpm=_range(c.bpm),
        energy=_range(c.energy),
        valence=_range(c.valence),
        explain=c.explain,
    )


def _unavailable() -> Unavailable:
    return Unavailable(message="the recommender is not loaded yet; try again shortly")


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def recommend(
    ctx: Context,
    user: str | None,
    kind: ItemKind,
    limit: int,
    seeds: list[str],
    controls: RecommendationControls | None,
    *,
    use_cache: bool = True,
    reasons: bool = True,
) -> RecommendationsResult:
    """Recommendations for ``user`` (default: the viewer), or from ``seeds`` alone. Answers come
    from a short-lived cache that events invalidate (``use_cache=False`` asks the engine).
    ``reasons=False`` (the query does not select them) skips the explanations."""
    if user is None:
        user = ctx.viewer.user_id
    elif not ctx.may_read_private(user):
        return denied(ctx, f"recommendations of user {user!r}")
    if not 1 <= limit <= ctx.settings.max_page_size:
        return InvalidInput(
            message=f"limit must be between 1 and {ctx.settings.max_page_size}", field="limit"
        )
    if len(seeds) > ctx.settings.max_page_size:
        return InvalidInput(message=f"at most {ctx.settings.max_page_size} seeds", field="seeds")
    engine = ctx.state.engine
    if engine is None:
        return _unavailable()
    wanted = build_controls(limit, seeds, controls)
    if not reasons and wanted.explain:
        wanted = dataclasses.replace(wanted, explain=False)
    cache = ctx.state.recommendations
    result = cache.get(user, (kind, wanted)) if use_cache else None
    if result is None:
        try:
            try:
                result = await _maybe_await(
                    engine.recommend(user, kind=kind.value, controls=wanted)
                )
            except RecommenderError:
                # A user who exists but has no edges yet (a new account) gets popularity.
                if user is None or await ctx.loaders.user.load(user) is None:
                    raise
                engine.add_user(user)
                result = await _maybe_await(
                    engine.recommend(user, kind=kind.value, controls=wanted)
                )
        except RecommenderError as exc:
            return InvalidInput(message=str(exc))
        cache.put(user, (kind, wanted), result)
    return recommendation_list(result, user, kind)


async def similar(
    ctx: Context, id: str, kind: ItemKind, limit: int
) -> RecommendationList | NotFound | InvalidInput | Unavailable:
    if not 1 <= limit <= ctx.settings.max_page_size:
        return InvalidInput(
            message=f"limit must be between 1 and {ctx.settings.max_page_size}", field="limit"
        )
    engine = ctx.state.engine
    if engine is None:
        return _unavailable()
    try:
        result = await _maybe_await(engine.similar(id, kind=kind.value, limit=limit))
    except (RecommenderError, KeyError):
        return NotFound(message=f"no {kind.value} with id {id!r} in the listening graph", id=id)
    return recommendation_list(result, None, kind)


async def generate_playlist(
    ctx: Context, user: str | None, spec: GeneratePlaylistInput
) -> PlaylistSuccess | AccessDenied | InvalidInput | NotFound | Unavailable:
    owner = await acting_user(ctx, user)
    if not isinstance(owner, str):
        return owner
    if not 1 <= spec.length <= MAX_PLAYLIST_LENGTH:
        return InvalidInput(
            message=f"length must be between 1 and {MAX_PLAYLIST_LENGTH}", field="length"
        )
    seeds = [str(s) for s in spec.seeds]
    if len(seeds) > ctx.settings.max_page_size:
        return InvalidInput(message=f"at most {ctx.settings.max_page_size} seeds", field="seeds")
    engine = ctx.state.engine
    if engine is None:
        return _unavailable()
    try:
        playlist = await engine.generate_playlist(
            ctx.store,
            owner,
            seeds=tuple(seeds),
            length=spec.length,
            controls=build_controls(spec.length, seeds, spec.controls),
            **({"name": spec.name} if spec.name else {}),
            public=spec.public,
        )
    except RecommenderError as exc:
        return InvalidInput(message=str(exc))
    except NotFoundError as exc:
        return NotFound(message=str(exc), id=owner)
    ctx.bus.publish(
        Event(
            "playlists.changed",
            {"playlist_id": playlist.id, "action": "generated"},
            user_id=playlist.owner_id,
        )
    )
    return PlaylistSuccess(playlist=Playlist.from_model(playlist))
