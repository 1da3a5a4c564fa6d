"""Batching, progress and the summary around an importer's stream of parsed records.

Records are written in batches of ``batch_size`` through :func:`musicgraph.ingest.service
.record_listens`: each batch is one transaction, so a failing batch leaves everything stored
before it as it was, and a second import of the same file adds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import compress
from operator import attrgetter
from typing import Any

from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput
from musicgraph.ingest.common import ByteMeter, ImportSummary, InvalidListenError, ParsedRecord
from musicgraph.ingest.service import record_listens

#: Listens per transaction. Large: each commit rewrites the pages of the per-(user, track)
#: aggregates it touched, so fewer commits write much less (memory stays bounded by it).
BATCH_SIZE = 20_000


async def import_records(
    store: GraphStore,
    records: Iterable[ParsedRecord],
    summary: ImportSummary,
    *,
    batch_size: int = BATCH_SIZE,
    bus: EventBus | None = None,
    meter: ByteMeter | None = None,
    progress: bool | None = None,
) -> ImportSummary:
    """Write ``records`` in batches, counting into ``summary`` (which is returned).

    ``progress`` shows a bar over the bytes of ``meter`` (default: when stderr is a terminal).
    """
    started = time.perf_counter()
    batch: list[ListenInput] = []
    # While the store writes one batch (in its own thread), the next one is parsed here; batches
    # are still written one after the other, in file order.
    writing: asyncio.Task[None] | None = None
    try:
        with _progress(meter, summary.format, progress) as tick:
            for record in records:
                summary.read += 1
                if isinstance(record, InvalidListenError):
                    summary.reject(record)
                    if summary.read % batch_size == 0:
                        tick()
                    continue
                batch.append(record)
                if len(batch) >= batch_size:
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(_flush(store, batch, summary, bus))
                    await asyncio.sleep(0)  # let the write reach the store's thread
                    batch = []
                    tick()
            if writing is not None:
                await writing
                writing = None
            if batch:
                await _flush(store, batch, summary, bus)
            tick()
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
    summary.seconds = time.perf_counter() - started
    if meter is not None:
        summary.bytes_read = meter.read
    return summary


async def _flush(
    store: GraphStore, batch: list[ListenInput], summary: ImportSummary, bus: EventBus | None
) -> None:
    result = await record_listens(store, batch, bus=bus)
    summary.imported += result.inserted
    summary.duplicates += result.duplicates
    summary.new_tracks += len(result.new_track_ids)
    if result.new_mask:
        summary.skipped_listens += sum(
            map(attrgetter("skipped"), compress(batch, result.new_mask))  # no loop in Python
        )


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
