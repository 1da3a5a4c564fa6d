"""ListenBrainz exports: a JSON array of listens, JSON Lines (one listen per line), the zip
archive ListenBrainz now exports (``listens/<year>/<month>.jsonl`` inside), or a saved API answer
(``{"payload": {"listens": [...]}}``).

Each listen has ``listened_at`` (seconds) and ``track_metadata`` with ``artist_name``,
``track_name``, optional ``release_name``, ``mbid_mapping`` (what ListenBrainz matched:
``recording_mbid``, ``artist_mbids``) and ``additional_info`` (what the client sent:
``recording_mbid``, ``artist_mbids``, ``isrc``, ``duration_ms`` or ``duration`` in seconds,
``spotify_id``). The mapped MBID wins over the submitted one.

The export's ``feedback.jsonl`` (loves and hates) is not listens: :mod:`musicgraph.ingest
.listenbrainz_feedback` reads it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from musicgraph.errors import ImportFormatError
from musicgraph.graph.models import ListenInput, TrackRef
from musicgraph.ingest.common import (
    BAD_RECORD,
    MAX_CLOCK_SKEW_S,
    MIN_LISTENED_AT,
    ByteMeter,
    InputFile,
    InvalidListenError,
    ParsedRecord,
    iter_json_values,
    open_inputs,
    seconds_to_ms,
    validate_listen,
)

SOURCE = "listenbrainz"
PATTERNS = ("*.json", "*.jsonl")
EXPECTED = (
    "expected a ListenBrainz export (a JSON array or JSON Lines of listens with "
    "listened_at and track_metadata)"
)


def read_listenbrainz(
    path: Path, user_id: str, meter: ByteMeter | None = None, *, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Every listen of the export at ``path`` (a file, a directory or the export zip)."""
    files = open_inputs(path, patterns=PATTERNS)
    meter = meter or ByteMeter()
    meter.total = sum(f.size for f in files)
    tracks: dict[tuple[Any, ...], TrackRef] = {}  # shared by the files of one export
    for file in _listen_files(files):
        with file.open_text(meter, encoding="utf-8-sig") as stream:
            yield from parse_listenbrainz(stream, user_id, name=file.name, now=now, tracks=tracks)


def listen_inputs(path: Path) -> list[InputFile]:
    """The files of the export at ``path`` that hold listens."""
    return _listen_files(open_inputs(path, patterns=PATTERNS))


#: Files of the export that are not listens (its loves and hates are read by
#: :mod:`musicgraph.ingest.listenbrainz_feedback`).
NOT_LISTENS = ("user.json", "feedback.jsonl", "pinned_recording.jsonl")


def _listen_files(files: list[InputFile]) -> list[InputFile]:
    # The export zip also carries user.json and feedback.jsonl: keep only the listens.
    listens = [f for f in files if "listens/" in f.name.replace("\\", "/")]
    if listens:
        return listens
    others = [f for f in files if _base_name(f.name) not in NOT_LISTENS]
    return others or files


def _base_name(name: str) -> str:
    # "export.zip!listens/2024/1.jsonl" or "listens/2024/1.jsonl" -> "1.jsonl"
    return name.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1].lower()


def parse_listenbrainz(
    stream: IO[str],
    user_id: str,
    *,
    name: str,
    now: int | None = None,
    tracks: dict[tuple[Any, ...], TrackRef] | None = None,
) -> Iterator[ParsedRecord]:
    """Parse one ListenBrainz JSON or JSON Lines stream.

    ``tracks`` remembers the validated track of each distinct ``track_metadata`` seen (pass the
    same dict for several streams of one export); by default it lasts for this stream.
    """
    parser = _ListenParser(user_id, name, now, {} if tracks is None else tracks)
    listen = parser.listen
    records = iter_json_values(stream, name=name, expected=EXPECTED)
    for record in records:
        if isinstance(record, InvalidListenError):
            yield record
            continue
        value, line, raw = record
        if isinstance(value, dict) and isinstance(value.get("payload"), dict):
            listens = value["payload"].get("listens")
            if isinstance(listens, list):
                for listen_value in listens:
                    yield listen(listen_value, line)
                break
        if not (isinstance(value, dict) and ("listened_at" in value or "track_metadata" in value)):
            raise ImportFormatError(f"{name} line {line}: {EXPECTED}")
        yield listen(value, line, raw)
        break
    # The first value told the layout; the rest are listens, on the fast path.
    for record in records:
        if isinstance(record, InvalidListenError):
            yield record
        else:
            yield listen(*record)


