"""``Neo4jGraphStore``: the listening graph in Neo4j 5, through the official async driver.

The driver is injected (``create_store`` builds one from the settings); the store never owns a
global. Uniqueness constraints and indexes are created idempotently by :meth:`open`. Every
multi-row write is an ``UNWIND $rows`` statement per batch of rows, and every public write method
runs as one managed transaction (``session.execute_write``, retried by the driver on transient
errors), so a batch lands whole or not at all. Reads are routed as reads. All Cypher lives in
:mod:`musicgraph.graph.cypher`; identity (which stored track an input names, which id a new one
gets) is :mod:`musicgraph.graph.resolution`, shared with the SQLite store.
"""

from __future__ import annotations

import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar, cast

from neo4j import READ_ACCESS, AsyncDriver, AsyncManagedTransaction, AsyncSession
from neo4j.exceptions import (
    ConstraintError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from musicgraph.errors import (
    ConflictError,
    MusicgraphError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from musicgraph.graph import cypher, identity, resolution
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

__all__ = ["Neo4jGraphStore"]

T = TypeVar("T")
Row = dict[str, Any]

#: Rows per UNWIND statement; a public write sends several statements in its one transaction.
STATEMENT_ROWS = 10_000
INDEX_WAIT_S = 300
#: At most this many remembered ref -> track resolutions per store (then it starts over).
RESOLVED_CACHE = 500_000
_TRACK_FIELDS = (
    "album",
    "mbid",
    "isrc",
    "spotify_id",
    "duration_ms",
    "bpm",
    "key",
    "mode",
    "energy",
    "valence",
    "year",
)
_UPDATE_FIELDS = (*_TRACK_FIELDS, "moods", "genres")
_IDENTIFIERS: dict[str, Callable[[str | None], str | None]] = {
    "mbid": identity.clean_mbid,
    "isrc": identity.clean_isrc,
    "spotify_id": identity.spotify_track_id,
}


def _now() -> int:
    return int(time.time())


def _chunks(rows: Sequence[T], size: int = STATEMENT_ROWS) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _kind(kind: str) -> ItemKind:
    if kind == "artist":
        return "artist"
    if kind == "track":
        return "track"
    raise StoreError(f"unknown item kind {kind!r} (expected 'track' or 'artist')")


def _enrichment_key(track_id: str, source: str) -> str:
    return track_id + identity.KEY_SEPARATOR + source


# --- records -----------------------------------------------------------------------------------


def _user(d: Mapping[str, Any]) -> User:
    return User(id=d["id"], name=d["name"], created_at=d["created_at"], public=bool(d["public"]))


def _artist(d: Mapping[str, Any]) -> Artist:
    return Artist(
        id=d["id"], name=d["name"], mbid=d.get("mbid"), spotify_id=d.get("spotify_id"),
        url=d.get("url"),
    )  # fmt: skip


def _track(d: Mapping[str, Any]) -> Track:
    return Track(
        id=d["id"],
        title=d["title"],
        artist_ids=tuple(d.get("artist_ids") or ()),
        moods=tuple(d.get("moods") or ()),
        genres=tuple(d.get("genres") or ()),
        **{f: d.get(f) for f in _TRACK_FIELDS},
    )


def _playlist(d: Mapping[str, Any]) -> Playlist:
    return Playlist(
        id=d["id"],
        owner_id=d["owner_id"],
        name=d["name"],
        description=d.get("description") or "",
        public=bool(d["public"]),
        created_at=d["created_at"],
        updated_at=d["updated_at"],
    )


def _listen(d: Mapping[str, Any]) -> Listen:
    return Listen(
        user_id=d["user_id"],
        track_id=d["track_id"],
        listened_at=d["listened_at"],
        source=d["source"],
        ms_played=d.get("ms_played"),
        skipped=bool(d.get("skipped")),
    )


def _aggregate(d: Mapping[str, Any]) -> ListenAggregate:
    return ListenAggregate(
        user_id=d["user_id"],
        track_id=d["track_id"],
        count=d["count"],
        skips=d["skips"],
        first_at=d["first_at"],
        last_at=d["last_at"],
    )


def _artist_listen(d: Mapping[str, Any]) -> ArtistListen:
    return ArtistListen(user_id=d["user_id"], artist_id=d["artist_id"], count=d["count"])


def _state(d: Mapping[str, Any]) -> EnrichmentState:
    return EnrichmentState(
        track_id=d["track_id"],
        source=d["source"],
        status=EnrichmentStatus(d["status"]),
        attempts=d.get("attempts") or 0,
        last_error=d.get("last_error"),
        updated_at=d.get("updated_at") or 0,
        not_before=d.get("not_before") or 0,
    )


def _tagging(kind: ItemKind) -> Callable[[Mapping[str, Any]], Tagging]:
    def make(d: Mapping[str, Any]) -> Tagging:
        return Tagging(item_kind=kind, item_id=d["item_id"], tag=d["tag"], count=d["count"])

    return make


def _similarity(kind: ItemKind) -> Callable[[Mapping[str, Any]], Similarity]:
    def make(d: Mapping[str, Any]) -> Similarity:
        return Similarity(
            item_kind=kind,
            source_id=d["source_id"],
            target_id=d["target_id"],
            score=d["score"],
            source=d["source"],
        )

    return make


def _translate(exc: Exception, what: str, where: str) -> StoreError:
    """A neo4j driver error as the store error a caller can act on."""
    if isinstance(exc, ServiceUnavailable | SessionExpired | OSError):
        return StoreUnavailableError(f"Neo4j at {where} cannot be reached while {what}: {exc}")
    if isinstance(exc, ConstraintError):
        return ConflictError(f"Neo4j at {where} refused {what}: {exc.message or exc}")
    if isinstance(exc, Neo4jError):
        return StoreError(f"Neo4j at {where} failed {what}: {exc.code}: {exc.message or exc}")
    return StoreError(f"Neo4j at {where} failed {what}: {exc}")


class Neo4jGraphStore:
    """The :class:`~musicgraph.graph.base.GraphStore` on Neo4j 5 (Community, Enterprise or Aura)."""

    def __init__(
        self, driver: AsyncDriver, *, database: str = "neo4j", owns_driver: bool = False
    ) -> None:
        self._driver = driver
        self._database = database
        self._owns_driver = owns_driver
        self._opened = False
        self._closed = False
        # Track refs this store has resolved in committed batches, and the track they named:
        # imports repeat the same refs batch after batch, and a ref keeps resolving to the same
        # track, so those skip the catalogue lookup (the SQLite store does the same).
        self._resolved: dict[TrackRef, str] = {}
        # The same by ref object (importers hand out one object per distinct track); it keeps
        # the ref alive, so its id() is not reused while cached.
        self._resolved_objects: dict[int, tuple[TrackRef, str]] = {}
        # Element ids of the tracks in committed batches (by track id): WRITE_LISTENS finds a
        # track by element id, a record read instead of an index seek. Cleared with _resolved.
        self._track_eids: dict[str, str] = {}

    @property
    def _where(self) -> str:
        return f"database {self._database!r}"

    # --- plumbing ------------------------------------------------------------------------------

    def _session(self, *, read: bool = False, fetch_size: int | None = None) -> AsyncSession:
        """A session on the store's database. Server notifications are off: on a young database
        every query naming a property no node has yet would log a warning."""
        config: dict[str, Any] = {
            "database": self._database,
            "notifications_min_severity": "OFF",
        }
        if read:
            config["default_access_mode"] = READ_ACCESS
        if fetch_size is not None:
            config["fetch_size"] = fetch_size
        return self._driver.session(**config)

    async def _read(self, query: str, what: str, /, **params: Any) -> list[Row]:
        """Run a read query as a managed read transaction (routed to a reader in a cluster)."""

        async def work(tx: AsyncManagedTransaction) -> list[Row]:
            return await _run(tx, query, **params)

        try:
            async with self._session(read=True) as session:
                return await session.execute_read(work)
        except (DriverError, Neo4jError, OSError) as exc:
            raise _translate(exc, what, self._where) from exc

    async def _write(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]], what: str) -> T:
        """Run ``work`` as one managed write transaction (retried on transient errors)."""
        try:
            async with self._session() as session:
                return await session.execute_write(work)
        except MusicgraphError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"{what}: {exc}") from exc
        except (DriverError, Neo4jError, OSError) as exc:
            raise _translate(exc, what, self._where) from exc

    async def _write_query(self, query: str, what: str, /, **params: Any) -> list[Row]:
        async def work(tx: AsyncManagedTransaction) -> list[Row]:
            return await _run(tx, query, **params)

        return await self._write(work, what)

    async def _stream(
        self,
        query: str,
        make: Callable[[Mapping[str, Any]], T],
        chunk_size: int,
        what: str,
        **params: Any,
    ) -> AsyncIterator[list[T]]:
        if chunk_size <= 0:
            raise StoreError(f"{what}: chunk_size must be positive, got {chunk_size}")
        try:
            async with self._session(read=True, fetch_size=min(chunk_size, 10_000)) as session:
                result = await session.run(query, params)
                chunk: list[T] = []
                async for record in result:
                    chunk.append(make(record["row"]))
                    if len(chunk) >= chunk_size:
                        yield chunk
                        chunk = []
                if chunk:
                    yield chunk
        except (DriverError, Neo4jError, OSError) as exc:
            raise _translate(exc, what, self._where) from exc

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        # Schema statements cannot share a transaction with each other or with data: each runs
        # on its own (auto-commit). Only missing ones run, so opening a ready database is cheap.
        statement = cypher.SHOW_INDEX_NAMES
        try:
            async with self._session() as session:
                names = set((await (await session.run(statement)).single(strict=True))["names"])
                statement = cypher.SHOW_CONSTRAINT_NAMES
                names |= set((await (await session.run(statement)).single(strict=True))["names"])
                missing = [text for name, text in cypher.SCHEMA.items() if name not in names]
                for statement in missing:
                    await (await session.run(statement)).consume()
                if missing:
                    statement = cypher.AWAIT_INDEXES
                    await (await session.run(statement, seconds=INDEX_WAIT_S)).consume()
        except (DriverError, Neo4jError, OSError) as exc:
            raise _translate(
                exc, f"creating the schema ({statement.strip()})", self._where
            ) from exc
        self._opened = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_driver:
            await self._driver.close()

    async def __aenter__(self) -> Neo4jGraphStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def data_version(self) -> int | None:
        # Neo4j has no change counter readable without a round trip: callers must not cache.
        return None

    async def ping(self) -> None:
        # One auto-commit round trip, no managed retries: a health probe must answer promptly.
        try:
            async with self._session(read=True) as session:
                result = await session.run(cypher.PING)
                await result.consume()
        except (DriverError, Neo4jError, OSError) as exc:
            raise _translate(exc, "answering a ping", self._where) from exc

    async def counts(self) -> GraphCounts:
        row = (await self._read(cypher.COUNTS, "counting nodes and edges"))[0]
        enrichment = await self.enrichment_counts()
        return GraphCounts(
            users=row["users"],
            artists=row["artists"],
            tracks=row["tracks"],
            tags=row["tags"],
            playlists=row["playlists"],
            listens=row["played"] - row["skips"],
            skips=row["skips"],
            listened=row["listened"],
            artist_listens=row["artist_listens"],
            track_artists=row["track_artists"],
            taggings=row["taggings"],
            friendships=row["friendships"],
            ratings=row["ratings"],
            playlist_entries=row["playlist_entries"],
            similarities=row["similarities"],
            enrichment={
                f"{source}:{status}": n
                for source, by_status in enrichment.items()
                for status, n in by_status.items()
            },
        )

    # --- users -----------------------------------------------------------------------------------

    async def create_user(
        self,
        name: str,
        *,
        public: bool = False,
        token_hash: str | None = None,
        created_at: int | None = None,
    ) -> User:
        if not name or not name.strip():
            raise StoreError("create_user: the user name is blank")
        params = {
            "id": identity.user_id_for(name),
            "name": name.strip(),
            "name_key": identity.normalise(name),
            "created_at": _now() if created_at is None else created_at,
            "public": public,
            "token_hash": token_hash,
        }
        try:
            rows = await self._write_query(cypher.CREATE_USER, f"creating user {name!r}", **params)
        except ConflictError as exc:
            if "token_hash" in str(exc):
                raise ConflictError("create_user: that token hash belongs to another user") from exc
            raise ConflictError(f"user name {name.strip()!r} is already taken") from exc
        return _user(rows[0]["user"])

    async def ensure_users(self, names: Sequence[str], *, public: bool = False) -> list[User]:
        if not names:
            return []
        now = _now()
        rows = []
        for i, name in enumerate(names):
            if not name or not name.strip():
                raise StoreError(f"ensure_users: name {i} is blank")
            rows.append(
                {
                    "i": i,
                    "id": identity.user_id_for(name),
                    "name": name.strip(),
                    "name_key": identity.normalise(name),
                    "created_at": now,
                    "public": public,
                }
            )

        async def work(tx: AsyncManagedTransaction) -> list[User]:
            out: list[User | None] = [None] * len(rows)
            for chunk in _chunks(rows):
                for r in await _run(tx, cypher.ENSURE_USERS, rows=list(chunk)):
                    out[r["i"]] = _user(r["user"])
            return [u for u in out if u is not None]

        return await self._write(work, f"ensuring {len(rows)} users")

    async def get_users(self, ids: Sequence[str]) -> list[User | None]:
        if not ids:
            return []
        rows = await self._read(cypher.GET_USERS, "reading users", ids=list(ids))
        found = {r["user"]["id"]: _user(r["user"]) for r in rows}
        return [found.get(i) for i in ids]

    async def get_user_by_name(self, name: str) -> User | None:
        rows = await self._read(
            cypher.GET_USER_BY_NAME_KEY, "finding a user", name_key=identity.normalise(name)
        )
        return _user(rows[0]["user"]) if rows else None

    async def get_user_by_token_hash(self, token_hash: str) -> User | None:
        rows = await self._read(
            cypher.GET_USER_BY_TOKEN_HASH, "finding a user by token", token_hash=token_hash
        )
        return _user(rows[0]["user"]) if rows else None

    async def set_user_token_hash(self, user_id: str, token_hash: str | None) -> None:
        try:
            rows = await self._write_query(
                cypher.SET_USER_TOKEN_HASH,
                f"setting the token of user {user_id!r}",
                id=user_id,
                token_hash=token_hash,
            )
        except ConflictError as exc:
            raise ConflictError(
                "set_user_token_hash: that token hash belongs to another user"
            ) from exc
        if not rows or rows[0]["n"] == 0:
            raise NotFoundError(f"unknown user id(s): {user_id}")

    async def set_user_public(self, user_id: str, public: bool) -> None:
        rows = await self._write_query(
            cypher.SET_USER_PUBLIC, f"updating user {user_id!r}", id=user_id, public=public
        )
        if not rows or rows[0]["n"] == 0:
            raise NotFoundError(f"unknown user id(s): {user_id}")

    async def list_users(self, *, offset: int = 0, limit: int = 100) -> list[User]:
        rows = await self._read(
            cypher.LIST_USERS, "listing users", offset=max(0, offset), limit=max(0, limit)
        )
        return [_user(r["user"]) for r in rows]

    async def count_users(self) -> int:
        return int((await self._read(cypher.COUNT_USERS, "counting users"))[0]["n"])

    # --- catalogue ---------------------------------------------------------------------------------

    async def upsert_artists(self, artists: Sequence[ArtistRef]) -> list[Artist]:
        if not artists:
            return []

        async def work(tx: AsyncManagedTransaction) -> list[Artist]:
            clean = [resolution.clean_artist(a, f"artist {i}") for i, a in enumerate(artists)]
            keys = resolution.artist_keys(clean)
            catalogue = resolution.Catalogue(await _load_artists(tx, keys), ())
            plan = resolution.plan_artists(clean, catalogue)
            await _apply_plan(tx, plan)
            out = []
            for artist_id in plan.ids:
                a = catalogue.artists[artist_id]
                out.append(Artist(a.id, a.name, a.mbid, a.spotify_id, a.url))
            return out

        return await self._write(work, f"upserting {len(artists)} artists")

    async def resolve_tracks(self, refs: Sequence[TrackRef]) -> list[Track]:
        if not refs:
            return []

        async def work(tx: AsyncManagedTransaction) -> list[Track]:
            clean = [resolution.clean_track(r, f"track {i}") for i, r in enumerate(refs)]
            plan, _ = await _plan_tracks(tx, clean)
            await _apply_plan(tx, plan)
            unique = list(dict.fromkeys(plan.ids))
            found: dict[str, Track] = {}
            for chunk in _chunks(unique):
                for r in await _run(tx, cypher.GET_TRACKS, ids=list(chunk)):
                    found[r["track"]["id"]] = _track(r["track"])
            return [found[i] for i in plan.ids]

        return await self._write(work, f"resolving {len(refs)} tracks")

    async def get_artists(self, ids: Sequence[str]) -> list[Artist | None]:
        if not ids:
            return []
        rows = await self._read(cypher.GET_ARTISTS, "reading artists", ids=list(ids))
        found = {r["artist"]["id"]: _artist(r["artist"]) for r in rows}
        return [found.get(i) for i in ids]

    async def get_tracks(self, ids: Sequence[str]) -> list[Track | None]:
        if not ids:
            return []
        rows = await self._read(cypher.GET_TRACKS, "reading tracks", ids=list(ids))
        found = {r["track"]["id"]: _track(r["track"]) for r in rows}
        return [found.get(i) for i in ids]

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
        queries = {
            "mbid": cypher.FIND_TRACKS_BY_MBID,
            "isrc": cypher.FIND_TRACKS_BY_ISRC,
            "spotify_id": cypher.FIND_TRACKS_BY_SPOTIFY_ID,
        }
        given = [(field, value) for field, value in wanted.items() if value is not None]
        if not given:
            return []
        field, value = given[0]
        rows = await self._read(queries[field], "finding tracks", value=value)
        tracks = [_track(r["track"]) for r in rows]
        return [t for t in tracks if all(getattr(t, f) == v for f, v in given)]

    async def search_artists(self, query: str, *, offset: int = 0, limit: int = 20) -> list[Artist]:
        rows = await self._read(
            cypher.SEARCH_ARTISTS,
            "searching artists",
            query=identity.normalise(query),
            offset=max(0, offset),
            limit=max(0, limit),
        )
        return [_artist(r["artist"]) for r in rows]

    async def count_search_artists(self, query: str) -> int:
        rows = await self._read(
            cypher.COUNT_SEARCH_ARTISTS, "counting artists", query=identity.normalise(query)
        )
        return int(rows[0]["n"])

    async def search_tracks(self, query: str, *, offset: int = 0, limit: int = 20) -> list[Track]:
        rows = await self._read(
            cypher.SEARCH_TRACKS,
            "searching tracks",
            query=identity.normalise(query),
            offset=max(0, offset),
            limit=max(0, limit),
        )
        return [_track(r["track"]) for r in rows]

    async def count_search_tracks(self, query: str) -> int:
        rows = await self._read(
            cypher.COUNT_SEARCH_TRACKS, "counting tracks", query=identity.normalise(query)
        )
        return int(rows[0]["n"])

    async def tracks_by_artists(
        self, artist_ids: Sequence[str], *, limit: int = 100
    ) -> list[list[Track]]:
        if not artist_ids:
            return []
        rows = await self._read(
            cypher.TRACKS_BY_ARTISTS,
            "reading tracks by artist",
            ids=list(artist_ids),
            limit=max(0, limit),
        )
        out: list[list[Track]] = [[] for _ in artist_ids]
        for r in rows:
            out[r["i"]] = [_track(t) for t in r["tracks"]]
        return out

    async def count_tracks_by_artists(self, artist_ids: Sequence[str]) -> list[int]:
        if not artist_ids:
            return []
        rows = await self._read(
            cypher.COUNT_TRACKS_BY_ARTISTS, "counting tracks by artist", ids=list(artist_ids)
        )
        out = [0] * len(artist_ids)
        for r in rows:
            out[r["i"]] = int(r["n"])
        return out

    async def update_tracks(self, updates: Sequence[TrackUpdate]) -> None:
        rows = []
        for i, u in enumerate(updates):
            props: dict[str, Any] = {}
            for f in _UPDATE_FIELDS:
                value = getattr(u, f)
                if value is not None:
                    props[f] = list(value) if isinstance(value, tuple) else value
            try:
                for f, clean in _IDENTIFIERS.items():
                    if f in props:
                        props[f] = clean(props[f])
            except ValueError as exc:
                raise StoreError(f"update_tracks: update {i} (track {u.track_id}): {exc}") from exc
            if props:
                rows.append({"id": u.track_id, "props": props})
        if not rows:
            return

        async def work(tx: AsyncManagedTransaction) -> None:
            for chunk in _chunks(rows):
                await _run(tx, cypher.UPDATE_TRACKS, rows=list(chunk))

        await self._write(work, f"updating {len(rows)} tracks")

    # --- listens -----------------------------------------------------------------------------------

    async def record_listens(self, listens: Sequence[ListenInput]) -> ListenBatchResult:
        return await self.record_listen_columns(ListenColumns.of(listens))

    async def record_listen_columns(
        self, batch: ListenColumns, *, enrich_sources: Sequence[str] = ()
    ) -> ListenBatchResult:
        if not len(batch):
            return ListenBatchResult(inserted=0, duplicates=0, track_ids=(), new_mask=())
        try:
            batch.check()
        except ValueError as exc:
            raise StoreError(f"record_listens: {exc}") from exc
        sources = list(dict.fromkeys(enrich_sources))

        async def work(tx: AsyncManagedTransaction) -> ListenBatchResult:
            return await self._write_listen_batch(tx, batch, sources, resolved, track_eids)

        resolved: dict[TrackRef, str] = {}
        track_eids: dict[str, str] = {}
        what = f"recording {len(batch)} listens"
        try:
            result = await self._write(work, what)
        except _StaleTrackError:
            # Forget what this store remembered about tracks and resolve the batch afresh.
            self._resolved.clear()
            self._resolved_objects.clear()
            self._track_eids.clear()
            try:
                result = await self._write(work, what)
            except _StaleTrackError as exc:
                raise StoreError(f"{what}: {exc}") from exc
        if len(self._resolved) + len(resolved) > RESOLVED_CACHE:
            self._resolved.clear()
            self._resolved_objects.clear()
            self._track_eids.clear()
        # Only now: the batch is committed.
        self._resolved.update(resolved)
        self._resolved_objects.update((id(ref), (ref, t)) for ref, t in resolved.items())
        self._track_eids.update(track_eids)
        return result

    async def _write_listen_batch(
        self,
        tx: AsyncManagedTransaction,
        batch: ListenColumns,
        sources: list[str],
        resolved: dict[TrackRef, str],
        track_eids: dict[str, str],
    ) -> ListenBatchResult:
        """One try of ``record_listen_columns``' transaction; ``resolved`` and ``track_eids``
        receive what the caller remembers once it commits."""
        n = len(batch)
        refs = batch.refs
        # A ref object seen in a committed batch is found without hashing the dataclass.
        hits = list(map(self._resolved_objects.get, map(id, refs)))
        ref_ids: list[str | None] = [
            hit[1] if hit is not None and hit[0] is ref else self._resolved.get(ref)
            for hit, ref in zip(hits, refs, strict=True)
        ]
        new_slots = [j for j, track_id in enumerate(ref_ids) if track_id is None]
        clean: list[resolution.CleanTrack] = []
        for j in new_slots:
            cleaned = resolution.clean_track_or_reason(refs[j])
            if isinstance(cleaned, str):
                raise ValueError(f"listen {batch.first_listen_of(j)}: {cleaned}")
            clean.append(cleaned)
        user_ids = list(batch.user_ids)
        ats = list(batch.listened_at)
        single_user = user_ids.count(user_ids[0]) == n
        newest_in_batch: dict[str, int] = {}
        if single_user:
            newest_in_batch[user_ids[0]] = max(ats)
        else:
            for user_id, at in zip(user_ids, ats, strict=True):
                if at > newest_in_batch.get(user_id, at - 1):
                    newest_in_batch[user_id] = at
        # Lock the users first (sorted, so concurrent batches queue instead of deadlocking):
        # it both proves they exist and keeps "already stored" true until the commit.
        locked_ids = sorted(newest_in_batch)
        locked = (await _run(tx, cypher.LOCK_USERS, ids=locked_ids, newest=newest_in_batch))[0][
            "users"
        ]
        _raise_missing("user", locked_ids, (u["id"] for u in locked))
        # The newest listen each user had stored (None: unknown, so check every listen).
        newest: dict[str, int | None] = {
            u["id"]: (u["newest"] if u["has_played"] else -1) for u in locked
        }
        plan, eids = await _plan_tracks(tx, clean)
        eids.update(await _apply_plan(tx, plan, sources))
        for j, track_id in zip(new_slots, plan.ids, strict=True):
            ref_ids[j] = track_id
        resolved.clear()
        resolved.update((refs[j], plan.ids[k]) for k, j in enumerate(new_slots))
        slot_ids = cast(list[str], ref_ids)
        track_ids = list(map(slot_ids.__getitem__, batch.tracks))
        user_eids = {u["id"]: u["eid"] for u in locked}
        known_eids = self._track_eids
        unknown = {t for t in slot_ids if t not in eids and t not in known_eids}
        for missing in _chunks(sorted(unknown)):
            rows = await _run(tx, cypher.TRACK_ELEMENT_IDS, ids=list(missing))
            eids.update(rows[0]["eids"])
        track_eids.clear()
        track_eids.update(eids)
        # Group the batch by (user, track); a repeat inside the batch: the first one counts
        # (one user at n different times cannot repeat).
        groups: dict[tuple[str, str], list[int]] = {}
        if single_user and len(set(ats)) == n:
            user_id = user_ids[0]
            for i, track_id in enumerate(track_ids):
                members = groups.get((user_id, track_id))
                if members is None:
                    groups[(user_id, track_id)] = [i]
                else:
                    members.append(i)
        else:
            seen: set[tuple[str, str, int]] = set()
            for i, key in enumerate(zip(user_ids, track_ids, ats, strict=True)):
                if key not in seen:
                    seen.add(key)
                    groups.setdefault(key[:2], []).append(i)
        pairs = list(groups.items())
        # A group entirely newer than its user's newest stored listen cannot be stored:
        # chronological imports and live scrobbles skip the lookup.
        probe = []
        floor = newest.get(user_ids[0]) if single_user else None
        everything_newer = floor is not None and min(ats) > floor
        for g, ((user_id, track_id), members) in enumerate(pairs):
            if everything_newer:  # one user's batch after all they had stored: no loop
                break
            group_ats = [ats[i] for i in members]
            floor = newest.get(user_id)
            if floor is not None and min(group_ats) > floor:
                continue
            probe.append(
                {
                    "g": g,
                    "user_id": user_id,
                    "track_id": track_id,
                    "ats": group_ats,
                    "first_at": min(group_ats),
                    "last_at": max(group_ats),
                }
            )
        stored: dict[int, set[int]] = {}
        for chunk in _chunks(probe):
            for found in (await _run(tx, cypher.STORED_LISTENS, groups=chunk))[0]["stored"]:
                stored[found["g"]] = set(found["ats"])
        batch_sources = list(batch.sources)
        source = batch_sources[0]
        same_source = batch_sources.count(source) == n
        ms_played = list(batch.ms_played)
        any_ms = ms_played.count(None) != n
        any_skipped = any(batch.skipped)
        skipped = [bool(s) for s in batch.skipped] if any_skipped else []
        new_mask = [False] * n
        writes: list[Row] = []
        for g, ((user_id, track_id), members) in enumerate(pairs):
            known_ats = stored.get(g)
            fresh = [i for i in members if ats[i] not in known_ats] if known_ats else members
            if not fresh:
                continue
            fresh_ats = [ats[i] for i in fresh]
            skips = sum(skipped[i] for i in fresh) if any_skipped else 0
            writes.append(
                {
                    "u": user_eids[user_id],
                    "t": eids.get(track_id) or known_eids.get(track_id),
                    "track_id": track_id,
                    "count": len(fresh) - skips,
                    "skips": skips,
                    "first_at": min(fresh_ats),
                    "last_at": max(fresh_ats),
                    "ats": fresh_ats,
                    "src": None if same_source else [batch_sources[i] for i in fresh],
                    "ms": [ms_played[i] for i in fresh] if any_ms else None,
                    "sk": [skipped[i] for i in fresh] if any_skipped else None,
                }
            )
            for i in fresh:
                new_mask[i] = True
        inserted = sum(new_mask)
        written = 0
        for part in _chunks(writes):
            rows = await _run(tx, cypher.WRITE_LISTENS, rows=list(part), source=source)
            written += rows[0]["written"]
        if written != inserted:
            # A remembered track is gone (or its element id now names another node).
            raise _StaleTrackError(
                f"{inserted - written} listen(s) name tracks that no longer exist"
            )
        return ListenBatchResult(
            inserted=inserted,
            duplicates=n - inserted,
            track_ids=tuple(track_ids),
            new_mask=tuple(new_mask),
            new_track_ids=tuple(t.id for t in plan.new_tracks),
        )

    async def set_artist_listens(self, rows: Sequence[ArtistListen]) -> None:
        if not rows:
            return
        data = [{"user_id": r.user_id, "artist_id": r.artist_id, "count": r.count} for r in rows]

        async def work(tx: AsyncManagedTransaction) -> None:
            await _require(tx, "user", {r.user_id for r in rows})
            await _require(tx, "artist", {r.artist_id for r in rows})
            await _run_rows(tx, cypher.SET_ARTIST_LISTENS, data)

        await self._write(work, "set_artist_listens")

    async def recent_listens(
        self,
        user_id: str,
        *,
        before: int | None = None,
        limit: int = 20,
        include_skips: bool = False,
    ) -> list[Listen]:
        rows = await self._read(
            cypher.RECENT_LISTENS,
            "reading recent listens",
            user_id=user_id,
            before=before,
            limit=max(0, limit),
            include_skips=include_skips,
        )
        return [_listen(r["listen"]) for r in rows]

    async def count_listens(self, user_id: str, *, include_skips: bool = False) -> int:
        rows = await self._read(
            cypher.COUNT_LISTENS, "counting listens", user_id=user_id, include_skips=include_skips
        )
        return int(rows[0]["n"])

    async def listens_between(self, user_id: str, start: int, end: int) -> list[Listen]:
        rows = await self._read(
            cypher.LISTENS_BETWEEN, "reading listens", user_id=user_id, start=start, end=end
        )
        return [_listen(r["listen"]) for r in rows]

    async def get_aggregates(self, user_ids: Sequence[str]) -> list[list[ListenAggregate]]:
        if not user_ids:
            return []
        rows = await self._read(cypher.GET_AGGREGATES, "reading aggregates", ids=list(user_ids))
        out: list[list[ListenAggregate]] = [[] for _ in user_ids]
        for r in rows:
            out[r["i"]] = [_aggregate(a) for a in r["rows"]]
        return out

    async def top_artists(self, user_ids: Sequence[str], *, limit: int) -> list[list[ArtistListen]]:
        if not user_ids:
            return []
        rows = await self._read(cypher.TOP_ARTISTS, "reading top artists", ids=list(user_ids))
        out: list[list[ArtistListen]] = [[] for _ in user_ids]
        for r in rows:
            out[r["i"]] = rank_top_artists(
                user_ids[r["i"]],
                [(a, int(c)) for a, c in r["tracks"]],
                [(a, int(c)) for a, c in r["artists"]],
                limit,
            )
        return out

    async def get_artist_listens(self, user_ids: Sequence[str]) -> list[list[ArtistListen]]:
        if not user_ids:
            return []
        rows = await self._read(
            cypher.GET_ARTIST_LISTENS, "reading artist listens", ids=list(user_ids)
        )
        out: list[list[ArtistListen]] = [[] for _ in user_ids]
        for r in rows:
            out[r["i"]] = [_artist_listen(a) for a in r["rows"]]
        return out

    # --- tags, friends, ratings, similarity ----------------------------------------------------------

    async def set_tags(self, rows: Sequence[Tagging]) -> None:
        by_kind: dict[str, list[Row]] = {"artist": [], "track": []}
        for i, r in enumerate(rows):
            tag = identity.normalise(r.tag or "")
            if not tag:
                raise StoreError(f"set_tags: row {i} ({r.item_kind} {r.item_id}) has a blank tag")
            by_kind[_kind(r.item_kind)].append({"item_id": r.item_id, "tag": tag, "count": r.count})
        if not rows:
            return

        async def work(tx: AsyncManagedTransaction) -> None:
            await _require(tx, "artist", {r["item_id"] for r in by_kind["artist"]})
            await _require(tx, "track", {r["item_id"] for r in by_kind["track"]})
            await _run_rows(tx, cypher.SET_ARTIST_TAGS, by_kind["artist"])
            await _run_rows(tx, cypher.SET_TRACK_TAGS, by_kind["track"])

        await self._write(work, "set_tags")

    async def get_tags(self, kind: ItemKind, item_ids: Sequence[str]) -> list[list[Tagging]]:
        if not item_ids:
            return []
        query = cypher.GET_ARTIST_TAGS if _kind(kind) == "artist" else cypher.GET_TRACK_TAGS
        rows = await self._read(query, "reading tags", ids=list(item_ids))
        make = _tagging(kind)
        out: list[list[Tagging]] = [[] for _ in item_ids]
        for r in rows:
            out[r["i"]] = [make(t) for t in r["rows"]]
        return out

    async def items_tagged(
        self, tag: str, kind: ItemKind, *, offset: int = 0, limit: int = 20
    ) -> list[str]:
        query = cypher.ARTISTS_TAGGED if _kind(kind) == "artist" else cypher.TRACKS_TAGGED
        rows = await self._read(
            query,
            "reading tagged items",
            tag=identity.normalise(tag),
            offset=max(0, offset),
            limit=max(0, limit),
        )
        return [r["id"] for r in rows]

    async def count_items_tagged(self, tag: str, kind: ItemKind) -> int:
        query = (
            cypher.COUNT_ARTISTS_TAGGED if _kind(kind) == "artist" else cypher.COUNT_TRACKS_TAGGED
        )
        rows = await self._read(query, "counting tagged items", tag=identity.normalise(tag))
        return int(rows[0]["n"])

    async def add_friendships(self, rows: Sequence[Friendship]) -> None:
        if not rows:
            return
        data = [{"user_id": r.user_id, "friend_id": r.friend_id} for r in rows]

        async def work(tx: AsyncManagedTransaction) -> None:
            await _require(tx, "user", {r.user_id for r in rows} | {r.friend_id for r in rows})
            await _run_rows(tx, cypher.ADD_FRIENDSHIPS, data)

        await self._write(work, "add_friendships")

    async def get_friends(self, user_id: str) -> list[str]:
        rows = await self._read(cypher.GET_FRIENDS, "reading friends", user_id=user_id)
        return [r["id"] for r in rows]

    async def set_rating(self, user_id: str, track_id: str, score: int | None, at: int) -> None:
        if score not in (None, 1, -1):
            raise StoreError(f"set_rating: score must be 1, -1 or None, got {score!r}")

        async def work(tx: AsyncManagedTransaction) -> None:
            await _require(tx, "user", [user_id])
            await _require(tx, "track", [track_id])
            if score is None:
                await _run(tx, cypher.CLEAR_RATING, user_id=user_id, track_id=track_id, at=at)
            else:
                await _run(
                    tx, cypher.SET_RATING, user_id=user_id, track_id=track_id, score=score, at=at
                )

        await self._write(work, f"rating track {track_id!r}")

    async def set_ratings(
        self, rows: Sequence[Rating], *, only_newer: bool = False
    ) -> list[Rating]:
        last = last_ratings(rows)  # UNWIND would apply repeats in any order
        if not last:
            return []
        data: list[Row] = [
            {"user_id": r.user_id, "track_id": r.track_id, "score": r.score, "at": r.at}
            for r in last
        ]

        async def work(tx: AsyncManagedTransaction) -> set[tuple[str, str]]:
            await _require(tx, "user", {r.user_id for r in rows})
            await _require(tx, "track", {r.track_id for r in rows})
            done: set[tuple[str, str]] = set()
            for query, part in (
                (cypher.CLEAR_RATINGS, [d for d in data if d["score"] == 0]),
                (cypher.SET_RATINGS, [d for d in data if d["score"] != 0]),
            ):
                for chunk in _chunks(part):
                    found = await _run(tx, query, rows=list(chunk), only_newer=only_newer)
                    done.update((r["user_id"], r["track_id"]) for r in found)
            return done

        done = await self._write(work, f"setting {len(rows)} ratings")
        return [r for r in last if (r.user_id, r.track_id) in done]

    async def get_ratings(self, user_id: str) -> list[Rating]:
        rows = await self._read(cypher.GET_RATINGS, "reading ratings", user_id=user_id)
        return [Rating(r["user_id"], r["track_id"], r["score"], r["at"]) for r in rows]

    async def set_similar(self, rows: Sequence[Similarity]) -> None:
        by_kind: dict[str, list[Row]] = {"artist": [], "track": []}
        for r in rows:
            by_kind[_kind(r.item_kind)].append(
                {
                    "source_id": r.source_id,
                    "target_id": r.target_id,
                    "score": float(r.score),
                    "source": r.source,
                }
            )
        if not rows:
            return

        async def work(tx: AsyncManagedTransaction) -> None:
            for kind, query in (
                ("artist", cypher.SET_ARTIST_SIMILAR),
                ("track", cypher.SET_TRACK_SIMILAR),
            ):
                ends = {r["source_id"] for r in by_kind[kind]} | {
                    r["target_id"] for r in by_kind[kind]
                }
                await _require(tx, kind, ends)
                await _run_rows(tx, query, by_kind[kind])

        await self._write(work, "set_similar")

    async def get_similar(
        self, kind: ItemKind, item_id: str, *, limit: int = 50
    ) -> list[Similarity]:
        query = cypher.GET_ARTIST_SIMILAR if _kind(kind) == "artist" else cypher.GET_TRACK_SIMILAR
        rows = await self._read(
            query, "reading similar items", item_id=item_id, limit=max(0, limit)
        )
        make = _similarity(kind)
        return [make(r) for r in rows]

    # --- playlists -----------------------------------------------------------------------------------

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
        playlist_id = identity.new_playlist_id()

        async def work(tx: AsyncManagedTransaction) -> Playlist:
            await _require(tx, "user", [owner_id])
            await _require(tx, "track", track_ids)
            rows = await _run(
                tx,
                cypher.CREATE_PLAYLIST,
                id=playlist_id,
                owner_id=owner_id,
                name=name.strip(),
                description=description,
                public=public,
                at=when,
            )
            entries = [
                {"track_id": t, "position": i, "added_at": when} for i, t in enumerate(track_ids)
            ]
            for chunk in _chunks(entries):
                await _run(tx, cypher.ADD_PLAYLIST_ENTRIES, id=playlist_id, rows=list(chunk))
            return _playlist(rows[0]["playlist"])

        return await self._write(work, "create_playlist")

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
        rows = await self._write_query(
            cypher.UPDATE_PLAYLIST,
            "update_playlist",
            id=playlist_id,
            name=None if name is None else name.strip(),
            description=description,
            public=public,
            at=_now() if at is None else at,
        )
        if not rows:
            raise NotFoundError(f"unknown playlist id(s): {playlist_id}")
        return _playlist(rows[0]["playlist"])

    async def delete_playlist(self, playlist_id: str) -> bool:
        rows = await self._write_query(cypher.DELETE_PLAYLIST, "delete_playlist", id=playlist_id)
        return bool(rows and rows[0]["n"])

    async def get_playlists(self, ids: Sequence[str]) -> list[Playlist | None]:
        if not ids:
            return []
        rows = await self._read(cypher.GET_PLAYLISTS, "reading playlists", ids=list(ids))
        found = {r["playlist"]["id"]: _playlist(r["playlist"]) for r in rows}
        return [found.get(i) for i in ids]

    async def list_playlists(
        self, owner_id: str, *, include_private: bool = True
    ) -> list[Playlist]:
        rows = await self._read(
            cypher.LIST_PLAYLISTS,
            "listing playlists",
            owner_id=owner_id,
            include_private=include_private,
        )
        return [_playlist(r["playlist"]) for r in rows]

    async def list_public_playlists(self, *, offset: int = 0, limit: int = 20) -> list[Playlist]:
        rows = await self._read(
            cypher.LIST_PUBLIC_PLAYLISTS,
            "listing public playlists",
            offset=max(0, offset),
            limit=max(0, limit),
        )
        return [_playlist(r["playlist"]) for r in rows]

    async def playlist_entries(
        self, playlist_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[PlaylistEntry]:
        rows = await self._read(
            cypher.PLAYLIST_ENTRIES,
            "reading playlist entries",
            id=playlist_id,
            offset=max(0, offset),
            limit=(2**62) if limit is None else max(0, limit),
        )
        return [
            PlaylistEntry(r["playlist_id"], r["track_id"], r["position"], r["added_at"])
            for r in rows
        ]

    async def count_playlist_entries(self, playlist_id: str) -> int:
        rows = await self._read(
            cypher.COUNT_PLAYLIST_ENTRIES, "counting playlist entries", id=playlist_id
        )
        return int(rows[0]["n"])

    async def add_to_playlist(
        self,
        playlist_id: str,
        track_ids: Sequence[str],
        *,
        position: int | None = None,
        at: int | None = None,
    ) -> None:
        when = _now() if at is None else at

        async def work(tx: AsyncManagedTransaction) -> None:
            entries = await _playlist_for_edit(tx, playlist_id)
            await _require(tx, "track", track_ids)
            if not track_ids:
                return
            where = len(entries) if position is None else position
            if not 0 <= where <= len(entries):
                raise StoreError(
                    f"position {where} is outside playlist {playlist_id} "
                    f"(insert positions are 0..{len(entries)})"
                )
            k = len(track_ids)
            shifted = [{"eid": e["eid"], "position": e["position"] + k} for e in entries[where:]]
            await _run_rows(tx, cypher.SET_ENTRY_POSITIONS, shifted)
            added = [
                {"track_id": t, "position": where + j, "added_at": when}
                for j, t in enumerate(track_ids)
            ]
            for chunk in _chunks(added):
                await _run(tx, cypher.ADD_PLAYLIST_ENTRIES, id=playlist_id, rows=list(chunk))
            await _run(tx, cypher.TOUCH_PLAYLIST, id=playlist_id, at=when)

        await self._write(work, "add_to_playlist")

    async def remove_from_playlist(self, playlist_id: str, positions: Sequence[int]) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            entries = await _playlist_for_edit(tx, playlist_id)
            drop = set(positions)
            for p in sorted(drop):
                _check_position(p, len(entries), playlist_id)
            if not drop:
                return
            await _run(tx, cypher.DELETE_PLAYLIST_ENTRIES, eids=[entries[p]["eid"] for p in drop])
            await _renumber(tx, [e for i, e in enumerate(entries) if i not in drop])
            await _run(tx, cypher.TOUCH_PLAYLIST, id=playlist_id, at=_now())

        await self._write(work, "remove_from_playlist")

    async def move_in_playlist(
        self, playlist_id: str, from_position: int, to_position: int
    ) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            entries = await _playlist_for_edit(tx, playlist_id)
            _check_position(from_position, len(entries), playlist_id)
            _check_position(to_position, len(entries), playlist_id)
            if from_position == to_position:
                return
            entry = entries.pop(from_position)
            entries.insert(to_position, entry)
            await _renumber(tx, entries)
            await _run(tx, cypher.TOUCH_PLAYLIST, id=playlist_id, at=_now())

        await self._write(work, "move_in_playlist")

    # --- enrichment queue ----------------------------------------------------------------------------

    async def enqueue_enrichment(self, track_ids: Sequence[str], sources: Sequence[str]) -> int:
        if not track_ids or not sources:
            return 0
        rows = [
            {"key": _enrichment_key(t, s), "track_id": t, "source": s}
            for t in dict.fromkeys(track_ids)
            for s in dict.fromkeys(sources)
        ]
        now = _now()

        async def work(tx: AsyncManagedTransaction) -> int:
            await _require(tx, "track", track_ids)
            added = 0
            for chunk in _chunks(rows):
                result = await tx.run(cypher.ENQUEUE_ENRICHMENT, rows=_QuietList(chunk), now=now)
                added += (await result.consume()).counters.nodes_created
            return added

        return await self._write(work, "enqueue_enrichment")

    async def claim_enrichment(self, source: str, *, limit: int, now: int) -> list[EnrichmentState]:
        rows = await self._write_query(
            cypher.CLAIM_ENRICHMENT,
            "claim_enrichment",
            source=source,
            now=now,
            lease=now + ENRICHMENT_CLAIM_LEASE,
            limit=max(0, limit),
        )
        return [_state(r["state"]) for r in rows]

    async def release_enrichment_leases(self, source: str, *, lease: int, now: int) -> int:
        rows = await self._write_query(
            cypher.RELEASE_ENRICHMENT_LEASES,
            "release_enrichment_leases",
            source=source,
            lease=lease,
            now=now,
        )
        return int(rows[0]["n"]) if rows else 0

    async def set_enrichment_states(self, states: Sequence[EnrichmentState]) -> None:
        if not states:
            return
        rows = [
            {
                "key": _enrichment_key(s.track_id, s.source),
                "track_id": s.track_id,
                "source": s.source,
                "status": EnrichmentStatus(s.status).value,
                "attempts": s.attempts,
                "last_error": s.last_error,
                "updated_at": s.updated_at,
                "not_before": s.not_before,
            }
            for s in states
        ]

        async def work(tx: AsyncManagedTransaction) -> None:
            await _require(tx, "track", {s.track_id for s in states})
            await _run_rows(tx, cypher.SET_ENRICHMENT_STATES, rows)

        await self._write(work, "set_enrichment_states")

    async def get_enrichment_states(self, track_id: str) -> list[EnrichmentState]:
        rows = await self._read(
            cypher.GET_ENRICHMENT_STATES, "reading enrichment states", track_id=track_id
        )
        return [_state(r["state"]) for r in rows]

    async def enrichment_counts(self) -> dict[str, dict[str, int]]:
        rows = await self._read(cypher.ENRICHMENT_COUNTS, "counting enrichment states")
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["source"], {})[r["status"]] = int(r["n"])
        return out

    # --- streaming reads for the projection ------------------------------------------------------------

    def iter_aggregates(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[ListenAggregate]]:
        return self._stream(cypher.STREAM_AGGREGATES, _aggregate, chunk_size, "streaming LISTENED")

    def iter_listens(
        self, *, since: int | None = None, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Listen]]:
        return self._stream(
            cypher.STREAM_LISTENS, _listen, chunk_size, "streaming PLAYED", since=since
        )

    def iter_artist_listens(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[ArtistListen]]:
        return self._stream(
            cypher.STREAM_ARTIST_LISTENS, _artist_listen, chunk_size, "streaming LISTENED_ARTIST"
        )

    def iter_track_artists(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[TrackArtist]]:
        return self._stream(
            cypher.STREAM_TRACK_ARTISTS,
            lambda d: TrackArtist(d["track_id"], d["artist_id"], d["position"] or 0),
            chunk_size,
            "streaming BY",
        )

    def iter_tags(
        self, kind: ItemKind, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Tagging]]:
        query = cypher.STREAM_ARTIST_TAGS if _kind(kind) == "artist" else cypher.STREAM_TRACK_TAGS
        return self._stream(query, _tagging(kind), chunk_size, "streaming TAGGED")

    def iter_friendships(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Friendship]]:
        return self._stream(
            cypher.STREAM_FRIENDSHIPS,
            lambda d: Friendship(d["user_id"], d["friend_id"]),
            chunk_size,
            "streaming FRIEND",
        )

    def iter_ratings(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Rating]]:
        return self._stream(
            cypher.STREAM_RATINGS,
            lambda d: Rating(d["user_id"], d["track_id"], d["score"], d["at"]),
            chunk_size,
            "streaming RATED",
        )

    def iter_playlist_entries(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[PlaylistEntry]]:
        return self._stream(
            cypher.STREAM_PLAYLIST_ENTRIES,
            lambda d: PlaylistEntry(d["playlist_id"], d["track_id"], d["position"], d["added_at"]),
            chunk_size,
            "streaming CONTAINS",
        )

    def iter_similar(
        self, kind: ItemKind, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Similarity]]:
        query = (
            cypher.STREAM_ARTIST_SIMILAR if _kind(kind) == "artist" else cypher.STREAM_TRACK_SIMILAR
        )
        return self._stream(query, _similarity(kind), chunk_size, "streaming SIMILAR")

    def iter_tracks(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Track]]:
        return self._stream(cypher.STREAM_TRACKS, _track, chunk_size, "streaming tracks")

    def iter_artists(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Artist]]:
        return self._stream(cypher.STREAM_ARTISTS, _artist, chunk_size, "streaming artists")

    def iter_users(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[User]]:
        return self._stream(cypher.STREAM_USERS, _user, chunk_size, "streaming users")


