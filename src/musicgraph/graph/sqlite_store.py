"""``SqliteGraphStore``: the listening graph in one SQLite file (the embedded default).

One table per node type and per relationship type (``graph/migrations/*.sql``), WAL journal,
foreign keys on, ``synchronous=NORMAL`` and a busy timeout so several processes can share a file.
The schema is versioned with ``PRAGMA user_version``; opening a file applies the migrations it
lacks, inside one transaction.

Every method runs as ONE function on aiosqlite's worker thread, so the event loop never blocks and
a call is a single round trip. Writes run inside ``BEGIN IMMEDIATE ... COMMIT``: a batch lands whole
or not at all; sqlite3 errors are translated to :class:`~musicgraph.errors.StoreError` subclasses
at this boundary.

``record_listens`` (through ``record_listen_columns``, which importers call with column
batches) resolves the batch's distinct track refs with a handful of ``IN (json_each(?))`` lookups
(:mod:`musicgraph.graph.resolution`), drops repeats inside the batch and the listens already in
``played`` (one range read per user of the batch), inserts the rest as one JSON array (a single
GIL-free statement) and folds exactly those into ``listened`` with one upsert of the batch's
per-(user, track) sums. It runs without per-row foreign key checks: the users are checked and the
remembered tracks counted once per batch instead.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import aiosqlite
import orjson

from musicgraph.errors import ConflictError, NotFoundError, StoreError, StoreUnavailableError
from musicgraph.graph import identity
from musicgraph.graph.base import (
    DEFAULT_CHUNK,
    ENRICHMENT_CLAIM_LEASE,
    last_ratings,
    rank_top_artists,
)
from musicgraph.graph.models import (
    Artist,
    ArtistListen,
    ArtistRef,
    EnrichmentState,
    EnrichmentStatus,
    Friendship,
    GraphCounts,
    ItemKind,
    Listen,
    ListenAggregate,
    ListenBatchResult,
    ListenColumns,
    ListenInput,
    Playlist,
    PlaylistEntry,
    Rating,
    Similarity,
    Tagging,
    Track,
    TrackArtist,
    TrackRef,
    TrackUpdate,
    User,
)
from musicgraph.graph.resolution import (
    Catalogue,
    CleanTrack,
    KnownArtist,
    KnownTrack,
    LookupKeys,
    Plan,
    artist_keys,
    clean_artist,
    clean_track_or_reason,
    plan_artists,
    plan_tracks,
    track_keys,
)
from musicgraph.sqlite_wal import enable_wal

__all__ = ["MIGRATIONS", "Migration", "SqliteGraphStore"]

T = TypeVar("T")
Row = tuple[Any, ...]
Conn = sqlite3.Connection

#: ``(version, name, sql)`` of each schema migration, in order.
Migration = tuple[int, str, str]

_IN = "(SELECT value FROM json_each(?))"
_RESOLVED_CACHE_SIZE = 500_000
# a clearing of a rating, kept (the latest) so an older rating cannot come back (set_ratings)
_CLEARED = (
    "INSERT INTO cleared_ratings (user_id, track_id, at) VALUES (?, ?, ?) "
    "ON CONFLICT (user_id, track_id) DO UPDATE SET at = max(at, excluded.at)"
)


def _load_migrations() -> list[Migration]:
    folder = resources.files("musicgraph.graph") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text("utf-8")))
    found.sort()
    return found


MIGRATIONS: list[Migration] = _load_migrations()


def _statements(script: str) -> Iterable[str]:
    """Split a migration into statements (``executescript`` would commit our transaction)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if any(line.strip() and not line.strip().startswith("--") for line in buf.splitlines()):
        yield buf  # an unterminated last statement: let SQLite say what is wrong with it


def _now() -> int:
    return int(time.time())


def _json(values: Iterable[Any]) -> str:
    """A JSON array of ``values`` for ``json_each`` (orjson; json for what it cannot write,
    such as integers beyond 64 bits)."""
    items = list(values)
    try:
        return orjson.dumps(items).decode()
    except TypeError:
        return json.dumps(items)


def _kind(kind: str) -> str:
    if kind not in ("track", "artist"):
        raise StoreError(f"unknown item kind {kind!r} (expected 'track' or 'artist')")
    return kind


def _require(conn: Conn, table: str, ids: Iterable[str], what: str) -> None:
    """Raise ``NotFoundError`` naming the ids of ``table`` that do not exist."""
    wanted = set(ids)
    if not wanted:
        return
    found = {
        r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id IN {_IN}", (_json(wanted),))
    }
    missing = sorted(wanted - found)
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise NotFoundError(f"unknown {what} id(s): {', '.join(missing[:5])}{more}")


def _in_transaction(conn: Conn, fn: Callable[..., T], *args: Any) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _in_transaction_unchecked(conn: Conn, fn: Callable[..., T], *args: Any) -> T:
    """:func:`_in_transaction` without foreign key checks, for a write that makes sure itself
    that every row it adds references rows that exist (a check per listen is most of the cost
    of inserting it)."""
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it before
    try:
        return _in_transaction(conn, fn, *args)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _in_snapshot(conn: Conn, fn: Callable[..., T], *args: Any) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn, *args)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


# --- row mapping ------------------------------------------------------------------------------------

_USER = "id, name, created_at, public"
_ARTIST = "id, name, mbid, spotify_id, url"
_TRACK = (
    "id, title, album, mbid, isrc, spotify_id, duration_ms, bpm, key, mode, energy, valence, "
    "moods, genres, year"
)
_PLAYLIST = "id, owner_id, name, description, public, created_at, updated_at"
_LISTEN = "user_id, track_id, listened_at, source, ms_played, skipped"
_ENRICHMENT = "track_id, source, status, attempts, last_error, updated_at, not_before"


def _user(r: Row) -> User:
    return User(id=r[0], name=r[1], created_at=r[2], public=bool(r[3]))


def _artist(r: Row) -> Artist:
    return Artist(id=r[0], name=r[1], mbid=r[2], spotify_id=r[3], url=r[4])


def _track(r: Row, artist_ids: tuple[str, ...]) -> Track:
    return Track(
        id=r[0],
        title=r[1],
        artist_ids=artist_ids,
        album=r[2],
        mbid=r[3],
        isrc=r[4],
        spotify_id=r[5],
        duration_ms=r[6],
        bpm=r[7],
        key=r[8],
        mode=r[9],
        energy=r[10],
        valence=r[11],
        moods=tuple(json.loads(r[12])) if r[12] else (),
        genres=tuple(json.loads(r[13])) if r[13] else (),
        year=r[14],
    )


def _playlist(r: Row) -> Playlist:
    return Playlist(
        id=r[0],
        owner_id=r[1],
        name=r[2],
        description=r[3],
        public=bool(r[4]),
        created_at=r[5],
        updated_at=r[6],
    )


def _listen(r: Row) -> Listen:
    return Listen(
        user_id=r[0],
        track_id=r[1],
        listened_at=r[2],
        source=r[3],
        ms_played=r[4],
        skipped=bool(r[5]),
    )


def _state(r: Row) -> EnrichmentState:
    return EnrichmentState(
        track_id=r[0],
        source=r[1],
        status=EnrichmentStatus(r[2]),
        attempts=r[3],
        last_error=r[4],
        updated_at=r[5],
        not_before=r[6],
    )


def _tracks_from_rows(conn: Conn, rows: list[Row]) -> list[Track]:
    if not rows:
        return []
    by_track: dict[str, list[str]] = {}
    for track_id, artist_id in conn.execute(
        f"SELECT track_id, artist_id FROM track_artists WHERE track_id IN {_IN} "
        "ORDER BY track_id, position, artist_id",
        (_json(r[0] for r in rows),),
    ):
        by_track.setdefault(track_id, []).append(artist_id)
    return [_track(r, tuple(by_track.get(r[0], ()))) for r in rows]


def _get_by_ids(conn: Conn, table: str, cols: str, ids: Sequence[str]) -> dict[str, Row]:
    if not ids:
        return {}
    rows = conn.execute(
        f"SELECT {cols} FROM {table} WHERE id IN {_IN}", (_json(set(ids)),)
    ).fetchall()
    return {r[0]: r for r in rows}


def _get_tracks(conn: Conn, ids: Sequence[str]) -> list[Track | None]:
    rows = _get_by_ids(conn, "tracks", _TRACK, ids)
    tracks = {t.id: t for t in _tracks_from_rows(conn, list(rows.values()))}
    return [tracks.get(i) for i in ids]


# --- identity resolution ------------------------------------------------------------------------------


def _load_catalogue(conn: Conn, keys: LookupKeys, *, with_tracks: bool) -> Catalogue:
    artists = [
        KnownArtist(*r)
        for r in conn.execute(
            f"SELECT id, name, mbid, spotify_id, url FROM artists WHERE id IN {_IN} "
            f"UNION SELECT id, name, mbid, spotify_id, url FROM artists WHERE mbid IN {_IN}",
            (_json(keys.artist_ids), _json(keys.artist_mbids)),
        )
    ]
    tracks: list[KnownTrack] = []
    if with_tracks:
        cols = "id, title, mbid, isrc, spotify_id, duration_ms, album"
        tracks = [
            KnownTrack(*r)
            for r in conn.execute(
                f"SELECT {cols} FROM tracks WHERE id IN {_IN} "
                f"UNION SELECT {cols} FROM tracks WHERE mbid IN {_IN} "
                f"UNION SELECT {cols} FROM tracks WHERE isrc IN {_IN} "
                f"UNION SELECT {cols} FROM tracks WHERE spotify_id IN {_IN}",
                (
                    _json(keys.track_ids),
                    _json(keys.track_mbids),
                    _json(keys.isrcs),
                    _json(keys.spotify_ids),
                ),
            )
        ]
    return Catalogue(artists, tracks)


