"""Shared pieces of the batch-scoring recommenders: weighting, top-n selection, the common API.

Every model here scores a block of users at once as a dense ``users x items`` array (vectorised
numpy/scipy), and :class:`DenseScoringMixin` turns that into the ``recommend`` /
``recommend_many`` half of the :class:`~musicgraph.recommender.base.Recommender` protocol.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.errors import MusicgraphError
from musicgraph.recommender.base import FloatArray, IntArray

Weighting = Literal["count", "binary", "log", "bm25"]
WEIGHTINGS: tuple[str, ...] = ("count", "binary", "log", "bm25")
BM25_K1 = 1.2
BM25_B = 0.75
BLOCK_USERS = 512  # users scored per dense block: 512 x 18k float64 is about 70 MB


class NotFittedError(MusicgraphError):
    """A recommender was asked for recommendations before ``fit``."""


def reweight(
    user_items: sp.csr_matrix, weighting: str, *, item_plays: FloatArray | None = None
) -> sp.csr_matrix:
    """Play counts are heavy-tailed: ``log`` uses log1p(count), ``binary`` 1 per listened item,
    ``bm25`` the Okapi BM25 weight with items as documents and users as terms (as in implicit's
    Last.fm example): saturating in the count, normalised by the item's total plays, and
    down-weighting users who listen to many items.

    ``item_plays`` (bm25 only) are the items' total plays to normalise by, e.g. those of the
    training matrix when a few new rows are weighted the way the model was fitted."""
    m = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    m.eliminate_zeros()
    if weighting == "count":
        return m
    if weighting == "binary":
        m.data[:] = 1.0
        return m
    if weighting == "log":
        m.data = np.log1p(m.data)
        return m
    if weighting == "bm25":
        return _bm25(m, item_plays=item_plays)
    raise MusicgraphError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")


def _bm25(
    m: sp.csr_matrix,
    k1: float = BM25_K1,
    b: float = BM25_B,
    *,
    item_plays: FloatArray | None = None,
) -> sp.csr_matrix:
    coo = m.tocoo()
    n_items = m.shape[1]
    items_per_user = np.diff(m.indptr).astype(np.float64)
    idf = np.log(max(n_items, 1)) - np.log1p(items_per_user)
    if item_plays is None:
        item_plays = np.asarray(m.sum(axis=0)).ravel()
    mean_plays = float(item_plays.mean()) or 1.0
    length_norm = (1.0 - b) + b * item_plays / mean_plays
    data = coo.data * (k1 + 1.0) / (k1 * length_norm[coo.col] + coo.data) * idf[coo.row]
    return sp.csr_matrix((data, (coo.row, coo.col)), shape=m.shape)


def row_normalise(m: sp.spmatrix) -> sp.csr_matrix:
    """Divide each row by its sum (rows summing to zero stay zero): transition probabilities."""
    m = sp.csr_matrix(m, dtype=np.float64)
    sums = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def top_k_per_column(m: sp.spmatrix, k: int | None) -> sp.csc_matrix:
    """Keep the ``k`` largest entries of each column (all of them when ``k`` is None)."""
    csc = sp.csc_matrix(m, dtype=np.float64)
    csc.eliminate_zeros()
    if k is None:
        return csc
    counts = np.diff(csc.indptr)
    if counts.max(initial=0) <= k:
        return csc
    keep = np.ones(csc.nnz, dtype=bool)
    for j in np.flatnonzero(counts > k):
        start, end = csc.indptr[j], csc.indptr[j + 1]
        col = csc.data[start:end]
        drop = np.argpartition(-col, k)[k:]
        keep[start + drop] = False
    pruned = sp.csc_matrix(
        (np.where(keep, csc.data, 0.0), csc.indices, csc.indptr), shape=csc.shape
    )
    pruned.eliminate_zeros()
    return pruned


def top_n_rows(scores: FloatArray, n: int) -> IntArray:
    """Indices of the ``n`` best scores of each row, best first (ties broken by lower index)."""
    n = min(n, scores.shape[1])
    if n <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.asarray(np.take_along_axis(part, order, axis=1), dtype=np.int64)


def mask_rows(scores: FloatArray, rows: sp.csr_matrix) -> None:
    """Set ``scores[r, j] = -inf`` wherever ``rows[r, j]`` is stored (in place)."""
    r, c = rows.nonzero()
    scores[r, c] = -np.inf


class DenseScoringMixin:
    """``recommend`` / ``recommend_many`` for models that implement ``score(users)``.

    The model sets ``self._seen`` (users x items CSR of training items) in ``fit``.
    """

    _seen: sp.csr_matrix | None = None

    def score(self, users: IntArray) -> FloatArray:  # pragma: no cover - implemented by models
        raise NotImplementedError

    def _require_seen(self) -> sp.csr_matrix:
        if self._seen is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(data) first")
        return self._seen

    def recommend(
        self, user: int, *, n: int = 20, exclude: IntArray | None = None
    ) -> tuple[IntArray, FloatArray]:
        seen = self._require_seen()
        users = np.asarray([user], dtype=np.int64)
        scores = np.array(self.score(users), dtype=np.float64)
        mask_rows(scores, seen[users])
        if exclude is not None and len(exclude):
            scores[0, np.asarray(exclude, dtype=np.int64)] = -np.inf
        idx = top_n_rows(scores, n)[0]
        vals = scores[0, idx]
        ok = np.isfinite(vals)
        return idx[ok], vals[ok]

    def recommend_many(self, users: IntArray, *, n: int = 20) -> IntArray:
        seen = self._require_seen()
        users = np.asarray(users, dtype=np.int64)
        out = np.zeros((len(users), min(n, seen.shape[1])), dtype=np.int64)
        for start in range(0, len(users), BLOCK_USERS):
            block = users[start : start + BLOCK_USERS]
            scores = np.array(self.score(block), dtype=np.float64)
            mask_rows(scores, seen[block])
            out[start : start + len(block)] = top_n_rows(scores, n)
        return out


def similar_from_column(column: FloatArray, item: int, n: int) -> tuple[IntArray, FloatArray]:
    """Top ``n`` items of one dense similarity column, the item itself left out."""
    col = np.array(column, dtype=np.float64)
    col[item] = -np.inf
    idx = top_n_rows(col[None, :], n)[0]
    vals = col[idx]
    ok = np.isfinite(vals) & (vals > 0)
    return idx[ok], vals[ok]


try:  # a private scipy module, stable since scipy 0.x; fall back to ``@`` without it
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover
    _csr_matvec = _csc_matvec = None


def matvec(m: sp.csr_matrix, x: FloatArray) -> FloatArray:
    """``m @ x`` for a :func:`kernel_csr` matrix, in its dtype; for vectors it calls scipy's
    kernel directly, skipping the ~40 µs of checks ``@`` adds per call (that overhead dominates
    on a HetRec-sized graph)."""
    if x.ndim == 1 and _csr_matvec is not None:
        y = np.zeros(m.shape[0], dtype=m.dtype)
        _csr_matvec(
            m.shape[0], m.shape[1], m.indptr, m.indices, m.data, x.astype(m.dtype, copy=False), y
        )
        return y
    out: FloatArray = m @ x
    return out


def kernel_csr(m: sp.csr_matrix, dtype: npt.DTypeLike) -> sp.csr_matrix:
    """One data dtype and one index dtype (int32 when it fits), as scipy's kernel wants."""
    idx = np.int32 if m.nnz < 2**31 - 1 and max(m.shape) < 2**31 - 1 else np.int64
    return sp.csr_matrix(
        (m.data.astype(dtype), m.indices.astype(idx), m.indptr.astype(idx)), shape=m.shape
    )


