"""``listeningStats`` and a user's all-time top artists and tracks."""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime

import strawberry

from musicgraph.schema.context import Context
from musicgraph.schema.types.catalogue import TagCount
from musicgraph.schema.types.stats import (
    PERIOD_SECONDS,
    ArtistCount,
    DayCount,
    ListeningStats,
    Period,
    TrackCount,
)


def diversity(counts: Counter[str]) -> float:
    """Normalised Shannon entropy of ``counts`` (0 for one key or none, 1 for a uniform spread)."""
    total = sum(counts.values())
    if total == 0 or len(counts) < 2:
        return 0.0
    entropy = -sum((c / total) * math.log(c / total) for c in counts.values() if c > 0)
    return round(entropy / math.log(len(counts)), 6)


async def listening_stats(
    ctx: Context, user_id: str, period: Period, *, limit: int = 10, now: int | None = None
) -> ListeningStats:
    end = int(time.time()) + 1 if now is None else now
    span = PERIOD_SECONDS[period]
    start = end - span if span is not None else 0
    listens = await ctx.store.listens_between(user_id, start, end)
    by_track = Counter(listen.track_id for listen in listens)
    tracks = await ctx.loaders.track.load_many(list(by_track))
    by_artist: Counter[str] = Counter()
    for track in tracks:
        if track is not None and track.artist_ids:
            by_artist[track.artist_ids[0]] += by_track[track.id]
    # Tags of the tracks played, and of their artists (HetRec-style graphs tag artists only).
    by_tag: Counter[str] = Counter()
    track_tags = await ctx.loaders.track_tags.load_many(list(by_track))
    for track_id, rows in zip(by_track, track_tags, strict=True):
        for row in rows[:10]:
            by_tag[row.tag] += by_track[track_id]
    artist_tags = await ctx.loaders.artist_tags.load_many(list(by_artist))
    for artist_id, rows in zip(by_artist, artist_tags, strict=True):
        for row in rows[:10]:
            by_tag[row.tag] += by_artist[artist_id]
    per_day = Counter(
        datetime.fromtimestamp(listen.listened_at, UTC).strftime("%Y-%m-%d") for listen in listens
    )
    return ListeningStats(
        period=period,
        start=start if span is not None else None,
        end=end,
        listen_count=len(listens),
        unique_tracks=len(by_track),
        unique_artists=len(by_artist),
        top_artists=[
            ArtistCount(artist_id=strawberry.ID(a), count=c)
            for a, c in by_artist.most_common(limit)
        ],
        top_tracks=[
            TrackCount(track_id=strawberry.ID(t), count=c) for t, c in by_track.most_common(limit)
        ],
        top_tags=[TagCount(name=t, count=c) for t, c in by_tag.most_common(limit)],
        listens_per_day=[DayCount(day=d, count=c) for d, c in sorted(per_day.items())],
        diversity=diversity(by_artist),
    )


async def top_artists(ctx: Context, user_id: str, limit: int) -> list[ArtistCount]:
    """All-time top artists from the LISTENED aggregates, plus artist-level counts (HetRec),
    summed by the store (one batched call, not the user's every track)."""
    rows = await ctx.loaders.top_artists(limit).load(user_id)
    return [ArtistCount(artist_id=strawberry.ID(r.artist_id), count=r.count) for r in rows]


async def top_tracks(ctx: Context, user_id: str, limit: int) -> list[TrackCount]:
    aggregates = await ctx.loaders.aggregates.load(user_id)
    ranked = sorted(aggregates, key=lambda a: (-a.count, -a.last_at))[:limit]
    return [TrackCount(track_id=strawberry.ID(a.track_id), count=a.count) for a in ranked]
