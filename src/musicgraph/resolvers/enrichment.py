"""``health``, ``enrichmentJobs``, ``enrichmentQueues`` and ``startEnrichment`` (admin only)."""

from __future__ import annotations

from musicgraph.graph.models import ENRICHMENT_SOURCES
from musicgraph.schema.context import Context
from musicgraph.schema.types.enrichment import EnrichmentJob, EnrichmentProgress, EnrichmentQueue
from musicgraph.schema.types.errors import AccessDenied, InvalidInput
from musicgraph.schema.types.health import SourceHealth
from musicgraph.schema.types.payloads import EnrichmentStarted


async def health(ctx: Context) -> list[SourceHealth]:
    monitor = ctx.state.monitor
    if monitor is None:
        return []
    await monitor.check_store(ctx.store)
    return [SourceHealth.from_monitor(h) for h in monitor.snapshot()]


async def enrichment_jobs(ctx: Context, track_id: str) -> list[EnrichmentJob]:
    return [EnrichmentJob.from_model(s) for s in await ctx.store.get_enrichment_states(track_id)]


async def enrichment_queues(ctx: Context) -> list[EnrichmentQueue]:
    counts = await ctx.store.enrichment_counts()
    return [EnrichmentQueue.from_counts(s, c) for s, c in sorted(counts.items())]


async def start_enrichment(
    ctx: Context, track_ids: list[str], sources: list[str] | None
) -> EnrichmentStarted | AccessDenied | InvalidInput:
    if not ctx.viewer.is_admin:
        return AccessDenied(message="startEnrichment needs the admin token")
    chosen = list(sources) if sources else list(ENRICHMENT_SOURCES)
    unknown = [s for s in chosen if s not in ENRICHMENT_SOURCES]
    if unknown:
        return InvalidInput(
            message=f"unknown sources {unknown}; known: {', '.join(ENRICHMENT_SOURCES)}",
            field="sources",
        )
    if len(track_ids) > ctx.settings.max_listen_batch:
        return InvalidInput(
            message=f"at most {ctx.settings.max_listen_batch} tracks at once", field="trackIds"
        )
    queued = await ctx.store.enqueue_enrichment(track_ids, chosen) if track_ids else 0
    state = ctx.state
    pipeline = state.pipeline
    if pipeline is not None and pipeline.running:
        pipeline.wake()  # the running workers pick the new items up
        started = False
    else:
        from musicgraph.enrichment.pipeline import start_enrichment as start
        from musicgraph.health import HealthMonitor

        if state.monitor is None:
            state.monitor = HealthMonitor(state.bus, interval=state.settings.health_interval)
        pipeline, started = await start(
            state.store, state.settings, state.bus, state.monitor, sources=chosen
        )
        state.pipeline = pipeline
    return EnrichmentStarted(
        queued=queued,
        sources=chosen,
        started=started,
        progress=[EnrichmentProgress.from_payload(p) for p in pipeline.snapshot()],
    )
