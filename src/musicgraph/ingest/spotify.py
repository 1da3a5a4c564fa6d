"""Spotify streaming history: the extended history (``Streaming_History_Audio_*.json``, the older
``endsong_*.json``) and the account-data history (``StreamingHistory*.json``). A single file, a
directory or the zip Spotify sends can be imported.

Extended rows carry ``ts`` (when the play ended, UTC), ``ms_played``,
``master_metadata_track_name``, ``master_metadata_album_artist_name``,
``master_metadata_album_album_name``, ``spotify_track_uri`` and ``skipped``. Account-data rows
carry ``endTime`` (UTC, minutes), ``artistName``, ``trackName`` and ``msPlayed``.

A listen is recorded at the time the play started (end minus the time played). Plays shorter than
30 seconds, and plays Spotify marks as skipped, are kept as skipped listens: they count towards a
track's skips, not its listens. Podcast episodes, audiobooks and rows without a track (local files
Spotify could not name) are skipped with their reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from musicgraph.errors import ImportFormatError
from musicgraph.ingest.common import (
    BAD_RECORD,
    BAD_TIMESTAMP,
    SKIP_THRESHOLD_MS,
    ByteMeter,
    InvalidListenError,
    JsonItem,
    ParsedRecord,
    iter_json_records,
    open_inputs,
    parse_timestamp,
    validate_listen,
)

SOURCE = "spotify"
PATTERNS = (
    "Streaming_History_Audio*.json",
    "endsong*.json",
    "StreamingHistory*.json",
    "StreamingHistory_music*.json",
)
EXPECTED = (
    "expected a Spotify streaming history (a JSON array of plays with ts, ms_played and "
    "master_metadata_track_name, or endTime, artistName, trackName and msPlayed)"
)
PODCAST = "podcast episode"
AUDIOBOOK = "audiobook"
NO_TRACK = "no track (Spotify gives no track name or artist)"


def read_spotify(
    path: Path, user_id: str, meter: ByteMeter | None = None, *, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Every play of the history at ``path`` (a file, a directory or the zip from Spotify)."""
    files = open_inputs(path, patterns=PATTERNS)
    meter = meter or ByteMeter()
    meter.total = sum(f.size for f in files)
    for file in files:
        with file.open_text(meter, encoding="utf-8-sig") as stream:
            yield from parse_spotify(stream, user_id, name=file.name, now=now)


def parse_spotify(
    stream: IO[str], user_id: str, *, name: str, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Parse one Spotify history file (either kind, decided by its first row)."""
    kind: str | None = None
    for item in iter_json_records(stream, name=name, expected=EXPECTED):
        if isinstance(item, InvalidListenError):
            yield item
            continue
        if kind is None:
            kind = _kind(item.value)
            if kind is None:
                raise ImportFormatError(f"{name} line {item.line}: {EXPECTED}")
        if kind == "extended":
            yield _extended(item, user_id, name, now)
        else:
            yield _account(item, user_id, name, now)


def _kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    if "ts" in value and "ms_played" in value:
        return "extended"
    if "endTime" in value and "msPlayed" in value:
        return "account"
    return None


def _start(end: Any, ms_played: Any, where: str) -> int | InvalidListenError:
    try:
        ts = parse_timestamp(end)
    except (ValueError, OverflowError) as exc:
        return InvalidListenError(BAD_TIMESTAMP, where=where, field="ts", value=f"{end!r}: {exc}")
    if isinstance(ms_played, int) and not isinstance(ms_played, bool) and ms_played > 0:
        return ts - ms_played // 1000
    return ts


def _extended(item: JsonItem, user_id: str, name: str, now: int | None) -> ParsedRecord:
    where = f"{name}:{item.line}"
    row = item.value
    if not isinstance(row, dict):
        return InvalidListenError(BAD_RECORD, where=where, value="not a JSON object")
    if row.get("episode_name") or row.get("spotify_episode_uri"):
        return InvalidListenError(PODCAST, where=where, value=repr(row.get("episode_name")))
    if row.get("audiobook_title") or row.get("audiobook_uri"):
        return InvalidListenError(AUDIOBOOK, where=where, value=repr(row.get("audiobook_title")))
    title = row.get("master_metadata_track_name")
    artist = row.get("master_metadata_album_artist_name")
    if not title and not artist:
        return InvalidListenError(NO_TRACK, where=where)
    ms_played = row.get("ms_played")
    if isinstance(ms_played, str) and ms_played.isdigit():  # the 2013-era endsong.json
        ms_played = int(ms_played)
    start = _start(row.get("ts"), ms_played, where)
    if isinstance(start, InvalidListenError):
        return start
    try:
        return validate_listen(
            user_id=user_id,
            artist=artist,
            title=title,
            listened_at=start,
            source=SOURCE,
            where=where,
            album=row.get("master_metadata_album_album_name"),
            spotify_id=row.get("spotify_track_uri"),
            ms_played=ms_played,
            skipped=_is_skip(ms_played) or row.get("skipped") is True,
            now=now,
        )
    except InvalidListenError as exc:
        return exc


def _account(item: JsonItem, user_id: str, name: str, now: int | None) -> ParsedRecord:
    where = f"{name}:{item.line}"
    row = item.value
    if not isinstance(row, dict):
        return InvalidListenError(BAD_RECORD, where=where, value="not a JSON object")
    ms_played = row.get("msPlayed")
    start = _start(row.get("endTime"), ms_played, where)
    if isinstance(start, InvalidListenError):
        return start
    try:
        return validate_listen(
            user_id=user_id,
            artist=row.get("artistName"),
            title=row.get("trackName"),
            listened_at=start,
            source=SOURCE,
            where=where,
            ms_played=ms_played,
            skipped=_is_skip(ms_played),
            now=now,
        )
    except InvalidListenError as exc:
        return exc


def _is_skip(ms_played: Any) -> bool:
    return isinstance(ms_played, int) and ms_played < SKIP_THRESHOLD_MS
