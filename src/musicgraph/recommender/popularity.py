"""MostPopular: every user gets the items with the most listeners (the cold-start fallback)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.scoring import DenseScoringMixin, NotFittedError


class MostPopular(DenseScoringMixin):
    """Scores an item by its number of distinct listeners (``by="listeners"``) or total plays."""

    name = "MostPopular"

    def __init__(self, *, by: str = "listeners") -> None:
        if by not in ("listeners", "plays"):
            raise ValueError(f"MostPopular(by={by!r}): choose 'listeners' or 'plays'")
        self.by = by
        self.popularity: FloatArray | None = None

    def fit(self, data: TrainingData) -> None:
        ui = sp.csr_matrix(data.user_items, dtype=np.float64)
        ui.eliminate_zeros()
        if self.by == "listeners":
            self.popularity = np.asarray((ui > 0).sum(axis=0), dtype=np.float64).ravel()
        else:
            self.popularity = np.asarray(ui.sum(axis=0), dtype=np.float64).ravel()
        self._seen = ui

    def score(self, users: IntArray) -> FloatArray:
        if self.popularity is None:
            raise NotFittedError("MostPopular is not fitted: call fit(data) first")
        return np.tile(self.popularity, (len(users), 1))

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]:
        """Popularity knows nothing about similarity: the most popular other items."""
        if self.popularity is None:
            raise NotFittedError("MostPopular is not fitted: call fit(data) first")
        pop = self.popularity.copy()
        pop[item] = -np.inf
        idx = np.argsort(-pop, kind="stable")[:n]
        return idx.astype(np.int64), pop[idx]
