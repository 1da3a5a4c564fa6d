"""EASE (Steck, WWW 2019): a shallow autoencoder with a closed form and a zero diagonal.

``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + l2 I)^-1``, scores ``X B``. With far fewer users
than items (HetRec: 1.9k users, 17.6k artists) the items x items inverse is never formed: by the
Woodbury identity ``P = (I - X^T M X) / l2`` with the small ``M = (l2 I + X X^T)^-1``, so fitting
inverts a users x users matrix and scoring is two thin products.

Optional ``side`` rows (e.g. tags as pseudo-users, Jeunen et al. 2020) join ``X`` in the Gram
matrix only: they shape ``B`` and give items no one listened to weights, but are never scored.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.scoring import (
    DenseScoringMixin,
    NotFittedError,
    reweight,
    similar_from_column,
)


class EASE(DenseScoringMixin):
    """Embarrassingly Shallow Autoencoder with L2 regularisation ``l2``."""

    name = "EASE"

    def __init__(self, *, l2: float = 500.0, weighting: str = "binary") -> None:
        self.l2 = l2
        self.weighting = weighting
        self._x: sp.csr_matrix | None = None
        self._z: sp.csr_matrix | None = None
        self._m: FloatArray | None = None
        self._diag_p: FloatArray | None = None

    def fit(self, data: TrainingData, *, side: sp.spmatrix | None = None) -> None:
        x = reweight(data.user_items, self.weighting)
        self._x = x
        self._seen = x
        z = x if side is None else sp.csr_matrix(sp.vstack([x, sp.csr_matrix(side)]))
        self._z = z
        gram = (z @ z.T).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        # numpy's inverse releases the GIL while LAPACK works; scipy.linalg.inv holds it, which
        # stalled a server's event loop for seconds while the engine refitted in its thread.
        m = np.linalg.inv(gram)
        self._m = m
        mz = np.asarray((z.T @ m).T)  # rows(Z) x items: M Z
        # diag(P)_j = (1 - z_j^T M z_j) / l2, z_j the j-th column of Z.
        zc = sp.csc_matrix(z)
        quad = np.asarray(zc.multiply(mz).sum(axis=0)).ravel()
        self._diag_p = (1.0 - quad) / self.l2

    def _xp(self, rows: sp.csr_matrix) -> FloatArray:
        """``rows @ P`` for a block of input rows (users x items)."""
        assert self._z is not None and self._m is not None
        dense = rows.toarray()
        # Z @ dense.T rather than rows @ Z.T: no transposed copy of Z per call
        inner = np.asarray(self._z @ dense.T).T @ self._m  # block x rows(Z)
        return np.asarray(dense - np.asarray((self._z.T @ inner.T).T)) / self.l2

    def score(self, users: IntArray) -> FloatArray:
        if self._x is None or self._diag_p is None:
            raise NotFittedError("EASE is not fitted: call fit(data) first")
        rows = self._x[users]
        return self.score_rows(rows)

    def score_rows(self, rows: sp.csr_matrix) -> FloatArray:
        """``rows @ B`` for any input rows over the items (e.g. a new user's history)."""
        if self._diag_p is None:
            raise NotFittedError("EASE is not fitted: call fit(data) first")
        xp = self._xp(sp.csr_matrix(rows))
        return np.asarray(sp.csr_matrix(rows).toarray() - xp / self._diag_p)

    def item_weights(self, item: int) -> FloatArray:
        """Row ``B[item, :]``: how much listening to ``item`` raises every other item."""
        if self._x is None or self._diag_p is None:
            raise NotFittedError("EASE is not fitted: call fit(data) first")
        e = sp.csr_matrix(([1.0], ([0], [item])), shape=(1, self._x.shape[1]))
        return np.asarray(self.score_rows(e)).ravel()

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]:
        return similar_from_column(self.item_weights(item), item, n)
