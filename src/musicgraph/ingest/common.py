"""What every importer shares: listen validation, timestamp parsing, input streams, the summary.

Parsers turn a file into a stream of :class:`~musicgraph.graph.models.ListenInput` (a good row) or
:class:`InvalidListenError` (a row that is skipped, with its reason and ``file:line``). They read
through :func:`open_inputs`, which counts the bytes read so a progress bar can follow any file,
directory or zip archive, and never holds more than a buffer of it in memory.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

import orjson

from musicgraph.errors import ImportFormatError, InvalidRecordError
from musicgraph.graph.identity import clean_isrc, clean_mbid, spotify_track_id
from musicgraph.graph.models import ListenInput, TrackRef

#: Listens before this are refused: Audioscrobbler (Last.fm) started in 2002.
MIN_LISTENED_AT = 1_009_843_200  # 2002-01-01T00:00:00Z
#: How far in the future a listen may be (clocks of phones and players drift).
MAX_CLOCK_SKEW_S = 15 * 60
#: A play longer than a day is a broken counter, not a listen.
MAX_DURATION_MS = 24 * 3600 * 1000
#: Plays shorter than this are skips (the Last.fm scrobbling rule).
SKIP_THRESHOLD_MS = 30_000
MAX_TEXT = 1024

#: Reasons a record is skipped; summaries count by these.
MISSING_ARTIST = "missing artist"
MISSING_TITLE = "missing title"
BAD_TIMESTAMP = "unparseable timestamp"
TOO_OLD = "timestamp before 2002-01-01"
IN_FUTURE = "timestamp in the future"
BAD_DURATION = "absurd duration"
BAD_MBID = "invalid MBID"
BAD_ISRC = "invalid ISRC"
BAD_SPOTIFY_ID = "invalid Spotify id"
BAD_RECORD = "malformed record"


class InvalidListenError(InvalidRecordError):
    """One record that cannot become a listen. ``reason`` is a short category (what summaries
    count); ``value`` shows the offending value."""

    def __init__(
        self,
        reason: str,
        *,
        where: str | None = None,
        field: str | None = None,
        value: str | None = None,
    ) -> None:
        self.value = value
        super().__init__(
            f"{reason} ({value})" if value is not None else reason, where=where, field=field
        )
        self.reason = reason


ParsedRecord = ListenInput | InvalidListenError


# --- timestamps -------------------------------------------------------------------------------

_DIGITS = re.compile(r"^-?\d+(\.\d+)?$")
_TEXT_FORMATS = (
    "%d %b %Y %H:%M",  # 31 Jan 2021 12:34 (lastfm-to-csv)
    "%d %b %Y, %H:%M",  # 31 Jan 2021, 12:34 (last.fm web)
    "%d %B %Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",  # Spotify account data endTime
    "%Y-%m-%d %H:%M:%S UTC",  # old Spotify endsong
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
)


def parse_timestamp(value: Any) -> int:
    """Seconds since the epoch from an int, a float, a numeric string, ISO 8601 (a ``Z`` or an
    offset; naive means UTC) or the common export formats. Raise ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a time, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a number")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a time, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty")
    if _DIGITS.match(text):
        return int(float(text))
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        dt = None
    if dt is None:
        for fmt in _TEXT_FORMATS:
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if dt is None:
        raise ValueError("not a time this importer knows")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _iso(ts: int) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


# --- validation -------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value[:MAX_TEXT] if value else None


def _identifier(
    value: Any,
    clean: Callable[[str | None], str | None],
    reason: str,
    where: str | None,
    field: str,
) -> str | None:
    """Clean one optional identifier (MBID, ISRC, Spotify id) or reject the listen naming it."""
    try:
        return clean(_text(value))
    except ValueError:
        raise InvalidListenError(reason, where=where, field=field, value=repr(value)) from None


