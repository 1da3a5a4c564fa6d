"""The parsers on real export excerpts and on hand-written bad files (no store involved)."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from musicgraph.errors import ImportFormatError
from musicgraph.graph.models import ListenInput
from musicgraph.ingest import common
from musicgraph.ingest.common import ByteMeter, InvalidListenError, ParsedRecord
from musicgraph.ingest.lastfm_csv import parse_lastfm_csv, read_lastfm_csv
from musicgraph.ingest.listenbrainz import parse_listenbrainz, read_listenbrainz
from musicgraph.ingest.scrobbler_log import read_scrobbler_log
from musicgraph.ingest.spotify import read_spotify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "real"
BAD = FIXTURES / "bad"
NOW = 1_800_000_000  # 2027-01-15: a fixed "now" so the future check does not depend on the clock


def split(records: Iterable[ParsedRecord]) -> tuple[list[ListenInput], list[InvalidListenError]]:
    good: list[ListenInput] = []
    bad: list[InvalidListenError] = []
    for r in records:
        (bad if isinstance(r, InvalidListenError) else good).append(r)  # type: ignore[arg-type]
    return good, bad


def rejected(bad: list[InvalidListenError]) -> dict[int, str]:
    """line number -> reason."""
    return {int(str(e.where).rsplit(":", 1)[1]): e.reason for e in bad}


# --- real files -------------------------------------------------------------------------------


def test_listenbrainz_jsonl_export_excerpt() -> None:
    """Listens from a real ListenBrainz export read with mapped MBIDs, durations and albums."""
    good, bad = split(read_listenbrainz(REAL / "listenbrainz_export_excerpt.jsonl", "u", now=NOW))
    assert bad == []
    assert len(good) == 3
    burial = good[0]
    assert (burial.track.artist, burial.track.title, burial.track.album) == (
        "Burial",
        "Etched Headplate",
        "Untrue",
    )
    assert burial.track.mbid == "1eacb3ca-e8e1-4588-920d-1187dcb8ca79"
    assert burial.track.artist_mbid == "9ddce51c-2b75-4b3e-ac8c-1db09e7c89c6"
    assert burial.track.duration_ms == 362_000  # "duration" is in seconds
    assert good[1].track.duration_ms == 242_000  # "duration_ms" as it is
    assert good[2].track.mbid is None  # mbid_mapping null: no MBID
    assert all(g.source == "listenbrainz" and g.user_id == "u" for g in good)


def test_listenbrainz_array_with_tracks_url() -> None:
    """A JSON array export reads, and a Spotify '/tracks/' URL still yields the track id."""
    good, bad = split(read_listenbrainz(REAL / "listenbrainz_array_excerpt.json", "u", now=NOW))
    assert bad == []
    assert len(good) == 1
    assert good[0].listened_at == 1669318360
    assert good[0].track.spotify_id == "49rpdsNYJirTTf6p6mMvag"
    assert good[0].track.mbid == "b92334c4-574a-46f5-89d8-417fcd1e873f"


def test_spotify_extended_history_excerpt() -> None:
    """A real Streaming_History_Audio file: 20 plays, the 17 Spotify marks skipped are skips."""
    good, bad = split(
        read_spotify(REAL / "Streaming_History_Audio_2023_excerpt.json", "u", now=NOW)
    )
    assert bad == []
    assert len(good) == 20
    assert sum(g.skipped for g in good) == 17
    paro = good[17]
    assert (paro.track.artist, paro.track.title) == ("Nej", "Paro")
    assert paro.track.spotify_id == "6zvHwijlnwqjS6d46yAffi"
    assert paro.ms_played == 204_695
    # recorded when the play started: the end time minus the time played
    assert paro.listened_at == 1677325412 - 204


def test_spotify_endsong_minified_excerpt() -> None:
    """A one-line endsong.json (skipped is null there): only plays under 30 s are skips."""
    good, bad = split(read_spotify(REAL / "endsong_0_excerpt.json", "u", now=NOW))
    assert bad == []
    assert len(good) == 12
    assert [g.ms_played for g in good if g.skipped] == [3337, 6244, 113, 1544]


def test_spotify_account_data_excerpt() -> None:
    """The older StreamingHistory0.json (endTime, artistName, trackName, msPlayed) reads."""
    good, bad = split(read_spotify(REAL / "StreamingHistory0_excerpt.json", "u", now=NOW))
    assert bad == []
    assert len(good) == 16
    assert sum(g.skipped for g in good) == 3
    assert good[3].track.title == "Bezerk (feat. A$AP Ferg)"


def test_lastfm_csv_with_header_excerpt() -> None:
    """A real Last.fm CSV with MBID columns and quoted fields holding commas and quotes."""
    good, bad = split(read_lastfm_csv(REAL / "lastfm_scrobbles_excerpt.csv", "u", now=NOW))
    assert bad == []
    assert len(good) == 22
    assert good[0].listened_at == 1516446159
    assert good[0].track.mbid == "004673e7-05dd-444d-ace4-68be01cbe937"
    assert good[0].track.artist_mbid == "5cbb7d26-9fcb-40af-9b8a-c27e817a65a6"
    assert good[12].track.artist == "D. Imman, Yuvan Shankar Raja, Yogi B & Sunitha Sarathy"
    assert good[13].track.album == "Once in a Long, Long While..."
    assert good[18].track.title == 'Ninnu Kori (From "Ninnu Kori")'


def test_lastfm_csv_without_header_excerpt() -> None:
    """Header-less lastfm-to-csv rows (artist,album,track,date) read with a UTC date."""
    good, bad = split(read_lastfm_csv(REAL / "lastfm_to_csv_excerpt.csv", "u", now=NOW))
    assert bad == []
    assert [(g.track.artist, g.track.title, g.track.album) for g in good] == [
        ("lur", "New World Towers", "The Magic Whip"),
        ("Two Door Cinema Club", "What You Know", "Tourist History"),
    ]
    assert good[0].listened_at == 1616432100  # 2021-03-22T16:55:00Z


@pytest.mark.parametrize(
    ("name", "listens", "skips", "with_mbid"),
    [
        ("rockbox_ipodvideo.scrobbler.log", 34, 6, 7),
        ("rockbox_unknown_tz.scrobbler.log", 19, 6, 6),
        ("headerless.scrobbler.log", 10, 2, 0),
    ],
)
def test_scrobbler_log_excerpts(name: str, listens: int, skips: int, with_mbid: int) -> None:
    """Real Rockbox logs: L lines are listens, S lines skips, the eighth column an MBID."""
    good, bad = split(read_scrobbler_log(REAL / name, "u", now=NOW))
    assert bad == []
    assert (len(good), sum(g.skipped for g in good)) == (listens, skips)
    assert sum(1 for g in good if g.track.mbid) == with_mbid
    assert all(g.track.duration_ms and g.track.duration_ms % 1000 == 0 for g in good)


def test_scrobbler_log_keeps_unicode_and_empty_track_numbers() -> None:
    """Japanese titles survive and an empty track number is no problem."""
    good, _ = split(read_scrobbler_log(REAL / "rockbox_unknown_tz.scrobbler.log", "u", now=NOW))
    titles = {g.track.title for g in good}
    assert {"あふれる", "なか", "Opening", "Descent"} <= titles


# --- bad files --------------------------------------------------------------------------------


def test_listenbrainz_bad_rows_are_reported_by_line() -> None:
    """Every bad ListenBrainz row is skipped with its line number and reason."""
    good, bad = split(read_listenbrainz(BAD / "listenbrainz_bad.jsonl", "u", now=NOW))
    assert [g.track.title for g in good] == ["Archangel", "Near Dark"]
    assert good[1].track.mbid == "7128a2c5-0c42-4f3f-9c56-8d2c4f1e0b57"
    assert rejected(bad) == {
        2: "missing artist",
        3: "missing title",
        4: "unparseable timestamp",
        5: "timestamp before 2002-01-01",
        6: "timestamp in the future",
        7: "absurd duration",
        8: "absurd duration",
        9: "invalid MBID",
        10: "invalid ISRC",
        11: "invalid Spotify id",
        12: "malformed record",
        13: "malformed record",
    }
    assert all(str(e).startswith(f"listenbrainz_bad.jsonl:{e.where.split(':')[1]}") for e in bad)  # type: ignore[union-attr]
    fields = {int(str(e.where).split(":")[1]): e.field for e in bad}
    assert fields[9] == "mbid" and fields[10] == "isrc" and fields[5] == "listened_at"


def test_spotify_bad_rows_are_reported_by_line() -> None:
    """Podcasts, audiobooks, rows without a track and bad values are skipped with reasons."""
    good, bad = split(read_spotify(BAD / "spotify_bad.json", "u", now=NOW))
    assert [g.skipped for g in good] == [False, True]
    assert rejected(bad) == {
        3: "podcast episode",
        4: "audiobook",
        5: "no track (Spotify gives no track name or artist)",
        6: "unparseable timestamp",
        7: "absurd duration",
        8: "invalid Spotify id",
        10: "timestamp before 2002-01-01",
    }


def test_lastfm_csv_bad_rows_are_reported_by_line() -> None:
    """Comments are ignored, bad rows skipped by line, '#1 Dads' is an artist, not a comment."""
    good, bad = split(read_lastfm_csv(BAD / "lastfm_bad.csv", "u", now=NOW))
    assert [(g.track.artist, g.track.title) for g in good] == [
        ("Burial", "Archangel"),
        ("Burial, again", "Shell of Light"),
        ("#1 Dads", "So Soldiers"),
    ]
    assert rejected(bad) == {
        4: "missing artist",
        5: "missing title",
        6: "unparseable timestamp",
        7: "timestamp before 2002-01-01",
        8: "malformed record",
    }


def test_scrobbler_log_bad_rows_are_reported_by_line() -> None:
    """Bad ratings, short lines, invalid MBIDs and bad values are skipped by line."""
    good, bad = split(read_scrobbler_log(BAD / "scrobbler_bad.log", "u", now=NOW))
    assert [(g.track.title, g.skipped) for g in good] == [("Archangel", False), ("Untrue", True)]
    assert rejected(bad) == {
        5: "invalid rating (expected L or S)",
        6: "malformed record",
        7: "invalid MBID",
        8: "missing title",
        9: "timestamp in the future",
        10: "absurd duration",
    }


@pytest.mark.parametrize(
    ("reader", "name", "expected"),
    [
        (
            read_listenbrainz,
            "not_listenbrainz.json",
            "not_listenbrainz.json line 1: expected a ListenBrainz export",
        ),
        (
            read_listenbrainz,
            "lastfm_bad.csv",
            "lastfm_bad.csv line 1: expected a ListenBrainz export",
        ),
        (
            read_spotify,
            "not_spotify.json",
            "not_spotify.json line 1: expected a Spotify streaming history",
        ),
        (
            read_lastfm_csv,
            "not_lastfm.csv",
            "not_lastfm.csv line 1: expected a Last.fm/Libre.fm CSV export",
        ),
        (
            read_scrobbler_log,
            "not_scrobbler.log",
            "not_scrobbler.log line 1: expected a Rockbox .scrobbler.log",
        ),
        (read_scrobbler_log, "listenbrainz_bad.jsonl", "line 1: expected a Rockbox .scrobbler.log"),
    ],
)
def test_wrong_format_fails_at_once(reader: object, name: str, expected: str) -> None:
    """A file that is not the format at all fails on its first record, saying what was expected."""
    records = reader(BAD / name, "u", now=NOW)  # type: ignore[operator]
    with pytest.raises(ImportFormatError) as info:
        next(iter(records))
    assert expected in str(info.value)


def test_truncated_json_array_names_the_line() -> None:
    """A JSON array cut off mid-entry yields what came before, then fails at the broken line."""
    records = read_listenbrainz(BAD / "truncated_array.json", "u", now=NOW)
    first = next(records)
    second = next(records)
    assert isinstance(first, ListenInput) and isinstance(second, ListenInput)
    with pytest.raises(ImportFormatError, match=r"truncated_array.json line 4: broken JSON"):
        next(records)


def test_missing_path_is_a_format_error(tmp_path: Path) -> None:
    """A path that does not exist is reported as such."""
    with pytest.raises(ImportFormatError, match="no such file"):
        list(read_spotify(tmp_path / "nope.json", "u"))


# --- streaming, containers -------------------------------------------------------------------


def test_json_array_parser_handles_every_chunk_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading in tiny chunks gives the same records and line numbers as reading at once."""
    text = (REAL / "Streaming_History_Audio_2023_excerpt.json").read_text()
    whole = list(
        common.iter_json_records(io.StringIO(text), name="x", expected="JSON")  # type: ignore[arg-type]
    )
    for chunk in (1, 7, 64, 1000):
        monkeypatch.setattr(common, "_CHUNK", chunk)
        items = list(common.iter_json_records(io.StringIO(text), name="x", expected="JSON"))
        assert [(i.value, i.line) for i in items] == [(i.value, i.line) for i in whole]  # type: ignore[union-attr]
    assert [i.line for i in whole][:3] == [2, 27, 52]  # type: ignore[union-attr]