def rows_sum(m: sp.csr_matrix, rows: IntArray, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``out[:] = m[rows].sum(axis=0)`` for a :func:`kernel_csr` ``m`` (``out`` in its dtype;
    ``rows`` may repeat), without gathering the rows: scipy's kernel for a CSC matrix times a
    vector, handed the CSR's arrays (so its columns are the CSR's rows) and, as column pointers,
    each wanted row's start and end in turn, times 1 (and 0 for the columns in between, each
    from one wanted row's end to the next one's start). Taking the rows by descending start makes
    every in-between range empty, so the kernel reads the wanted rows' entries and nothing else;
    a dozen numpy calls fewer than a gather and a bincount."""
    out.fill(0)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return out
    if _csc_matvec is None:  # pragma: no cover - a scipy that moved its kernels
        out[:] = np.asarray(m[rows].sum(axis=0)).ravel()
        return out
    starts = m.indptr[rows]
    order = np.argsort(-starts, kind="stable")
    bounds = np.empty(2 * rows.size, dtype=m.indptr.dtype)
    bounds[0::2] = starts[order]
    bounds[1::2] = m.indptr[rows + 1][order]
    x = np.zeros(bounds.size - 1, dtype=m.dtype)
    x[0::2] = 1
    _csc_matvec(m.shape[1], x.size, bounds, m.indices, m.data, x, out)
    return out


def best_positions(scores: npt.NDArray[np.floating[Any]], k: int) -> IntArray:
    """Positions of the ``k`` best scores and of every score tied with the ``k``-th, unordered
    (so sorting them by score and then any key picks what a sort of all of them would); every
    position when there are at most ``k``. A threshold falling by quarters from the best score
    finds a few more than ``k`` in a pass or two, and only those are partitioned (a partition of
    a HetRec walk's 17,500 scored items cost 0.2 ms). Scores of ``-inf`` (heard items set aside)
    come last."""
    n = scores.size
    if k >= n:
        return np.arange(n, dtype=np.int64)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = float(scores.max())
    idx: IntArray | None = None
    if top > 0:
        threshold = top / 4
        while threshold > top * 1e-6:
            found = np.flatnonzero(scores > threshold)
            if found.size >= k:
                idx = found
                break
            threshold /= 4
    if idx is None:
        idx = np.arange(n, dtype=np.int64)
    if idx.size > k:
        values = scores[idx]
        kth = np.partition(values, idx.size - k)[idx.size - k]  # the k-th largest
        idx = idx[values >= kth]
    return idx.astype(np.int64, copy=False)
