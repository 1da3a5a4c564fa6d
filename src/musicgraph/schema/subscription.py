"""The ``Subscription`` root (graphql-transport-ws): live events from the bus.

Each subscription holds one bus subscription for as long as the client listens; it ends when the
client stops, or when the server shuts down (the app sets ``AppState.shutdown``). Every event is
resolved with fresh DataLoaders, since a connection outlives any one read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable

import strawberry

from musicgraph.events import Event, Topic
from musicgraph.graph.models import Listen as ListenModel
from musicgraph.resolvers import recommendations as rec_resolvers
from musicgraph.schema.context import Context, Info, PublicError
from musicgraph.schema.decorators import subscription
from musicgraph.schema.types.enrichment import EnrichmentProgress
from musicgraph.schema.types.errors import Error
from musicgraph.schema.types.health import SourceHealth
from musicgraph.schema.types.listen import Listen
from musicgraph.schema.types.recommendation import ItemKind, RecommendationList


async def events(
    ctx: Context, topics: Iterable[Topic], user_id: str | None = None
) -> AsyncGenerator[Event, None]:
    """The bus events of ``topics`` (for one user when given) until the server shuts down."""
    shutdown = ctx.state.shutdown
    async with ctx.bus.subscription(topics, user_id=user_id) as sub:
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            while True:
                get = asyncio.ensure_future(sub.get())
                done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    return
                ctx.renew_loaders()
                yield get.result()
        finally:
            stop.cancel()


def _subject(ctx: Context, user: str | None, what: str) -> str:
    user_id = user if user is not None else ctx.viewer.user_id
    if user_id is None:
        raise PublicError(f"{what}: pass a user, or connect with a token")
    if not ctx.may_read_private(user_id):
        raise PublicError(f"{what}: only the user themself (or the admin) may subscribe")
    return user_id


def listens_of(event: Event) -> list[ListenModel]:
    """The listens a ``listens.recorded`` event carries (``payload["listens"]``)."""
    out = []
    for item in event.payload.get("listens", ()):
        if isinstance(item, ListenModel):
            out.append(item)
        elif isinstance(item, dict):
            out.append(
                ListenModel(
                    user_id=item.get("user_id") or event.user_id or "",
                    track_id=item["track_id"],
                    listened_at=int(item["listened_at"]),
                    source=item.get("source", ""),
                    ms_played=item.get("ms_played"),
                    skipped=bool(item.get("skipped", False)),
                )
            )
    return out


async def stored_listens(
    ctx: Context, user_id: str, announced: list[ListenModel]
) -> list[ListenModel]:
    """The announced listens as stored (the event carries only track, time and skip; the
    history has the source and play time too). One read per event."""
    if not announced:
        return []
    newest = max(listen.listened_at for listen in announced)
    rows = await ctx.store.recent_listens(
        user_id, before=newest + 1, limit=len(announced) + 50, include_skips=True
    )
    stored = {(r.track_id, r.listened_at): r for r in rows}
    return [stored.get((a.track_id, a.listened_at), a) for a in announced]


@strawberry.type
class Subscription:
    @subscription(description="Each new listen of a user (default: the viewer).")
    async def listen_recorded(
        self, info: Info, user: strawberry.ID | None = None
    ) -> AsyncGenerator[Listen, None]:
        ctx = info.context
        user_id = _subject(ctx, user, "listenRecorded")
        async for event in events(ctx, ["listens.recorded"], user_id):
            for listen in await stored_listens(ctx, user_id, listens_of(event)):
                yield Listen.from_model(listen)

    @subscription(
        description="A user's fresh recommendations, each time their listens or ratings change."
    )
    async def recommendations_updated(
        self,
        info: Info,
        user: strawberry.ID | None = None,
        kind: ItemKind = ItemKind.TRACK,
        limit: int = 20,
    ) -> AsyncGenerator[RecommendationList, None]:
        ctx = info.context
        user_id = _subject(ctx, user, "recommendationsUpdated")
        async for event in events(ctx, ["recommendations.updated"], user_id):
            if kind.value not in event.payload.get("kinds", (kind.value,)):
                continue
            result = await rec_resolvers.recommend(
                ctx, user_id, kind, limit, [], None, use_cache=False
            )
            if isinstance(result, Error):
                raise PublicError(result.message)
            yield result

    @subscription(description="Progress of the enrichment pipeline.")
    async def enrichment_progress(self, info: Info) -> AsyncGenerator[EnrichmentProgress, None]:
        async for event in events(info.context, ["enrichment.progress"]):
            yield EnrichmentProgress.from_payload(event.payload)

    @subscription(
        description="The health of every source and the store: now, then on every change."
    )
    async def api_health(self, info: Info) -> AsyncGenerator[list[SourceHealth], None]:
        ctx = info.context
        monitor = ctx.state.monitor
        if monitor is not None:
            yield [SourceHealth.from_monitor(h) for h in monitor.snapshot()]
        async for event in events(ctx, ["health.changed"]):
            yield [SourceHealth.from_monitor(h) for h in event.payload.get("sources", ())]
