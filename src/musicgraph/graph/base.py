"""The ``GraphStore`` protocol: everything the listening graph of DESIGN.md section 2 needs.

Two implementations hold the same model: :class:`~musicgraph.graph.sqlite_store.SqliteGraphStore`
(the embedded default) and :class:`~musicgraph.graph.neo4j_store.Neo4jGraphStore`. The contract tests
in ``tests/contract`` run unchanged against both.

Rules every implementation keeps:

- Every method that takes a sequence writes it as one batch inside one transaction: the batch lands
  whole or not at all (a failure raises :class:`~musicgraph.errors.StoreError` and nothing changes).
- Writes are idempotent where the model has a key: recording the same listen (user, track,
  listened_at) twice adds nothing; upserting the same artist, tag, friendship, rating or similarity
  edge again replaces it.
- Batched reads (``get_users``, ``get_tracks``, ...) return exactly one entry per requested key, in
  the order of the keys, ``None`` for a key that does not exist (what a DataLoader needs).
- ``iter_*`` methods stream a whole edge type in chunks (lists of at most ``chunk_size`` records) so
  the recommender's projection can be built without holding the store's answer twice in memory.
- No method blocks the event loop.
- A write that references a user, track, artist or playlist id that does not exist raises
  :class:`~musicgraph.errors.NotFoundError` naming the id, and writes nothing of its batch (so a
  ``record_listens`` batch with one listen of an unknown user stores none of its listens, tracks
  or artists). So does an unusable value (a blank name or title, an invalid MBID / ISRC / Spotify
  id): :class:`~musicgraph.errors.StoreError` naming the input's index (``listen 3: ...``).
- Identity resolution (which stored artist or track an input names, and the ids of new ones) is
  :mod:`musicgraph.graph.resolution`; both stores use it so they agree on every id.
- Orders not stated on a method: aggregates and artist listens by count descending then id;
  friends by id; ratings newest first; ``list_playlists`` by name; ``list_public_playlists`` most
  recently updated first; similar items by score descending; enrichment states by source.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Iterable, Sequence
from operator import itemgetter
from typing import Protocol, runtime_checkable

from musicgraph.errors import StoreError
from musicgraph.graph.models import (
    Artist,
    ArtistListen,
    ArtistRef,
    EnrichmentState,
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

DEFAULT_CHUNK = 10_000

#: Seconds a claimed enrichment state stays invisible to other claims (a worker that dies
#: mid-job frees its claims when the lease runs out).
ENRICHMENT_CLAIM_LEASE = 600


def last_ratings(rows: Sequence[Rating]) -> list[Rating]:
    """The ratings ``set_ratings`` writes: one per (user, track), the last one given (a store
    that writes a batch in any order must not apply an earlier one last). A score that is not
    1, -1 or 0 is refused."""
    bad = [r.score for r in rows if r.score not in (0, 1, -1)]
    if bad:
        raise StoreError(f"set_ratings: score must be 1, -1 or 0, got {bad[0]!r}")
    return list({(r.user_id, r.track_id): r for r in rows}.values())


def rank_top_artists(
    user_id: str,
    track_counts: Iterable[tuple[str, int]],
    artist_counts: Iterable[tuple[str, int]],
    limit: int,
) -> list[ArtistListen]:
    """The ranking of :meth:`GraphStore.top_artists`, shared by the stores: ``track_counts`` is
    (first artist, count) per LISTENED edge in aggregate order (count descending, then track
    id), ``artist_counts`` the LISTENED_ARTIST edges in their order; sums by artist, by count
    descending, ties in the order the artists first appear in those two sequences."""
    totals: dict[str, int] = {}
    for artist_id, count in (*track_counts, *artist_counts):
        totals[artist_id] = totals.get(artist_id, 0) + count
    ranked = heapq.nlargest(max(limit, 0), totals.items(), key=itemgetter(1))
    return [ArtistListen(user_id, artist_id, count) for artist_id, count in ranked]


@runtime_checkable
class GraphStore(Protocol):
    """Async access to the listening graph. Open with ``await store.open()`` or ``async with``."""

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, create or migrate the schema (idempotently). Safe to call once per instance."""

    async def close(self) -> None:
        """Release connections. The instance cannot be used afterwards."""

    async def ping(self) -> None:
        """Round-trip to the store; raise ``StoreUnavailableError`` when it cannot be reached."""

    def data_version(self) -> int | None:
        """A number that changes whenever anyone (this process or another) commits a change to
        the graph, read without a round trip or blocking, so cheap enough for every request
        (the API's response cache compares it); ``None`` when the store cannot tell cheaply (a
        cache must then not rely on it). Compare values from the same instance only."""

    async def counts(self) -> GraphCounts:
        """Counts per node and edge type, and enrichment states by status (``"source:status"``)."""

    # --- users ----------------------------------------------------------------------------------
    async def create_user(
        self,
        name: str,
        *,
        public: bool = False,
        token_hash: str | None = None,
        created_at: int | None = None,
    ) -> User:
        """Create a user named ``name`` (unique, case-insensitively); ``ConflictError`` if taken."""

    async def ensure_users(self, names: Sequence[str], *, public: bool = False) -> list[User]:
        """Get or create one user per name, in order (importers use this)."""

    async def get_users(self, ids: Sequence[str]) -> list[User | None]: ...

    async def get_user_by_name(self, name: str) -> User | None:
        """Case-insensitive lookup by name."""

    async def get_user_by_token_hash(self, token_hash: str) -> User | None: ...

    async def set_user_token_hash(self, user_id: str, token_hash: str | None) -> None:
        """Replace the user's token hash; ``NotFoundError`` for an unknown user."""

    async def set_user_public(self, user_id: str, public: bool) -> None: ...

    async def list_users(self, *, offset: int = 0, limit: int = 100) -> list[User]:
        """Users ordered by name."""

    async def count_users(self) -> int: ...

    # --- catalogue --------------------------------------------------------------------------------
    async def upsert_artists(self, artists: Sequence[ArtistRef]) -> list[Artist]:
        """Match each artist by MBID then normalised name, create the missing ones, fill in missing
        MBID / Spotify id / url on the matched ones. One result per input, in order."""

    async def resolve_tracks(self, refs: Sequence[TrackRef]) -> list[Track]:
        """Match each ref by MBID, ISRC, Spotify id, then normalised (artist, title); create what is
        missing (with its artist and BY edge) and fill in identifiers the stored track lacks. A name
        match is refused when both sides carry different MBIDs. One result per input, in order."""

    async def get_artists(self, ids: Sequence[str]) -> list[Artist | None]: ...

    async def get_tracks(self, ids: Sequence[str]) -> list[Track | None]: ...

    async def find_tracks(
        self, *, mbid: str | None = None, isrc: str | None = None, spotify_id: str | None = None
    ) -> list[Track]:
        """Tracks carrying the given identifier (at most one per MBID in practice)."""

    async def search_artists(self, query: str, *, offset: int = 0, limit: int = 20) -> list[Artist]:
        """Artists whose normalised name contains the normalised query, best (shortest) first."""

    async def count_search_artists(self, query: str) -> int: ...

    async def search_tracks(self, query: str, *, offset: int = 0, limit: int = 20) -> list[Track]:
        """Tracks whose normalised title contains the normalised query, best (shortest) first."""

    async def count_search_tracks(self, query: str) -> int: ...

    async def tracks_by_artists(
        self, artist_ids: Sequence[str], *, limit: int = 100
    ) -> list[list[Track]]:
        """Per artist, in order, its tracks ordered by title (at most ``limit`` each)."""

    async def count_tracks_by_artists(self, artist_ids: Sequence[str]) -> list[int]: ...

    async def update_tracks(self, updates: Sequence[TrackUpdate]) -> None:
        """Set the non-``None`` fields of each update; unknown track ids are ignored."""

    # --- listens ------------------------------------------------------------------------------------
    async def record_listens(self, listens: Sequence[ListenInput]) -> ListenBatchResult:
        """Resolve the tracks, add the PLAYED edges that are new and fold exactly those into the
        LISTENED aggregates (count for listens, skips for skipped plays). One transaction."""

    async def record_listen_columns(
        self, batch: ListenColumns, *, enrich_sources: Sequence[str] = ()
    ) -> ListenBatchResult:
        """:meth:`record_listens` for a batch held as columns (what importers send): the same
        writes, result and errors (``listen i`` is row ``i``), without an object per listen.
        The tracks it creates are queued for enrichment by ``enrich_sources`` (as
        :meth:`enqueue_enrichment` would) in the same transaction."""

    async def set_artist_listens(self, rows: Sequence[ArtistListen]) -> None:
        """Upsert LISTENED_ARTIST edges, replacing the count (idempotent for re-imports)."""

    async def recent_listens(
        self,
        user_id: str,
        *,
        before: int | None = None,
        limit: int = 20,
        include_skips: bool = False,
    ) -> list[Listen]:
        """The user's history, newest first, strictly older than ``before`` when given."""

    async def count_listens(self, user_id: str, *, include_skips: bool = False) -> int: ...

    async def listens_between(self, user_id: str, start: int, end: int) -> list[Listen]:
        """The user's non-skipped listens with ``start <= listened_at < end``, oldest first."""

    async def get_aggregates(self, user_ids: Sequence[str]) -> list[list[ListenAggregate]]:
        """Per user, in order, their LISTENED edges."""

    async def get_artist_listens(self, user_ids: Sequence[str]) -> list[list[ArtistListen]]: ...

    async def top_artists(self, user_ids: Sequence[str], *, limit: int) -> list[list[ArtistListen]]:
        """Per user, in order, their ``limit`` most played artists of all time: each LISTENED
        count credited to its track's first artist (by position, then id), plus the
        LISTENED_ARTIST counts; ranked as :func:`rank_top_artists` ranks them. One round trip,
        however many tracks the users played."""

    # --- tags, friends, ratings, similarity --------------------------------------------------------
    async def set_tags(self, rows: Sequence[Tagging]) -> None:
        """Upsert TAGGED edges (creating the tags), replacing their count."""

    async def get_tags(self, kind: ItemKind, item_ids: Sequence[str]) -> list[list[Tagging]]:
        """Per item, in order, its TAGGED edges ordered by count descending."""

    async def items_tagged(
        self, tag: str, kind: ItemKind, *, offset: int = 0, limit: int = 20
    ) -> list[str]:
        """Ids of the items carrying ``tag`` (normalised), by count descending."""

    async def count_items_tagged(self, tag: str, kind: ItemKind) -> int: ...

    async def add_friendships(self, rows: Sequence[Friendship]) -> None: ...

    async def get_friends(self, user_id: str) -> list[str]: ...

    async def set_rating(self, user_id: str, track_id: str, score: int | None, at: int) -> None:
        """Like (+1), dislike (-1) or clear (``None``) a track; ``NotFoundError`` for unknown ids.
        A clearing is remembered (its latest ``at``, never read as a rating) for
        :meth:`set_ratings`' ``only_newer``."""

    async def set_ratings(
        self, rows: Sequence[Rating], *, only_newer: bool = False
    ) -> list[Rating]:
        """Many :meth:`set_rating` calls in one transaction: a row scored 1 or -1 likes or
        dislikes its track, a row scored 0 clears the rating. ``NotFoundError`` for unknown
        ids, and then nothing is written. With ``only_newer`` a row replaces or clears the
        stored rating only when its ``at`` is later than the stored one's (a rating written
        meanwhile, e.g. by ``rateTrack`` while an import ran, is kept), and writes a rating only
        when it is later than the user's last clearing of it (an export imported again does not
        bring back a rating cleared since), decided in the writing transaction. Returns the rows
        written: every row but the clears of ratings not stored, and with ``only_newer`` not the
        rows older than the stored rating or the clearing."""

    async def get_ratings(self, user_id: str) -> list[Rating]: ...

    async def set_similar(self, rows: Sequence[Similarity]) -> None:
        """Upsert SIMILAR edges keyed by (kind, source_id, target_id, source)."""

    async def get_similar(
        self, kind: ItemKind, item_id: str, *, limit: int = 50
    ) -> list[Similarity]: ...

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
    ) -> Playlist: ...

    async def update_playlist(
        self,
        playlist_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        public: bool | None = None,
        at: int | None = None,
    ) -> Playlist:
        """``NotFoundError`` for an unknown playlist."""

    async def delete_playlist(self, playlist_id: str) -> bool:
        """True when it existed."""

    async def get_playlists(self, ids: Sequence[str]) -> list[Playlist | None]: ...

    async def list_playlists(
        self, owner_id: str, *, include_private: bool = True
    ) -> list[Playlist]: ...

    async def list_public_playlists(
        self, *, offset: int = 0, limit: int = 20
    ) -> list[Playlist]: ...

    async def playlist_entries(
        self, playlist_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[PlaylistEntry]:
        """Entries ordered by position (0-based, contiguous)."""

    async def count_playlist_entries(self, playlist_id: str) -> int: ...

    async def add_to_playlist(
        self,
        playlist_id: str,
        track_ids: Sequence[str],
        *,
        position: int | None = None,
        at: int | None = None,
    ) -> None:
        """Insert at ``position`` (append when ``None``), shifting later entries; positions stay
        contiguous. ``NotFoundError`` for an unknown playlist or track."""

    async def remove_from_playlist(self, playlist_id: str, positions: Sequence[int]) -> None:
        """Remove the entries at these positions and close the gaps."""

    async def move_in_playlist(
        self, playlist_id: str, from_position: int, to_position: int
    ) -> None: ...

    # --- enrichment queue -------------------------------------------------------------------------------
    async def enqueue_enrichment(self, track_ids: Sequence[str], sources: Sequence[str]) -> int:
        """Add a pending state for every (track, source) pair that has none; returns how many."""

    async def claim_enrichment(self, source: str, *, limit: int, now: int) -> list[EnrichmentState]:
        """Pending (or failed and due: ``not_before <= now``) states of ``source``, oldest
        (``updated_at``) first. Claiming leases them: their ``not_before`` becomes
        ``now + ENRICHMENT_CLAIM_LEASE`` (as returned), so a concurrent claim skips them until the
        worker records a result with ``set_enrichment_states`` or the lease runs out."""

    async def release_enrichment_leases(self, source: str, *, lease: int, now: int) -> int:
        """Make the states of ``source`` a claim leased until exactly ``lease`` (and still
        pending or failed) due at ``now`` again; returns how many. A restarted worker uses it
        for the claim its killed predecessor made but had not yet noted down."""

    async def set_enrichment_states(self, states: Sequence[EnrichmentState]) -> None:
        """Upsert states (the pipeline records done / failed / skipped with attempts and errors)."""

    async def get_enrichment_states(self, track_id: str) -> list[EnrichmentState]: ...

    async def enrichment_counts(self) -> dict[str, dict[str, int]]:
        """Per source, the number of states by status."""

    # --- streaming reads for the projection --------------------------------------------------------------
    def iter_aggregates(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[ListenAggregate]]: ...

    def iter_listens(
        self, *, since: int | None = None, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Listen]]:
        """Non-skipped PLAYED edges ordered by (user_id, listened_at), for session co-listening."""

    def iter_artist_listens(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[ArtistListen]]: ...

    def iter_track_artists(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[TrackArtist]]: ...

    def iter_tags(
        self, kind: ItemKind, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Tagging]]: ...

    def iter_friendships(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Friendship]]: ...

    def iter_ratings(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Rating]]: ...

    def iter_playlist_entries(
        self, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[PlaylistEntry]]: ...

    def iter_similar(
        self, kind: ItemKind, *, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[list[Similarity]]: ...

    def iter_tracks(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Track]]: ...

    def iter_artists(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[Artist]]: ...

    def iter_users(self, *, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[list[User]]: ...