def _write_plan(conn: Conn, plan: Plan) -> None:
    if plan.new_artists:
        conn.executemany(
            "INSERT INTO artists (id, name, name_norm, mbid, spotify_id, url) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (a.id, a.name, identity.normalise(a.name), a.mbid, a.spotify_id, a.url)
                for a in plan.new_artists
            ],
        )
    if plan.updated_artists:
        conn.executemany(
            "UPDATE artists SET mbid = ?, spotify_id = ?, url = ? WHERE id = ?",
            [(a.mbid, a.spotify_id, a.url, a.id) for a in plan.updated_artists],
        )
    if plan.new_tracks:
        conn.executemany(
            "INSERT INTO tracks (id, title, title_norm, album, mbid, isrc, spotify_id, duration_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    t.id,
                    t.title,
                    identity.normalise(t.title),
                    t.album,
                    t.mbid,
                    t.isrc,
                    t.spotify_id,
                    t.duration_ms,
                )
                for t in plan.new_tracks
            ],
        )
        conn.executemany(
            "INSERT INTO track_artists (track_id, artist_id, position) VALUES (?, ?, 0)",
            [(t.id, t.artist_id) for t in plan.new_tracks],
        )
    if plan.updated_tracks:
        conn.executemany(
            "UPDATE tracks SET mbid = ?, isrc = ?, spotify_id = ?, duration_ms = ?, album = ? "
            "WHERE id = ?",
            [
                (t.mbid, t.isrc, t.spotify_id, t.duration_ms, t.album, t.id)
                for t in plan.updated_tracks
            ],
        )


def _resolve(conn: Conn, refs: Sequence[TrackRef], where: Callable[[int], str]) -> Plan:
    clean: list[CleanTrack] = []
    for i, ref in enumerate(refs):
        cleaned = clean_track_or_reason(ref)
        if isinstance(cleaned, str):
            raise ValueError(f"{where(i)}: {cleaned}")
        clean.append(cleaned)
    catalogue = _load_catalogue(conn, track_keys(clean), with_tracks=True)
    plan = plan_tracks(clean, catalogue)
    _write_plan(conn, plan)
    return plan


# --- listens --------------------------------------------------------------------------------------------

_KNOWN_IN_SPAN = (
    "SELECT listened_at, track_id FROM played WHERE user_id = ? AND listened_at BETWEEN ? AND ?"
)
_COUNT_IN_SPAN = "SELECT count(*) FROM played WHERE user_id = ? AND listened_at BETWEEN ? AND ?"
# CROSS JOIN keeps the keys as the outer loop (one primary-key probe each): with a plain JOIN
# the planner may scan all of the user's listens and the keys for each of them.
_KNOWN_KEYS = (
    "SELECT p.listened_at, p.track_id FROM json_each(?) j CROSS JOIN played p "
    "ON p.user_id = ? AND p.listened_at = json_extract(j.value, '$[0]') "
    "AND p.track_id = json_extract(j.value, '$[1]')"
)
# The new listens of a batch travel as ONE JSON array of [user, track, at, source, ms, skipped]
# rows, unpacked once into a temporary table that both writes read: each statement is a single
# sqlite3_step, which runs without the GIL, so the importer parses the next batch meanwhile
# (executemany takes the GIL back after every row).
_BATCH_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS batch_listens (user_id TEXT NOT NULL, track_id TEXT NOT NULL, "
    "listened_at INTEGER NOT NULL, source TEXT NOT NULL, ms_played INTEGER, skipped INTEGER NOT NULL)"
)
_FILL_BATCH = (
    f"INSERT INTO temp.batch_listens ({_LISTEN}) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "json_extract(value, '$[5]') FROM json_each(?)"
)
# In key order: each user's new rows land together in the B-tree.
_INSERT_PLAYED = (
    f"INSERT INTO played ({_LISTEN}) SELECT {_LISTEN} FROM temp.batch_listens "
    "ORDER BY user_id, listened_at, track_id"
)
_ADD_TO_LISTENED = """
ON CONFLICT (user_id, track_id) DO UPDATE SET
    count = count + excluded.count,
    skips = skips + excluded.skips,
    first_at = min(first_at, excluded.first_at),
    last_at = max(last_at, excluded.last_at)
"""
_FOLD_LISTENED = f"""
INSERT INTO listened (user_id, track_id, count, skips, first_at, last_at)
SELECT user_id, track_id, sum(1 - skipped), sum(skipped), min(listened_at), max(listened_at)
FROM temp.batch_listens WHERE true GROUP BY user_id, track_id
{_ADD_TO_LISTENED}"""
_CLEAR_BATCH = "DELETE FROM temp.batch_listens"
_COUNT_TRACKS = f"SELECT count(*) FROM tracks WHERE id IN {_IN}"
# One user's listens from one source, in time order, none skipped, no play time: [track, at]
# rows (in time order already: each user's new rows land together at the end of the B-tree).
_INSERT_PLAIN = (
    f"INSERT INTO played ({_LISTEN}) SELECT ?1, json_extract(value, '$[0]'), "
    "json_extract(value, '$[1]'), ?2, NULL, 0 FROM json_each(?3)"
)
# ... the same when every track id has the same length (the ids identity mints): the ids as one
# string of fixed-width slices (a blob, so substr() is by byte) beside a JSON array of times,
# which spares SQLite parsing a JSON row per listen.
_INSERT_PLAIN_FIXED = (
    f"INSERT INTO played ({_LISTEN}) SELECT ?1, CAST(substr(?3, key * ?4 + 1, ?4) AS TEXT), "
    "value, ?2, NULL, 0 FROM json_each(?5)"
)
# ... and their per-track sums, read back from played: nothing else of that user is stored in
# the batch's span of time (the caller checked), so the span holds exactly the batch.
_FOLD_PLAIN = f"""
INSERT INTO listened (user_id, track_id, count, skips, first_at, last_at)
SELECT ?1, track_id, count(*), 0, min(listened_at), max(listened_at)
FROM played WHERE user_id = ?1 AND listened_at BETWEEN ?2 AND ?3 GROUP BY track_id
{_ADD_TO_LISTENED}"""


class _ResolvedRefs:
    """Track refs this store resolved in committed batches, and the track each names.

    A ref keeps resolving to the same track: tracks are never deleted or merged, and a match only
    ever fills in fields that were empty. ``by_object`` finds the ref object first resolved
    without hashing the dataclass (importers hand out one ``TrackRef`` object per distinct track,
    so every later listen of that track brings the same object); it keeps the ref alive, so its
    ``id`` cannot be reused while it is cached. It holds one object per value, never one per
    listen: a caller that builds a new ref for every listen is found through ``by_value``.
    """

    __slots__ = ("by_object", "by_value", "limit")

    def __init__(self, limit: int = _RESOLVED_CACHE_SIZE) -> None:
        self.limit = limit
        self.by_value: dict[TrackRef, str] = {}
        self.by_object: dict[int, tuple[TrackRef, str]] = {}

    def forget(self, ref: TrackRef) -> None:
        self.by_value.pop(ref, None)
        hit = self.by_object.get(id(ref))
        if hit is not None and hit[0] is ref:
            del self.by_object[id(ref)]

    def learn(self, pairs: Sequence[tuple[TrackRef, str]]) -> None:
        if len(self.by_value) + len(pairs) > self.limit:  # bounded memory: start over
            self.by_value.clear()
            self.by_object.clear()
        for ref, track_id in pairs:
            self.by_value[ref] = track_id
            self.by_object[id(ref)] = (ref, track_id)


def _stored_listens(
    conn: Conn, user_id: str, lo: int, hi: int, batch: dict[tuple[str, int, str], int]
) -> set[tuple[int, str]]:
    """Which of one user's batch keys (``lo <= listened_at <= hi``) are already in ``played``.

    Usually a batch covers a stretch of time with nothing stored yet (or, on a re-import, exactly
    the rows it repeats), so reading the user's rows in that span is one short range scan; when
    the span holds many more rows than the batch (a few listens years apart), probe the keys."""
    stored = conn.execute(_COUNT_IN_SPAN, (user_id, lo, hi)).fetchone()[0]
    if stored == 0:
        return set()
    keys = [(at, track_id) for u, at, track_id in batch if u == user_id]
    if stored <= 4 * len(keys):
        rows = conn.execute(_KNOWN_IN_SPAN, (user_id, lo, hi))
    else:
        rows = conn.execute(_KNOWN_KEYS, (_json(keys), user_id))
    return {(r[0], r[1]) for r in rows}


