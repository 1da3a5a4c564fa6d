"""``musicgraph enrich``: drain the enrichment queue with a live progress bar per source."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from musicgraph.events import EventBus

if TYPE_CHECKING:
    from rich.console import Console
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ENRICHMENT_SOURCES
from musicgraph.settings import Settings

__all__ = ["register"]


def register(sub: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "enrich",
        help="enrich queued tracks from MusicBrainz, Last.fm, Spotify and Cyanite",
        description="Work through the enrichment queue in the store, every source at its own "
        "rate. Interrupt it at any time: the next run resumes where this one stopped. Sources "
        "without credentials are reported as disabled and skipped.",
    )
    add_db(p)
    p.add_argument(
        "--sources",
        default=None,
        help=f"comma-separated sources to run (default: all of {','.join(ENRICHMENT_SOURCES)})",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="claim at most N queue entries per source"
    )
    p.add_argument(
        "--queue-all",
        action="store_true",
        help="first queue every stored track that has no enrichment state yet",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the final numbers as JSON")
    p.set_defaults(func=cmd_enrich)


def _sources(arg: str | None) -> list[str] | None:
    if not arg:
        return None
    return [s.strip().lower() for s in arg.split(",") if s.strip()]


def cmd_enrich(args: argparse.Namespace) -> int:
    from musicgraph.cli import run, with_store

    async def go(store: GraphStore, settings: Settings) -> int:
        return await enrich(
            store,
            settings,
            sources=_sources(args.sources),
            limit=args.limit,
            queue_all=args.queue_all,
            progress=not args.no_progress and not args.json and sys.stderr.isatty(),
            as_json=args.json,
        )

    return run(with_store(args, go))


async def enrich(
    store: GraphStore,
    settings: Settings,
    *,
    sources: list[str] | None = None,
    limit: int | None = None,
    queue_all: bool = False,
    progress: bool = True,
    as_json: bool = False,
) -> int:
    from rich.console import Console

    from musicgraph.bus import create_bus

    names = sources or list(ENRICHMENT_SOURCES)
    console = Console(stderr=True)
    if queue_all:
        queued = 0
        async for chunk in store.iter_tracks(chunk_size=5000):
            queued += await store.enqueue_enrichment([t.id for t in chunk], names)
        console.print(f"queued {queued:,} new (track, source) entries")
    # The bus the settings choose, so a server on the same graph hears this run's progress and
    # results (the outbox next to a SQLite file, or Redis).
    bus = create_bus(settings, workers=1)
    await bus.start()
    try:
        return await _run(store, settings, bus, names, limit, progress, as_json, console)
    finally:
        await bus.close()


async def _run(
    store: GraphStore,
    settings: Settings,
    bus: EventBus,
    names: list[str],
    limit: int | None,
    progress: bool,
    as_json: bool,
    console: Console,
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from musicgraph.enrichment.pipeline import EnrichmentPipeline
    from musicgraph.health.monitor import HealthMonitor

    monitor = HealthMonitor(bus, interval=settings.health_interval)
    pipeline = EnrichmentPipeline(store, settings, bus, monitor, sources=names)

    if not progress:
        result = await pipeline.run(until_idle=True, limit=limit)
    else:
        with Progress(
            TextColumn("{task.fields[source]:<12}"),
            BarColumn(),
            TextColumn("{task.completed:>7,.0f}/{task.total:<7,.0f}"),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            tasks = {n: bar.add_task(n, total=None, source=n, detail="starting") for n in names}
            run_task = asyncio.get_running_loop().create_task(
                pipeline.run(until_idle=True, limit=limit)
            )
            while not run_task.done():
                for n, prog in pipeline.progress.items():
                    total = sum(prog.totals.values()) or None
                    finished = sum(v for k, v in prog.totals.items() if k in ("done", "skipped"))
                    detail = (
                        f"{prog.state:<8} done {prog.done:,} failed {prog.failed:,} "
                        f"skipped {prog.skipped:,} {prog.rate:6.1f}/s"
                    )
                    if prog.state in ("disabled", "paused") and prog.reason:
                        detail += f"  ({prog.reason[:60]})"
                    bar.update(tasks[n], total=total, completed=finished, detail=detail)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(run_task), timeout=0.25)
            result = run_task.result()

    summary: dict[str, Any] = {
        "sources": {n: p.as_dict() for n, p in result.items()},
        "health": {
            h.name: {
                "status": h.status,
                "breaker": h.breaker_state,
                "requests": h.requests,
                "errors": h.errors_by_kind,
                "cache_hits": h.cache_hits,
                "last_error": h.last_error,
                "degraded": list(h.degraded),
            }
            for h in monitor.snapshot()
            if h.kind == "source"
        },
    }
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    from rich.table import Table

    table = Table(title="enrichment")
    for col in ("source", "state", "done", "failed", "skipped", "pending", "requests", "cached"):
        table.add_column(col, justify="left" if col in ("source", "state") else "right")
    for n, prog in result.items():
        h = summary["health"].get(n, {})
        table.add_row(
            n,
            prog.state,
            f"{prog.done:,}",
            f"{prog.failed:,}",
            f"{prog.skipped:,}",
            f"{prog.pending:,}",
            f"{h.get('requests', 0):,}",
            f"{h.get('cache_hits', 0):,}",
        )
    Console().print(table)
    for n, prog in result.items():
        if prog.state == "disabled":
            console.print(f"[yellow]{n}: disabled: {prog.reason}[/yellow]")
        h = summary["health"].get(n, {})
        for note in h.get("degraded", []):
            console.print(f"[yellow]{n}: degraded: {note}[/yellow]")
        if h.get("last_error") and prog.state != "disabled":
            console.print(f"{n}: last error: {h['last_error']}")
    return 0
