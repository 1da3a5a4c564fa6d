"""The shared listen validation every importer and the API use."""

from __future__ import annotations

import pytest

from musicgraph.errors import InvalidRecordError
from musicgraph.ingest.common import InvalidListenError, parse_timestamp, validate_listen

NOW = 1_800_000_000


def listen(**kw: object) -> object:
    args: dict[str, object] = {
        "user_id": "u",
        "artist": "Burial",
        "title": "Archangel",
        "listened_at": 1_600_000_000,
        "source": "api",
        "where": "req:1",
        "now": NOW,
    }
    args.update(kw)
    return validate_listen(**args)  # type: ignore[arg-type]


def test_good_listen_is_normalised() -> None:
    """Text is trimmed, identifiers are cleaned, durations kept in milliseconds."""
    got = listen(
        artist="  Burial ",
        title="Archangel\n",
        album="",
        mbid="7128A2C5-0C42-4F3F-9C56-8D2C4F1E0B57",
        isrc="gb-abc-07-12345",
        spotify_id="https://open.spotify.com/track/6zvHwijlnwqjS6d46yAffi",
        duration_ms="238000",
        ms_played=1000,
        skipped=True,
    )
    assert got.track.artist == "Burial" and got.track.title == "Archangel"  # type: ignore[attr-defined]
    assert got.track.album is None  # type: ignore[attr-defined]
    assert got.track.mbid == "7128a2c5-0c42-4f3f-9c56-8d2c4f1e0b57"  # type: ignore[attr-defined]
    assert got.track.isrc == "GBABC0712345"  # type: ignore[attr-defined]
    assert got.track.spotify_id == "6zvHwijlnwqjS6d46yAffi"  # type: ignore[attr-defined]
    assert got.track.duration_ms == 238_000 and got.ms_played == 1000  # type: ignore[attr-defined]
    assert got.skipped is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"artist": None}, "missing artist", "artist"),
        ({"artist": "   "}, "missing artist", "artist"),
        ({"title": ""}, "missing title", "title"),
        ({"listened_at": None}, "unparseable timestamp", "listened_at"),
        ({"listened_at": "last tuesday"}, "unparseable timestamp", "listened_at"),
        ({"listened_at": True}, "unparseable timestamp", "listened_at"),
        ({"listened_at": 1_000_000_000}, "timestamp before 2002-01-01", "listened_at"),
        ({"listened_at": NOW + 3600}, "timestamp in the future", "listened_at"),
        ({"listened_at": 1_600_000_000_000}, "timestamp in the future", "listened_at"),
        ({"duration_ms": -1}, "absurd duration", "duration_ms"),
        ({"duration_ms": 25 * 3600 * 1000}, "absurd duration", "duration_ms"),
        ({"duration_ms": "long"}, "absurd duration", "duration_ms"),
        ({"ms_played": -10}, "absurd duration", "ms_played"),
        ({"mbid": "not-a-uuid"}, "invalid MBID", "mbid"),
        ({"artist_mbid": "1234"}, "invalid MBID", "artist_mbid"),
        ({"isrc": "XX"}, "invalid ISRC", "isrc"),
        ({"spotify_id": "spotify:track:short"}, "invalid Spotify id", "spotify_id"),
    ],
)
def test_bad_fields_are_refused(changes: dict[str, object], reason: str, field: str) -> None:
    """Each rule refuses its bad value with a short reason, the field and the place."""
    with pytest.raises(InvalidListenError) as info:
        listen(**changes)
    assert isinstance(info.value, InvalidRecordError)
    assert info.value.reason == reason
    assert info.value.field == field
    assert str(info.value).startswith(f"req:1: field '{field}': {reason}")


def test_small_clock_skew_is_allowed() -> None:
    """A listen a few minutes in the future (a phone's clock) is accepted."""
    assert listen(listened_at=NOW + 300).listened_at == NOW + 300  # type: ignore[attr-defined]


def test_milliseconds_get_a_hint() -> None:
    """A timestamp in milliseconds is refused with a hint saying so."""
    with pytest.raises(InvalidListenError, match="milliseconds"):
        listen(listened_at=1_600_000_000_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1600000000, 1600000000),
        (1600000000.7, 1600000000),
        ("1600000000", 1600000000),
        ("2020-09-13T12:26:40Z", 1600000000),
        ("2020-09-13T14:26:40+02:00", 1600000000),
        ("2020-09-13 12:26:40", 1600000000),
        ("2020-09-13 12:26", 1599999960),
        ("13 Sep 2020 12:26", 1599999960),
        ("13 Sep 2020, 12:26", 1599999960),
        ("2013-10-09 20:03:57 UTC", 1381349037),
    ],
)
def test_timestamps_in_export_formats(text: object, expected: int) -> None:
    """Epoch numbers, ISO 8601 and the usual export formats read as UTC seconds."""
    assert parse_timestamp(text) == expected


def test_service_reexports_validation() -> None:
    """The API imports validation from the service module, the one path of listens."""
    from musicgraph.ingest import service

    assert service.validate_listen is validate_listen