def _spans(user_ids: list[str], ats: list[int]) -> dict[str, tuple[int, int]]:
    """Per user, the earliest and latest listen of the batch."""
    if len(set(user_ids)) == 1:  # an import: one user, no loop
        return {user_ids[0]: (min(ats), max(ats))}
    spans: dict[str, list[int]] = {}
    for user_id, at in zip(user_ids, ats, strict=True):
        span = spans.get(user_id)
        if span is None:
            spans[user_id] = [at, at]
        elif at < span[0]:
            span[0] = at
        elif at > span[1]:
            span[1] = at
    return {u: (s[0], s[1]) for u, s in spans.items()}


def _ref_track_ids(
    conn: Conn, refs: Sequence[TrackRef], tracks: Sequence[int], resolved: _ResolvedRefs
) -> tuple[list[str], list[tuple[TrackRef, str]], tuple[str, ...]]:
    """The track id of each of a batch's refs, resolving (and creating) the ones this store has
    not seen; ``tracks`` (which ref each listen names) only words errors (``listen i``).

    Returns the ids, the (ref, id) pairs to remember once the batch is committed and the ids of
    the tracks created."""
    by_value = resolved.by_value
    hits = list(map(resolved.by_object.get, map(id, refs)))
    ids: list[str] = [
        hit[1] if hit is not None and hit[0] is ref else ""
        for hit, ref in zip(hits, refs, strict=True)
    ]
    learned: list[tuple[TrackRef, str]] = []
    pending: dict[TrackRef, list[int]] = {}
    if "" in ids:
        for slot, ref in enumerate(refs):
            if ids[slot]:
                continue
            track_id = by_value.get(ref)
            if track_id is not None:
                ids[slot] = track_id
            else:
                pending.setdefault(ref, []).append(slot)
    # The batch is written without foreign key checks: the remembered tracks must still exist
    # (one count; a track that is gone is forgotten and its refs resolved afresh).
    remembered = set(ids)
    remembered.discard("")
    if remembered and conn.execute(_COUNT_TRACKS, (_json(remembered),)).fetchone()[0] != len(
        remembered
    ):
        gone = remembered - {
            r[0]
            for r in conn.execute(f"SELECT id FROM tracks WHERE id IN {_IN}", (_json(remembered),))
        }
        for slot, ref in enumerate(refs):
            if ids[slot] in gone:
                ids[slot] = ""
                resolved.forget(ref)
                pending.setdefault(ref, []).append(slot)
    new_track_ids: tuple[str, ...] = ()
    if pending:
        distinct = list(pending)

        def where(j: int) -> str:
            first = min(pending[distinct[j]])
            return f"listen {list(tracks).index(first)}" if first in tracks else f"ref {first}"

        plan = _resolve(conn, distinct, where)
        for ref, track_id in zip(distinct, plan.ids, strict=True):
            learned.append((ref, track_id))
            for slot in pending[ref]:
                ids[slot] = track_id
        new_track_ids = tuple(t.id for t in plan.new_tracks)
    return ids, learned, new_track_ids


def _dumps(rows: Any) -> str:
    """JSON text of ``rows`` (orjson: several times faster than json for a batch of rows)."""
    return orjson.dumps(rows).decode()


def _write_plain(
    conn: Conn, batch: ListenColumns, user_id: str, track_ids: list[str], ats: list[int]
) -> bool:
    """Write a batch of new listens of one user from one source, in time order, none skipped and
    without a play time (what a history import sends), with less work than the general way;
    ``False`` (having written nothing) when the batch is not like that."""
    sources = set(batch.sources)
    if (
        len(sources) != 1
        or any(batch.skipped)
        or set(batch.ms_played) != {None}
        or ats != sorted(ats)
    ):
        return False
    (source,) = sources
    joined = "".join(track_ids)
    width = len(track_ids[0])
    if joined.isascii() and len(joined) == width * len(track_ids) and width > 0:
        conn.execute(_INSERT_PLAIN_FIXED, (user_id, source, joined.encode(), width, _dumps(ats)))
    else:
        rows = list(zip(track_ids, ats, strict=True))
        conn.execute(_INSERT_PLAIN, (user_id, source, _dumps(rows)))
    conn.execute(_FOLD_PLAIN, (user_id, ats[0], ats[-1]))
    return True


def _record_listens(
    conn: Conn, batch: ListenColumns, resolved: _ResolvedRefs, enrich_sources: Sequence[str] = ()
) -> tuple[ListenBatchResult, list[tuple[TrackRef, str]]]:
    """Record one batch; ``resolved`` holds refs this store resolved in earlier (committed)
    batches; the tracks created are queued for enrichment by ``enrich_sources``.

    Returns the result and the refs resolved here, for the caller to remember once committed."""
    batch.check()
    n = len(batch.tracks)
    user_ids = list(batch.user_ids)
    ats = list(batch.listened_at)
    spans = _spans(user_ids, ats)
    _require(conn, "users", spans, "user")
    ref_ids, learned, new_track_ids = _ref_track_ids(conn, batch.refs, batch.tracks, resolved)
    track_ids = list(map(ref_ids.__getitem__, batch.tracks))  # no loop in Python

    # The common case, checked without a loop: no repeats inside the batch (one user at n
    # different times cannot repeat) and nothing stored in the span of time it covers, so every
    # listen is new.
    if len(spans) == 1 and len(set(ats)) == n:
        distinct = True
    else:
        distinct = len(set(zip(user_ids, ats, track_ids, strict=True))) == n
    all_new = distinct and not any(
        conn.execute(_COUNT_IN_SPAN, (user_id, lo, hi)).fetchone()[0]
        for user_id, (lo, hi) in spans.items()
    )
    new: Sequence[int]
    if all_new:
        new = range(n)
        mask = (True,) * n
    else:
        keys = list(zip(user_ids, ats, track_ids, strict=True))
        # The first of repeats inside the batch counts; the rest are duplicates.
        first: dict[tuple[str, int, str], int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        for user_id, (lo, hi) in spans.items():
            for at, track_id in _stored_listens(conn, user_id, lo, hi, first):
                first.pop((user_id, at, track_id), None)
        new = sorted(first.values())
        flags = [False] * n
        for i in new:
            flags[i] = True
        mask = tuple(flags)
    if all_new and len(spans) == 1 and _write_plain(conn, batch, user_ids[0], track_ids, ats):
        pass
    elif new:
        skipped = list(batch.skipped)
        if set(map(type, skipped)) != {bool}:
            skipped = [bool(s) for s in skipped]
        rows = zip(
            user_ids,
            track_ids,
            ats,
            batch.sources,
            batch.ms_played,
            skipped,
            strict=True,
        )
        if all_new:
            payload = list(rows)
        else:
            every = list(rows)
            payload = [every[i] for i in new]
        conn.execute(_FILL_BATCH, (_dumps(payload),))
        conn.execute(_INSERT_PLAYED)
        conn.execute(_FOLD_LISTENED)
        conn.execute(_CLEAR_BATCH)
    if new_track_ids and enrich_sources:
        _enqueue(conn, new_track_ids, enrich_sources, _now())
    result = ListenBatchResult(
        inserted=len(new),
        duplicates=n - len(new),
        track_ids=tuple(track_ids),
        new_mask=mask,
        new_track_ids=new_track_ids,
    )
    return result, learned


def _enqueue(conn: Conn, track_ids: Sequence[str], sources: Sequence[str], now: int) -> int:
    """Pending enrichment states for the (track, source) pairs that have none; how many."""
    before = conn.total_changes
    # One statement in key order (one GIL-free step, like record_listens' writes).
    conn.execute(
        "INSERT OR IGNORE INTO enrichment (track_id, source, status, updated_at) "
        "SELECT t.value, s.value, 'pending', ? FROM json_each(?) t, json_each(?) s "
        "ORDER BY t.value, s.value",
        (now, _json(sorted(set(track_ids))), _json(dict.fromkeys(sources))),
    )
    return conn.total_changes - before


# --- playlists ----------------------------------------------------------------------------------------


def _playlist_entries(conn: Conn, playlist_id: str) -> list[tuple[str, int]]:
    if conn.execute("SELECT 1 FROM playlists WHERE id = ?", (playlist_id,)).fetchone() is None:
        raise NotFoundError(f"unknown playlist id: {playlist_id}")
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT track_id, added_at FROM playlist_entries WHERE playlist_id = ? "
            "ORDER BY position",
            (playlist_id,),
        )
    ]


def _rewrite_playlist(
    conn: Conn, playlist_id: str, entries: list[tuple[str, int]], at: int
) -> None:
    conn.execute("DELETE FROM playlist_entries WHERE playlist_id = ?", (playlist_id,))
    conn.executemany(
        "INSERT INTO playlist_entries (playlist_id, position, track_id, added_at) "
        "VALUES (?, ?, ?, ?)",
        [(playlist_id, pos, tid, added) for pos, (tid, added) in enumerate(entries)],
    )
    conn.execute("UPDATE playlists SET updated_at = ? WHERE id = ?", (at, playlist_id))


def _check_position(position: int, size: int, playlist_id: str) -> None:
    if not 0 <= position < size:
        raise StoreError(
            f"position {position} is outside playlist {playlist_id} "
            f"(it has {size} entries, positions 0..{size - 1})"
        )


