"""Implicit-feedback matrix factorisation: a thin wrapper of ``implicit``'s ALS (Hu et al. 2008).

``implicit`` is an optional extra (``pip install musicgraph[als]``); importing this module works
without it, fitting raises a clear error.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from musicgraph.errors import MusicgraphError
from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.scoring import (
    DenseScoringMixin,
    NotFittedError,
    reweight,
    similar_from_column,
)


def _quiet_blas_warning() -> None:
    """implicit warns about OpenBLAS's thread pool when a model is made or fitted; fitting runs
    with BLAS at one thread (threadpool_limits below). The filter is added to the process's
    filters (an identical one is replaced, not repeated) rather than set in a catch_warnings()
    block, which is not thread-safe: a fit in the engine's worker thread let the warning through
    while another thread's block restored the filters."""
    warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)


class ALS(DenseScoringMixin):
    """Confidence ``1 + alpha * w`` on the (re)weighted plays; scores are factor dot products."""

    name = "ALS"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.1,
        alpha: float = 2.0,
        iterations: int = 15,
        weighting: str = "log",
        random_state: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.random_state = random_state
        self.num_threads = num_threads
        self.user_factors: FloatArray | None = None
        self.item_factors: FloatArray | None = None
        self._model: Any = None
        self._item_plays: FloatArray | None = None

    def fit(self, data: TrainingData) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError as exc:
            raise MusicgraphError(
                "ALS needs the optional 'implicit' package: pip install 'musicgraph[als]'"
            ) from exc
        _quiet_blas_warning()
        threads = self.num_threads or int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
        x = reweight(data.user_items, self.weighting).astype(np.float32)
        model: Any = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=threads,
            calculate_training_loss=False,
        )
        try:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - implicit depends on threadpoolctl
            model.fit(sp.csr_matrix(x), show_progress=False)
        else:
            # implicit parallelises itself; a BLAS thread pool underneath only slows it down.
            with threadpool_limits(1, "blas"):
                model.fit(sp.csr_matrix(x), show_progress=False)
        self._model = model
        self._item_plays = np.asarray(data.user_items.sum(axis=0), dtype=np.float64).ravel()
        self.user_factors = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float64)
        self._seen = sp.csr_matrix(x)

    def score(self, users: IntArray) -> FloatArray:
        if self.user_factors is None or self.item_factors is None:
            raise NotFittedError("ALS is not fitted: call fit(data) first")
        return np.asarray(self.user_factors[users] @ self.item_factors.T)

    def fold_in(self, rows: sp.csr_matrix) -> FloatArray:
        """User factors for play-count rows over the fitted items (e.g. a user's current history),
        solved against the fitted item factors without refitting (implicit's exact least squares;
        bm25 weights use the training matrix's item totals)."""
        if self._model is None or self._item_plays is None:
            raise NotFittedError("ALS is not fitted: call fit(data) first")
        x = reweight(sp.csr_matrix(rows), self.weighting, item_plays=self._item_plays)
        n = x.shape[0]
        factors = self._model.recalculate_user(np.arange(n), sp.csr_matrix(x, dtype=np.float32))
        return np.asarray(factors, dtype=np.float64).reshape(n, -1)

    def score_rows(self, rows: sp.csr_matrix) -> FloatArray:
        """Scores (rows x items) of play-count rows folded in (see :meth:`fold_in`)."""
        users = self.fold_in(rows)
        assert self.item_factors is not None
        return np.asarray(users @ self.item_factors.T)

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]:
        if self.item_factors is None:
            raise NotFittedError("ALS is not fitted: call fit(data) first")
        f = self.item_factors
        norms = np.linalg.norm(f, axis=1) + 1e-12
        return similar_from_column((f @ f[item]) / (norms * norms[item]), item, n)
