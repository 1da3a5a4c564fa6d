"""Batching, progress and the summary around an importer's stream of parsed records.

Records are written in batches of ``batch_size`` through :func:`musicgraph.ingest.service
.record_listen_columns`: each batch is one transaction (its new tracks queued for enrichment in
it), so a failing batch leaves everything stored before it as it was, and a second import of
the same file adds nothing. Given a :class:`~musicgraph.ingest.parallel.ParseJob` instead of
records, a large file is parsed in a second process while this one writes
(:mod:`musicgraph.ingest.parallel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import compress
from typing import Any

from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenColumns
from musicgraph.ingest.common import ByteMeter, ImportSummary, ParsedRecord
from musicgraph.ingest.parallel import ParseJob, parsed_batches
from musicgraph.ingest.service import record_listen_columns

__all__ = ["BATCH_SIZE", "ParseJob", "import_records"]

#: Listens per transaction. Large: each commit rewrites the pages of the per-(user, track)
#: aggregates it touched, so fewer commits write much less (memory stays bounded by it).
BATCH_SIZE = 20_000


async def import_records(
    store: GraphStore,
    records: Iterable[ParsedRecord] | ParseJob,
    summary: ImportSummary,
    *,
    batch_size: int = BATCH_SIZE,
    bus: EventBus | None = None,
    meter: ByteMeter | None = None,
    progress: bool | None = None,
    parallel: bool | None = None,
) -> ImportSummary:
    """Write ``records`` in batches, counting into ``summary`` (which is returned).

    ``records`` is a stream of parsed records, or a :class:`ParseJob` that parses in a second
    process when ``parallel`` (default: a large file on a machine with two or more cores).
    ``progress`` shows a bar over the bytes of ``meter`` (default: when stderr is a terminal).
    """
    started = time.perf_counter()
    meter = meter if meter is not None else ByteMeter()
    # While the store writes one batch (in its own thread), the next one is parsed; batches
    # are still written one after the other, in file order.
    writing: asyncio.Task[None] | None = None
    batches = parsed_batches(records, batch_size=batch_size, meter=meter, parallel=parallel)
    try:
        with _progress(meter, summary.format, progress) as tick, _rare_collections():
            async for batch in batches:
                summary.read += batch.read
                for error in batch.rejected:
                    summary.reject(error)
                if len(batch.listens):
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(_flush(store, batch.listens, summary, bus))
                    await asyncio.sleep(0)  # let the write reach the store's thread
                tick()
            if writing is not None:
                await writing
                writing = None
            tick()
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
        await batches.aclose()
    summary.seconds = time.perf_counter() - started
    summary.bytes_read = meter.read
    return summary


async def _flush(
    store: GraphStore, batch: ListenColumns, summary: ImportSummary, bus: EventBus | None
) -> None:
    result = await record_listen_columns(store, batch, bus=bus)
    summary.imported += result.inserted
    summary.duplicates += result.duplicates
    summary.new_tracks += len(result.new_track_ids)
    if result.new_mask and any(batch.skipped):
        summary.skipped_listens += sum(compress(batch.skipped, result.new_mask))


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Collect garbage less often while importing: each batch allocates tens of thousands of
    short-lived containers, and the collector's passes over what the caches hold (every track
    ref seen) cost ~10% of the import's CPU at the default thresholds."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@contextmanager
def _progress(meter: ByteMeter | None, label: str, enabled: bool | None) -> Iterator[Any]:
    """A rich progress bar over ``meter`` on a terminal; yields a function that refreshes it."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or meter is None:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn(f"importing {label}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=meter.total or None)

        def tick() -> None:
            bar.update(task, completed=meter.read, total=meter.total or None)

        yield tick
