"""The durable enrichment queue: enqueue once, claim with a lease, retry after not_before."""

from __future__ import annotations

import pytest

from musicgraph.errors import NotFoundError
from musicgraph.graph.base import ENRICHMENT_CLAIM_LEASE, GraphStore
from musicgraph.graph.models import EnrichmentState, EnrichmentStatus, Track, TrackRef

from .conftest import T0

PENDING, DONE, FAILED, SKIPPED = (
    EnrichmentStatus.PENDING,
    EnrichmentStatus.DONE,
    EnrichmentStatus.FAILED,
    EnrichmentStatus.SKIPPED,
)


@pytest.fixture
async def tracks(store: GraphStore) -> list[Track]:
    """Three tracks to enrich."""
    return await store.resolve_tracks([TrackRef("A", f"T{i}") for i in range(3)])


async def test_enqueue_adds_each_pair_once(store: GraphStore, tracks: list[Track]) -> None:
    """Enqueueing creates one pending state per (track, source) that has none."""
    ids = [t.id for t in tracks]
    assert await store.enqueue_enrichment(ids, ["lastfm", "musicbrainz"]) == 6
    assert await store.enqueue_enrichment(ids + ids, ["lastfm", "spotify"]) == 3
    assert await store.enqueue_enrichment([], ["lastfm"]) == 0
    states = await store.get_enrichment_states(ids[0])
    assert [(s.source, s.status, s.attempts) for s in states] == [
        ("lastfm", PENDING, 0),
        ("musicbrainz", PENDING, 0),
        ("spotify", PENDING, 0),
    ]
    assert await store.enrichment_counts() == {
        "lastfm": {"pending": 3},
        "musicbrainz": {"pending": 3},
        "spotify": {"pending": 3},
    }
    assert (await store.counts()).enrichment == {
        "lastfm:pending": 3,
        "musicbrainz:pending": 3,
        "spotify:pending": 3,
    }


async def test_enqueue_unknown_track_fails(store: GraphStore, tracks: list[Track]) -> None:
    """Enqueueing an unknown track raises NotFoundError and queues nothing."""
    with pytest.raises(NotFoundError):
        await store.enqueue_enrichment([tracks[0].id, "tr_nope"], ["lastfm"])
    assert await store.enrichment_counts() == {}


async def test_claim_leases_oldest_first(store: GraphStore, tracks: list[Track]) -> None:
    """A claim returns due states oldest first and hides them from the next claim."""
    ids = [t.id for t in tracks]
    await store.set_enrichment_states(
        [
            EnrichmentState(ids[0], "lastfm", PENDING, updated_at=T0 + 2),
            EnrichmentState(ids[1], "lastfm", PENDING, updated_at=T0 + 1),
            EnrichmentState(ids[2], "lastfm", PENDING, updated_at=T0 + 3),
            EnrichmentState(ids[0], "spotify", PENDING, updated_at=T0),
        ]
    )
    now = T0 + 100
    first = await store.claim_enrichment("lastfm", limit=2, now=now)
    assert [s.track_id for s in first] == [ids[1], ids[0]]
    assert all(s.not_before == now + ENRICHMENT_CLAIM_LEASE for s in first)
    second = await store.claim_enrichment("lastfm", limit=5, now=now)
    assert [s.track_id for s in second] == [ids[2]]
    assert await store.claim_enrichment("lastfm", limit=5, now=now + 1) == []
    # A worker that died frees its claims when the lease runs out.
    again = await store.claim_enrichment("lastfm", limit=5, now=now + ENRICHMENT_CLAIM_LEASE)
    assert {s.track_id for s in again} == set(ids)


async def test_release_leases_frees_exactly_one_claim(
    store: GraphStore, tracks: list[Track]
) -> None:
    """Releasing a claim's lease makes its states due again and leaves other claims and
    finished states alone."""
    ids = [t.id for t in tracks]
    await store.set_enrichment_states(
        [EnrichmentState(i, "lastfm", PENDING, updated_at=T0 + n) for n, i in enumerate(ids)]
        + [EnrichmentState(ids[0], "spotify", PENDING, updated_at=T0)]
    )
    first = await store.claim_enrichment("lastfm", limit=1, now=T0 + 10)
    second = await store.claim_enrichment("lastfm", limit=1, now=T0 + 11)
    await store.claim_enrichment("spotify", limit=1, now=T0 + 10)
    lease = T0 + 10 + ENRICHMENT_CLAIM_LEASE
    assert await store.release_enrichment_leases("lastfm", lease=lease, now=T0 + 12) == 1
    assert await store.release_enrichment_leases("lastfm", lease=lease, now=T0 + 12) == 0
    again = await store.claim_enrichment("lastfm", limit=5, now=T0 + 12)
    assert [s.track_id for s in again] == [first[0].track_id, *ids[2:]]
    assert second[0].track_id not in {s.track_id for s in again}
    states = await store.get_enrichment_states(ids[0])
    [spotify] = [s for s in states if s.source == "spotify"]
    assert spotify.not_before == lease


async def test_failed_states_retry_after_not_before(store: GraphStore, tracks: list[Track]) -> None:
    """A failed state is claimable again only once not_before has passed; done never is."""
    t0, t1 = tracks[0].id, tracks[1].id
    await store.set_enrichment_states(
        [
            EnrichmentState(t0, "lastfm", FAILED, 1, "HTTP 503", T0, not_before=T0 + 60),
            EnrichmentState(t1, "lastfm", DONE, 1, None, T0),
            EnrichmentState(tracks[2].id, "lastfm", SKIPPED, 0, "no credentials", T0),
        ]
    )
    assert await store.claim_enrichment("lastfm", limit=10, now=T0 + 59) == []
    [due] = await store.claim_enrichment("lastfm", limit=10, now=T0 + 60)
    assert (due.track_id, due.status, due.attempts, due.last_error) == (
        t0,
        FAILED,
        1,
        "HTTP 503",
    )
    await store.set_enrichment_states([EnrichmentState(t0, "lastfm", DONE, 2, None, T0 + 61)])
    assert await store.claim_enrichment("lastfm", limit=10, now=T0 + 10_000) == []
    assert await store.enrichment_counts() == {"lastfm": {"done": 2, "skipped": 1}}
    [state] = await store.get_enrichment_states(t0)
    assert state == EnrichmentState(t0, "lastfm", DONE, 2, None, T0 + 61, 0)


async def test_enrichment_reads_when_empty(store: GraphStore) -> None:
    """With no queue, claims, counts and states are empty."""
    assert await store.claim_enrichment("lastfm", limit=10, now=T0) == []
    assert await store.enrichment_counts() == {}
    assert await store.get_enrichment_states("tr_nope") == []
    await store.set_enrichment_states([])