#: Distinct tracks a parser remembers; past this it starts over (memory stays flat).
TRACK_CACHE_SIZE = 100_000


class _ListenParser:
    """Turns one decoded listen into a :class:`ListenInput` or an :class:`InvalidListenError`.

    An export repeats the same few thousand tracks: the ``TrackRef`` validated for a track's raw
    fields is kept, and a later listen with the same raw fields reuses that very object, so it is
    validated once (and the store recognises it without hashing it again). Only a track whose raw
    text fields are all strings (or absent) and whose duration is a plain int is remembered, so a
    look-up can never mistake ``true`` for ``1``.
    """

    __slots__ = ("name", "now", "tracks", "user_id")

    def __init__(
        self, user_id: str, name: str, now: int | None, tracks: dict[tuple[Any, ...], TrackRef]
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.now = now
        self.tracks = tracks

    def listen(self, value: Any, line: int, raw: str | None = None) -> ParsedRecord:
        """``raw``: the JSON text ``value`` was decoded from by orjson, if it was."""
        if value.__class__ is not dict:
            return InvalidListenError(
                BAD_RECORD, where=f"{self.name}:{line}", value="not a JSON object"
            )
        meta = value.get("track_metadata")
        if meta.__class__ is not dict:
            return InvalidListenError(
                BAD_RECORD,
                where=f"{self.name}:{line}",
                field="track_metadata",
                value="missing or not an object",
            )
        info = meta.get("additional_info")
        if info.__class__ is not dict:
            info = _EMPTY
        mapping = meta.get("mbid_mapping")
        if mapping.__class__ is not dict:
            mapping = _EMPTY
        duration = info.get("duration_ms")
        if duration is None and info.get("duration") is not None:
            duration = seconds_to_ms(info["duration"])
        spotify_id = info.get("spotify_id")
        if spotify_id is not None:
            spotify_id = _spotify(spotify_id)
        key = (
            meta.get("artist_name"),
            meta.get("track_name"),
            meta.get("release_name"),
            mapping.get("recording_mbid") or info.get("recording_mbid") or info.get("track_mbid"),
            info.get("isrc"),
            spotify_id,
            duration,
            _first(mapping.get("artist_mbids")) or _first(info.get("artist_mbids")),
        )
        listened_at = value.get("listened_at")
        if duration is None or duration.__class__ is int:
            try:
                track = self.tracks.get(key)
            except TypeError:  # a list or an object where text belongs: validation says why
                track = None
            if track is not None and listened_at.__class__ is int:
                now = int(time.time()) if self.now is None else self.now
                if MIN_LISTENED_AT <= listened_at <= now + MAX_CLOCK_SKEW_S:
                    return ListenInput(self.user_id, track, listened_at, SOURCE)
        if raw is not None and (
            listened_at.__class__ is float or any(v.__class__ is float for v in key)
        ):
            # orjson reads an integer beyond 64 bits as a float: take json's exact reading.
            return self.listen(json.loads(raw), line)
        artist, title, album, mbid, isrc, spotify_id, duration, artist_mbid = key
        try:
            result = validate_listen(
                user_id=self.user_id,
                artist=artist,
                title=title,
                listened_at=listened_at,
                source=SOURCE,
                where=f"{self.name}:{line}",
                album=album,
                mbid=mbid,
                isrc=isrc,
                spotify_id=spotify_id,
                duration_ms=duration,
                artist_mbid=artist_mbid,
                now=self.now,
            )
        except InvalidListenError as exc:
            return exc
        if (duration is None or duration.__class__ is int) and all(
            v is None or v.__class__ is str
            for v in (artist, title, album, mbid, isrc, spotify_id, artist_mbid)
        ):
            if len(self.tracks) >= TRACK_CACHE_SIZE:
                self.tracks.clear()
            self.tracks[key] = result.track
        return result


_EMPTY: dict[str, Any] = {}


# Some ListenBrainz importers stored ".../tracks/<id>" URLs; the id is still a good one.
_SPOTIFY_TRACKS_URL = re.compile(
    r"^https?://open\.spotify\.com/(?:intl-[a-z]+/)?tracks/([0-9A-Za-z]{22})"
)


def _spotify(value: Any) -> Any:
    value = _first(value)
    if isinstance(value, str):
        m = _SPOTIFY_TRACKS_URL.match(value.strip())
        if m:
            return "spotify:track:" + m.group(1)
    return value


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value