# --- transaction helpers (run inside one managed transaction) --------------------------------------


class _QuietList(list[Any]):
    """A parameter list whose ``repr`` is short: the driver formats every RUN's parameters for
    its debug log even when debug logging is off, and for a 20,000-listen batch that costs more
    CPU than encoding them (packstream encodes a subclass exactly as a list)."""

    def __repr__(self) -> str:
        return f"<{len(self)} items>"


class _QuietMap(dict[str, Any]):
    """A parameter map with a short ``repr`` (see :class:`_QuietList`)."""

    def __repr__(self) -> str:
        return f"<map of {len(self)}>"


def _quiet(value: Any) -> Any:
    if value.__class__ is list:
        return _QuietList(value)
    if value.__class__ is dict:
        return _QuietMap(value)
    return value


async def _run(tx: AsyncManagedTransaction, query: str, /, **params: Any) -> list[Row]:
    result = await tx.run(query, {key: _quiet(value) for key, value in params.items()})
    # Queries here return maps and lists, never nodes: skip data()'s recursive conversion.
    return [dict(zip(record.keys(), record.values(), strict=True)) async for record in result]


async def _run_rows(tx: AsyncManagedTransaction, query: str, rows: Sequence[Row]) -> None:
    """One ``UNWIND $rows`` statement per chunk of rows."""
    for chunk in _chunks(rows):
        await _run(tx, query, rows=list(chunk))


