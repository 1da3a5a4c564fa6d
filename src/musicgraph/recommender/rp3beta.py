"""RP3beta (Paudel, Christoffel, Eksombatchai et al., ACM TiiS 2016), computed exactly.

The three-step random walk user -> item -> user -> item on the bipartite listening graph, each
transition probability raised to ``alpha``, and the arrival item's score divided by its degree to
the power ``beta`` (a popularity penalty)::

    score(u, j) = sum_{i, v} P(u->i)^a P(i->v)^a P(v->j)^a / deg(j)^beta

Scoring a block of users goes through the small users x users matrix, never an items x items one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.scoring import (
    DenseScoringMixin,
    NotFittedError,
    reweight,
    row_normalise,
    similar_from_column,
)


class RP3beta(DenseScoringMixin):
    """Exact RP3beta over the user-item graph (weights from ``weighting``)."""

    name = "RP3beta"

    def __init__(self, *, alpha: float = 1.0, beta: float = 0.5, weighting: str = "binary") -> None:
        self.alpha = alpha
        self.beta = beta
        self.weighting = weighting
        self._p_ui: sp.csr_matrix | None = None
        self._p_iu: sp.csr_matrix | None = None
        self._p_uj_pen: sp.csr_matrix | None = None
        self._penalty: FloatArray | None = None

    def fit(self, data: TrainingData) -> None:
        x = reweight(data.user_items, self.weighting)
        self._seen = x
        p_ui = row_normalise(x)
        p_iu = row_normalise(x.T)
        p_ui.data **= self.alpha
        p_iu.data **= self.alpha
        degree = np.asarray((x > 0).sum(axis=0), dtype=np.float64).ravel()
        self._penalty = np.divide(
            1.0, degree**self.beta, out=np.zeros_like(degree), where=degree > 0
        )
        self._p_ui = p_ui
        self._p_iu = p_iu
        # Last step v -> j with the popularity penalty of j folded in.
        self._p_uj_pen = sp.csr_matrix(p_ui @ sp.diags(self._penalty))

    def score(self, users: IntArray) -> FloatArray:
        if self._p_ui is None or self._p_iu is None or self._p_uj_pen is None:
            raise NotFittedError("RP3beta is not fitted: call fit(data) first")
        user_user = (self._p_ui[users] @ self._p_iu).toarray()
        return np.asarray(user_user @ self._p_uj_pen)

    def item_similarity(self, item: int) -> FloatArray:
        """``W[item, :]``: two-step item -> user -> item probabilities with the penalty."""
        if self._p_iu is None or self._p_uj_pen is None:
            raise NotFittedError("RP3beta is not fitted: call fit(data) first")
        return np.asarray((self._p_iu[item] @ self._p_uj_pen).toarray()).ravel()

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]:
        return similar_from_column(self.item_similarity(item), item, n)
