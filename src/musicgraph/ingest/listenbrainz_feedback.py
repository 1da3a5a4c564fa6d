"""The loves and hates of a ListenBrainz export (``feedback.jsonl``), as ratings.

ListenBrainz writes one JSON object per line: ``recording_mbid`` and/or ``recording_msid``,
``score`` (1 loved, -1 hated, 0 removed) and ``created`` (seconds); an answer of its feedback API
(``{"feedback": [...]}``, optionally with ``track_metadata``) reads the same. Each entry is
resolved to a track of ours by recording MBID, else by its ``track_metadata`` (artist and title,
through the identity rules listens follow), else by the listens of the same export that carry its
``recording_msid``. An entry that names no track we hold is counted as unresolved, not an error;
a malformed line is skipped and reported with its ``file:line`` and field, as a bad listen is.

Applying is idempotent: per track, the newest entry wins; it replaces the stored rating only when
it is newer than it (``created`` after the stored ``at``) and says something else; score 0 clears.
All changes of an import land in one transaction (:meth:`GraphStore.set_ratings`), which writes
each only over an older stored rating (so a rating given while the import ran stays), and then go
on the bus as ``ratings.changed`` events, so a running server's recommendations follow.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from musicgraph.errors import ImportFormatError
from musicgraph.events import Event, EventBus
from musicgraph.graph import identity
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Rating, TrackRef
from musicgraph.ingest.common import (
    BAD_MBID,
    BAD_RECORD,
    BAD_TIMESTAMP,
    IN_FUTURE,
    MAX_CLOCK_SKEW_S,
    MIN_LISTENED_AT,
    ByteMeter,
    InputFile,
    InvalidListenError,
    SkipTally,
    iter_json_values,
    open_inputs,
    parse_timestamp,
    validate_listen,
)
from musicgraph.ingest.listenbrainz import EXPECTED as LISTENS_EXPECTED
from musicgraph.ingest.listenbrainz import parse_listenbrainz

__all__ = [
    "ExportFeedback",
    "Feedback",
    "FeedbackSummary",
    "apply_feedback",
    "feedback_files",
    "is_feedback_file",
    "rating_events",
    "read_export_feedback",
    "read_feedback",
]

FEEDBACK_NAME = "feedback.jsonl"
EXPECTED = (
    "expected ListenBrainz feedback (JSON Lines of objects with recording_mbid or "
    "recording_msid, score and created)"
)

BAD_SCORE = "invalid score"
BAD_MSID = "invalid MSID"
NO_RECORDING = "no recording named"

#: Ratings changes per ``ratings.changed`` event (a server re-reads the user's ratings per event).
EVENT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Feedback:
    """One valid line of feedback. ``track`` comes from ``track_metadata`` when it has one."""

    score: int
    created: int
    mbid: str | None
    msid: str | None
    track: TrackRef | None
    where: str


@dataclass
class FeedbackSummary(SkipTally):
    """What applying an export's feedback did.

    ``loved``/``hated``/``cleared``: ratings this import set to +1, set to -1 or removed.
    ``unchanged``: entries that changed nothing (the stored rating already says so or is newer,
    or a later entry for the same track superseded them). ``unresolved``: entries naming a
    recording that is not one of our tracks.
    """

    files: list[str] = field(default_factory=list)
    read: int = 0
    loved: int = 0
    hated: int = 0
    cleared: int = 0
    unchanged: int = 0
    unresolved: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "read": self.read,
            "loved": self.loved,
            "hated": self.hated,
            "cleared": self.cleared,
            "unchanged": self.unchanged,
            "unresolved": self.unresolved,
            "skipped": dict(self.skipped),
            "skipped_total": self.skipped_total,
            "examples": {k: list(v) for k, v in self.examples.items()},
        }

    def lines(self) -> list[str]:
        """The summary as lines of text for a terminal (nothing when there was no feedback)."""
        if not self.files:
            return []
        out = [
            f"  feedback:   {self.read:,} loves/hates read from {', '.join(self.files)}",
            f"    loved:      {self.loved:,}",
            f"    hated:      {self.hated:,}",
            f"    cleared:    {self.cleared:,}",
            f"    unchanged:  {self.unchanged:,} (already rated so, or rated later here)",
            f"    unresolved: {self.unresolved:,} loves/hates name recordings not in your listens",
        ]
        return out + (self.skip_lines("    ") if self.skipped else [])


# --- finding and reading ---------------------------------------------------------------------


def feedback_files(path: Path) -> list[InputFile]:
    """The ``feedback.jsonl`` of an export (a zip member or a file in the folder), or ``path``
    itself when it is a feedback file; empty when the export has none."""
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):
        try:
            return open_inputs(path, patterns=(FEEDBACK_NAME,))
        except ImportFormatError:
            return []
    return [open_inputs(path)[0]] if is_feedback_file(path) else []


def is_feedback_file(path: Path) -> bool:
    """Whether ``path`` is one file whose first JSON value is a feedback entry (or a feedback
    API answer), as opposed to listens."""
    if not path.is_file() or zipfile.is_zipfile(path):
        return False
    [file] = open_inputs(path)
    try:
        with file.open_text(ByteMeter(), encoding="utf-8-sig", errors="replace") as stream:
            for record in iter_json_values(stream, name=file.name, expected=EXPECTED):
                if isinstance(record, InvalidListenError):
                    return False
                return isinstance(record[0], dict) and _looks_like_feedback(record[0])
    except ImportFormatError:
        return False
    return False


def _looks_like_feedback(value: dict[str, Any]) -> bool:
    if isinstance(value.get("feedback"), list):
        return True
    return "score" in value and ("recording_mbid" in value or "recording_msid" in value)


def read_feedback(
    files: Iterable[InputFile], meter: ByteMeter | None = None, *, now: int | None = None
) -> Iterator[Feedback | InvalidListenError]:
    """Every entry of the feedback ``files``, valid or not (with its ``file:line``).

    ``ImportFormatError`` when a file's first value is not feedback at all.
    """
    meter = meter or ByteMeter()
    for file in files:
        with file.open_text(meter, encoding="utf-8-sig") as stream:
            yield from parse_feedback(stream, name=file.name, now=now)


def parse_feedback(
    stream: IO[str], *, name: str, now: int | None = None
) -> Iterator[Feedback | InvalidListenError]:
    """Parse one feedback stream (JSON Lines, a JSON array, or a feedback API answer)."""
    first = True
    for record in iter_json_values(stream, name=name, expected=EXPECTED):
        if isinstance(record, InvalidListenError):
            yield record
            continue
        value, line, _raw = record
        if first:
            first = False
            if not (isinstance(value, dict) and _looks_like_feedback(value)):
                raise ImportFormatError(f"{name} line {line}: {EXPECTED}")
            if isinstance(value.get("feedback"), list):
                for i, entry in enumerate(value["feedback"]):
                    yield _entry(entry, f"{name}:{line} feedback[{i}]", now)
                continue
        yield _entry(value, f"{name}:{line}", now)


def _entry(value: Any, where: str, now: int | None) -> Feedback | InvalidListenError:
    if not isinstance(value, dict):
        return InvalidListenError(BAD_RECORD, where=where, value="not a JSON object")
    score = value.get("score")
    if score.__class__ is not int or score not in (1, -1, 0):
        shown = "missing" if "score" not in value else repr(score)
        return InvalidListenError(BAD_SCORE, where=where, field="score", value=shown)
    created = value.get("created")
    if created is None:
        return InvalidListenError(BAD_TIMESTAMP, where=where, field="created", value="missing")
    try:
        at = parse_timestamp(created)
    except (ValueError, OverflowError) as exc:
        return InvalidListenError(
            BAD_TIMESTAMP, where=where, field="created", value=f"{created!r}: {exc}"
        )
    limit = (int(time.time()) if now is None else now) + MAX_CLOCK_SKEW_S
    if at > limit or at < 0:
        return InvalidListenError(
            IN_FUTURE if at > 0 else BAD_TIMESTAMP,
            where=where,
            field="created",
            value=repr(created),
        )
    try:
        mbid = _uuid(value.get("recording_mbid"))
    except ValueError:
        return InvalidListenError(
            BAD_MBID, where=where, field="recording_mbid", value=repr(value["recording_mbid"])
        )
    try:
        msid = _uuid(value.get("recording_msid"))
    except ValueError:
        return InvalidListenError(
            BAD_MSID, where=where, field="recording_msid", value=repr(value["recording_msid"])
        )
    track = None
    meta = value.get("track_metadata")
    if isinstance(meta, dict) and meta.get("artist_name") and meta.get("track_name"):
        mapping = meta.get("mbid_mapping")
        mapped = mapping.get("recording_mbid") if isinstance(mapping, dict) else None
        try:
            listen = validate_listen(
                user_id="",
                artist=meta.get("artist_name"),
                title=meta.get("track_name"),
                listened_at=max(at, MIN_LISTENED_AT),
                source="listenbrainz",
                where=where,
                album=meta.get("release_name"),
                mbid=mbid or mapped,
                now=now,
            )
        except InvalidListenError as exc:
            return exc
        track = listen.track
    if mbid is None and msid is None and track is None:
        return InvalidListenError(
            NO_RECORDING,
            where=where,
            field="recording_mbid",
            value="no recording_mbid, recording_msid or track_metadata",
        )
    return Feedback(score=score, created=at, mbid=mbid, msid=msid, track=track, where=where)


def _uuid(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    return identity.clean_mbid(value)


@dataclass
class ExportFeedback:
    """The loves and hates of an export, read and checked (nothing written yet). ``only``: the
    path is a feedback file alone, without listens."""

    entries: list[Feedback]
    summary: FeedbackSummary
    only: bool


def read_export_feedback(path: Path, *, now: int | None = None) -> ExportFeedback:
    """Read the feedback of the export at ``path`` (a zip, a folder, or a feedback file alone);
    malformed entries are counted in the summary with their ``file:line`` and field.

    ``ImportFormatError`` when the feedback file is not feedback at all.
    """
    files = feedback_files(path)
    summary = FeedbackSummary(files=[f.name for f in files])
    entries: list[Feedback] = []
    for entry in read_feedback(files, now=now):
        summary.read += 1
        if isinstance(entry, InvalidListenError):
            summary.reject(entry)
        else:
            entries.append(entry)
    return ExportFeedback(entries, summary, only=is_feedback_file(path))


# --- resolving -------------------------------------------------------------------------------

#: Where a listen of the export keeps its MSID (the 2024+ export puts it in track_metadata).
_MSID_IN_LINE = re.compile(r'"recording_msid"\s*:\s*"([0-9A-Fa-f-]{36})"')


def msid_tracks(
    files: Iterable[InputFile], wanted: set[str], *, now: int | None = None
) -> dict[str, TrackRef]:
    """The track of the first listen carrying each wanted MSID, read from the listen files.

    One pass over the text, in constant memory: in JSON Lines a line is decoded only when it
    names a wanted MSID; any other layout (a JSON array) is decoded value by value.
    """
    found: dict[str, TrackRef] = {}
    meter = ByteMeter()
    for file in files:
        if len(found) == len(wanted):
            break
        with file.open_text(meter, encoding="utf-8-sig") as stream:
            head = stream.read(1 << 16)
            if head.lstrip().startswith("{") and "\n" in head.strip():
                for line in _lines(head, stream):
                    m = _MSID_IN_LINE.search(line)
                    if m is not None and m.group(1).lower() in wanted:
                        _remember(found, m.group(1).lower(), line, file.name, now)
                continue
        with file.open_text(meter, encoding="utf-8-sig") as stream:
            for record in iter_json_values(stream, name=file.name, expected=LISTENS_EXPECTED):
                if isinstance(record, InvalidListenError):
                    continue
                msid = _listen_msid(record[0])
                if msid is not None and msid in wanted:
                    _remember(found, msid, orjson.dumps(record[0]).decode(), file.name, now)
    return found


def _remember(found: dict[str, TrackRef], msid: str, text: str, name: str, now: int | None) -> None:
    if msid in found:
        return
    for parsed in parse_listenbrainz(io.StringIO(text), "", name=name, now=now):
        if not isinstance(parsed, InvalidListenError):
            found[msid] = parsed.track


def _lines(head: str, stream: IO[str]) -> Iterator[str]:
    # The head may end in the middle of a line: glue it to the rest of that line.
    for line in io.StringIO(head):
        yield line if line.endswith("\n") else line + stream.readline()
    yield from stream


def _listen_msid(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    meta = value.get("track_metadata")
    meta = meta if isinstance(meta, dict) else {}
    info = meta.get("additional_info")
    info = info if isinstance(info, dict) else {}
    for candidate in (
        meta.get("recording_msid"),
        value.get("recording_msid"),
        info.get("recording_msid"),
    ):
        if isinstance(candidate, str):
            return candidate.strip().lower()
    return None


class _Resolver:
    """Finds the stored track an entry names, without creating any: by MBID, ISRC or Spotify
    id through ``find_tracks``, then by the (artist, title) key's id, as the stores match."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._found: dict[tuple[str, str], str | None] = {}

    async def by_identifier(self, kind: str, value: str) -> str | None:
        key = (kind, value)
        if key not in self._found:
            tracks = await self.store.find_tracks(**{kind: value})
            self._found[key] = min(t.id for t in tracks) if tracks else None
        return self._found[key]

    async def by_ref(self, ref: TrackRef) -> str | None:
        if ref.mbid and (hit := await self.by_identifier("mbid", ref.mbid)):
            return hit
        for kind, value in (("isrc", ref.isrc), ("spotify_id", ref.spotify_id)):
            hit = await self.by_identifier(kind, value) if value else None
            if hit and await self._mbid_agrees(hit, ref.mbid):
                return hit
        key_id = identity.track_id_for_key(identity.track_key(ref.artist, ref.title))
        if await self._mbid_agrees(key_id, ref.mbid, must_exist=True):
            return key_id
        return None

    async def _mbid_agrees(
        self, track_id: str, mbid: str | None, *, must_exist: bool = False
    ) -> bool:
        # The stores refuse a name (or ISRC, Spotify id) match when both sides carry different
        # MBIDs: so does this.
        [track] = await self.store.get_tracks([track_id])
        if track is None:
            return not must_exist
        return mbid is None or track.mbid is None or track.mbid == mbid


