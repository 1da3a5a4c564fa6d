"""ListenBrainz exports: a JSON array of listens, JSON Lines (one listen per line), the zip
archive ListenBrainz now exports (``listens/<year>/<month>.jsonl`` inside), or a saved API answer
(``{"payload": {"listens": [...]}}``).

Each listen has ``listened_at`` (seconds) and ``track_metadata`` with ``artist_name``,
``track_name``, optional ``release_name``, ``mbid_mapping`` (what ListenBrainz matched:
``recording_mbid``, ``artist_mbids``) and ``additional_info`` (what the client sent:
``recording_mbid``, ``artist_mbids``, ``isrc``, ``duration_ms`` or ``duration`` in seconds,
``spotify_id``). The mapped MBID wins over the submitted one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from musicgraph.errors import ImportFormatError
from musicgraph.ingest.common import (
    BAD_RECORD,
    ByteMeter,
    InputFile,
    InvalidListenError,
    JsonItem,
    ParsedRecord,
    iter_json_records,
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
    for file in _listen_files(files):
        with file.open_text(meter, encoding="utf-8-sig") as stream:
            yield from parse_listenbrainz(stream, user_id, name=file.name, now=now)


def _listen_files(files: list[InputFile]) -> list[InputFile]:
    # The export zip also carries user.json and feedback.jsonl: keep only the listens.
    listens = [f for f in files if "listens/" in f.name.replace("\\", "/")]
    return listens or files


def parse_listenbrainz(
    stream: IO[str], user_id: str, *, name: str, now: int | None = None
) -> Iterator[ParsedRecord]:
    """Parse one ListenBrainz JSON or JSON Lines stream."""
    checked = False
    for item in iter_json_records(stream, name=name, expected=EXPECTED):
        if isinstance(item, InvalidListenError):
            yield item
            continue
        value = item.value
        if not checked:
            checked = True
            if isinstance(value, dict) and isinstance(value.get("payload"), dict):
                listens = value["payload"].get("listens")
                if isinstance(listens, list):
                    for i, listen in enumerate(listens):
                        yield _listen(JsonItem(listen, item.line, i), user_id, name, now)
                    continue
            if not (
                isinstance(value, dict) and ("listened_at" in value or "track_metadata" in value)
            ):
                raise ImportFormatError(f"{name} line {item.line}: {EXPECTED}")
        yield _listen(item, user_id, name, now)


def _listen(item: JsonItem, user_id: str, name: str, now: int | None) -> ParsedRecord:
    where = f"{name}:{item.line}"
    value = item.value
    if not isinstance(value, dict):
        return InvalidListenError(BAD_RECORD, where=where, value="not a JSON object")
    meta = value.get("track_metadata")
    if not isinstance(meta, dict):
        return InvalidListenError(
            BAD_RECORD, where=where, field="track_metadata", value="missing or not an object"
        )
    info = _object(meta.get("additional_info"))
    mapping = _object(meta.get("mbid_mapping"))
    duration = info.get("duration_ms")
    if duration is None and info.get("duration") is not None:
        duration = seconds_to_ms(info["duration"])
    try:
        return validate_listen(
            user_id=user_id,
            artist=meta.get("artist_name"),
            title=meta.get("track_name"),
            listened_at=value.get("listened_at"),
            source=SOURCE,
            where=where,
            album=meta.get("release_name"),
            mbid=mapping.get("recording_mbid")
            or info.get("recording_mbid")
            or info.get("track_mbid"),
            isrc=info.get("isrc"),
            spotify_id=_spotify(info.get("spotify_id")),
            duration_ms=duration,
            artist_mbid=_first(mapping.get("artist_mbids")) or _first(info.get("artist_mbids")),
            now=now,
        )
    except InvalidListenError as exc:
        return exc


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


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value
