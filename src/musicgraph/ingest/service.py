"""The one path every listen takes into the graph.

Importers, the GraphQL ``recordListens`` mutation and the ListenBrainz-compatible endpoint all call
:func:`record_listens`: one batch is written in one transaction, the tracks it created are queued
for enrichment by every source, and each user whose history grew hears one
``listens.recorded`` event carrying exactly the listens that were new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from musicgraph.events import Event, EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import (
    ENRICHMENT_SOURCES,
    ListenBatchResult,
    ListenColumns,
    ListenInput,
)
from musicgraph.ingest.common import InvalidListenError, parse_timestamp, validate_listen

__all__ = [
    "InvalidListenError",
    "listen_events",
    "parse_timestamp",
    "record_listen_columns",
    "record_listens",
    "validate_listen",
]


async def record_listens(
    store: GraphStore,
    listens: Sequence[ListenInput],
    *,
    bus: EventBus | None = None,
    enrich: bool = True,
) -> ListenBatchResult:
    """Record one batch of listens (one transaction), queue the new tracks for enrichment and,
    when a bus is given, publish one ``listens.recorded`` event per user with the new listens.

    ``enrich=False`` skips the queue (the synthetic demo's invented tracks have nothing to find).
    """
    if not listens:
        return ListenBatchResult(inserted=0, duplicates=0, track_ids=())
    result = await store.record_listens(listens)
    if enrich and result.new_track_ids:
        await store.enqueue_enrichment(result.new_track_ids, ENRICHMENT_SOURCES)
    if bus is not None:
        for event in listen_events(listens, result):
            bus.publish(event)
    return result


async def record_listen_columns(
    store: GraphStore,
    batch: ListenColumns,
    *,
    bus: EventBus | None = None,
    enrich: bool = True,
) -> ListenBatchResult:
    """:func:`record_listens` for a batch held as columns (what importers send). The new tracks
    are queued for enrichment in the batch's own transaction."""
    if not len(batch):
        return ListenBatchResult(inserted=0, duplicates=0, track_ids=())
    result = await store.record_listen_columns(
        batch, enrich_sources=ENRICHMENT_SOURCES if enrich else ()
    )
    if bus is not None:
        for event in listen_events(batch, result):
            bus.publish(event)
    return result


def listen_events(
    listens: Sequence[ListenInput] | ListenColumns, result: ListenBatchResult
) -> list[Event]:
    """One ``listens.recorded`` event per user, in order of first appearance, holding only the
    listens of the batch that were new."""
    by_user: dict[str, list[dict[str, Any]]] = {}
    mask = result.new_mask or (True,) * len(listens)
    rows: Iterable[tuple[str, int, bool]]
    if isinstance(listens, ListenColumns):
        rows = zip(listens.user_ids, listens.listened_at, listens.skipped, strict=True)
    else:
        rows = ((x.user_id, x.listened_at, x.skipped) for x in listens)
    for (user_id, at, skipped), track_id, new in zip(rows, result.track_ids, mask, strict=True):
        if not new:
            continue
        by_user.setdefault(user_id, []).append(
            {"track_id": track_id, "listened_at": at, "skipped": skipped}
        )
    return [
        Event(topic="listens.recorded", user_id=user_id, payload={"listens": items})
        for user_id, items in by_user.items()
    ]