_EXISTING = {
    "user": cypher.EXISTING_USERS,
    "artist": cypher.EXISTING_ARTISTS,
    "track": cypher.EXISTING_TRACKS,
    "playlist": cypher.EXISTING_PLAYLISTS,
}


async def _require(tx: AsyncManagedTransaction, kind: str, ids: Iterable[str]) -> None:
    """Raise ``NotFoundError`` naming the ids of ``kind`` that do not exist."""
    wanted = set(ids)
    if not wanted:
        return
    found: set[str] = set()
    for chunk in _chunks(sorted(wanted)):
        rows = await _run(tx, _EXISTING[kind], ids=list(chunk))
        found.update(rows[0]["found"])
    _raise_missing(kind, wanted, found)


class _StaleTrackError(Exception):
    """A track this store remembered from an earlier batch no longer exists as remembered."""


def _raise_missing(kind: str, wanted: Iterable[str], found: Iterable[str]) -> None:
    missing = sorted(set(wanted) - set(found))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise NotFoundError(f"unknown {kind} id(s): {', '.join(missing[:5])}{more}")


async def _load_artists(
    tx: AsyncManagedTransaction, keys: resolution.LookupKeys
) -> list[resolution.KnownArtist]:
    rows = await _run(
        tx, cypher.LOAD_ARTISTS_BY_KEYS, ids=list(keys.artist_ids), mbids=list(keys.artist_mbids)
    )
    return [
        resolution.KnownArtist(a["id"], a["name"], a["mbid"], a["spotify_id"], a["url"])
        for a in rows[0]["artists"]
    ]


