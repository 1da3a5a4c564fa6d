"""Rockbox (and other portable players') ``.scrobbler.log``, the Audioscrobbler 1.0/1.1 format.

The file starts with ``#AUDIOSCROBBLER/1.1``, ``#TZ/UTC`` (or ``#TZ/UNKNOWN``) and
``#CLIENT/...`` lines; every ``#`` line is a comment. Each entry is one tab-separated line::

    artist  album  title  tracknum  length(s)  rating  timestamp  [MusicBrainz recording id]

The rating is ``L`` (listened) or ``S`` (skipped: kept as a skipped listen). With ``#TZ/UNKNOWN``
the player wrote its local time without a zone; the timestamps are taken as they are (UTC),
since nothing in the file says otherwise. A log without the header is read when its first line
is an entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from musicgraph.errors import ImportFormatError
from musicgraph.ingest.common import (
    BAD_RECORD,
    ByteMeter,
    InvalidListenError,
    ParsedRecord,
    open_inputs,
    seconds_to_ms,
    validate_listen,
)

SOURCE = "scrobbler-log"
PATTERNS = ("*.log", "*scrobbler*")
EXPECTED = (
    "expected a Rockbox .scrobbler.log (an #AUDIOSCROBBLER/1.1 header, then tab-separated lines "
    "of artist, album, title, track number, length, L or S, timestamp and an optional MBID)"
)
BAD_RATING = "invalid rating (expected L or S)"


def read_scrobbler_log(
    path: Path, user_id: str, meter: ByteMeter | None = None, *, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Every entry of the log at ``path`` (a file or a directory of logs)."""
    files = open_inputs(path, patterns=PATTERNS)
    meter = meter or ByteMeter()
    meter.total = sum(f.size for f in files)
    for file in files:
        with file.open_text(meter, encoding="utf-8-sig", errors="replace") as stream:
            yield from parse_scrobbler_log(stream, user_id, name=file.name, now=now)


def parse_scrobbler_log(
    stream: IO[str], user_id: str, *, name: str, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Parse one log stream."""
    checked = False
    for line_no, raw in enumerate(stream, start=1):
        line = raw.rstrip("\r\n")
        if not checked:
            if not line.strip():
                continue
            checked = True
            if line.startswith("#AUDIOSCROBBLER/"):
                continue
            if line.startswith("#") or line.count("\t") < 6:
                raise ImportFormatError(f"{name} line {line_no}: {EXPECTED}")
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{name}:{line_no}"
        fields = line.split("\t")
        if len(fields) < 7:
            yield InvalidListenError(
                BAD_RECORD,
                where=where,
                value=f"{len(fields)} tab-separated fields, expected 7 or 8",
            )
            continue
        artist, album, title, _tracknum, length, rating, timestamp = fields[:7]
        mbid = fields[7] if len(fields) > 7 else None
        rating = rating.strip().upper()
        if rating not in ("L", "S"):
            yield InvalidListenError(BAD_RATING, where=where, field="rating", value=repr(rating))
            continue
        try:
            yield validate_listen(
                user_id=user_id,
                artist=artist,
                title=title,
                listened_at=timestamp,
                source=SOURCE,
                where=where,
                album=album,
                mbid=mbid,
                duration_ms=seconds_to_ms(length.strip()),
                skipped=rating == "S",
                now=now,
            )
        except InvalidListenError as exc:
            yield exc