def validate_listen(
    *,
    user_id: str,
    artist: Any,
    title: Any,
    listened_at: Any,
    source: str,
    where: str | None = None,
    album: Any = None,
    mbid: Any = None,
    isrc: Any = None,
    spotify_id: Any = None,
    duration_ms: Any = None,
    artist_mbid: Any = None,
    ms_played: Any = None,
    skipped: bool = False,
    now: int | None = None,
) -> ListenInput:
    """Turn the raw fields of one listen into a :class:`ListenInput`, or raise
    :class:`InvalidListenError` naming the reason, the place and the field.

    Shared by every importer and by the API: missing artist or title, a timestamp that cannot be
    read, lies before 2002 or in the future (beyond a small clock skew), an absurd duration or
    play time (negative or over a day), or an invalid MBID, ISRC or Spotify id are refused.
    """
    artist_s = _text(artist)
    if artist_s is None:
        raise InvalidListenError(MISSING_ARTIST, where=where, field="artist")
    title_s = _text(title)
    if title_s is None:
        raise InvalidListenError(MISSING_TITLE, where=where, field="title")
    if listened_at is None or listened_at == "":
        raise InvalidListenError(BAD_TIMESTAMP, where=where, field="listened_at", value="missing")
    if listened_at.__class__ is int:  # the common case, without a call
        ts = listened_at
    else:
        try:
            ts = parse_timestamp(listened_at)
        except (ValueError, OverflowError) as exc:
            raise InvalidListenError(
                BAD_TIMESTAMP, where=where, field="listened_at", value=f"{listened_at!r}: {exc}"
            ) from None
    if ts < MIN_LISTENED_AT:
        raise InvalidListenError(TOO_OLD, where=where, field="listened_at", value=_iso(ts))
    limit = (int(time.time()) if now is None else now) + MAX_CLOCK_SKEW_S
    if ts > limit:
        hint = " (milliseconds instead of seconds?)" if ts > 10**11 else ""
        raise InvalidListenError(IN_FUTURE, where=where, field="listened_at", value=_iso(ts) + hint)
    duration = (
        None
        if duration_ms is None
        else _milliseconds(duration_ms, where=where, field="duration_ms")
    )
    played = None if ms_played is None else _milliseconds(ms_played, where=where, field="ms_played")
    # Each identifier is optional; the calls are skipped when it is absent (the common case).
    mbid_s = None if mbid is None else _identifier(mbid, clean_mbid, BAD_MBID, where, "mbid")
    artist_mbid_s = (
        None
        if artist_mbid is None
        else _identifier(artist_mbid, clean_mbid, BAD_MBID, where, "artist_mbid")
    )
    isrc_s = None if isrc is None else _identifier(isrc, clean_isrc, BAD_ISRC, where, "isrc")
    spotify_s = (
        None
        if spotify_id is None
        else _identifier(spotify_id, spotify_track_id, BAD_SPOTIFY_ID, where, "spotify_id")
    )
    track = TrackRef(
        artist=artist_s,
        title=title_s,
        album=None if album is None else _text(album),
        mbid=mbid_s,
        isrc=isrc_s,
        spotify_id=spotify_s,
        duration_ms=duration,
        artist_mbid=artist_mbid_s,
    )
    return ListenInput(
        user_id=user_id,
        track=track,
        listened_at=ts,
        source=source,
        ms_played=played,
        skipped=bool(skipped),
    )


def _milliseconds(value: Any, *, where: str | None, field: str) -> int | None:
    if value.__class__ is int and 0 <= value <= MAX_DURATION_MS:
        return int(value)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        ms = int(float(value)) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidListenError(
            BAD_DURATION, where=where, field=field, value=repr(value)
        ) from None
    if ms < 0 or ms > MAX_DURATION_MS:
        raise InvalidListenError(BAD_DURATION, where=where, field=field, value=f"{ms} ms")
    return ms


