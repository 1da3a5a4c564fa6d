"""``recordListens`` and ``rateTrack``.

Listens go through the importers' validation (:func:`musicgraph.ingest.common.validate_listen`) and
the one path every listen takes (:func:`musicgraph.ingest.service.record_listens`: write, queue
enrichment, publish ``listens.recorded``), so the API, the scrobble endpoint and the importers keep
the same rules and the same idempotency.
"""

from __future__ import annotations

import time

import strawberry

from musicgraph.errors import NotFoundError
from musicgraph.events import Event
from musicgraph.ingest.common import InvalidListenError, validate_listen
from musicgraph.resolvers.access import acting_user
from musicgraph.schema.context import Context
from musicgraph.schema.inputs import ListenInput, TrackRating
from musicgraph.schema.types.errors import AccessDenied, InvalidInput, NotFound
from musicgraph.schema.types.payloads import (
    RateTrackSuccess,
    RecordListensSuccess,
    RejectedListen,
    StoredListen,
)

SOURCE = "api"

_FIELD_NAMES = {
    "listened_at": "listenedAt",
    "duration_ms": "durationMs",
    "ms_played": "msPlayed",
    "spotify_id": "spotifyId",
    "artist_mbid": "artistMbid",
}


async def record_listens(
    ctx: Context, listens: list[ListenInput], user: str | None
) -> RecordListensSuccess | AccessDenied | NotFound | InvalidInput:
    from musicgraph.ingest.service import record_listens as record

    user_id = await acting_user(ctx, user)
    if not isinstance(user_id, str):
        return user_id
    limit = ctx.settings.max_listen_batch
    if len(listens) > limit:
        return InvalidInput(
            message=f"at most {limit} listens per call, got {len(listens)}: split the batch",
            field="listens",
        )
    valid, indices, rejected = [], [], []
    now = int(time.time())
    for i, item in enumerate(listens):
        try:
            valid.append(
                validate_listen(
                    user_id=user_id,
                    artist=item.artist,
                    title=item.title,
                    listened_at=item.listened_at,
                    source=SOURCE,
                    where=f"listens[{i}]",
                    album=item.album,
                    mbid=item.mbid,
                    isrc=item.isrc,
                    spotify_id=item.spotify_id,
                    duration_ms=item.duration_ms,
                    artist_mbid=item.artist_mbid,
                    ms_played=item.ms_played,
                    skipped=item.skipped,
                    now=now,
                )
            )
            indices.append(i)
        except InvalidListenError as exc:
            rejected.append(
                RejectedListen(
                    index=i,
                    reason=exc.reason,
                    field=_FIELD_NAMES.get(exc.field or "", exc.field),
                    message=str(exc),
                )
            )
    inserted = duplicates = 0
    stored: list[StoredListen] = []
    if valid:
        result = await record(ctx.store, valid, bus=ctx.bus)
        inserted, duplicates = result.inserted, result.duplicates
        new_mask = result.new_mask or (True,) * len(valid)
        for i, listen, track_id, new in zip(
            indices, valid, result.track_ids, new_mask, strict=True
        ):
            stored.append(
                StoredListen(
                    index=i,
                    listened_at=listen.listened_at,
                    new=new,
                    track_id=strawberry.ID(track_id),
                )
            )
    return RecordListensSuccess(
        user_id=strawberry.ID(user_id),
        inserted=inserted,
        duplicates=duplicates,
        stored=stored,
        rejected=rejected,
    )


async def rate_track(
    ctx: Context, track_id: str, rating: TrackRating, user: str | None
) -> RateTrackSuccess | AccessDenied | NotFound:
    user_id = await acting_user(ctx, user)
    if not isinstance(user_id, str):
        return user_id
    score = {TrackRating.LIKE: 1, TrackRating.DISLIKE: -1, TrackRating.CLEAR: None}[rating]
    try:
        await ctx.store.set_rating(user_id, track_id, score, int(time.time()))
    except NotFoundError:
        return NotFound(message=f"no track with id {track_id!r}", id=track_id)
    ctx.bus.publish(
        Event("ratings.changed", {"track_id": track_id, "score": score}, user_id=user_id)
    )
    return RateTrackSuccess(track_id=strawberry.ID(track_id), score=score)
