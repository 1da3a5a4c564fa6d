"""The claim journal: what a killed worker leased is due again as soon as a new run starts."""

from __future__ import annotations

import time
from pathlib import Path

from musicgraph.enrichment.journal import ClaimJournal
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import TrackRef


async def _queue(store: GraphStore, n: int) -> list[str]:
    tracks = await store.resolve_tracks([TrackRef("Journal", f"Song {i}") for i in range(n)])
    ids = [t.id for t in tracks]
    await store.enqueue_enrichment(ids, ["lastfm"])
    return ids


async def test_release_stale_frees_journalled_claims(store: GraphStore, tmp_path: Path) -> None:
    """Claims written to the journal by a process that then died are released on restart."""
    ids = await _queue(store, 3)
    now = int(time.time())
    dead = await ClaimJournal(tmp_path / "claims").open()
    claimed = await store.claim_enrichment("lastfm", limit=2, now=now)
    await dead.add("lastfm", [s.track_id for s in claimed])
    await dead.close()  # the process dies here: no result, no removal

    rest = await store.claim_enrichment("lastfm", limit=5, now=now)
    assert {s.track_id for s in rest} == set(ids) - {s.track_id for s in claimed}
    restarted = await ClaimJournal(tmp_path / "claims").open()
    assert await restarted.release_stale(store, ["lastfm"]) == 2
    again = await store.claim_enrichment("lastfm", limit=5, now=int(time.time()))
    assert {s.track_id for s in again} == {s.track_id for s in claimed}
    assert await restarted.pending("lastfm") == []
    await restarted.close()


async def test_release_stale_frees_a_claim_killed_before_its_journal_entry(
    store: GraphStore, tmp_path: Path
) -> None:
    """A kill between the store's claim and the journal entry still loses no lease: the
    intent noted before the claim lets the next run release exactly that claim."""
    ids = await _queue(store, 4)
    now = int(time.time()) - 5
    dead = await ClaimJournal(tmp_path / "claims").open()
    await dead.intend("lastfm", now)
    claimed = await store.claim_enrichment("lastfm", limit=3, now=now)
    await dead.close()  # killed before add() and settle()
    other = await store.claim_enrichment("lastfm", limit=5, now=now + 1)  # a live worker's claim
    assert {s.track_id for s in other} == set(ids) - {s.track_id for s in claimed}

    restarted = await ClaimJournal(tmp_path / "claims").open()
    assert await restarted.release_stale(store, ["lastfm"]) == 3
    again = await store.claim_enrichment("lastfm", limit=5, now=int(time.time()))
    assert {s.track_id for s in again} == {s.track_id for s in claimed}
    assert await restarted.release_stale(store, ["lastfm"]) == 0
    await restarted.close()
