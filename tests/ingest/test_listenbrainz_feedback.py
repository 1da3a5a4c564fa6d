"""The loves and hates of a ListenBrainz export become ratings, on the real stores."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from musicgraph.errors import ImportFormatError
from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Rating
from musicgraph.ingest.common import ByteMeter, ImportSummary
from musicgraph.ingest.listenbrainz import listen_inputs, read_listenbrainz
from musicgraph.ingest.listenbrainz_feedback import (
    EVENT_CHUNK,
    FeedbackSummary,
    apply_feedback,
    rating_events,
    read_export_feedback,
)
from musicgraph.ingest.pipeline import import_records

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
LISTENS = (REAL / "listenbrainz_export_excerpt.jsonl").read_text()

# The three listens of the real export excerpt: two mapped to a recording MBID, one not.
BURIAL_MBID = "1eacb3ca-e8e1-4588-920d-1187dcb8ca79"
GEORGE_MSID = "db4caef1-f087-4a35-9e79-51b14bffc882"
KILL_PARIS_MSID = "058b6225-8311-4c7f-ad79-d34e1bc334bc"
UNKNOWN_MBID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
UNKNOWN_MSID = "11111111-2222-4333-8444-555555555555"
T = 1_764_000_000


def entry(score: int, created: int, *, mbid: str | None = None, msid: str | None = None) -> str:
    """One line of feedback.jsonl as ListenBrainz exports it."""
    return json.dumps(
        {"recording_msid": msid, "recording_mbid": mbid, "score": score, "created": created}
    )


def export_zip(path: Path, feedback: list[str]) -> Path:
    """A ListenBrainz export zip: user.json, one month of listens and ``feedback`` lines."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("user.json", json.dumps({"user_id": 1, "username": "someone"}))
        z.writestr("listens/2025/12.jsonl", LISTENS)
        z.writestr("feedback.jsonl", "".join(line + "\n" for line in feedback))
    return path


async def import_export(
    store: GraphStore, path: Path, user_id: str, bus: EventBus | None = None
) -> FeedbackSummary:
    """What ``musicgraph import listenbrainz`` does: feedback read first, then the listens,
    then the feedback applied."""
    feedback = read_export_feedback(path)
    if not feedback.only:
        meter = ByteMeter()
        await import_records(
            store,
            read_listenbrainz(path, user_id, meter),
            ImportSummary(format="listenbrainz", path=str(path)),
            meter=meter,
            progress=False,
        )
    return await apply_feedback(
        store,
        user_id,
        feedback.entries,
        feedback.summary,
        listen_files=None if feedback.only else listen_inputs(path),
        bus=bus,
    )


async def track_id(store: GraphStore, *, mbid: str | None = None, title: str = "") -> str:
    """The stored track with this recording MBID, or this title."""
    if mbid:
        [track] = await store.find_tracks(mbid=mbid)
        return track.id
    [track] = await store.search_tracks(title)
    return track.id


def counts(s: FeedbackSummary) -> dict[str, Any]:
    return {
        "loved": s.loved,
        "hated": s.hated,
        "cleared": s.cleared,
        "unchanged": s.unchanged,
        "unresolved": s.unresolved,
        "skipped": s.skipped_total,
    }


async def test_export_zip_gives_ratings_by_mbid_and_msid(store: GraphStore, tmp_path: Path) -> None:
    """A zip's loves and hates rate the tracks they name (by MBID, or by the listens' MSID);
    a recording not in the listens is counted as unresolved."""
    (user,) = await store.ensure_users(["listener"])
    path = export_zip(
        tmp_path / "export.zip",
        [
            entry(1, T, mbid=BURIAL_MBID),
            entry(-1, T + 1, msid=KILL_PARIS_MSID),
            entry(1, T + 2, msid=GEORGE_MSID, mbid=None),
            entry(1, T + 3, mbid=UNKNOWN_MBID, msid=UNKNOWN_MSID),
        ],
    )
    summary = await import_export(store, path, user.id)
    assert counts(summary) == {
        "loved": 2,
        "hated": 1,
        "cleared": 0,
        "unchanged": 0,
        "unresolved": 1,
        "skipped": 0,
    }
    assert summary.files == ["export.zip!feedback.jsonl"]
    burial = await track_id(store, mbid=BURIAL_MBID)
    george = await track_id(store, title="I Knew You Were Waiting")
    kill_paris = await track_id(store, title="Easy on Me")
    assert await store.get_ratings(user.id) == [
        Rating(user.id, george, 1, T + 2),
        Rating(user.id, kill_paris, -1, T + 1),
        Rating(user.id, burial, 1, T),
    ]