async def apply_feedback(
    store: GraphStore,
    user_id: str,
    entries: Iterable[Feedback],
    summary: FeedbackSummary,
    *,
    listen_files: list[InputFile] | None = None,
    bus: EventBus | None = None,
    now: int | None = None,
) -> FeedbackSummary:
    """Resolve ``entries`` to tracks and write the ratings they change (one transaction), then
    publish ``ratings.changed`` for ``user_id``. ``listen_files`` (the export's listens) resolve
    entries known only by MSID. Counts go into ``summary``, which is returned."""
    resolver = _Resolver(store)
    pending: list[Feedback] = []
    resolved: list[tuple[Feedback, str]] = []
    for entry in entries:
        track_id = None
        if entry.mbid:
            track_id = await resolver.by_identifier("mbid", entry.mbid)
        if track_id is None and entry.track is not None:
            track_id = await resolver.by_ref(entry.track)
        if track_id is None:
            pending.append(entry)
        else:
            resolved.append((entry, track_id))
    wanted = {e.msid for e in pending if e.msid}
    by_msid: dict[str, TrackRef] = {}
    if wanted and listen_files:
        by_msid = msid_tracks(listen_files, wanted, now=now)
    for entry in pending:
        ref = by_msid.get(entry.msid) if entry.msid else None
        track_id = await resolver.by_ref(ref) if ref is not None else None
        if track_id is None:
            summary.unresolved += 1
        else:
            resolved.append((entry, track_id))

    # Per track, the newest entry (the later line on a tie) is the one that counts.
    latest: dict[str, Feedback] = {}
    for entry, track_id in resolved:
        current = latest.get(track_id)
        if current is not None:
            summary.unchanged += 1
        if current is None or entry.created >= current.created:
            latest[track_id] = entry
    stored = {r.track_id: r for r in await store.get_ratings(user_id)}
    changes: list[Rating] = []
    for track_id, entry in latest.items():
        rating = stored.get(track_id)
        newer = rating is None or entry.created > rating.at
        if entry.score == 0:
            change = rating is not None and newer
        else:
            change = newer and (rating is None or rating.score != entry.score)
        if not change:
            summary.unchanged += 1
            continue
        changes.append(Rating(user_id, track_id, entry.score, entry.created))
    # written only over older ratings, decided in the writing transaction: a rating set
    # meanwhile (rateTrack while this import read) is newer and stays
    written = await store.set_ratings(changes, only_newer=True)
    summary.unchanged += len(changes) - len(written)
    for rating in written:
        if rating.score > 0:
            summary.loved += 1
        elif rating.score < 0:
            summary.hated += 1
        else:
            summary.cleared += 1
    if bus is not None:
        for event in rating_events(user_id, written):
            bus.publish(event)
    return summary


def rating_events(user_id: str, changes: list[Rating]) -> list[Event]:
    """``ratings.changed`` events for ``changes`` (at most :data:`EVENT_CHUNK` each): payload
    ``{"ratings": [{"track_id", "score"}, ...]}`` (score ``None`` for a cleared rating), plus
    ``track_id`` and ``score`` at the top when the event carries one change, as the
    ``rateTrack`` mutation sends it."""
    events = []
    for start in range(0, len(changes), EVENT_CHUNK):
        chunk = [
            {"track_id": r.track_id, "score": r.score or None}
            for r in changes[start : start + EVENT_CHUNK]
        ]
        payload: dict[str, Any] = {"ratings": chunk}
        if len(chunk) == 1:
            payload.update(chunk[0])
        events.append(Event("ratings.changed", payload, user_id=user_id))
    return events
