"""Co-listening: item-item similarity from shared listeners.

- :class:`ItemKNN`: cosine with shrinkage over the user-item matrix, top-K neighbours per item,
  ``score(u, j) = sum_i x_ui * sim(i, j)``.
- :func:`session_cooccurrence`: with listen timestamps, counts pairs heard in the same listening
  session (a gap longer than ``session_gap`` starts a new one), caps what one user can add to a
  pair, and can skip pairs of tracks by the same artist (as ListenBrainz does).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.scoring import (
    DenseScoringMixin,
    NotFittedError,
    reweight,
    similar_from_column,
    top_k_per_column,
)


def cosine_similarity(
    user_items: sp.csr_matrix, *, shrinkage: float = 0.0, k: int | None = None
) -> sp.csc_matrix:
    """``sim(i, j) = x_i . x_j / (|x_i| |x_j| + shrinkage)`` over item columns, no self-similarity,
    keeping the ``k`` most similar items ``i`` of each item ``j`` (column)."""
    x = sp.csc_matrix(user_items, dtype=np.float64)
    gram = sp.csr_matrix(x.T @ x)
    gram.setdiag(0.0)
    gram.eliminate_zeros()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    coo = gram.tocoo()
    coo.data = coo.data / (norms[coo.row] * norms[coo.col] + shrinkage)
    return top_k_per_column(coo, k)


class ItemKNN(DenseScoringMixin):
    """Item-based nearest neighbours: cosine with shrinkage, top-K neighbours (Sarwar et al.)."""

    name = "ItemKNN"

    def __init__(
        self, *, k: int | None = 100, shrinkage: float = 10.0, weighting: str = "log"
    ) -> None:
        self.k = k
        self.shrinkage = shrinkage
        self.weighting = weighting
        self.similarity: sp.csc_matrix | None = None
        self._x: sp.csr_matrix | None = None

    def fit(self, data: TrainingData) -> None:
        self._x = reweight(data.user_items, self.weighting)
        self.similarity = cosine_similarity(self._x, shrinkage=self.shrinkage, k=self.k)
        self._seen = self._x

    def score(self, users: IntArray) -> FloatArray:
        if self._x is None or self.similarity is None:
            raise NotFittedError("ItemKNN is not fitted: call fit(data) first")
        return np.asarray((self._x[users] @ self.similarity).toarray())

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]:
        if self.similarity is None:
            raise NotFittedError("ItemKNN is not fitted: call fit(data) first")
        sim = sp.csr_matrix(self.similarity)
        return similar_from_column(sim[item].toarray().ravel(), item, n)


def session_cooccurrence(
    users: npt.ArrayLike,
    items: npt.ArrayLike,
    timestamps: npt.ArrayLike,
    *,
    n_items: int,
    session_gap: float = 1800.0,
    max_per_user: float = 1.0,
    item_artist: npt.ArrayLike | None = None,
    exclude_same_artist: bool = False,
) -> sp.csr_matrix:
    """Symmetric item x item counts of distinct items heard in the same session.

    The diagonal holds each item's own count of sessions (capped the same way), the norm that
    cosine normalisation needs.

    Listens of one user sorted by time form sessions split at gaps longer than ``session_gap``
    seconds. Each session contributes 1 to every pair of distinct items in it; one user's total
    contribution to a pair is capped at ``max_per_user`` (so a few heavy listeners cannot make a
    pair). With ``exclude_same_artist`` and ``item_artist`` (artist index per item), pairs by the
    same artist are skipped.
    """
    u = np.asarray(users, dtype=np.int64)
    it = np.asarray(items, dtype=np.int64)
    ts = np.asarray(timestamps, dtype=np.float64)
    if not (len(u) == len(it) == len(ts)):
        raise ValueError("users, items and timestamps must have the same length")
    artist = None if item_artist is None else np.asarray(item_artist, dtype=np.int64)
    if exclude_same_artist and artist is None:
        raise ValueError("exclude_same_artist needs item_artist (the artist of each item)")
    order = np.lexsort((ts, u))
    u, it, ts = u[order], it[order], ts[order]
    new_session = np.ones(len(u), dtype=bool)
    if len(u) > 1:
        new_session[1:] = (u[1:] != u[:-1]) | (np.diff(ts) > session_gap)
    session = np.cumsum(new_session) - 1
    # One entry per (session, item): repeats inside a session do not count twice.
    keys = (
        np.unique(np.stack([session, it], axis=1), axis=0) if len(u) else np.zeros((0, 2), np.int64)
    )
    session_user = u[np.searchsorted(session, keys[:, 0])] if len(keys) else np.zeros(0, np.int64)
    pair_rows: list[npt.NDArray[np.int64]] = []
    bounds: npt.NDArray[np.intp] | list[int] = (
        np.flatnonzero(np.r_[True, keys[1:, 0] != keys[:-1, 0], True]) if len(keys) else []
    )
    for s in range(len(bounds) - 1):
        members = keys[bounds[s] : bounds[s + 1], 1]
        a, b = np.meshgrid(members, members, indexing="ij")
        off = np.ones(a.shape, dtype=bool)
        if exclude_same_artist and artist is not None:
            off &= (artist[a] != artist[b]) | (a == b)
        owner = session_user[bounds[s]]
        pair_rows.append(np.stack([np.full(off.sum(), owner), a[off], b[off]], axis=1))
    if not pair_rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    triples = np.concatenate(pair_rows)
    uniq, per_user = np.unique(triples, axis=0, return_counts=True)
    capped = np.minimum(per_user.astype(np.float64), max_per_user)
    m = sp.coo_matrix((capped, (uniq[:, 1], uniq[:, 2])), shape=(n_items, n_items))
    return sp.csr_matrix(m)


class SessionItemKNN(ItemKNN):
    """ItemKNN whose similarity is cosine-normalised session co-listening counts.

    ``fit`` takes the listens as ``(user, item, timestamp)`` arrays on top of the training data.
    """

    name = "SessionItemKNN"

    def __init__(
        self,
        *,
        k: int | None = 100,
        shrinkage: float = 10.0,
        weighting: str = "log",
        session_gap: float = 1800.0,
        max_per_user: float = 1.0,
        exclude_same_artist: bool = False,
    ) -> None:
        super().__init__(k=k, shrinkage=shrinkage, weighting=weighting)
        self.session_gap = session_gap
        self.max_per_user = max_per_user
        self.exclude_same_artist = exclude_same_artist

    def fit_sessions(
        self,
        data: TrainingData,
        listens: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
        *,
        item_artist: npt.ArrayLike | None = None,
    ) -> None:
        self._x = reweight(data.user_items, self.weighting)
        self._seen = self._x
        counts = session_cooccurrence(
            *listens,
            n_items=data.n_items,
            session_gap=self.session_gap,
            max_per_user=self.max_per_user,
            item_artist=item_artist,
            exclude_same_artist=self.exclude_same_artist,
        )
        norms = np.sqrt(counts.diagonal())
        coo = counts.tocoo()
        off = coo.row != coo.col
        coo = sp.coo_matrix((coo.data[off], (coo.row[off], coo.col[off])), shape=counts.shape)
        coo.data = coo.data / (norms[coo.row] * norms[coo.col] + self.shrinkage)
        self.similarity = top_k_per_column(coo, self.k)