def seconds_to_ms(value: Any) -> Any:
    """A duration in seconds as milliseconds, leaving what is not a number for validation."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return round(float(value) * 1000)
    except (TypeError, ValueError, OverflowError):
        return value


# --- inputs -----------------------------------------------------------------------------------


class ByteMeter:
    """Bytes read so far out of ``total``; the progress bar polls it."""

    __slots__ = ("read", "total")

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self.read = 0


class _CountingReader(io.RawIOBase):
    def __init__(self, raw: IO[bytes], meter: ByteMeter) -> None:
        self._raw = raw
        self._meter = meter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._meter.read += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass(frozen=True, slots=True)
class InputFile:
    """One file to read: a path on disk or a member of a zip archive."""

    name: str
    size: int
    _open: Callable[[], IO[bytes]]

    def open_text(
        self, meter: ByteMeter, *, encoding: str = "utf-8", errors: str = "strict"
    ) -> IO[str]:
        """A text stream over the file that adds the bytes it reads to ``meter``."""
        buffered = io.BufferedReader(_CountingReader(self._open(), meter), buffer_size=1 << 20)
        return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, newline="")


def open_inputs(path: Path, *, patterns: tuple[str, ...] = ()) -> list[InputFile]:
    """The files to import from ``path``: the file itself, or the files of a directory or a zip
    archive whose names match one of ``patterns`` (case-insensitive), sorted by name.

    ``ImportFormatError`` when the path does not exist or holds no matching file.
    """
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _matches(p.name, patterns))
        if not files:
            raise ImportFormatError(
                f"{path}: the directory holds no file named like {', '.join(patterns)}"
            )
        return [_disk_file(p, display=str(p.relative_to(path))) for p in files]
    if zipfile.is_zipfile(path) and patterns:
        archive = zipfile.ZipFile(path)
        members = sorted(
            (i for i in archive.infolist() if not i.is_dir() and _matches(i.filename, patterns)),
            key=lambda i: i.filename,
        )
        if not members:
            raise ImportFormatError(
                f"{path}: the zip archive holds no file named like {', '.join(patterns)}"
            )
        return [
            InputFile(
                name=f"{path.name}!{m.filename}",
                size=m.file_size,
                _open=lambda m=m: archive.open(m),  # type: ignore[misc]
            )
            for m in members
        ]
    return [_disk_file(path, display=path.name)]


def _disk_file(path: Path, *, display: str) -> InputFile:
    return InputFile(name=display, size=path.stat().st_size, _open=lambda: path.open("rb"))


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return any(fnmatch(base, p.lower()) for p in patterns)


# --- summary ----------------------------------------------------------------------------------

EXAMPLES_PER_REASON = 3


class SkipTally:
    """Records skipped, by reason, with the first :data:`EXAMPLES_PER_REASON` examples of each:
    the bookkeeping every import summary shares (a dataclass that mixes it in declares the
    ``skipped`` and ``examples`` fields)."""

    skipped: dict[str, int]
    examples: dict[str, list[str]]

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def count_skip(self, reason: str, example: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(example)

    def reject(self, error: InvalidRecordError) -> None:
        self.count_skip(error.reason, str(error))

    def skip_lines(self, indent: str) -> list[str]:
        """The skipped total, then each reason (most frequent first) with its examples."""
        out = [f"{indent}skipped:    {self.skipped_total:,}"]
        for reason, count in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            out.append(f"{indent}  {reason}: {count:,}")
            out += [f"{indent}    e.g. {example}" for example in self.examples.get(reason, [])]
        return out


@dataclass
class ImportSummary(SkipTally):
    """What an import did: rows read, listens imported, duplicates, skips by reason with the
    first few examples (``file:line: detail``)."""

    format: str
    path: str
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped_listens: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    new_tracks: int = 0
    seconds: float = 0.0
    bytes_read: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "read": self.read,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped_listens": self.skipped_listens,
            "skipped": dict(self.skipped),
            "skipped_total": self.skipped_total,
            "examples": {k: list(v) for k, v in self.examples.items()},
            "new_tracks": self.new_tracks,
            "seconds": round(self.seconds, 3),
            **self.extra,
        }

    def lines(self) -> list[str]:
        """The summary as lines of text for a terminal."""
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"{self.format} import of {self.path}: {self.read:,} records read in "
            f"{self.seconds:.1f}s ({rate:,.0f}/s)",
            f"  imported:   {self.imported:,} new listens"
            + (
                f" ({self.skipped_listens:,} of them skipped plays)" if self.skipped_listens else ""
            ),
            f"  duplicates: {self.duplicates:,} (already stored or repeated in the file)",
            f"  new tracks: {self.new_tracks:,}",
        ]
        for key, value in self.extra.items():
            out.append(f"  {key.replace('_', ' ')}: {value:,}")
        return out + self.skip_lines("  ")


# --- streaming JSON ---------------------------------------------------------------------------

_CHUNK = 1 << 20
#: An array entry larger than this is not a listen: stop instead of buffering the file.
_MAX_ENTRY = 64 << 20
_WS = " \t\r\n\ufeff"


@dataclass(frozen=True, slots=True)
class JsonItem:
    """One top-level value of a JSON array or JSON Lines file, with where it starts."""

    value: Any
    line: int
    index: int


def iter_json_records(
    stream: IO[str], *, name: str, expected: str
) -> Iterator[JsonItem | InvalidListenError]:
    """Stream the values of a JSON array or of a sequence of JSON values (JSON Lines, or one
    pretty-printed object) in constant memory: ``raw_decode`` over a buffer refilled in chunks.

    A JSON Lines line that is not JSON becomes an :class:`InvalidListenError` and the next line
    is read; a broken JSON array cannot be resynchronised, so it raises ``ImportFormatError`` at
    the line it breaks. ``expected`` describes the format for the error raised when the file
    is not JSON at all.
    """
    layout, first = _json_layout(stream, name=name, expected=expected)
    if layout == "lines":
        yield from _iter_lines(stream, first, name=name)
    elif layout:
        yield from _iter_buffered(
            stream, first, name=name, expected=expected, array=layout == "array"
        )


#: A decoded value, the line it starts on, and the text of that line when orjson decoded it.
JsonValue = tuple[Any, int, str | None]


def iter_json_values(
    stream: IO[str], *, name: str, expected: str
) -> Iterator[JsonValue | InvalidListenError]:
    """:func:`iter_json_records` for the importers' hot path: ``(value, line, raw)`` tuples
    instead of :class:`JsonItem`, and JSON Lines decoded with orjson (about twice as fast).

    orjson reads an integer beyond 64 bits as a float, where json keeps it exact: a caller that
    finds a float where the exact value matters decodes ``raw`` (the line) again with
    :func:`json.loads`. ``raw`` is ``None`` for a value json decoded.
    """
    layout, first = _json_layout(stream, name=name, expected=expected)
    if layout == "lines":
        yield from _iter_lines_fast(_chain_lines(io.StringIO(first), stream), name=name)
    elif layout:
        for item in _iter_buffered(
            stream, first, name=name, expected=expected, array=layout == "array"
        ):
            yield item if isinstance(item, InvalidListenError) else (item.value, item.line, None)


def _json_layout(stream: IO[str], *, name: str, expected: str) -> tuple[str, str]:
    """``("array" | "lines" | "values" | "", first chunk)``: how the stream holds its values
    ("values": one or more pretty-printed ones; "": nothing but whitespace)."""
    first = stream.read(_CHUNK)
    stripped = first.lstrip(_WS)
    while first and not stripped:
        first = stream.read(_CHUNK)
        stripped = first.lstrip(_WS)
    if not stripped:
        return "", first
    if stripped[0] == "[":
        return "array", first
    if stripped[0] != "{":
        raise ImportFormatError(f"{name} line 1: {expected}")
    head = stripped.split("\n", 1)[0]
    if "\n" in stripped or len(stripped) < _CHUNK:
        try:
            json.loads(head)
        except ValueError:
            return "values", first
    return "lines", first


def _iter_lines(
    stream: IO[str], first: str, *, name: str
) -> Iterator[JsonItem | InvalidListenError]:
    loads = json.loads
    line_no = 0
    index = 0
    for raw in _chain_lines(io.StringIO(first), stream):
        line_no += 1
        if not raw.strip(_WS):
            continue
        try:
            value = loads(raw)
        except ValueError as exc:
            yield InvalidListenError(
                BAD_RECORD, where=f"{name}:{line_no}", value=f"not JSON: {exc}"
            )
            continue
        yield JsonItem(value, line_no, index)
        index += 1


def _iter_lines_fast(
    lines: Iterator[str], *, name: str
) -> Iterator[JsonValue | InvalidListenError]:
    fast_loads = orjson.loads
    line_no = 0
    for raw in lines:
        line_no += 1
        try:
            yield fast_loads(raw), line_no, raw
        except orjson.JSONDecodeError:
            # Blank lines, and what json accepts beyond strict JSON (NaN, Infinity, a lone
            # surrogate): json decides, and words the error when the line is not JSON at all.
            if not raw.strip(_WS):
                continue
            try:
                value = json.loads(raw)
            except ValueError as exc:
                yield InvalidListenError(
                    BAD_RECORD, where=f"{name}:{line_no}", value=f"not JSON: {exc}"
                )
                continue
            yield value, line_no, None


def _chain_lines(head: io.StringIO, stream: IO[str]) -> Iterator[str]:
    # The first chunk may end in the middle of a line: glue it to the rest of that line.
    for line in head:
        if line.endswith("\n"):
            yield line
        else:
            yield line + stream.readline()
    yield from stream


def _iter_buffered(
    stream: IO[str], buffer: str, *, name: str, expected: str, array: bool
) -> Iterator[JsonItem | InvalidListenError]:
    decoder = json.JSONDecoder()
    pos = 0
    line = 1
    eof = False
    index = 0

    def more() -> bool:
        nonlocal buffer, pos, eof
        if eof:
            return False
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        buffer = buffer[pos:] + chunk
        pos = 0
        return True

    def skip_ws() -> str:
        nonlocal pos, line
        while True:
            n = len(buffer)
            while pos < n and buffer[pos] in _WS:
                if buffer[pos] == "\n":
                    line += 1
                pos += 1
            if pos < n:
                return buffer[pos]
            if not more():
                return ""

    if array:
        if skip_ws() != "[":
            raise ImportFormatError(f"{name} line {line}: {expected}")
        pos += 1
    expect_value = True
    while True:
        ch = skip_ws()
        if ch == "":
            if array:
                raise ImportFormatError(
                    f"{name} line {line}: the JSON array ends without ']' (truncated file?)"
                )
            return
        if array and ch == "]":
            return
        if array and not expect_value:
            if ch != ",":
                raise ImportFormatError(
                    f"{name} line {line}: expected ',' or ']' between entries, found {ch!r}"
                )
            pos += 1
            expect_value = True
            continue
        while True:
            try:
                value, end = decoder.raw_decode(buffer, pos)
                break
            except ValueError as exc:
                if len(buffer) - pos > _MAX_ENTRY or not more():
                    raise ImportFormatError(
                        f"{name} line {line}: broken JSON: {exc.args[0]}"
                    ) from None
        start_line = line
        line += buffer.count("\n", pos, end)
        pos = end
        yield JsonItem(value, start_line, index)
        index += 1
        expect_value = False