async def _plan_tracks(
    tx: AsyncManagedTransaction, clean: Sequence[resolution.CleanTrack]
) -> tuple[resolution.Plan, dict[str, str]]:
    """The plan for ``clean``, and the element ids of the stored tracks it looked at."""
    if not clean:
        return resolution.Plan(), {}
    keys = resolution.track_keys(clean)
    rows = await _run(
        tx,
        cypher.LOAD_TRACKS_BY_KEYS,
        ids=list(keys.track_ids),
        mbids=list(keys.track_mbids),
        isrcs=list(keys.isrcs),
        spotify_ids=list(keys.spotify_ids),
    )
    tracks = [
        resolution.KnownTrack(
            t["id"], t["title"], t["mbid"], t["isrc"], t["spotify_id"], t["duration_ms"], t["album"]
        )
        for t in rows[0]["tracks"]
    ]
    # Only a ref that no stored track answers creates a track, and so needs its artist.
    stored = resolution.Catalogue((), tracks)
    creating = [c.artist for c in clean if not _matches_stored(c, stored)]
    artists = await _load_artists(tx, resolution.artist_keys(creating)) if creating else []
    eids = {t["id"]: t["eid"] for t in rows[0]["tracks"]}
    return resolution.plan_tracks(clean, resolution.Catalogue(artists, tracks)), eids