async def test_reimport_changes_nothing_and_publishes_nothing(
    store: GraphStore, tmp_path: Path
) -> None:
    """The first import publishes its changes as ratings.changed; the same export again
    changes no rating and publishes nothing."""
    (user,) = await store.ensure_users(["listener"])
    path = export_zip(
        tmp_path / "export.zip",
        [entry(1, T, mbid=BURIAL_MBID), entry(-1, T + 1, msid=KILL_PARIS_MSID)],
    )
    bus = EventBus()
    async with bus.subscription(["ratings.changed"]) as sub:
        await import_export(store, path, user.id, bus)
        events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    burial = await track_id(store, mbid=BURIAL_MBID)
    kill_paris = await track_id(store, title="Easy on Me")
    assert [(e.user_id, e.payload["ratings"]) for e in events] == [
        (
            user.id,
            [{"track_id": burial, "score": 1}, {"track_id": kill_paris, "score": -1}],
        )
    ]
    before = await store.get_ratings(user.id)

    async with bus.subscription(["ratings.changed"]) as sub:
        again = await import_export(store, path, user.id, bus)
        assert sub.queue.qsize() == 0
    assert (again.loved, again.hated, again.unchanged) == (0, 0, 2)
    assert await store.get_ratings(user.id) == before


async def test_score_zero_clears_and_newer_created_wins(store: GraphStore, tmp_path: Path) -> None:
    """A later export's score 0 clears an older rating; an entry older than the stored rating
    changes nothing; within one file the newest entry for a track wins."""
    (user,) = await store.ensure_users(["listener"])
    await import_export(
        store,
        export_zip(tmp_path / "a.zip", [entry(1, T, mbid=BURIAL_MBID)]),
        user.id,
    )
    burial = await track_id(store, mbid=BURIAL_MBID)
    kill_paris = await track_id(store, title="Easy on Me")
    await store.set_rating(user.id, kill_paris, 1, T + 100)  # rated here, after the export

    bus = EventBus()
    later = export_zip(
        tmp_path / "b.zip",
        [
            entry(0, T + 50, mbid=BURIAL_MBID),
            entry(-1, T + 10, msid=KILL_PARIS_MSID),  # older than the rating made here
        ],
    )
    async with bus.subscription(["ratings.changed"]) as sub:
        summary = await import_export(store, later, user.id, bus)
        [event] = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert (summary.cleared, summary.hated, summary.unchanged) == (1, 0, 1)
    assert event.payload == {
        "ratings": [{"track_id": burial, "score": None}],
        "track_id": burial,
        "score": None,
    }
    assert await store.get_ratings(user.id) == [Rating(user.id, kill_paris, 1, T + 100)]

    flip = export_zip(
        tmp_path / "c.zip",
        [entry(-1, T + 300, mbid=BURIAL_MBID), entry(1, T + 200, mbid=BURIAL_MBID)],
    )
    summary = await import_export(store, flip, user.id)
    assert (summary.hated, summary.loved, summary.unchanged) == (1, 0, 1)
    assert Rating(user.id, burial, -1, T + 300) in await store.get_ratings(user.id)