def test_jsonl_parser_handles_lines_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON Lines split mid-line by the first read still parse with the right line numbers."""
    monkeypatch.setattr(common, "_CHUNK", 50)
    good, bad = split(
        parse_listenbrainz(
            io.StringIO((BAD / "listenbrainz_bad.jsonl").read_text()), "u", name="f", now=NOW
        )
    )
    assert len(good) == 2 and len(bad) == 12
    assert sorted(rejected(bad)) == list(range(2, 14))


def test_pretty_printed_api_answer_is_read() -> None:
    """A saved ListenBrainz API answer ({"payload": {"listens": [...]}}) is read too."""
    answer = {
        "payload": {
            "count": 2,
            "listens": [
                {
                    "listened_at": 1700000300,
                    "track_metadata": {"artist_name": "A", "track_name": "Later"},
                },
                {
                    "listened_at": 1700000100,
                    "track_metadata": {"artist_name": "A", "track_name": "Earlier"},
                },
            ],
        }
    }
    good, bad = split(
        parse_listenbrainz(io.StringIO(json.dumps(answer, indent=2)), "u", name="f", now=NOW)
    )
    assert [g.track.title for g in good] == ["Later", "Earlier"] and bad == []


def test_spotify_zip_and_directory(tmp_path: Path) -> None:
    """The zip Spotify sends and an unpacked directory import the history files inside only."""
    zpath = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(
            REAL / "Streaming_History_Audio_2023_excerpt.json",
            "Spotify Extended Streaming History/Streaming_History_Audio_2023_0.json",
        )
        z.write(REAL / "endsong_0_excerpt.json", "MyData/endsong_0.json")
        z.writestr("Spotify Extended Streaming History/ReadMeFirst.pdf", b"%PDF")
        z.writestr("Spotify Extended Streaming History/Streaming_History_Video_2023.json", "[]")
    meter = ByteMeter()
    good, bad = split(read_spotify(zpath, "u", meter, now=NOW))
    assert len(good) == 32 and bad == []
    assert meter.read == meter.total > 0

    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "endsong_0.json").write_bytes((REAL / "endsong_0_excerpt.json").read_bytes())
    (folder / "notes.json").write_text("not a history")
    good, _ = split(read_spotify(folder, "u", now=NOW))
    assert len(good) == 12


def test_listenbrainz_export_zip_reads_only_listens(tmp_path: Path) -> None:
    """In the ListenBrainz export zip only listens/*.jsonl are listens (not feedback.jsonl)."""
    zpath = tmp_path / "listenbrainz_export.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("user.json", '{"user_id": 1, "username": "someone"}')
        z.writestr(
            "feedback.jsonl", '{"score": 1, "created": 1476644563, "recording_mbid": null}\n'
        )
        z.write(REAL / "listenbrainz_export_excerpt.jsonl", "listens/2025/12.jsonl")
    good, bad = split(read_listenbrainz(zpath, "u", now=NOW))
    assert len(good) == 3 and bad == []


def test_byte_meter_follows_the_file() -> None:
    """The meter ends at the file's size, which is what the progress bar shows."""
    meter = ByteMeter()
    path = REAL / "lastfm_scrobbles_excerpt.csv"
    list(read_lastfm_csv(path, "u", meter, now=NOW))
    assert meter.total == meter.read == path.stat().st_size


def test_reasons_are_few_and_stable() -> None:
    """Skip reasons are short categories (what the summary counts), values go in the message."""
    _, bad = split(read_listenbrainz(BAD / "listenbrainz_bad.jsonl", "u", now=NOW))
    counts = Counter(e.reason for e in bad)
    assert counts["absurd duration"] == 2 and counts["malformed record"] == 2
    message = next(str(e) for e in bad if e.reason == "timestamp before 2002-01-01")
    assert "2000-01-01T00:00:00Z" in message


def test_csv_parser_accepts_other_header_names() -> None:
    """Title/Date style headers (Libre.fm, other tools) map onto the same fields."""
    text = "Title,Artist,Album,Date\nArchangel,Burial,Untrue,2020-09-13T12:26:40Z\n"
    good, bad = split(parse_lastfm_csv(io.StringIO(text), "u", name="f", now=NOW))
    assert bad == [] and good[0].track.artist == "Burial" and good[0].listened_at == 1600000000


def test_listenbrainz_repeated_track_is_one_ref_and_numbers_stay_exact() -> None:
    """Listens of the same track share one validated TrackRef; an integer beyond 64 bits is read
    exactly (not as a float), and a duration of true is refused even after a duration of 1."""

    def line(at: int, artist: object, duration: object = None) -> str:
        info = {} if duration is None else {"duration_ms": duration}
        meta = {"artist_name": artist, "track_name": "T", "additional_info": info}
        return json.dumps({"listened_at": at, "track_metadata": meta})

    big = 123456789012345678901234567890
    text = "\n".join(
        [
            line(1_600_000_000, "A"),
            line(1_600_000_001, "A"),
            line(1_600_000_002, big),
            line(1_600_000_003, "B", 1),
            line(1_600_000_004, "B", True),
        ]
    )
    good, bad = split(parse_listenbrainz(io.StringIO(text), "u", name="f", now=NOW))
    assert good[0].track is good[1].track
    assert good[2].track.artist == str(big)
    assert good[3].track.duration_ms == 1
    assert [e.reason for e in bad] == [common.BAD_DURATION]