def _matches_stored(ref: resolution.CleanTrack, cat: resolution.Catalogue) -> bool:
    """Whether the planner will match ``ref`` to a stored track (its lookup order and rules)."""
    if ref.mbid and ref.mbid in cat.track_by_mbid:
        return True
    for candidate in (
        cat.track_by_isrc.get(ref.isrc) if ref.isrc else None,
        cat.track_by_spotify.get(ref.spotify_id) if ref.spotify_id else None,
        cat.tracks.get(ref.key_id),
    ):
        # A candidate without an MBID may take another ref's MBID earlier in the batch and then
        # refuse this one: count a ref with an MBID as matched only by a candidate carrying it.
        if candidate is not None and (not ref.mbid or candidate.mbid == ref.mbid):
            return True
    return False


async def _apply_plan(
    tx: AsyncManagedTransaction, plan: resolution.Plan, sources: Sequence[str] = ()
) -> dict[str, str]:
    """Write ``plan``, queueing the tracks it creates for enrichment by ``sources``; answer the
    element ids of those tracks (by track id)."""
    new_artists: list[Row] = [
        {
            "id": a.id,
            "name": a.name,
            "name_norm": identity.normalise(a.name),
            "mbid": a.mbid,
            "spotify_id": a.spotify_id,
            "url": a.url,
        }
        for a in plan.new_artists
    ]
    for chunk in _chunks(new_artists):
        await _run(tx, cypher.CREATE_ARTISTS, rows=list(chunk))
    filled_artists: list[Row] = [
        {"id": a.id, "mbid": a.mbid, "spotify_id": a.spotify_id, "url": a.url}
        for a in plan.updated_artists
    ]
    for filled in _chunks(filled_artists):
        await _run(tx, cypher.FILL_ARTISTS, rows=list(filled))
    new_tracks: list[Row] = [
        {
            "id": t.id,
            "title": t.title,
            "name_norm": identity.normalise(t.title),
            "mbid": t.mbid,
            "isrc": t.isrc,
            "spotify_id": t.spotify_id,
            "duration_ms": t.duration_ms,
            "album": t.album,
            "artist_id": t.artist_id,
        }
        for t in plan.new_tracks
    ]
    eids: dict[str, str] = {}
    for created in _chunks(new_tracks):
        rows = await _run(
            tx,
            cypher.CREATE_TRACKS,
            rows=list(created),
            sources=list(sources),
            separator=identity.KEY_SEPARATOR,
            now=_now(),
        )
        eids.update(rows[0]["eids"])
    filled_tracks: list[Row] = [
        {
            "id": t.id,
            "mbid": t.mbid,
            "isrc": t.isrc,
            "spotify_id": t.spotify_id,
            "duration_ms": t.duration_ms,
            "album": t.album,
        }
        for t in plan.updated_tracks
    ]
    for filled in _chunks(filled_tracks):
        await _run(tx, cypher.FILL_TRACKS, rows=list(filled))
    return eids


async def _playlist_for_edit(tx: AsyncManagedTransaction, playlist_id: str) -> list[Row]:
    """Write-lock the playlist and read its entries in order."""
    if not await _run(tx, cypher.LOCK_PLAYLIST, id=playlist_id):
        raise NotFoundError(f"unknown playlist id(s): {playlist_id}")
    return await _run(tx, cypher.PLAYLIST_ENTRIES_FOR_EDIT, id=playlist_id)


def _check_position(position: int, size: int, playlist_id: str) -> None:
    if not 0 <= position < size:
        raise StoreError(
            f"position {position} is outside playlist {playlist_id} "
            f"(it has {size} entries, positions 0..{size - 1})"
        )


async def _renumber(tx: AsyncManagedTransaction, entries: Sequence[Row]) -> None:
    changed = [
        {"eid": e["eid"], "position": i} for i, e in enumerate(entries) if e["position"] != i
    ]
    for chunk in _chunks(changed):
        await _run(tx, cypher.SET_ENTRY_POSITIONS, rows=list(chunk))
