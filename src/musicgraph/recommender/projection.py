"""The listening graph held in RAM as sparse rows, kept current in place (DESIGN.md section 3).

Serving never queries the store: :class:`Projection` is built once by streaming the store's
``iter_*`` reads (:meth:`Projection.load`) and then updated from events, one edge at a time.

Layout. Every edge type is a :class:`DynamicCSR`: the rows of a sparse matrix packed in one pooled
array (``int32`` column indices, optional ``float32`` weights and ``uint32`` times), each row with a
start, a length and a capacity. A row with room takes a new edge in O(1); a full row moves to the end
of the pool with twice the room (amortised O(1) per edge, like a list); the holes it leaves are
reclaimed by a compaction that runs once they pass a quarter of the pool. So a new listen is an
append, never a rebuild, and a new user or track is a new row. Reads are "merged" by construction:
a row is one slice. Each bipartite edge type is kept in both directions (:class:`Relation`): the
forward rows carry the weights, the reverse rows only the structure, which is what the random walk
and the exact power iteration read.

Edges held (indices into the id maps of users, tracks, artists, tags and playlists):

- ``user_track``: LISTENED (weight = count of non-skipped listens, time = last listen)
- ``user_artist``: track listens summed by the track's primary artist, plus LISTENED_ARTIST counts
- ``track_artist``: the primary artist of every track (an array), and ``artist_track`` rows
- ``track_tag`` / ``artist_tag``: TAGGED counts
- ``friends``: FRIEND, as stored (directed)
- ``playlist_track``: CONTAINS
- ``track_sim`` / ``artist_sim``: SIMILAR scores (the best score over sources)
- ``ratings``: per user, track -> +1 / -1
- audio features of tracks (bpm, energy, valence, key; NaN / -1 where unknown) and display names

Nothing here imports GraphQL or a database driver: the store is only used through the ``iter_*``
methods of the :class:`~musicgraph.graph.base.GraphStore` protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.errors import RecommenderError

if TYPE_CHECKING:
    from musicgraph.graph.base import GraphStore
    from musicgraph.graph.models import ItemKind, Similarity, Track

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]

_MIN_ROW_CAP = 4
_COMPACT_FRACTION = 0.25


def _grow(arr: npt.NDArray[Any], needed: int, fill: Any = 0) -> npt.NDArray[Any]:
    """``arr`` with room for at least ``needed`` entries (grown by half, new room filled)."""
    if needed <= arr.shape[0]:
        return arr
    # grow by an eighth: still amortised O(1) per append, and a big pool stays near its size
    new_size = max(needed, arr.shape[0] + arr.shape[0] // 8 + 1024)
    out = np.full(new_size, fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class DynamicCSR:
    """A sparse matrix whose rows live in one pool, each with room to grow (see module docstring).

    ``weighted`` rows carry ``float32`` weights; ``timed`` rows a ``uint32`` time per edge (the
    last listen). Adding to an existing edge sums the weight and keeps the latest time.
    """

    def __init__(self, n_rows: int, n_cols: int, *, weighted: bool, timed: bool = False) -> None:
        self.n_rows = n_rows
        self.n_cols = n_cols
        self.weighted = weighted
        self.timed = timed
        self.start: I64 = np.zeros(n_rows, dtype=np.int64)
        self.length: I32 = np.zeros(n_rows, dtype=np.int32)
        self.cap: I32 = np.zeros(n_rows, dtype=np.int32)
        self.indices: I32 = np.zeros(0, dtype=np.int32)
        self.weights: F32 | None = np.zeros(0, dtype=np.float32) if weighted else None
        self.times: U32 | None = np.zeros(0, dtype=np.uint32) if timed else None
        self.used = 0  # high-water mark of the pool
        self.nnz = 0
        self.holes = 0
        self.version = 0
        self.compactions = 0
        self._csr: sp.csr_matrix | None = None
        self._csr_version = -1

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def from_coo(
        cls,
        rows: npt.ArrayLike,
        cols: npt.ArrayLike,
        n_rows: int,
        n_cols: int,
        *,
        weights: npt.ArrayLike | None = None,
        times: npt.ArrayLike | None = None,
        weighted: bool = False,
        timed: bool = False,
    ) -> DynamicCSR:
        """Build from edge lists; duplicate (row, col) pairs are merged (weights summed, latest
        time kept). Rows come out sorted by column and packed without room."""
        r = np.asarray(rows, dtype=np.int64)
        c = np.asarray(cols, dtype=np.int64)
        m = cls(n_rows, n_cols, weighted=weighted, timed=timed)
        if r.size == 0:
            return m
        if r.min() < 0 or r.max() >= n_rows or c.min() < 0 or c.max() >= n_cols:
            raise RecommenderError(
                f"edge index out of range building a {n_rows}x{n_cols} projection matrix"
            )
        key = r * np.int64(n_cols) + c
        order = np.argsort(key, kind="stable")
        key = key[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        ukey = key[starts]
        ur = (ukey // n_cols).astype(np.int64)
        m.indices = (ukey % n_cols).astype(np.int32)
        if weighted:
            w = (
                np.ones(r.size, dtype=np.float64)
                if weights is None
                else np.asarray(weights, dtype=np.float64)
            )
            m.weights = np.add.reduceat(w[order], starts).astype(np.float32)
        if timed:
            t = (
                np.zeros(r.size, dtype=np.int64)
                if times is None
                else np.asarray(times, dtype=np.int64)
            )
            m.times = np.maximum.reduceat(np.clip(t[order], 0, 2**32 - 1), starts).astype(np.uint32)
        counts = np.bincount(ur, minlength=n_rows).astype(np.int32)
        m.length = counts
        m.cap = counts.copy()
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        m.start = indptr[:-1].copy()
        m.used = m.nnz = int(ukey.size)
        return m

    def resize(self, n_rows: int | None = None, n_cols: int | None = None) -> None:
        """Make room for new rows (empty) and columns; never shrinks."""
        if n_rows is not None and n_rows > self.n_rows:
            if n_rows > self.start.shape[0]:
                self.start = _grow(self.start, n_rows)
                self.length = _grow(self.length, n_rows)
                self.cap = _grow(self.cap, n_rows)
            self.start[self.n_rows : n_rows] = 0
            self.length[self.n_rows : n_rows] = 0
            self.cap[self.n_rows : n_rows] = 0
            self.n_rows = n_rows
            self.version += 1
        if n_cols is not None and n_cols > self.n_cols:
            self.n_cols = n_cols
            self.version += 1

    # --- reads ----------------------------------------------------------------------------------
    def row(self, r: int) -> I32:
        s = int(self.start[r])
        return self.indices[s : s + int(self.length[r])]

    def row_weights(self, r: int) -> F32:
        s = int(self.start[r])
        if self.weights is None:
            return np.ones(int(self.length[r]), dtype=np.float32)
        return self.weights[s : s + int(self.length[r])]

    def row_times(self, r: int) -> U32:
        s = int(self.start[r])
        if self.times is None:
            return np.zeros(int(self.length[r]), dtype=np.uint32)
        return self.times[s : s + int(self.length[r])]

    def degrees(self) -> I32:
        return self.length[: self.n_rows]

    def find(self, r: int, c: int) -> int:
        """Pool position of edge (r, c), or -1."""
        s = int(self.start[r])
        hit = np.flatnonzero(self.indices[s : s + int(self.length[r])] == c)
        return s + int(hit[0]) if hit.size else -1

    def get(self, r: int, c: int) -> float:
        p = self.find(r, c)
        if p < 0:
            return 0.0
        return 1.0 if self.weights is None else float(self.weights[p])

    def sample(self, rows: I64, u: npt.NDArray[np.float64]) -> I64:
        """One uniformly chosen neighbour per entry of ``rows`` (``u`` uniform in [0, 1)); -1 where
        the row is empty. Vectorised: one gather, no Python loop."""
        deg = self.length[rows].astype(np.int64)
        pos = self.start[rows] + np.minimum((u * deg).astype(np.int64), np.maximum(deg - 1, 0))
        out = self.indices[np.minimum(pos, max(self.used - 1, 0))].astype(np.int64)
        out[deg == 0] = -1
        return out

    def gather_rows(self, rows: npt.ArrayLike) -> tuple[I64, I64]:
        """Every edge of the given rows at once: (column, position of its row in ``rows``)."""
        rows_a = np.asarray(rows, dtype=np.int64)
        length = self.length[rows_a].astype(np.int64)
        offsets = np.zeros(rows_a.size + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        total = int(offsets[-1])
        pos = np.repeat(self.start[rows_a] - offsets[:-1], length) + np.arange(total)
        slot = np.repeat(np.arange(rows_a.size, dtype=np.int64), length)
        return self.indices[pos].astype(np.int64), slot

    def to_csr(self) -> sp.csr_matrix:
        """The matrix as scipy CSR (float32; ones when unweighted). Cached until the next change."""
        if self._csr is not None and self._csr_version == self.version:
            return self._csr
        n = self.n_rows
        length = self.length[:n].astype(np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(length, out=indptr[1:])
        nnz = int(indptr[-1])
        pos = np.repeat(self.start[:n] - indptr[:-1], length) + np.arange(nnz, dtype=np.int64)
        data = np.ones(nnz, dtype=np.float32) if self.weights is None else self.weights[pos].copy()
        m = sp.csr_matrix((data, self.indices[pos].copy(), indptr), shape=(n, self.n_cols))
        self._csr, self._csr_version = m, self.version
        return m

    def to_dict(self) -> dict[tuple[int, int], tuple[float, int]]:
        """Every edge as ``{(row, col): (weight, time)}`` (for tests and debugging)."""
        out: dict[tuple[int, int], tuple[float, int]] = {}
        for r in range(self.n_rows):
            s, n = int(self.start[r]), int(self.length[r])
            for k in range(s, s + n):
                w = 1.0 if self.weights is None else float(self.weights[k])
                t = 0 if self.times is None else int(self.times[k])
                out[(r, int(self.indices[k]))] = (w, t)
        return out

    @property
    def nbytes(self) -> int:
        n = (
            self.start.nbytes
            + self.length.nbytes
            + self.cap.nbytes
            + self.indices.nbytes
            + (self.weights.nbytes if self.weights is not None else 0)
            + (self.times.nbytes if self.times is not None else 0)
        )
        return n

    # --- writes ---------------------------------------------------------------------------------
    def add(self, r: int, c: int, w: float = 1.0, t: int = 0) -> bool:
        """Add ``w`` to edge (r, c) (creating it); True when the edge is new."""
        p = self.find(r, c)
        if p >= 0:
            if self.weights is not None:
                self.weights[p] += w
            if self.times is not None and t > int(self.times[p]):
                self.times[p] = t
            self.version += 1
            return False
        self._append(r, c, w, t)
        return True

    def set(self, r: int, c: int, w: float, t: int = 0) -> bool:
        """Set edge (r, c) to weight ``w`` (creating it); True when the edge is new."""
        p = self.find(r, c)
        if p >= 0:
            if self.weights is not None:
                self.weights[p] = w
            if self.times is not None:
                self.times[p] = max(t, 0)
            self.version += 1
            return False
        self._append(r, c, w, t)
        return True

    def remove(self, r: int, c: int) -> bool:
        """Drop edge (r, c) (the row's last edge takes its place); True when it existed."""
        p = self.find(r, c)
        if p < 0:
            return False
        last = int(self.start[r]) + int(self.length[r]) - 1
        self.indices[p] = self.indices[last]
        if self.weights is not None:
            self.weights[p] = self.weights[last]
        if self.times is not None:
            self.times[p] = self.times[last]
        self.length[r] -= 1
        self.nnz -= 1
        self.version += 1
        return True

    def append(self, r: int, c: int, w: float = 1.0, t: int = 0) -> None:
        """Add edge (r, c) known to be new (no search)."""
        self._append(r, c, w, t)

    def _append(self, r: int, c: int, w: float, t: int) -> None:
        if self.length[r] == self.cap[r]:
            self._relocate(r, max(_MIN_ROW_CAP, 2 * int(self.cap[r])))
        p = int(self.start[r]) + int(self.length[r])
        self.indices[p] = c
        if self.weights is not None:
            self.weights[p] = w
        if self.times is not None:
            self.times[p] = min(max(t, 0), 2**32 - 1)
        self.length[r] += 1
        self.nnz += 1
        self.version += 1

    def _relocate(self, r: int, new_cap: int) -> None:
        if self.holes > _COMPACT_FRACTION * max(self.used, 1) and self.used > 1024:
            self.compact()
        old_s, n, old_cap = int(self.start[r]), int(self.length[r]), int(self.cap[r])
        if old_s + old_cap == self.used:  # the row is last in the pool: grow it where it is
            new_s = old_s
            self.used = old_s + new_cap
        else:
            new_s = self.used
            self.used += new_cap
            self.holes += old_cap
        self.indices = _grow(self.indices, self.used)
        if self.weights is not None:
            self.weights = _grow(self.weights, self.used)
        if self.times is not None:
            self.times = _grow(self.times, self.used)
        if new_s != old_s:
            self.indices[new_s : new_s + n] = self.indices[old_s : old_s + n]
            if self.weights is not None:
                self.weights[new_s : new_s + n] = self.weights[old_s : old_s + n]
            if self.times is not None:
                self.times[new_s : new_s + n] = self.times[old_s : old_s + n]
        self.start[r] = new_s
        self.cap[r] = new_cap

    def compact(self) -> None:
        """Pack every row back to back with no room (reclaims the holes left by moved rows)."""
        n = self.n_rows
        length = self.length[:n].astype(np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(length, out=indptr[1:])
        nnz = int(indptr[-1])
        pos = np.repeat(self.start[:n] - indptr[:-1], length) + np.arange(nnz, dtype=np.int64)
        self.indices = self.indices[pos]
        if self.weights is not None:
            self.weights = self.weights[pos]
        if self.times is not None:
            self.times = self.times[pos]
        self.start = indptr[:-1].copy()
        self.length = self.length[:n].copy()
        self.cap = self.length.copy()
        self.used = self.nnz = nnz
        self.holes = 0
        self.compactions += 1
        self.version += 1

    def set_row(self, r: int, cols: Sequence[int], weights: Sequence[float] | None = None) -> None:
        """Replace row ``r`` with the given edges (used for playlists)."""
        self.holes += int(self.cap[r])
        self.nnz -= int(self.length[r])
        self.length[r] = 0
        self.cap[r] = 0
        self.version += 1
        ws = list(weights) if weights is not None else [1.0] * len(cols)
        for c, w in zip(cols, ws, strict=True):
            self.add(r, int(c), float(w))


class Relation:
    """One bipartite edge type kept in both directions: ``fwd`` (weighted) and ``rev`` (structure)."""

    def __init__(self, fwd: DynamicCSR, rev: DynamicCSR) -> None:
        self.fwd = fwd
        self.rev = rev

    @classmethod
    def from_coo(
        cls,
        rows: npt.ArrayLike,
        cols: npt.ArrayLike,
        n_rows: int,
        n_cols: int,
        *,
        weights: npt.ArrayLike | None = None,
        times: npt.ArrayLike | None = None,
        timed: bool = False,
    ) -> Relation:
        fwd = DynamicCSR.from_coo(
            rows, cols, n_rows, n_cols, weights=weights, times=times, weighted=True, timed=timed
        )
        # the reverse rows hold each forward edge once
        fr = np.repeat(np.arange(n_rows, dtype=np.int64), fwd.length[:n_rows])
        rev = DynamicCSR.from_coo(fwd.indices[: fwd.used], fr, n_cols, n_rows, weighted=False)
        return cls(fwd, rev)

    def resize(self, n_rows: int, n_cols: int) -> None:
        self.fwd.resize(n_rows, n_cols)
        self.rev.resize(n_cols, n_rows)

    def add(self, r: int, c: int, w: float = 1.0, t: int = 0) -> None:
        # the reverse edge exists exactly when the forward one did: no need to search for it
        if self.fwd.add(r, c, w, t):
            self.rev.append(c, r)

    def set(self, r: int, c: int, w: float, t: int = 0) -> None:
        if self.fwd.set(r, c, w, t):
            self.rev.append(c, r)

    def remove(self, r: int, c: int) -> None:
        if self.fwd.remove(r, c):
            self.rev.remove(c, r)

    def set_row(self, r: int, cols: Sequence[int]) -> None:
        for c in self.fwd.row(r).tolist():
            self.rev.remove(int(c), r)
        self.fwd.set_row(r, [])
        for c in cols:
            self.add(r, int(c))

    @property
    def nnz(self) -> int:
        return self.fwd.nnz

    @property
    def nbytes(self) -> int:
        return self.fwd.nbytes + self.rev.nbytes

    def compact(self) -> None:
        self.fwd.compact()
        self.rev.compact()


class IdIndex:
    """Ids <-> dense indices; new ids get the next index (no rebuild)."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        for i in ids:
            self.add(i)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def get(self, key: str) -> int | None:
        return self.index.get(key)

    def add(self, key: str) -> int:
        i = self.index.get(key)
        if i is None:
            i = len(self.ids)
            self.index[key] = i
            self.ids.append(key)
        return i

    def add_many(self, keys: Iterable[str]) -> I64:
        return np.fromiter((self.add(k) for k in keys), dtype=np.int64)

    @property
    def nbytes(self) -> int:
        """Rough size of the maps (dict slots and the strings)."""
        import sys

        strings = sum(sys.getsizeof(s) for s in self.ids[:1000])
        per = strings / max(min(len(self.ids), 1000), 1)
        return int(sys.getsizeof(self.index) + sys.getsizeof(self.ids) + per * len(self.ids))


@dataclass(frozen=True)
class ProjectionStats:
    users: int
    tracks: int
    artists: int
    tags: int
    playlists: int
    edges: int
    edge_bytes: int
    id_bytes: int
    compactions: int

    @property
    def items(self) -> int:
        return self.tracks + self.artists

    @property
    def bytes_per_edge(self) -> float:
        return self.edge_bytes / max(self.edges, 1)


class _Coo:
    """Growing edge lists used while streaming the store (compact typed arrays)."""

    def __init__(self) -> None:
        self.rows: list[I64] = []
        self.cols: list[I64] = []
        self.w: list[npt.NDArray[np.float64]] = []
        self.t: list[I64] = []

    def extend(
        self, rows: Sequence[int], cols: Sequence[int], w: Sequence[float], t: Sequence[int] = ()
    ) -> None:
        self.rows.append(np.asarray(rows, dtype=np.int64))
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.w.append(np.asarray(w, dtype=np.float64))
        self.t.append(np.asarray(t if t else [0] * len(rows), dtype=np.int64))

    def arrays(self) -> tuple[I64, I64, npt.NDArray[np.float64], I64]:
        if not self.rows:
            e = np.zeros(0, dtype=np.int64)
            return e, e, np.zeros(0), e
        return (
            np.concatenate(self.rows),
            np.concatenate(self.cols),
            np.concatenate(self.w),
            np.concatenate(self.t),
        )


_FEATURES = ("bpm", "energy", "valence")


class Projection:
    """The whole listening graph as arrays, with id maps; see the module docstring."""

    def __init__(self) -> None:
        self.users = IdIndex()
        self.tracks = IdIndex()
        self.artists = IdIndex()
        self.tags = IdIndex()
        self.playlists = IdIndex()
        self.user_track = Relation.from_coo([], [], 0, 0, timed=True)
        self.user_artist = Relation.from_coo([], [], 0, 0, timed=True)
        self.artist_track = DynamicCSR(0, 0, weighted=False)
        self.track_artist: I32 = np.zeros(0, dtype=np.int32)
        self.direct_artist = DynamicCSR(0, 0, weighted=True)  # LISTENED_ARTIST counts as given
        self.track_tag = Relation.from_coo([], [], 0, 0)
        self.artist_tag = Relation.from_coo([], [], 0, 0)
        self.friends = DynamicCSR(0, 0, weighted=False)
        self.playlist_track = Relation.from_coo([], [], 0, 0)
        self.track_sim = DynamicCSR(0, 0, weighted=True)
        self.artist_sim = DynamicCSR(0, 0, weighted=True)
        self.ratings: dict[int, dict[int, int]] = {}
        self.features: dict[str, F32] = {f: np.zeros(0, dtype=np.float32) for f in _FEATURES}
        self.key: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
        self.track_names: list[str | None] = []
        self.artist_names: list[str | None] = []
        self.version = 0
        self._sizes: tuple[int, ...] = ()

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        *,
        user_ids: Sequence[str],
        track_ids: Sequence[str] = (),
        artist_ids: Sequence[str] = (),
        tag_names: Sequence[str] = (),
        playlist_ids: Sequence[str] = (),
        listens: tuple[npt.ArrayLike, ...] | None = None,
        artist_listens: tuple[npt.ArrayLike, ...] | None = None,
        track_artist: npt.ArrayLike | None = None,
        track_tags: tuple[npt.ArrayLike, ...] | None = None,
        artist_tags: tuple[npt.ArrayLike, ...] | None = None,
        friends: tuple[npt.ArrayLike, ...] | None = None,
        playlist_tracks: tuple[npt.ArrayLike, ...] | None = None,
        track_sim: tuple[npt.ArrayLike, ...] | None = None,
        artist_sim: tuple[npt.ArrayLike, ...] | None = None,
        ratings: Iterable[tuple[int, int, int]] = (),
    ) -> Projection:
        """Build from index arrays (the store loader and the benchmarks both end here).

        ``listens`` is ``(user, track, count[, last_at])``; ``artist_listens`` ``(user, artist,
        count)``; ``track_artist`` the primary artist index per track (-1 unknown); tags, friends,
        playlists and similarities are ``(row, col[, weight])`` index tuples.
        """
        p = cls()
        p.users = IdIndex(user_ids)
        p.tracks = IdIndex(track_ids)
        p.artists = IdIndex(artist_ids)
        p.tags = IdIndex(tag_names)
        p.playlists = IdIndex(playlist_ids)
        nu, nt, na, ng, npl = (
            len(p.users),
            len(p.tracks),
            len(p.artists),
            len(p.tags),
            len(p.playlists),
        )
        empty = np.zeros(0, dtype=np.int64)

        def parts(x: tuple[npt.ArrayLike, ...] | None, k: int) -> list[npt.ArrayLike | None]:
            if x is None:
                return [empty, empty] + [None] * (k - 2)
            return list(x) + [None] * (k - len(x))

        lu, lt, lc, lat = parts(listens, 4)
        lu_a = np.asarray(lu, dtype=np.int64)
        lt_a = np.asarray(lt, dtype=np.int64)
        lc_a = np.ones(lu_a.size) if lc is None else np.asarray(lc, dtype=np.float64)
        keep = lc_a > 0
        lu_a, lt_a, lc_a = lu_a[keep], lt_a[keep], lc_a[keep]
        lat_a = np.zeros(lu_a.size, dtype=np.int64) if lat is None else np.asarray(lat)[keep]
        p.user_track = Relation.from_coo(lu_a, lt_a, nu, nt, weights=lc_a, times=lat_a, timed=True)

        ta = (
            np.full(nt, -1, dtype=np.int32)
            if track_artist is None
            else np.asarray(track_artist, dtype=np.int32)
        )
        p.track_artist = ta.copy()
        has = np.flatnonzero(ta >= 0)
        p.artist_track = DynamicCSR.from_coo(ta[has], has, na, nt, weighted=False)

        au, aa, ac = parts(artist_listens, 3)
        au_a = np.asarray(au, dtype=np.int64)
        aa_a = np.asarray(aa, dtype=np.int64)
        ac_a = np.ones(au_a.size) if ac is None else np.asarray(ac, dtype=np.float64)
        p.direct_artist = DynamicCSR.from_coo(au_a, aa_a, nu, na, weights=ac_a, weighted=True)
        # track listens folded into artists, plus the direct artist-level counts
        tart = ta[lt_a] if lt_a.size else np.zeros(0, dtype=np.int32)
        ok = tart >= 0
        p.user_artist = Relation.from_coo(
            np.concatenate([lu_a[ok], au_a]),
            np.concatenate([tart[ok].astype(np.int64), aa_a]),
            nu,
            na,
            weights=np.concatenate([lc_a[ok], ac_a]),
            times=np.concatenate([lat_a[ok], np.zeros(au_a.size, dtype=np.int64)]),
            timed=True,
        )

        def rel(x: tuple[npt.ArrayLike, ...] | None, n_rows: int, n_cols: int) -> Relation:
            r, c, w = parts(x, 3)
            assert r is not None and c is not None
            return Relation.from_coo(r, c, n_rows, n_cols, weights=w)

        def dyn(
            x: tuple[npt.ArrayLike, ...] | None, n_rows: int, n_cols: int, weighted: bool
        ) -> DynamicCSR:
            r, c, w = parts(x, 3)
            assert r is not None and c is not None
            return DynamicCSR.from_coo(r, c, n_rows, n_cols, weights=w, weighted=weighted)

        p.track_tag = rel(track_tags, nt, ng)
        p.artist_tag = rel(artist_tags, na, ng)
        p.friends = dyn(friends, nu, nu, False)
        p.playlist_track = rel(playlist_tracks, npl, nt)
        p.track_sim = _max_sim(track_sim, nt)
        p.artist_sim = _max_sim(artist_sim, na)
        for u, t, s in ratings:
            p.ratings.setdefault(int(u), {})[int(t)] = int(s)
        p.features = {f: np.full(nt, np.nan, dtype=np.float32) for f in _FEATURES}
        p.key = np.full(nt, -1, dtype=np.int16)
        p.track_names = [None] * nt
        p.artist_names = [None] * na
        return p

    @classmethod
    async def load(cls, store: GraphStore, *, chunk_size: int = 50_000) -> Projection:
        """Stream the whole graph out of ``store`` (its ``iter_*`` reads) into a new projection."""
        users, tracks, artists = IdIndex(), IdIndex(), IdIndex()
        tags, playlists = IdIndex(), IdIndex()
        async for c0 in store.iter_users(chunk_size=chunk_size):
            for u in c0:
                users.add(u.id)
        artist_names: dict[int, str] = {}
        async for c1 in store.iter_artists(chunk_size=chunk_size):
            for a in c1:
                artist_names[artists.add(a.id)] = a.name
        track_rows: list[Track] = []
        async for c2 in store.iter_tracks(chunk_size=chunk_size):
            for t in c2:
                tracks.add(t.id)
                track_rows.append(t)
        primary: dict[int, tuple[int, int]] = {}
        async for c3 in store.iter_track_artists(chunk_size=chunk_size):
            for ta in c3:
                ti, ai = tracks.add(ta.track_id), artists.add(ta.artist_id)
                old = primary.get(ti)
                if old is None or ta.position < old[0]:
                    primary[ti] = (ta.position, ai)
        listens = _Coo()
        async for c4 in store.iter_aggregates(chunk_size=chunk_size):
            listens.extend(
                [users.add(a.user_id) for a in c4],
                [tracks.add(a.track_id) for a in c4],
                [a.count for a in c4],
                [a.last_at for a in c4],
            )
        alistens = _Coo()
        async for c5 in store.iter_artist_listens(chunk_size=chunk_size):
            alistens.extend(
                [users.add(a.user_id) for a in c5],
                [artists.add(a.artist_id) for a in c5],
                [a.count for a in c5],
            )
        tagged: dict[str, _Coo] = {"track": _Coo(), "artist": _Coo()}
        kinds: tuple[tuple[ItemKind, IdIndex], ...] = (("track", tracks), ("artist", artists))
        for kind, ids in kinds:
            async for c6 in store.iter_tags(kind, chunk_size=chunk_size):
                tagged[kind].extend(
                    [ids.add(t.item_id) for t in c6],
                    [tags.add(t.tag) for t in c6],
                    [t.count for t in c6],
                )
        fr = _Coo()
        async for c7 in store.iter_friendships(chunk_size=chunk_size):
            fr.extend(
                [users.add(f.user_id) for f in c7],
                [users.add(f.friend_id) for f in c7],
                [1.0] * len(c7),
            )
        ratings: list[tuple[int, int, int]] = []
        async for c8 in store.iter_ratings(chunk_size=chunk_size):
            ratings.extend((users.add(r.user_id), tracks.add(r.track_id), r.score) for r in c8)
        pl = _Coo()
        async for c9 in store.iter_playlist_entries(chunk_size=chunk_size):
            pl.extend(
                [playlists.add(e.playlist_id) for e in c9],
                [tracks.add(e.track_id) for e in c9],
                [1.0] * len(c9),
            )
        sims: dict[str, _Coo] = {"track": _Coo(), "artist": _Coo()}
        for kind, ids in kinds:
            async for c10 in store.iter_similar(kind, chunk_size=chunk_size):
                sims[kind].extend(
                    [ids.add(s.source_id) for s in c10],
                    [ids.add(s.target_id) for s in c10],
                    [s.score for s in c10],
                )
        ta_arr = np.full(len(tracks), -1, dtype=np.int32)
        for ti, (_, ai) in primary.items():
            ta_arr[ti] = ai
        lu, lt, lc, lat = listens.arrays()
        au, aa, ac, _ = alistens.arrays()
        p = cls.from_arrays(
            user_ids=users.ids,
            track_ids=tracks.ids,
            artist_ids=artists.ids,
            tag_names=tags.ids,
            playlist_ids=playlists.ids,
            listens=(lu, lt, lc, lat),
            artist_listens=(au, aa, ac),
            track_artist=ta_arr,
            track_tags=tagged["track"].arrays()[:3],
            artist_tags=tagged["artist"].arrays()[:3],
            friends=fr.arrays()[:2],
            playlist_tracks=pl.arrays()[:2],
            track_sim=sims["track"].arrays()[:3],
            artist_sim=sims["artist"].arrays()[:3],
            ratings=ratings,
        )
        for ai, name in artist_names.items():
            p.artist_names[ai] = name
        p._set_track_rows(track_rows)
        return p

    # --- sizes ----------------------------------------------------------------------------------
    def _ensure(self) -> None:
        """Grow every matrix and array to the current id maps (new rows are empty)."""
        nu, nt, na, ng, npl = (
            len(self.users),
            len(self.tracks),
            len(self.artists),
            len(self.tags),
            len(self.playlists),
        )
        if (nu, nt, na, ng, npl) == self._sizes:
            return
        self._sizes = (nu, nt, na, ng, npl)
        self.user_track.resize(nu, nt)
        self.user_artist.resize(nu, na)
        self.direct_artist.resize(nu, na)
        self.artist_track.resize(na, nt)
        self.track_tag.resize(nt, ng)
        self.artist_tag.resize(na, ng)
        self.friends.resize(nu, nu)
        self.playlist_track.resize(npl, nt)
        self.track_sim.resize(nt, nt)
        self.artist_sim.resize(na, na)
        if self.track_artist.shape[0] < nt:
            old = self.track_artist.shape[0]
            self.track_artist = _grow(self.track_artist, nt, -1)
            self.track_artist[old:] = -1
            for f in _FEATURES:
                self.features[f] = _grow(self.features[f], nt, np.nan)
                self.features[f][old:] = np.nan
            self.key = _grow(self.key, nt, -1)
            self.key[old:] = -1
        while len(self.track_names) < nt:
            self.track_names.append(None)
        while len(self.artist_names) < na:
            self.artist_names.append(None)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def n_items(self, kind: ItemKind) -> int:
        return len(self.tracks) if kind == "track" else len(self.artists)

    def items(self, kind: ItemKind) -> IdIndex:
        return self.tracks if kind == "track" else self.artists

    def listened(self, kind: ItemKind) -> Relation:
        return self.user_track if kind == "track" else self.user_artist

    def tagged(self, kind: ItemKind) -> Relation:
        return self.track_tag if kind == "track" else self.artist_tag

    def similar(self, kind: ItemKind) -> DynamicCSR:
        return self.track_sim if kind == "track" else self.artist_sim

    def item_name(self, kind: ItemKind, index: int) -> str:
        names = self.track_names if kind == "track" else self.artist_names
        name = names[index] if index < len(names) else None
        return name if name else self.items(kind).ids[index]

    def artist_of(self, track: int) -> int:
        return int(self.track_artist[track]) if track < self.track_artist.shape[0] else -1

    def stats(self) -> ProjectionStats:
        rels: list[Relation | DynamicCSR] = [
            self.user_track,
            self.user_artist,
            self.artist_track,
            self.direct_artist,
            self.track_tag,
            self.artist_tag,
            self.friends,
            self.playlist_track,
            self.track_sim,
            self.artist_sim,
        ]
        edges = sum(r.nnz for r in rels)
        nbytes = sum(r.nbytes for r in rels) + self.track_artist.nbytes + self.key.nbytes
        nbytes += sum(f.nbytes for f in self.features.values())
        comps = sum(
            (r.fwd.compactions + r.rev.compactions) if isinstance(r, Relation) else r.compactions
            for r in rels
        )
        return ProjectionStats(
            users=len(self.users),
            tracks=len(self.tracks),
            artists=len(self.artists),
            tags=len(self.tags),
            playlists=len(self.playlists),
            edges=edges,
            edge_bytes=nbytes,
            id_bytes=sum(
                i.nbytes for i in (self.users, self.tracks, self.artists, self.tags, self.playlists)
            ),
            compactions=comps,
        )

    # --- live updates (each one edge at a time, in place) ------------------------------------------
    def add_user(self, user_id: str) -> int:
        i = self.users.add(user_id)
        self._ensure()
        return i

    def apply_listens(
        self,
        user_id: str,
        listens: Iterable[tuple[str, int, bool]],
        *,
        track_artists: dict[str, str | None] | None = None,
    ) -> int:
        """Fold new listens ``(track_id, listened_at, skipped)`` of one user into the graph.

        Skipped listens change nothing (they count as skips, not plays). ``track_artists`` names the
        primary artist of tracks the projection has not seen yet. Returns the listens applied.
        """
        u = self.users.add(user_id)
        arts = track_artists or {}
        applied = 0
        for track_id, at, skipped in listens:
            t = self.tracks.get(track_id)
            if t is None:
                t = self.tracks.add(track_id)
                self._ensure()
                artist_id = arts.get(track_id)
                if artist_id:
                    self._set_primary_artist(t, self.artists.add(artist_id))
            self._ensure()
            if skipped:
                continue
            self.user_track.add(u, t, 1.0, int(at))
            a = self.artist_of(t)
            if a >= 0:
                self.user_artist.add(u, a, 1.0, int(at))
            applied += 1
        self.version += 1
        return applied

    def _set_primary_artist(self, t: int, a: int) -> None:
        self._ensure()
        old = self.artist_of(t)
        if old == a:
            return
        if old >= 0:
            self.artist_track.remove(old, t)
        self.track_artist[t] = a
        self.artist_track.add(a, t)

    def set_ratings(self, user_id: str, ratings: Iterable[tuple[str, int]]) -> None:
        """Replace the user's ratings with ``(track_id, score)`` pairs."""
        u = self.users.add(user_id)
        rows: dict[int, int] = {}
        for track_id, score in ratings:
            rows[self.tracks.add(track_id)] = int(score)
        self._ensure()
        if rows:
            self.ratings[u] = rows
        else:
            self.ratings.pop(u, None)
        self.version += 1

    def set_playlist(self, playlist_id: str, track_ids: Sequence[str]) -> None:
        """Replace a playlist's tracks (an empty list removes them all)."""
        pl = self.playlists.add(playlist_id)
        cols = [self.tracks.add(t) for t in track_ids]
        self._ensure()
        self.playlist_track.set_row(pl, list(dict.fromkeys(cols)))
        self.version += 1

    def add_similarities(self, rows: Iterable[Similarity]) -> None:
        """Upsert SIMILAR edges (keeping the best score per pair across sources)."""
        for s in rows:
            ids = self.items(s.item_kind)
            a, b = ids.add(s.source_id), ids.add(s.target_id)
            self._ensure()
            m = self.similar(s.item_kind)
            m.set(a, b, max(m.get(a, b), float(s.score)))
        self.version += 1

    def set_tags(self, kind: ItemKind, item_id: str, tags: Iterable[tuple[str, int]]) -> None:
        """Upsert TAGGED edges of one item (tag name, count)."""
        i = self.items(kind).add(item_id)
        rows = [(self.tags.add(t), c) for t, c in tags]
        self._ensure()
        rel = self.tagged(kind)
        for g, c in rows:
            rel.set(i, g, float(c))
        self.version += 1

    def update_tracks(self, tracks: Iterable[Track]) -> None:
        """Take audio features, names and primary artists of (new or enriched) tracks."""
        rows = list(tracks)
        for t in rows:
            self.tracks.add(t.id)
        self._ensure()
        self._set_track_rows(rows)
        self.version += 1

    def _set_track_rows(self, rows: Iterable[Track]) -> None:
        for t in rows:
            i = self.tracks.add(t.id)
            self._ensure()
            self.track_names[i] = t.title
            for f in _FEATURES:
                v = getattr(t, f)
                if v is not None:
                    self.features[f][i] = float(v)
            if t.key is not None:
                self.key[i] = int(t.key)
            if t.artist_ids and self.artist_of(i) < 0:
                self._set_primary_artist(i, self.artists.add(t.artist_ids[0]))

    def compact(self) -> None:
        """Pack every matrix (also happens on its own as holes accumulate)."""
        for r in (self.user_track, self.user_artist, self.track_tag, self.artist_tag):
            r.compact()
        self.playlist_track.compact()
        for m in (self.artist_track, self.direct_artist, self.friends):
            m.compact()
        self.track_sim.compact()
        self.artist_sim.compact()
        self.version += 1

    # --- canonical views (tests compare a live-updated projection with a fresh one) --------------
    def edge_dict(self, name: str) -> dict[tuple[str, str], tuple[float, int]]:
        """One edge type keyed by ids: ``{(row_id, col_id): (weight, time)}``."""
        spec: dict[str, tuple[DynamicCSR, IdIndex, IdIndex]] = {
            "user_track": (self.user_track.fwd, self.users, self.tracks),
            "track_user": (self.user_track.rev, self.tracks, self.users),
            "user_artist": (self.user_artist.fwd, self.users, self.artists),
            "artist_user": (self.user_artist.rev, self.artists, self.users),
            "artist_track": (self.artist_track, self.artists, self.tracks),
            "track_tag": (self.track_tag.fwd, self.tracks, self.tags),
            "artist_tag": (self.artist_tag.fwd, self.artists, self.tags),
            "friends": (self.friends, self.users, self.users),
            "playlist_track": (self.playlist_track.fwd, self.playlists, self.tracks),
            "track_playlist": (self.playlist_track.rev, self.tracks, self.playlists),
            "track_sim": (self.track_sim, self.tracks, self.tracks),
            "artist_sim": (self.artist_sim, self.artists, self.artists),
        }
        m, rows, cols = spec[name]
        return {(rows.ids[r], cols.ids[c]): v for (r, c), v in m.to_dict().items()}


def _max_sim(x: tuple[npt.ArrayLike, ...] | None, n: int) -> DynamicCSR:
    """Similarity rows keeping the best score per (source, target) pair."""
    if x is None:
        return DynamicCSR(n, n, weighted=True)
    r = np.asarray(x[0], dtype=np.int64)
    c = np.asarray(x[1], dtype=np.int64)
    w = np.ones(r.size) if len(x) < 3 else np.asarray(x[2], dtype=np.float64)
    if r.size:
        key = r * n + c
        order = np.lexsort((-w, key))
        key, w, r, c = key[order], w[order], r[order], c[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        r, c, w = r[first], c[first], w[first]
    return DynamicCSR.from_coo(r, c, n, n, weights=w, weighted=True)
