"""Importing into the real stores: counts, idempotency, events, failed batches, HetRec."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from musicgraph.errors import ImportFormatError, StoreError
from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ENRICHMENT_SOURCES, ListenInput, TrackRef
from musicgraph.ingest.common import ByteMeter, ImportSummary
from musicgraph.ingest.hetrec import import_hetrec
from musicgraph.ingest.lastfm_csv import read_lastfm_csv
from musicgraph.ingest.listenbrainz import read_listenbrainz
from musicgraph.ingest.pipeline import import_records
from musicgraph.ingest.scrobbler_log import read_scrobbler_log
from musicgraph.ingest.service import record_listens
from musicgraph.ingest.spotify import read_spotify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "real"
BAD = FIXTURES / "bad"


async def run_import(
    store: GraphStore, reader: object, path: Path, user_id: str, *, batch_size: int = 5000
) -> ImportSummary:
    meter = ByteMeter()
    records = reader(path, user_id, meter)  # type: ignore[operator]
    summary = ImportSummary(format="test", path=str(path))
    return await import_records(
        store, records, summary, batch_size=batch_size, meter=meter, progress=False
    )


@pytest.mark.parametrize(
    ("reader", "name", "imported", "skips", "tracks"),
    [
        (read_scrobbler_log, "rockbox_ipodvideo.scrobbler.log", 34, 6, 33),
        (read_spotify, "Streaming_History_Audio_2023_excerpt.json", 20, 17, 16),
        (read_spotify, "endsong_0_excerpt.json", 12, 4, 11),
        (read_lastfm_csv, "lastfm_scrobbles_excerpt.csv", 22, 0, 21),
        (read_listenbrainz, "listenbrainz_export_excerpt.jsonl", 3, 0, 3),
    ],
)
async def test_real_files_import_with_right_counts_and_twice_adds_nothing(
    store: GraphStore, reader: object, name: str, imported: int, skips: int, tracks: int
) -> None:
    """A real export imports with the right counts; importing it again adds nothing."""
    (user,) = await store.ensure_users(["importer"])
    first = await run_import(store, reader, REAL / name, user.id, batch_size=7)
    assert (first.read, first.imported, first.skipped_total) == (imported, imported, 0)
    assert first.skipped_listens == skips
    assert first.new_tracks == tracks
    counts = await store.counts()
    assert (counts.listens + counts.skips, counts.skips, counts.tracks) == (imported, skips, tracks)
    assert await store.count_listens(user.id, include_skips=True) == imported

    again = await run_import(store, reader, REAL / name, user.id)
    assert (again.imported, again.duplicates, again.new_tracks) == (0, imported, 0)
    assert await store.counts() == counts


async def test_bad_rows_are_counted_and_good_rows_land(store: GraphStore) -> None:
    """The summary counts skips by reason with line examples; the good rows are stored."""
    (user,) = await store.ensure_users(["importer"])
    summary = await run_import(store, read_listenbrainz, BAD / "listenbrainz_bad.jsonl", user.id)
    assert (summary.read, summary.imported, summary.skipped_total) == (14, 2, 12)
    assert summary.skipped["absurd duration"] == 2
    assert summary.examples["invalid MBID"] == [
        "listenbrainz_bad.jsonl:9: field 'mbid': invalid MBID ('not-a-uuid')"
    ]
    text = "\n".join(summary.lines())
    assert "imported:   2 new listens" in text and "timestamp in the future: 1" in text


async def test_same_track_by_mbid_and_name_from_two_formats(store: GraphStore) -> None:
    """A scrobbler.log with MBIDs and a CSV naming the same songs end up on the same tracks."""
    (user,) = await store.ensure_users(["importer"])
    await run_import(store, read_scrobbler_log, REAL / "rockbox_ipodvideo.scrobbler.log", user.id)
    before = (await store.counts()).tracks
    tracks = await store.find_tracks(mbid="47b02a82-c3bf-4647-b894-dd1c8f608e7f")
    assert [t.title for t in tracks] == ["Let Down"]
    listen = ListenInput(
        user_id=user.id,
        track=TrackRef(artist="radiohead", title="LET DOWN"),
        listened_at=1_745_600_000,
        source="test",
    )
    result = await record_listens(store, [listen])
    assert result.track_ids == (tracks[0].id,)
    assert (await store.counts()).tracks == before


async def test_service_queues_new_tracks_and_publishes_only_new_listens(
    store: GraphStore,
) -> None:
    """New tracks get a pending entry per source; each user hears one event of new listens."""
    alice, bob = await store.ensure_users(["alice", "bob"])
    bus = EventBus()
    listens = [
        ListenInput(alice.id, TrackRef("Burial", "Archangel"), 1_600_000_000, "test"),
        ListenInput(bob.id, TrackRef("Burial", "Archangel"), 1_600_000_000, "test", skipped=True),
        ListenInput(alice.id, TrackRef("Burial", "Near Dark"), 1_600_000_300, "test"),
    ]
    async with bus.subscription(["listens.recorded"]) as sub:
        result = await record_listens(store, listens, bus=bus)
        assert result.inserted == 3 and len(result.new_track_ids) == 2
        events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [(e.user_id, len(e.payload["listens"])) for e in events] == [(alice.id, 2), (bob.id, 1)]
    assert events[1].payload["listens"][0] == {
        "track_id": result.track_ids[1],
        "listened_at": 1_600_000_000,
        "skipped": True,
    }
    states = await store.get_enrichment_states(result.track_ids[0])
    assert sorted(s.source for s in states) == sorted(ENRICHMENT_SOURCES)

    async with bus.subscription(["listens.recorded"]) as sub:
        extra = ListenInput(alice.id, TrackRef("Burial", "Untrue"), 1_600_000_600, "test")
        again = await record_listens(store, [*listens, extra], bus=bus)
        assert again.inserted == 1
        events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [(e.user_id, [x["listened_at"] for x in e.payload["listens"]]) for e in events] == [
        (alice.id, [1_600_000_600])
    ]


async def test_failed_batch_touches_nothing_already_stored(sqlite_store: GraphStore) -> None:
    """A batch that fails (unknown user) leaves earlier batches stored and writes nothing of its
    own."""
    store = sqlite_store
    (user,) = await store.ensure_users(["importer"])
    good = [
        ListenInput(user.id, TrackRef("Burial", f"Song {i}"), 1_600_000_000 + i, "test")
        for i in range(3)
    ]
    await record_listens(store, good)
    before = await store.counts()
    broken = [
        ListenInput(user.id, TrackRef("Burial", "New Song"), 1_600_001_000, "test"),
        ListenInput("u_nobody", TrackRef("Burial", "Other Song"), 1_600_001_100, "test"),
    ]
    with pytest.raises(StoreError):
        await record_listens(store, broken)
    assert await store.counts() == before


async def test_format_error_stops_before_writing(store: GraphStore) -> None:
    """A file that is not the format raises before anything is written."""
    (user,) = await store.ensure_users(["importer"])
    before = await store.counts()
    with pytest.raises(ImportFormatError):
        await run_import(store, read_spotify, BAD / "not_spotify.json", user.id)
    assert await store.counts() == before


@pytest.mark.slow
async def test_hetrec_import_counts_and_is_idempotent(
    sqlite_store: GraphStore, hetrec_dir: Path
) -> None:
    """The real HetRec data: 1,892 users, 92,834 play-count rows, 25,434 friend rows; again = same."""
    store = sqlite_store
    summary = await import_hetrec(store, hetrec_dir)
    assert summary.rows == {
        "artists.dat": 17_632,
        "user_artists.dat": 92_834,
        "user_friends.dat": 25_434,
        "tags.dat": 11_946,
        "user_taggedartists.dat": 186_479,
    }
    assert summary.users == 1_892
    assert summary.friendships == 25_434
    counts = await store.counts()
    assert counts.users == 1_892
    assert counts.friendships == 25_434
    # 87 artist names repeat under the identity rules ("Rihanna feat. X" is Rihanna)
    assert counts.artists == summary.artists == 17_545
    assert counts.artist_listens == summary.artist_listens
    assert 92_000 < summary.artist_listens <= 92_834
    assert counts.taggings == summary.taggings > 100_000
    assert summary.skipped == {
        "tag on an artist not in artists.dat": summary.skipped[
            "tag on an artist not in artists.dat"
        ]
    }
    user2 = await store.get_user_by_name("hetrec-2")
    assert user2 is not None
    top = (await store.get_artist_listens([user2.id]))[0][0]
    (artist,) = await store.get_artists([top.artist_id])
    assert artist is not None and (artist.name, top.count) == ("Duran Duran", 13_883)
    assert artist.url == "http://www.last.fm/music/Duran+Duran"
    assert len(await store.get_friends(user2.id)) == 13  # rows of user 2 in user_friends.dat

    await import_hetrec(store, hetrec_dir)
    assert await store.counts() == counts


async def test_hetrec_wrong_directory(store: GraphStore, tmp_path: Path) -> None:
    """A directory without the HetRec files says which are missing."""
    (tmp_path / "artists.dat").write_text("id\tname\turl\tpictureURL\n")
    with pytest.raises(ImportFormatError, match=r"missing user_artists\.dat"):
        await import_hetrec(store, tmp_path)


async def test_concurrent_imports_of_one_file_store_each_listen_once(
    sqlite_store: GraphStore,
) -> None:
    """Two imports of the same file at once still store each listen once."""
    store = sqlite_store
    (user,) = await store.ensure_users(["importer"])
    path = REAL / "lastfm_scrobbles_excerpt.csv"
    a, b = await asyncio.gather(
        run_import(store, read_lastfm_csv, path, user.id, batch_size=5),
        run_import(store, read_lastfm_csv, path, user.id, batch_size=5),
    )
    assert a.imported + b.imported == 22
    assert await store.count_listens(user.id) == 22