class _VersionedCache:
    """At most ``size`` answers, all read at one ``data_version`` (least recently used out)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.version: int | None = None
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def clear(self, version: int | None) -> None:
        self._items.clear()
        self.version = version

    def get(self, key: Any) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)


class SqliteGraphStore:
    """The listening graph in one SQLite file. See the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 30.0,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._migrations = list(MIGRATIONS if migrations is None else migrations)
        self._db: aiosqlite.Connection | None = None
        #: a second connection, used on the caller's thread only for ``PRAGMA data_version``
        self._version_conn: sqlite3.Connection | None = None
        self._resolved = _ResolvedRefs()
        #: reads asked for in this turn of the event loop, sent to the thread together
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._top_artists = _VersionedCache(4096)

    def __repr__(self) -> str:
        return f"SqliteGraphStore({str(self.path)!r})"

    async def __aenter__(self) -> SqliteGraphStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- plumbing ---------------------------------------------------------------------------------

    async def _run(self, op: str, fn: Callable[..., T], *args: Any, coalesce: bool = False) -> T:
        """Run ``fn(*args)`` on the connection's thread; translate sqlite3 errors. With
        ``coalesce`` (reads), it shares the trip with the other reads of this loop turn."""
        db = self._db
        if db is None:
            raise StoreUnavailableError(
                f"{op}: the SQLite store {self.path} is not open (call await store.open())"
            )
        try:
            if coalesce:
                result: T = await self._coalesced(db, fn, args)
                return result
            # aiosqlite's worker hook: the whole call (a transaction) is one trip to its thread.
            execute = cast(Callable[..., Awaitable[T]], db._execute)
            return await execute(fn, db._conn, *args)
        except StoreError:
            raise
        except sqlite3.IntegrityError as exc:
            msg = str(exc)
            if "FOREIGN KEY" in msg:
                raise NotFoundError(f"{op}: a referenced node does not exist ({msg})") from exc
            if "UNIQUE" in msg:
                raise ConflictError(f"{op}: {msg}") from exc
            raise StoreError(f"{op}: invalid value ({msg})") from exc
        except sqlite3.OperationalError as exc:
            msg = str(exc)
            if "locked" in msg or "busy" in msg or "unable to open" in msg:
                raise StoreUnavailableError(f"{op}: SQLite file {self.path}: {msg}") from exc
            raise StoreError(f"{op}: SQLite file {self.path}: {msg}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{op}: SQLite file {self.path}: {exc}") from exc
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"{op}: {exc}") from exc

    def _coalesced(
        self, db: aiosqlite.Connection, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> asyncio.Future[Any]:
        """``fn(conn, *args)`` on the connection's thread, in one trip with every other read
        asked for in the same turn of the event loop (a GraphQL request's sibling DataLoader
        batches, concurrent requests' reads): each still runs alone, in its own snapshot, in the
        order asked, and gets its own result or exception. A trip costs tens of microseconds of
        CPU on both threads (a queue, a wake-up, the GIL handed over and back), more than most
        of the reads themselves."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush, db, loop)
        return future

    def _flush(self, db: aiosqlite.Connection, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []

        def fail(error: BaseException) -> None:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)

        if not db._running or db._connection is None:
            fail(ValueError("Connection closed"))  # what aiosqlite says
            return
        conn = db._conn

        def run_all() -> list[tuple[bool, Any]]:
            out: list[tuple[bool, Any]] = []
            for fn, args, _ in batch:
                try:
                    out.append((True, fn(conn, *args)))
                except Exception as exc:
                    out.append((False, exc))
            return out

        def deliver(trip: asyncio.Future[list[tuple[bool, Any]]]) -> None:
            if trip.cancelled():
                fail(asyncio.CancelledError())
                return
            error = trip.exception()
            if error is not None:
                fail(error)
                return
            for (ok, value), (_, _, future) in zip(trip.result(), batch, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

        trip: asyncio.Future[list[tuple[bool, Any]]] = loop.create_future()
        trip.add_done_callback(deliver)
        db._tx.put_nowait((trip, run_all))  # aiosqlite's queue to its thread, as _execute does

    async def _write(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(op, _in_transaction, fn, *args)

    async def _read(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(op, _in_snapshot, fn, *args, coalesce=True)

    async def _rows(self, op: str, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        def go(conn: Conn) -> list[Row]:
            return conn.execute(sql, tuple(params)).fetchall()

        return await self._run(op, go, coalesce=True)

    async def _scalar(self, op: str, sql: str, params: Sequence[Any] = ()) -> int:
        rows = await self._rows(op, sql, params)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    async def _pages(
        self,
        op: str,
        table: str,
        cols: str,
        key_cols: Sequence[str],
        chunk_size: int,
        where: str = "1",
        params: Sequence[Any] = (),
    ) -> AsyncIterator[list[Row]]:
        """Stream ``table`` in key order, ``chunk_size`` rows per page (keyset pagination, so
        each page is one short read and every row comes exactly once)."""
        if chunk_size <= 0:
            raise StoreError(f"{op}: chunk_size must be positive, got {chunk_size}")
        keys = ", ".join(key_cols)
        marks = ", ".join("?" for _ in key_cols)
        first = f"SELECT {cols} FROM {table} WHERE {where} ORDER BY {keys} LIMIT ?"
        after = (
            f"SELECT {cols} FROM {table} WHERE {where} AND ({keys}) > ({marks}) "
            f"ORDER BY {keys} LIMIT ?"
        )
        positions = [c.strip() for c in cols.split(",")]
        key_at = [positions.index(k) for k in key_cols]
        last: list[Any] | None = None
        while True:
            if last is None:
                rows = await self._rows(op, first, [*params, chunk_size])
            else:
                rows = await self._rows(op, after, [*params, *last, chunk_size])
            if not rows:
                return
            yield rows
            if len(rows) < chunk_size:
                return
            last = [rows[-1][i] for i in key_at]

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(
                self.path, isolation_level=None, timeout=self._busy_timeout
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"cannot open SQLite file {self.path}: {exc}") from exc
        self._db = db
        try:
            await self._run("open", self._setup)
            # timeout 0: a busy file makes data_version answer None, never block the loop
            self._version_conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
        except BaseException:
            self._db = None
            await db.close()
            raise

    def _setup(self, conn: Conn) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        mode = enable_wal(conn, timeout=self._busy_timeout)
        if mode != "wal":
            raise StoreError(f"cannot switch {self.path} to WAL (journal mode is {mode})")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -32768")
        # Checkpoint every ~40 MB of WAL instead of every 4 MB: big listen batches rewrite the
        # same pages, and fewer checkpoints mean fewer fsyncs of the main file.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute(_BATCH_TABLE)
        self._migrate(conn)

    def _migrate(self, conn: Conn) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        latest = self._migrations[-1][0] if self._migrations else 0
        if current == latest:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > latest:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this musicgraph "
                    f"knows ({latest}); upgrade musicgraph"
                )
            for version, name, sql in self._migrations:
                if version <= current:
                    continue
                try:
                    for statement in _statements(sql):
                        conn.execute(statement)
                except sqlite3.Error as exc:
                    raise StoreError(f"migration {name} failed on {self.path}: {exc}") from exc
                conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def schema_version(self) -> int:
        """The file's ``PRAGMA user_version`` (the last migration applied)."""
        return await self._scalar("schema_version", "PRAGMA user_version")

    async def close(self) -> None:
        db, self._db = self._db, None
        version_conn, self._version_conn = self._version_conn, None
        if version_conn is not None:
            version_conn.close()
        if db is not None:
            await db.close()

    def data_version(self) -> int | None:
        # SQLite's own counter of commits by other connections (the store's connection is one
        # of them): a few microseconds, reading the WAL index only.
        conn = self._version_conn
        if conn is None:
            return None
        try:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None

    async def ping(self) -> None:
        try:
            await self._scalar("ping", "SELECT 1")
        except StoreUnavailableError:
            raise
        except StoreError as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def counts(self) -> GraphCounts:
        def go(conn: Conn) -> GraphCounts:
            def count(table: str) -> int:
                return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

            plays = dict(conn.execute("SELECT skipped, count(*) FROM played GROUP BY skipped"))
            enrichment = {
                f"{source}:{status}": n
                for source, status, n in conn.execute(
                    "SELECT source, status, count(*) FROM enrichment GROUP BY source, status "
                    "ORDER BY source, status"
                )
            }
            return GraphCounts(
                users=count("users"),
                artists=count("artists"),
                tracks=count("tracks"),
                tags=count("tags"),
                playlists=count("playlists"),
                listens=int(plays.get(0, 0)),
                skips=int(plays.get(1, 0)),
                listened=count("listened"),
                artist_listens=count("artist_listens"),
                track_artists=count("track_artists"),
                taggings=count("artist_tags") + count("track_tags"),
                friendships=count("friendships"),
                ratings=count("ratings"),
                playlist_entries=count("playlist_entries"),
                similarities=count("artist_similar") + count("track_similar"),
                enrichment=enrichment,
            )

        return await self._read("counts", go)

    # --- users ------------------------------------------------------------------------------------

    async def create_user(
        self,
        name: str,
        *,
        public: bool = False,
        token_hash: str | None = None,
        created_at: int | None = None,
    ) -> User:
        clean = (name or "").strip()
        if not clean:
            raise StoreError("create_user: the user name is blank")
        user = User(
            id=identity.user_id_for(clean),
            name=clean,
            created_at=_now() if created_at is None else created_at,
            public=public,
        )

        def go(conn: Conn) -> User:
            key = identity.normalise(clean)
            if conn.execute("SELECT 1 FROM users WHERE name_key = ?", (key,)).fetchone():
                raise ConflictError(f"user name {clean!r} is already taken")
            if (
                token_hash is not None
                and conn.execute(
                    "SELECT 1 FROM users WHERE token_hash = ?", (token_hash,)
                ).fetchone()
            ):
                raise ConflictError("create_user: that token hash belongs to another user")
            conn.execute(
                "INSERT INTO users (id, name, name_key, created_at, public, token_hash) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user.id, user.name, key, user.created_at, int(public), token_hash),
            )
            return user

        return await self._write("create_user", go)

    async def ensure_users(self, names: Sequence[str], *, public: bool = False) -> list[User]:
        cleaned = [(n or "").strip() for n in names]
        for i, n in enumerate(cleaned):
            if not n:
                raise StoreError(f"ensure_users: name {i} is blank")
        if not cleaned:
            return []

        def go(conn: Conn) -> list[User]:
            keys = {identity.normalise(n): n for n in reversed(cleaned)}
            found = {
                r[4]: _user(r)
                for r in conn.execute(
                    f"SELECT {_USER}, name_key FROM users WHERE name_key IN {_IN}",
                    (_json(keys),),
                )
            }
            now = _now()
            new = [
                User(identity.user_id_for(n), n, now, public)
                for k, n in keys.items()
                if k not in found
            ]
            conn.executemany(
                "INSERT INTO users (id, name, name_key, created_at, public) VALUES (?, ?, ?, ?, ?)",
                [(u.id, u.name, identity.normalise(u.name), now, int(public)) for u in new],
            )
            for u in new:
                found[identity.normalise(u.name)] = u
            return [found[identity.normalise(n)] for n in cleaned]

        return await self._write("ensure_users", go)

    async def get_users(self, ids: Sequence[str]) -> list[User | None]:
        def go(conn: Conn) -> list[User | None]:
            rows = _get_by_ids(conn, "users", _USER, ids)
            return [_user(rows[i]) if i in rows else None for i in ids]

        return await self._read("get_users", go)

    async def get_user_by_name(self, name: str) -> User | None:
        rows = await self._rows(
            "get_user_by_name",
            f"SELECT {_USER} FROM users WHERE name_key = ?",
            (identity.normalise(name),),
        )
        return _user(rows[0]) if rows else None

    async def get_user_by_token_hash(self, token_hash: str) -> User | None:
        rows = await self._rows(
            "get_user_by_token_hash",
            f"SELECT {_USER} FROM users WHERE token_hash = ?",
            (token_hash,),
        )
        return _user(rows[0]) if rows else None

    async def set_user_token_hash(self, user_id: str, token_hash: str | None) -> None:
        def go(conn: Conn) -> None:
            _require(conn, "users", [user_id], "user")
            if (
                token_hash is not None
                and conn.execute(
                    "SELECT 1 FROM users WHERE token_hash = ? AND id != ?", (token_hash, user_id)
                ).fetchone()
            ):
                raise ConflictError("set_user_token_hash: that token hash belongs to another user")
            conn.execute("UPDATE users SET token_hash = ? WHERE id = ?", (token_hash, user_id))

        await self._write("set_user_token_hash", go)

    async def set_user_public(self, user_id: str, public: bool) -> None:
        def go(conn: Conn) -> None:
            _require(conn, "users", [user_id], "user")
            conn.execute("UPDATE users SET public = ? WHERE id = ?", (int(public), user_id))

        await self._write("set_user_public", go)

    async def list_users(self, *, offset: int = 0, limit: int = 100) -> list[User]:
        rows = await self._rows(
            "list_users",
            f"SELECT {_USER} FROM users ORDER BY name_key, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_user(r) for r in rows]

    async def count_users(self) -> int:
        return await self._scalar("count_users", "SELECT count(*) FROM users")

    # --- catalogue --------------------------------------------------------------------------------

    async def upsert_artists(self, artists: Sequence[ArtistRef]) -> list[Artist]:
        if not artists:
            return []

        def go(conn: Conn) -> list[Artist]:
            refs = [clean_artist(a, f"artist {i}") for i, a in enumerate(artists)]
            catalogue = _load_catalogue(conn, artist_keys(refs), with_tracks=False)
            plan = plan_artists(refs, catalogue)
            _write_plan(conn, plan)
            rows = _get_by_ids(conn, "artists", _ARTIST, plan.ids)
            return [_artist(rows[i]) for i in plan.ids]

        return await self._write("upsert_artists", go)

    async def resolve_tracks(self, refs: Sequence[TrackRef]) -> list[Track]:
        if not refs:
            return []

        def go(conn: Conn) -> list[Track]:
            plan = _resolve(conn, refs, lambda i: f"track {i}")
            return [t for t in _get_tracks(conn, plan.ids) if t is not None]

        return await self._write("resolve_tracks", go)

    async def get_artists(self, ids: Sequence[str]) -> list[Artist | None]:
        def go(conn: Conn) -> list[Artist | None]:
            rows = _get_by_ids(conn, "artists", _ARTIST, ids)
            return [_artist(rows[i]) if i in rows else None for i in ids]

        return await self._read("get_artists", go)

    async def get_tracks(self, ids: Sequence[str]) -> list[Track | None]:
        return await self._read("get_tracks", _get_tracks, list(ids))

    async def find_tracks(
        self, *, mbid: str | None = None, isrc: str | None = None, spotify_id: str | None = None
    ) -> list[Track]:
        try:
            wanted = {
                "mbid": identity.clean_mbid(mbid),
                "isrc": identity.clean_isrc(isrc),
                "spotify_id": identity.spotify_track_id(spotify_id),
            }
        except ValueError:
            return []
        conds = {k: v for k, v in wanted.items() if v is not None}
        if not conds:
            return []

        def go(conn: Conn) -> list[Track]:
            where = " AND ".join(f"{col} = ?" for col in conds)
            rows = conn.execute(
                f"SELECT {_TRACK} FROM tracks WHERE {where} ORDER BY id", tuple(conds.values())
            ).fetchall()
            return _tracks_from_rows(conn, rows)

        return await self._read("find_tracks", go)

    async def search_artists(self, query: str, *, offset: int = 0, limit: int = 20) -> list[Artist]:
        rows = await self._rows(
            "search_artists",
            f"SELECT {_ARTIST} FROM artists WHERE instr(name_norm, ?) > 0 "
            "ORDER BY length(name_norm), name_norm, id LIMIT ? OFFSET ?",
            (identity.normalise(query), limit, offset),
        )
        return [_artist(r) for r in rows]

    async def count_search_artists(self, query: str) -> int:
        return await self._scalar(
            "count_search_artists",
            "SELECT count(*) FROM artists WHERE instr(name_norm, ?) > 0",
            (identity.normalise(query),),
        )

    async def search_tracks(self, query: str, *, offset: int = 0, limit: int = 20) -> list[Track]:
        def go(conn: Conn) -> list[Track]:
            rows = conn.execute(
                f"SELECT {_TRACK} FROM tracks WHERE instr(title_norm, ?) > 0 "
                "ORDER BY length(title_norm), title_norm, id LIMIT ? OFFSET ?",
                (identity.normalise(query), limit, offset),
            ).fetchall()
            return _tracks_from_rows(conn, rows)

        return await self._read("search_tracks", go)

    async def count_search_tracks(self, query: str) -> int:
        return await self._scalar(
            "count_search_tracks",
            "SELECT count(*) FROM tracks WHERE instr(title_norm, ?) > 0",
            (identity.normalise(query),),
        )

    async def tracks_by_artists(
        self, artist_ids: Sequence[str], *, limit: int = 100
    ) -> list[list[Track]]:
        if not artist_ids:
            return []

        def go(conn: Conn) -> list[list[Track]]:
            rows = conn.execute(
                f"SELECT artist_id, {_TRACK} FROM ("
                f"  SELECT ta.artist_id, t.*, row_number() OVER ("
                "     PARTITION BY ta.artist_id ORDER BY t.title, t.id) AS rn"
                "  FROM track_artists ta JOIN tracks t ON t.id = ta.track_id"
                f"  WHERE ta.artist_id IN {_IN}"
                ") WHERE rn <= ? ORDER BY artist_id, rn",
                (_json(set(artist_ids)), limit),
            ).fetchall()
            tracks = {t.id: t for t in _tracks_from_rows(conn, [r[1:] for r in rows])}
            per: dict[str, list[Track]] = {}
            for r in rows:
                per.setdefault(r[0], []).append(tracks[r[1]])
            return [per.get(a, []) for a in artist_ids]

        return await self._read("tracks_by_artists", go)

    async def count_tracks_by_artists(self, artist_ids: Sequence[str]) -> list[int]:
        if not artist_ids:
            return []
        rows = await self._rows(
            "count_tracks_by_artists",
            f"SELECT artist_id, count(*) FROM track_artists WHERE artist_id IN {_IN} "
            "GROUP BY artist_id",
            (_json(set(artist_ids)),),
        )
        counts = {r[0]: int(r[1]) for r in rows}
        return [counts.get(a, 0) for a in artist_ids]

    async def update_tracks(self, updates: Sequence[TrackUpdate]) -> None:
        if not updates:
            return
        rows = []
        for i, u in enumerate(updates):
            where = f"update {i} (track {u.track_id})"
            try:
                mbid = identity.clean_mbid(u.mbid)
                isrc = identity.clean_isrc(u.isrc)
                spotify = identity.spotify_track_id(u.spotify_id)
            except ValueError as exc:
                raise StoreError(f"update_tracks: {where}: {exc}") from exc
            rows.append(
                (
                    mbid,
                    isrc,
                    spotify,
                    u.duration_ms,
                    u.album,
                    u.year,
                    u.bpm,
                    u.key,
                    u.mode,
                    u.energy,
                    u.valence,
                    None if u.moods is None else _json(u.moods),
                    None if u.genres is None else _json(u.genres),
                    u.track_id,
                )
            )

        def go(conn: Conn) -> None:
            conn.executemany(
                "UPDATE tracks SET mbid = coalesce(?, mbid), isrc = coalesce(?, isrc), "
                "spotify_id = coalesce(?, spotify_id), duration_ms = coalesce(?, duration_ms), "
                "album = coalesce(?, album), year = coalesce(?, year), bpm = coalesce(?, bpm), "
                "key = coalesce(?, key), mode = coalesce(?, mode), "
                "energy = coalesce(?, energy), valence = coalesce(?, valence), "
                "moods = coalesce(?, moods), genres = coalesce(?, genres) WHERE id = ?",
                rows,
            )

        await self._write("update_tracks", go)

    # --- listens ------------------------------------------------------------------------------------

    async def record_listens(self, listens: Sequence[ListenInput]) -> ListenBatchResult:
        return await self.record_listen_columns(ListenColumns.of(listens))

    async def record_listen_columns(
        self, batch: ListenColumns, *, enrich_sources: Sequence[str] = ()
    ) -> ListenBatchResult:
        if not len(batch.tracks):
            return ListenBatchResult(inserted=0, duplicates=0, track_ids=())
        outcome: tuple[ListenBatchResult, list[tuple[TrackRef, str]]] = await self._run(
            "record_listens",
            _in_transaction_unchecked,
            _record_listens,
            batch,
            self._resolved,
            tuple(enrich_sources),
        )
        result, learned = outcome
        # Remember refs only once their batch is committed (a rolled-back track never existed).
        self._resolved.learn(learned)
        return result

    async def set_artist_listens(self, rows: Sequence[ArtistListen]) -> None:
        if not rows:
            return

        def go(conn: Conn) -> None:
            _require(conn, "users", {r.user_id for r in rows}, "user")
            _require(conn, "artists", {r.artist_id for r in rows}, "artist")
            conn.executemany(
                "INSERT INTO artist_listens (user_id, artist_id, count) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, artist_id) DO UPDATE SET count = excluded.count",
                [(r.user_id, r.artist_id, r.count) for r in rows],
            )

        await self._write("set_artist_listens", go)

    async def recent_listens(
        self,
        user_id: str,
        *,
        before: int | None = None,
        limit: int = 20,
        include_skips: bool = False,
    ) -> list[Listen]:
        conds = ["user_id = ?"]
        params: list[Any] = [user_id]
        if before is not None:
            conds.append("listened_at < ?")
            params.append(before)
        if not include_skips:
            conds.append("skipped = 0")
        rows = await self._rows(
            "recent_listens",
            f"SELECT {_LISTEN} FROM played WHERE {' AND '.join(conds)} "
            "ORDER BY listened_at DESC, track_id DESC LIMIT ?",
            [*params, limit],
        )
        return [_listen(r) for r in rows]

    async def count_listens(self, user_id: str, *, include_skips: bool = False) -> int:
        skip = "" if include_skips else " AND skipped = 0"
        return await self._scalar(
            "count_listens", f"SELECT count(*) FROM played WHERE user_id = ?{skip}", (user_id,)
        )

    async def listens_between(self, user_id: str, start: int, end: int) -> list[Listen]:
        rows = await self._rows(
            "listens_between",
            f"SELECT {_LISTEN} FROM played WHERE user_id = ? AND listened_at >= ? "
            "AND listened_at < ? AND skipped = 0 ORDER BY listened_at, track_id",
            (user_id, start, end),
        )
        return [_listen(r) for r in rows]

    async def get_aggregates(self, user_ids: Sequence[str]) -> list[list[ListenAggregate]]:
        if not user_ids:
            return []
        rows = await self._rows(
            "get_aggregates",
            "SELECT user_id, track_id, count, skips, first_at, last_at FROM listened "
            f"WHERE user_id IN {_IN} ORDER BY user_id, count DESC, track_id",
            (_json(set(user_ids)),),
        )
        per: dict[str, list[ListenAggregate]] = {}
        for r in rows:
            per.setdefault(r[0], []).append(ListenAggregate(*r))
        return [per.get(u, []) for u in user_ids]

    async def get_artist_listens(self, user_ids: Sequence[str]) -> list[list[ArtistListen]]:
        if not user_ids:
            return []
        rows = await self._rows(
            "get_artist_listens",
            "SELECT user_id, artist_id, count FROM artist_listens "
            f"WHERE user_id IN {_IN} ORDER BY user_id, count DESC, artist_id",
            (_json(set(user_ids)),),
        )
        per: dict[str, list[ArtistListen]] = {}
        for r in rows:
            per.setdefault(r[0], []).append(ArtistListen(*r))
        return [per.get(u, []) for u in user_ids]

    async def top_artists(self, user_ids: Sequence[str], *, limit: int) -> list[list[ArtistListen]]:
        """Read over each user's whole history, so the answers are kept (per user and limit)
        until the file changes: ``PRAGMA data_version`` moves with every commit, by this store
        or any other process."""
        if not user_ids:
            return []
        version = self.data_version()
        cache = self._top_artists
        if version is None or cache.version != version:
            cache.clear(version)
        known = [cache.get((u, limit)) for u in user_ids]
        missing = [u for u, k in zip(user_ids, known, strict=True) if k is None]
        if missing:
            found = dict(zip(missing, await self._top_artists_read(missing, limit), strict=True))
            if version is not None and self.data_version() == version:
                for u, ranked in found.items():
                    cache.put((u, limit), ranked)
            known = [k if k is not None else found[u] for u, k in zip(user_ids, known, strict=True)]
        return [list(rows) for rows in known]  # copies: a caller may change its list

    async def _top_artists_read(
        self, user_ids: Sequence[str], limit: int
    ) -> list[list[ArtistListen]]:
        ids = _json(set(user_ids))

        def go(conn: Conn) -> tuple[list[Row], list[Row]]:
            tracks = conn.execute(
                "SELECT l.user_id, (SELECT ta.artist_id FROM track_artists ta "
                "WHERE ta.track_id = l.track_id ORDER BY ta.position, ta.artist_id LIMIT 1), "
                f"l.count FROM listened l WHERE l.user_id IN {_IN} "
                "ORDER BY l.user_id, l.count DESC, l.track_id",
                (ids,),
            ).fetchall()
            artists = conn.execute(
                "SELECT user_id, artist_id, count FROM artist_listens "
                f"WHERE user_id IN {_IN} ORDER BY user_id, count DESC, artist_id",
                (ids,),
            ).fetchall()
            return tracks, artists

        tracks, artists = await self._read("top_artists", go)
        by_track: dict[str, list[tuple[str, int]]] = {}
        for user_id, artist_id, count in tracks:
            if artist_id is not None:
                by_track.setdefault(user_id, []).append((artist_id, count))
        by_artist: dict[str, list[tuple[str, int]]] = {}
        for user_id, artist_id, count in artists:
            by_artist.setdefault(user_id, []).append((artist_id, count))
        return [
            rank_top_artists(u, by_track.get(u, ()), by_artist.get(u, ()), limit) for u in user_ids
        ]

    # --- tags, friends, ratings, similarity ------------------------------------------------------

    async def set_tags(self, rows: Sequence[Tagging]) -> None:
        if not rows:
            return
        by_kind: dict[str, list[tuple[str, str, int]]] = {}
        for i, r in enumerate(rows):
            tag = identity.normalise(r.tag or "")
            if not tag:
                raise StoreError(f"set_tags: row {i} ({r.item_kind} {r.item_id}) has a blank tag")
            by_kind.setdefault(_kind(r.item_kind), []).append((r.item_id, tag, r.count))

        def go(conn: Conn) -> None:
            for kind, items in by_kind.items():
                _require(conn, f"{kind}s", {i[0] for i in items}, kind)
            conn.executemany(
                "INSERT OR IGNORE INTO tags (name) VALUES (?)",
                [(t,) for t in sorted({i[1] for items in by_kind.values() for i in items})],
            )
            for kind, items in by_kind.items():
                conn.executemany(
                    f"INSERT INTO {kind}_tags ({kind}_id, tag, count) VALUES (?, ?, ?) "
                    f"ON CONFLICT ({kind}_id, tag) DO UPDATE SET count = excluded.count",
                    items,
                )

        await self._write("set_tags", go)

    async def get_tags(self, kind: ItemKind, item_ids: Sequence[str]) -> list[list[Tagging]]:
        k = _kind(kind)
        if not item_ids:
            return []
        rows = await self._rows(
            "get_tags",
            f"SELECT {k}_id, tag, count FROM {k}_tags WHERE {k}_id IN {_IN} "
            f"ORDER BY {k}_id, count DESC, tag",
            (_json(set(item_ids)),),
        )
        per: dict[str, list[Tagging]] = {}
        for item, tag, count in rows:
            per.setdefault(item, []).append(Tagging(kind, item, tag, count))
        return [per.get(i, []) for i in item_ids]

    async def items_tagged(
        self, tag: str, kind: ItemKind, *, offset: int = 0, limit: int = 20
    ) -> list[str]:
        k = _kind(kind)
        rows = await self._rows(
            "items_tagged",
            f"SELECT {k}_id FROM {k}_tags WHERE tag = ? ORDER BY count DESC, {k}_id "
            "LIMIT ? OFFSET ?",
            (identity.normalise(tag), limit, offset),
        )
        return [r[0] for r in rows]

    async def count_items_tagged(self, tag: str, kind: ItemKind) -> int:
        k = _kind(kind)
        return await self._scalar(
            "count_items_tagged",
            f"SELECT count(*) FROM {k}_tags WHERE tag = ?",
            (identity.normalise(tag),),
        )

    async def add_friendships(self, rows: Sequence[Friendship]) -> None:
        if not rows:
            return

        def go(conn: Conn) -> None:
            _require(conn, "users", {r.user_id for r in rows} | {r.friend_id for r in rows}, "user")
            conn.executemany(
                "INSERT OR IGNORE INTO friendships (user_id, friend_id) VALUES (?, ?)",
                [(r.user_id, r.friend_id) for r in rows],
            )

        await self._write("add_friendships", go)

    async def get_friends(self, user_id: str) -> list[str]:
        rows = await self._rows(
            "get_friends",
            "SELECT friend_id FROM friendships WHERE user_id = ? ORDER BY friend_id",
            (user_id,),
        )
        return [r[0] for r in rows]

    async def set_rating(self, user_id: str, track_id: str, score: int | None, at: int) -> None:
        if score not in (None, 1, -1):
            raise StoreError(f"set_rating: score must be 1, -1 or None, got {score!r}")

        def go(conn: Conn) -> None:
            _require(conn, "users", [user_id], "user")
            _require(conn, "tracks", [track_id], "track")
            if score is None:
                conn.execute(
                    "DELETE FROM ratings WHERE user_id = ? AND track_id = ?", (user_id, track_id)
                )
                conn.execute(_CLEARED, (user_id, track_id, at))
            else:
                conn.execute(
                    "INSERT INTO ratings (user_id, track_id, score, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (user_id, track_id) DO UPDATE SET score = excluded.score, "
                    "at = excluded.at",
                    (user_id, track_id, score, at),
                )

        await self._write("set_rating", go)

    async def set_ratings(
        self, rows: Sequence[Rating], *, only_newer: bool = False
    ) -> list[Rating]:
        last = last_ratings(rows)
        if not last:
            return []
        clear = "DELETE FROM ratings WHERE user_id = ? AND track_id = ?" + (
            " AND at < ?" if only_newer else ""
        )
        # only newer: later than the stored rating and than the user's last clearing of it
        upsert = (
            "INSERT INTO ratings (user_id, track_id, score, at) SELECT ?, ?, ?, ? "
            + (
                "WHERE NOT EXISTS (SELECT 1 FROM cleared_ratings c WHERE c.user_id = ? "
                "AND c.track_id = ? AND c.at >= ?) "
                if only_newer
                else "WHERE true "
            )
            + "ON CONFLICT (user_id, track_id) DO UPDATE SET score = excluded.score, "
            "at = excluded.at" + (" WHERE excluded.at > ratings.at" if only_newer else "")
        )

        def go(conn: Conn) -> list[Rating]:
            _require(conn, "users", {r.user_id for r in last}, "user")
            _require(conn, "tracks", {r.track_id for r in last}, "track")
            changed: list[Rating] = []
            for r in last:  # one statement a row: its row count says whether it applied
                key = (r.user_id, r.track_id)
                if r.score == 0:
                    cur = conn.execute(clear, (*key, r.at) if only_newer else key)
                    conn.execute(_CLEARED, (*key, r.at))
                else:
                    row = (*key, r.score, r.at)
                    cur = conn.execute(upsert, (*row, *key, r.at) if only_newer else row)
                if cur.rowcount > 0:
                    changed.append(r)
            return changed

        return await self._write("set_ratings", go)

    async def get_ratings(self, user_id: str) -> list[Rating]:
        rows = await self._rows(
            "get_ratings",
            "SELECT user_id, track_id, score, at FROM ratings WHERE user_id = ? "
            "ORDER BY at DESC, track_id",
            (user_id,),
        )
        return [Rating(*r) for r in rows]

    async def set_similar(self, rows: Sequence[Similarity]) -> None:
        if not rows:
            return
        by_kind: dict[str, list[Similarity]] = {}
        for r in rows:
            by_kind.setdefault(_kind(r.item_kind), []).append(r)

        def go(conn: Conn) -> None:
            for kind, items in by_kind.items():
                ids = {r.source_id for r in items} | {r.target_id for r in items}
                _require(conn, f"{kind}s", ids, kind)
                conn.executemany(
                    f"INSERT INTO {kind}_similar (source_id, target_id, source, score) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (source_id, target_id, source) "
                    "DO UPDATE SET score = excluded.score",
                    [(r.source_id, r.target_id, r.source, r.score) for r in items],
                )

        await self._write("set_similar", go)

    async def get_similar(
        self, kind: ItemKind, item_id: str, *, limit: int = 50
    ) -> list[Similarity]:
        k = _kind(kind)
        rows = await self._rows(
            "get_similar",
            f"SELECT source_id, target_id, score, source FROM {k}_similar WHERE source_id = ? "
            "ORDER BY score DESC, target_id, source LIMIT ?",
            (item_id, limit),
        )
        return [Similarity(kind, *r) for r in rows]

    # --- playlists ------------------------------------------------------------------------------------

    async def create_playlist(
        self,
        owner_id: str,
        name: str,
        *,
        description: str = "",
        public: bool = False,
        track_ids: Sequence[str] = (),
        at: int | None = None,
    ) -> Playlist:
        if not (name or "").strip():
            raise StoreError("create_playlist: the playlist name is blank")
        when = _now() if at is None else at
        playlist = Playlist(
            id=identity.new_playlist_id(),
            owner_id=owner_id,
            name=name.strip(),
            description=description,
            public=public,
            created_at=when,
            updated_at=when,
        )

        def go(conn: Conn) -> Playlist:
            _require(conn, "users", [owner_id], "user")
            _require(conn, "tracks", track_ids, "track")
            conn.execute(
                f"INSERT INTO playlists ({_PLAYLIST}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    playlist.id,
                    owner_id,
                    playlist.name,
                    description,
                    int(public),
                    when,
                    when,
                ),
            )
            _rewrite_playlist(conn, playlist.id, [(t, when) for t in track_ids], when)
            return playlist

        return await self._write("create_playlist", go)

    async def update_playlist(
        self,
        playlist_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        public: bool | None = None,
        at: int | None = None,
    ) -> Playlist:
        if name is not None and not name.strip():
            raise StoreError(f"update_playlist: the new name of {playlist_id} is blank")

        def go(conn: Conn) -> Playlist:
            _require(conn, "playlists", [playlist_id], "playlist")
            conn.execute(
                "UPDATE playlists SET name = coalesce(?, name), "
                "description = coalesce(?, description), public = coalesce(?, public), "
                "updated_at = ? WHERE id = ?",
                (
                    None if name is None else name.strip(),
                    description,
                    None if public is None else int(public),
                    _now() if at is None else at,
                    playlist_id,
                ),
            )
            row = conn.execute(
                f"SELECT {_PLAYLIST} FROM playlists WHERE id = ?", (playlist_id,)
            ).fetchone()
            return _playlist(row)

        return await self._write("update_playlist", go)

    async def delete_playlist(self, playlist_id: str) -> bool:
        def go(conn: Conn) -> bool:
            return conn.execute("DELETE FROM playlists WHERE id = ?", (playlist_id,)).rowcount > 0

        return await self._write("delete_playlist", go)

    async def get_playlists(self, ids: Sequence[str]) -> list[Playlist | None]:
        def go(conn: Conn) -> list[Playlist | None]:
            rows = _get_by_ids(conn, "playlists", _PLAYLIST, ids)
            return [_playlist(rows[i]) if i in rows else None for i in ids]

        return await self._read("get_playlists", go)

    async def list_playlists(
        self, owner_id: str, *, include_private: bool = True
    ) -> list[Playlist]:
        private = "" if include_private else " AND public = 1"
        rows = await self._rows(
            "list_playlists",
            f"SELECT {_PLAYLIST} FROM playlists WHERE owner_id = ?{private} ORDER BY name, id",
            (owner_id,),
        )
        return [_playlist(r) for r in rows]

    async def list_public_playlists(self, *, offset: int = 0, limit: int = 20) -> list[Playlist]:
        rows = await self._rows(
            "list_public_playlists",
            f"SELECT {_PLAYLIST} FROM playlists WHERE public = 1 "
            "ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_playlist(r) for r in rows]

    async def playlist_entries(
        self, playlist_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[PlaylistEntry]:
        rows = await self._rows(
            "playlist_entries",
            "SELECT playlist_id, track_id, position, added_at FROM playlist_entries "
            "WHERE playlist_id = ? ORDER BY position LIMIT ? OFFSET ?",
            (playlist_id, -1 if limit is None else limit, offset),
        )
        return [PlaylistEntry(*r) for r in rows]

    async def count_playlist_entries(self, playlist_id: str) -> int:
        return await self._scalar(
            "count_playlist_entries",
            "SELECT count(*) FROM playlist_entries WHERE playlist_id = ?",
            (playlist_id,),
        )

    async def add_to_playlist(
        self,
        playlist_id: str,
        track_ids: Sequence[str],
        *,
        position: int | None = None,
        at: int | None = None,
    ) -> None:
        when = _now() if at is None else at

        def go(conn: Conn) -> None:
            entries = _playlist_entries(conn, playlist_id)
            _require(conn, "tracks", track_ids, "track")
            if not track_ids:
                return
            where = len(entries) if position is None else position
            if not 0 <= where <= len(entries):
                raise StoreError(
                    f"position {where} is outside playlist {playlist_id} "
                    f"(insert positions are 0..{len(entries)})"
                )
            entries[where:where] = [(t, when) for t in track_ids]
            _rewrite_playlist(conn, playlist_id, entries, when)

        await self._write("add_to_playlist", go)

    async def remove_from_playlist(self, playlist_id: str, positions: Sequence[int]) -> None:
        def go(conn: Conn) -> None:
            entries = _playlist_entries(conn, playlist_id)
            drop = set(positions)
            for p in sorted(drop):
                _check_position(p, len(entries), playlist_id)
            if not drop:
                return
            kept = [e for i, e in enumerate(entries) if i not in drop]
            _rewrite_playlist(conn, playlist_id, kept, _now())

        await self._write("remove_from_playlist", go)

    async def move_in_playlist(
        self, playlist_id: str, from_position: int, to_position: int
    ) -> None:
        def go(conn: Conn) -> None:
            entries = _playlist_entries(conn, playlist_id)
            _check_position(from_position, len(entries), playlist_id)
            _check_position(to_position, len(entries), playlist_id)
            if from_position == to_position:
                return
            entry = entries.pop(from_position)
            entries.insert(to_position, entry)
            _rewrite_playlist(conn, playlist_id, entries, _now())

        await self._write("move_in_playlist", go)

    # --- enrichment queue -------------------------------------------------------------------------------

    async def enqueue_enrichment(self, track_ids: Sequence[str], sources: Sequence[str]) -> int:
        if not track_ids or not sources:
            return 0
        now = _now()

        def go(conn: Conn) -> int:
            _require(conn, "tracks", track_ids, "track")
            return _enqueue(conn, track_ids, sources, now)

        return await self._write("enqueue_enrichment", go)

    async def claim_enrichment(self, source: str, *, limit: int, now: int) -> list[EnrichmentState]:
        if limit <= 0:
            return []

        def go(conn: Conn) -> list[EnrichmentState]:
            rows = conn.execute(
                f"SELECT {_ENRICHMENT} FROM enrichment WHERE source = ? "
                "AND status IN ('pending', 'failed') AND not_before <= ? "
                "ORDER BY updated_at, track_id LIMIT ?",
                (source, now, limit),
            ).fetchall()
            lease = now + ENRICHMENT_CLAIM_LEASE
            conn.executemany(
                "UPDATE enrichment SET not_before = ? WHERE track_id = ? AND source = ?",
                [(lease, r[0], source) for r in rows],
            )
            return [_state((*r[:6], lease)) for r in rows]

        return await self._write("claim_enrichment", go)

    async def release_enrichment_leases(self, source: str, *, lease: int, now: int) -> int:
        def go(conn: Conn) -> int:
            cur = conn.execute(
                "UPDATE enrichment SET not_before = ? WHERE source = ? "
                "AND status IN ('pending', 'failed') AND not_before = ?",
                (now, source, lease),
            )
            return int(cur.rowcount)

        return await self._write("release_enrichment_leases", go)

    async def set_enrichment_states(self, states: Sequence[EnrichmentState]) -> None:
        if not states:
            return

        def go(conn: Conn) -> None:
            _require(conn, "tracks", {s.track_id for s in states}, "track")
            conn.executemany(
                f"INSERT INTO enrichment ({_ENRICHMENT}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (track_id, source) DO UPDATE SET status = excluded.status, "
                "attempts = excluded.attempts, last_error = excluded.last_error, "
                "updated_at = excluded.updated_at, not_before = excluded.not_before",
                [
                    (
                        s.track_id,
                        s.source,
                        EnrichmentStatus(s.status).value,
                        s.attempts,
                        s.last_error,
                        s.updated_at,
                        s.not_before,
                    )
                    for s in states
                ],
            )

        await self._write("set_enrichment_states", go)

    async def get_enrichment_states(self, track_id: str) -> list[EnrichmentState]:
        rows = await self._rows(
            "get_enrichment_states",
            f"SELECT {_ENRICHMENT} FROM enrichment WHERE track_id = ? ORDER BY source",
            (track_id,),
        )
        return [_state(r) for r in rows]

    async def enrichment_counts(self) -> dict[str, dict[str, int]]:
        rows = await self._rows(
            "enrichment_counts",
            "SELECT source, status, count(*) FROM enrichment GROUP BY source, status "
            "ORDER BY source, status",
        )
        out: dict[str, dict[str, int]] = {}
        for source, status, n in rows:
            out.setdefault(source, {})[status] = int(n)
        return out

    # --- streaming reads for the projection --------------------------------------------------------------

    async def iter_aggregates(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[ListenAggregate]]:
        async for rows in self._pages(
            "iter_aggregates",
            "listened",
            "user_id, track_id, count, skips, first_at, last_at",
            ("user_id", "track_id"),
            chunk_size,
        ):
            yield [ListenAggregate(*r) for r in rows]

    async def iter_listens(
        self, *, since: int | None = None, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Listen]]:
        where, params = "skipped = 0", []
        if since is not None:
            where, params = "skipped = 0 AND listened_at >= ?", [since]
        async for rows in self._pages(
            "iter_listens",
            "played",
            _LISTEN,
            ("user_id", "listened_at", "track_id"),
            chunk_size,
            where,
            params,
        ):
            yield [_listen(r) for r in rows]

    async def iter_artist_listens(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[ArtistListen]]:
        async for rows in self._pages(
            "iter_artist_listens",
            "artist_listens",
            "user_id, artist_id, count",
            ("user_id", "artist_id"),
            chunk_size,
        ):
            yield [ArtistListen(*r) for r in rows]

    async def iter_track_artists(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[TrackArtist]]:
        async for rows in self._pages(
            "iter_track_artists",
            "track_artists",
            "track_id, artist_id, position",
            ("track_id", "artist_id"),
            chunk_size,
        ):
            yield [TrackArtist(*r) for r in rows]

    async def iter_tags(
        self, kind: ItemKind, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Tagging]]:
        k = _kind(kind)
        async for rows in self._pages(
            "iter_tags", f"{k}_tags", f"{k}_id, tag, count", (f"{k}_id", "tag"), chunk_size
        ):
            yield [Tagging(kind, *r) for r in rows]

    async def iter_friendships(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Friendship]]:
        async for rows in self._pages(
            "iter_friendships",
            "friendships",
            "user_id, friend_id",
            ("user_id", "friend_id"),
            chunk_size,
        ):
            yield [Friendship(*r) for r in rows]

    async def iter_ratings(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Rating]]:
        async for rows in self._pages(
            "iter_ratings",
            "ratings",
            "user_id, track_id, score, at",
            ("user_id", "track_id"),
            chunk_size,
        ):
            yield [Rating(*r) for r in rows]

    async def iter_playlist_entries(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[PlaylistEntry]]:
        async for rows in self._pages(
            "iter_playlist_entries",
            "playlist_entries",
            "playlist_id, track_id, position, added_at",
            ("playlist_id", "position"),
            chunk_size,
        ):
            yield [PlaylistEntry(*r) for r in rows]

    async def iter_similar(
        self, kind: ItemKind, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Similarity]]:
        k = _kind(kind)
        async for rows in self._pages(
            "iter_similar",
            f"{k}_similar",
            "source_id, target_id, score, source",
            ("source_id", "target_id", "source"),
            chunk_size,
        ):
            yield [Similarity(kind, *r) for r in rows]

    async def iter_tracks(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Track]]:
        async for rows in self._pages("iter_tracks", "tracks", _TRACK, ("id",), chunk_size):
            yield await self._read("iter_tracks", _tracks_from_rows, rows)

    async def iter_artists(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Artist]]:
        async for rows in self._pages("iter_artists", "artists", _ARTIST, ("id",), chunk_size):
            yield [_artist(r) for r in rows]

    async def iter_users(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[User]]:
        async for rows in self._pages("iter_users", "users", _USER, ("id",), chunk_size):
            yield [_user(r) for r in rows]