async def test_a_rating_given_while_the_import_reads_is_not_overwritten(
    store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A track rated (as by rateTrack) after the import read the stored ratings but before it
    wrote keeps that newer rating: the import writes only over older ratings, in its own
    transaction, and counts the entry as unchanged, with no event for it."""
    (user,) = await store.ensure_users(["listener"])
    await import_export(store, export_zip(tmp_path / "a.zip", []), user.id)
    burial = await track_id(store, mbid=BURIAL_MBID)
    read = store.get_ratings

    async def read_then_rated_meanwhile(user_id: str) -> list[Rating]:
        stored = await read(user_id)
        await store.set_rating(user_id, burial, 1, T + 100)
        return stored

    monkeypatch.setattr(store, "get_ratings", read_then_rated_meanwhile)
    bus = EventBus()
    older = export_zip(tmp_path / "b.zip", [entry(-1, T + 10, mbid=BURIAL_MBID)])
    async with bus.subscription(["ratings.changed"]) as sub:
        summary = await import_export(store, older, user.id, bus)
        assert sub.queue.qsize() == 0
    assert (summary.hated, summary.unchanged) == (0, 1)
    assert await read(user.id) == [Rating(user.id, burial, 1, T + 100)]


async def test_feedback_file_alone_resolves_by_track_metadata(
    store: GraphStore, tmp_path: Path
) -> None:
    """A feedback API answer given alone resolves entries by their track_metadata (artist and
    title through the identity rules listens follow, "feat." folded); MSIDs alone are then
    unresolved."""
    (user,) = await store.ensure_users(["listener"])
    await import_export(store, export_zip(tmp_path / "e.zip", []), user.id)
    answer = {
        "count": 3,
        "feedback": [
            {
                "recording_msid": "99999999-2222-4333-8444-555555555555",
                "score": -1,
                "created": T,
                "track_metadata": {"artist_name": "kill  PARIS", "track_name": "Easy On Me"},
            },
            {"recording_msid": KILL_PARIS_MSID, "score": 1, "created": T - 5},
            {"recording_msid": GEORGE_MSID, "score": 1, "created": T},
        ],
        "offset": 0,
        "total_count": 3,
    }
    path = tmp_path / "feedback.json"
    path.write_text(json.dumps(answer, indent=2))
    summary = await import_export(store, path, user.id)
    assert (summary.hated, summary.unresolved, summary.files) == (1, 2, ["feedback.json"])
    kill_paris = await track_id(store, title="Easy on Me")
    assert await store.get_ratings(user.id) == [Rating(user.id, kill_paris, -1, T)]


async def test_malformed_lines_are_named_and_leave_ratings_intact(
    store: GraphStore, tmp_path: Path
) -> None:
    """Malformed feedback lines are skipped and reported with file:line and field; ratings
    stored before, and the good lines, are as they should be."""
    (user,) = await store.ensure_users(["listener"])
    await import_export(
        store, export_zip(tmp_path / "a.zip", [entry(-1, T, msid=KILL_PARIS_MSID)]), user.id
    )
    kill_paris = await track_id(store, title="Easy on Me")
    path = export_zip(
        tmp_path / "b.zip",
        [
            entry(1, T + 1, mbid=BURIAL_MBID),
            entry(5, T + 1, msid=KILL_PARIS_MSID),
            json.dumps({"recording_msid": KILL_PARIS_MSID, "score": 1, "created": "yesterday"}),
            entry(1, T + 1, mbid="not-an-mbid"),
            "{not json",
            json.dumps({"score": 1, "created": T}),
        ],
    )
    summary = await import_export(store, path, user.id)
    assert summary.loved == 1 and summary.skipped_total == 5
    assert summary.examples["invalid score"] == [
        "b.zip!feedback.jsonl:2: field 'score': invalid score (5)"
    ]
    assert summary.examples["unparseable timestamp"][0].startswith(
        "b.zip!feedback.jsonl:3: field 'created': unparseable timestamp ('yesterday'"
    )
    assert summary.examples["invalid MBID"] == [
        "b.zip!feedback.jsonl:4: field 'recording_mbid': invalid MBID ('not-an-mbid')"
    ]
    assert summary.examples["malformed record"][0].startswith("b.zip!feedback.jsonl:5: ")
    assert summary.examples["no recording named"][0].startswith(
        "b.zip!feedback.jsonl:6: field 'recording_mbid'"
    )
    burial = await track_id(store, mbid=BURIAL_MBID)
    assert await store.get_ratings(user.id) == [
        Rating(user.id, burial, 1, T + 1),
        Rating(user.id, kill_paris, -1, T),
    ]


async def test_feedback_that_is_not_feedback_fails_before_anything_is_written(
    store: GraphStore, tmp_path: Path
) -> None:
    """An export whose feedback.jsonl is not feedback at all fails naming the file and line,
    before a listen or a rating is written."""
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("listens/2025/12.jsonl", LISTENS)
        z.writestr("feedback.jsonl", '{"pinned_until": 1, "blurb_content": "x"}\n')
    with pytest.raises(ImportFormatError, match=r"export.zip!feedback.jsonl line 1: expected"):
        read_export_feedback(path)
    assert (await store.counts()).listens == 0


async def test_export_folder_reads_feedback_and_skips_it_as_listens(
    store: GraphStore, tmp_path: Path
) -> None:
    """An unpacked export folder with listens beside feedback.jsonl and user.json imports the
    listens and applies the feedback."""
    (user,) = await store.ensure_users(["listener"])
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "listens.jsonl").write_text(LISTENS)
    (folder / "user.json").write_text('{"user_id": 1, "username": "someone"}\n')
    (folder / "feedback.jsonl").write_text(entry(1, T, mbid=BURIAL_MBID) + "\n")
    summary = await import_export(store, folder, user.id)
    assert (summary.loved, summary.files) == (1, ["feedback.jsonl"])
    assert (await store.counts()).listens == 3


def test_cli_imports_an_export_with_feedback_end_to_end(tmp_path: Path) -> None:
    """``musicgraph import listenbrainz`` of an export zip prints the feedback counts (text and
    --json); a feedback.jsonl given alone works too; a second run changes nothing."""
    from tests.ingest.test_cli import musicgraph

    db = tmp_path / "g.db"
    path = export_zip(
        tmp_path / "export.zip",
        [
            entry(1, T, mbid=BURIAL_MBID),
            entry(-1, T + 1, msid=KILL_PARIS_MSID),
            entry(1, T + 2, mbid=UNKNOWN_MBID),
            entry(7, T + 3, mbid=BURIAL_MBID),
        ],
    )
    first = musicgraph("import", "listenbrainz", path, "--user", "alice", "--no-progress", db=db)
    assert first.returncode == 0, first.stderr
    assert "imported:   3 new listens" in first.stdout
    for line in (
        "loved:      1",
        "hated:      1",
        "unresolved: 1 loves/hates name recordings not in your listens",
        "e.g. export.zip!feedback.jsonl:4: field 'score': invalid score (7)",
    ):
        assert line in first.stdout, first.stdout

    again = musicgraph("import", "listenbrainz", path, "--user", "alice", "--json", db=db)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["duplicates"] == 3
    assert {k: summary["feedback"][k] for k in ("loved", "hated", "cleared", "unresolved")} == {
        "loved": 0,
        "hated": 0,
        "cleared": 0,
        "unresolved": 1,
    }

    alone = tmp_path / "feedback.jsonl"
    alone.write_text(entry(0, T + 10, mbid=BURIAL_MBID) + "\n")
    cleared = musicgraph("import", "listenbrainz", alone, "--user", "alice", "--json", db=db)
    assert cleared.returncode == 0, cleared.stderr
    summary = json.loads(cleared.stdout)
    assert (summary["read"], summary["feedback"]["cleared"]) == (0, 1)

    stats = json.loads(musicgraph("stats", "--json", db=db).stdout)
    assert stats["ratings"] == 1 and stats["listens"] == 3

    bad = tmp_path / "bad_feedback.jsonl"
    bad.write_text('{"score": 1, "recording_msid": "x", "created": 1}\n{"hello": 1}\n')
    skipped = musicgraph("import", "listenbrainz", bad, "--user", "alice", db=db)
    assert skipped.returncode == 0, skipped.stderr
    assert "bad_feedback.jsonl:1: field 'recording_msid': invalid MSID ('x')" in skipped.stdout
    assert "bad_feedback.jsonl:2: field 'score': invalid score (missing)" in skipped.stdout
    assert json.loads(musicgraph("stats", "--json", db=db).stdout) == stats


async def test_msid_resolves_through_an_older_json_array_export(
    store: GraphStore, tmp_path: Path
) -> None:
    """An older export (a pretty-printed JSON array with the MSID beside the listen) resolves a
    hate known only by MSID to the track of the listen carrying it."""
    (user,) = await store.ensure_users(["listener"])
    folder = tmp_path / "old-export"
    folder.mkdir()
    (folder / "listens.json").write_text((REAL / "listenbrainz_array_excerpt.json").read_text())
    msid = "7407a60c-ba0e-4fcd-ba47-80194f002b20"
    (folder / "feedback.jsonl").write_text(entry(-1, T, msid=msid) + "\n")
    summary = await import_export(store, folder, user.id)
    assert (summary.hated, summary.unresolved) == (1, 0)
    shotgun = await track_id(store, mbid="b92334c4-574a-46f5-89d8-417fcd1e873f")
    assert await store.get_ratings(user.id) == [Rating(user.id, shotgun, -1, T)]


def test_many_changes_travel_in_a_few_events() -> None:
    """Changes are published in events of at most EVENT_CHUNK ratings each (a server re-reads
    the user's ratings once per event, not once per change)."""
    changes = [Rating("u1", f"tr_{i}", 1 if i % 3 else 0, T) for i in range(2 * EVENT_CHUNK + 5)]
    events = rating_events("u1", changes)
    assert [len(e.payload["ratings"]) for e in events] == [EVENT_CHUNK, EVENT_CHUNK, 5]
    assert all(e.topic == "ratings.changed" and e.user_id == "u1" for e in events)
    assert events[0].payload["ratings"][:2] == [
        {"track_id": "tr_0", "score": None},
        {"track_id": "tr_1", "score": 1},
    ]
    assert "track_id" not in events[0].payload
