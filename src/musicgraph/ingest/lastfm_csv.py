"""Last.fm and Libre.fm scrobble exports as CSV.

Two shapes are read:

- with a header row naming the columns, in any order and letter case: the artist (``Artist``,
  ``artist_name``), the track (``Track``, ``Title``, ``track_name``, ``Name``), optionally the
  album and MBIDs (``track_mbid``, ``artist_mbid``), and the time (``uts``/``timestamp`` in
  seconds, or ``Date``/``Time``/``datetime``/``utc_time`` as text);
- without a header, ``artist,album,track,date`` as the widely used lastfm-to-csv tool writes it,
  the date like ``31 Jan 2021 12:34`` (UTC).

Fields may be quoted (with commas or doubled quotes inside); lines starting with ``#`` are
comments; a byte-order mark is ignored. Text times without a zone are UTC, as Last.fm exports them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from musicgraph.errors import ImportFormatError
from musicgraph.ingest.common import (
    BAD_RECORD,
    ByteMeter,
    InvalidListenError,
    ParsedRecord,
    open_inputs,
    parse_timestamp,
    validate_listen,
)

SOURCE = "lastfm"
PATTERNS = ("*.csv", "*.txt")
EXPECTED = (
    "expected a Last.fm/Libre.fm CSV export (a header with Artist, Track and a time column such "
    "as uts or Date, or header-less rows of artist,album,track,date like "
    "'Radiohead,OK Computer,Airbag,31 Jan 2021 12:34')"
)

_ARTIST = ("artist", "artist name", "artist_name", "artistname", "creator")
_TITLE = ("track", "title", "track name", "track_name", "trackname", "name", "song")
_ALBUM = ("album", "album name", "album_name", "albumname", "release", "release_name")
_NUMERIC_TIME = ("uts", "timestamp", "date_uts", "unix", "unix_timestamp", "epoch", "listened_at")
_TEXT_TIME = (
    "date",
    "time",
    "datetime",
    "utc_time",
    "date_time",
    "played_at",
    "scrobble time",
    "date #text",
)
_TRACK_MBID = ("track_mbid", "mbid", "recording_mbid", "track mbid", "musicbrainz_trackid")
_ARTIST_MBID = ("artist_mbid", "artist mbid")


@dataclass(frozen=True, slots=True)
class _Columns:
    artist: int
    title: int
    time: int
    album: int | None = None
    mbid: int | None = None
    artist_mbid: int | None = None

    @property
    def width(self) -> int:
        return 1 + max(
            c for c in (self.artist, self.title, self.time, self.album, self.mbid) if c is not None
        )


_HEADERLESS = _Columns(artist=0, album=1, title=2, time=3)


def read_lastfm_csv(
    path: Path, user_id: str, meter: ByteMeter | None = None, *, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Every scrobble of the CSV export at ``path`` (a file or a directory of them)."""
    files = open_inputs(path, patterns=PATTERNS)
    meter = meter or ByteMeter()
    meter.total = sum(f.size for f in files)
    for file in files:
        with file.open_text(meter, encoding="utf-8-sig", errors="replace") as stream:
            yield from parse_lastfm_csv(stream, user_id, name=file.name, now=now)


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _header(row: list[str]) -> _Columns | None:
    header = [h.strip().lower() for h in row]
    artist = _find(header, _ARTIST)
    title = _find(header, _TITLE)
    time = _find(header, _NUMERIC_TIME)
    if time is None:
        time = _find(header, _TEXT_TIME)
    if artist is None or title is None or time is None:
        return None
    return _Columns(
        artist=artist,
        title=title,
        time=time,
        album=_find(header, _ALBUM),
        mbid=_find(header, _TRACK_MBID),
        artist_mbid=_find(header, _ARTIST_MBID),
    )


def _is_comment(row: list[str], columns: _Columns | None) -> bool:
    if not row or not row[0].lstrip().startswith("#"):
        return False
    if columns is None or len(row) < columns.width:
        return True
    # "#1 Dads" is an artist, not a comment: a row whose time reads is data.
    try:
        parse_timestamp(row[columns.time])
    except ValueError:
        return True
    return False


def parse_lastfm_csv(
    stream: IO[str], user_id: str, *, name: str, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Parse one CSV stream."""
    reader = csv.reader(stream)
    columns: _Columns | None = None
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if columns is None:
            if _is_comment(row, None):
                continue
            columns = _header(row)
            if columns is not None:
                continue
            columns = _HEADERLESS
            if len(row) < 4 or not _time_reads(row[3]):
                raise ImportFormatError(f"{name} line {line}: {EXPECTED}")
        elif _is_comment(row, columns):
            continue
        where = f"{name}:{line}"
        if len(row) < columns.width:
            yield InvalidListenError(
                BAD_RECORD,
                where=where,
                value=f"{len(row)} fields, expected at least {columns.width}",
            )
            continue
        try:
            yield validate_listen(
                user_id=user_id,
                artist=row[columns.artist],
                title=row[columns.title],
                listened_at=row[columns.time],
                source=SOURCE,
                where=where,
                album=_cell(row, columns.album),
                mbid=_cell(row, columns.mbid),
                artist_mbid=_cell(row, columns.artist_mbid),
                now=now,
            )
        except InvalidListenError as exc:
            yield exc


def _cell(row: list[str], index: int | None) -> str | None:
    if index is None or index >= len(row):
        return None
    return row[index]


def _time_reads(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True
