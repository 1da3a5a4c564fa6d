"""Our default recommender: normalised score fusion of co-listening and tag signals.

Five components, each computable from the matrices the serving projection holds (user-item play
counts, item-tag counts, user-user friendships), each cheap to serve from a precomputed item-item
(or item-factor) matrix:

- ``ease``: EASE (Steck 2019) on binary listens, the strongest co-listening model.
- ``svd``: PureSVD (Cremonesi et al. 2010) of the listens with columns scaled by
  popularity^-``pop_exponent``; the item-item matrix is the low-rank ``V V^T``.
- ``friends``: what the user's friends play (their row-normalised log play counts).
- ``tag_knn``: item-item cosine of TF-IDF tag vectors (top ``tag_k``), applied to the user's
  listens; reaches artists no one has listened to yet.
- ``tag_profile``: cosine between the user's tag profile (their listens' tag vectors) and items.
- ``als``: implicit-feedback ALS factors on BM25-weighted plays (``implicit``, an optional extra;
  set ``w_als=0`` to serve without it). Item factors are precomputed; a user's vector is a
  small least-squares fold-in of their listens.

Each component's scores are divided by the user's best score of that component over unheard
items (so every component's top item scores 1), then summed with weights tuned on the validation
split (``ease`` has weight 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from musicgraph.recommender.als import ALS
from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.cooccurrence import cosine_similarity
from musicgraph.recommender.ease import EASE
from musicgraph.recommender.scoring import (
    DenseScoringMixin,
    NotFittedError,
    mask_rows,
    reweight,
    row_normalise,
    similar_from_column,
)


@dataclass
class _Components:
    """The fitted pieces of one training set; weights are applied at scoring time."""

    binary: sp.csr_matrix
    ease: EASE
    svd_scale: FloatArray  # per-item column scale pop^-d
    svd_items: FloatArray  # items x factors (V)
    friends_source: sp.csr_matrix  # users x items, row-normalised log plays
    user_friends: sp.csr_matrix | None
    tag_similarity: sp.csr_matrix | None  # items x items
    tag_vectors: sp.csr_matrix | None  # items x tags, unit rows
    profile_source: sp.csr_matrix  # users x items, row-normalised log plays
    als: ALS | None


# Components depend on the training data and a few parameters, not on the fusion weights: tuning
# the weights refits nothing. Entries hold a reference to the data they were fitted on.
_CACHE: list[tuple[TrainingData, tuple[Any, ...], _Components]] = []
_CACHE_SIZE = 2


def _tag_vectors(item_tags: sp.csr_matrix) -> sp.csr_matrix:
    """TF-IDF item tag vectors: log1p(tag count) x log(n_items / items with the tag), unit rows."""
    it = sp.csr_matrix(item_tags, dtype=np.float64)
    it.eliminate_zeros()
    it.data = np.log1p(it.data)
    n_items = it.shape[0]
    df = np.asarray((it > 0).sum(axis=0)).ravel()
    idf = np.log((n_items + 1.0) / (df + 1.0))
    tfidf = sp.csr_matrix(it @ sp.diags(idf))
    norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ tfidf)


def _fit_components(
    data: TrainingData,
    l2: float,
    factors: int,
    pop_exponent: float,
    tag_k: int,
    seed: int,
    als_params: dict[str, Any] | None,
) -> _Components:
    key = (l2, factors, pop_exponent, tag_k, seed, sorted((als_params or {}).items()))
    for cached_data, cached_key, comps in _CACHE:
        if cached_data is data and cached_key == key:
            return comps
    binary = reweight(data.user_items, "binary")
    ease = EASE(l2=l2, weighting="binary")
    ease.fit(data)
    popularity = np.asarray(binary.sum(axis=0)).ravel()
    scale = np.divide(
        1.0,
        popularity**pop_exponent,
        out=np.zeros_like(popularity),
        where=popularity > 0,
    )
    scaled = sp.csr_matrix(binary @ sp.diags(scale))
    k = max(1, min(factors, min(scaled.shape) - 1))
    rng = np.random.default_rng(seed)
    v0 = rng.random(min(scaled.shape))
    _, _, vt = svds(scaled, k=k, v0=v0)
    log_plays = row_normalise(reweight(data.user_items, "log"))
    tag_similarity = tag_vectors = None
    if data.item_tags is not None and data.item_tags.nnz:
        tag_vectors = _tag_vectors(data.item_tags)
        tag_similarity = sp.csr_matrix(
            cosine_similarity(tag_vectors.T.tocsr(), shrinkage=0.0, k=tag_k)
        )
    als = None
    if als_params is not None:
        als = ALS(**als_params, random_state=seed)
        als.fit(data)
    comps = _Components(
        binary=binary,
        ease=ease,
        svd_scale=scale,
        svd_items=np.ascontiguousarray(vt.T),
        friends_source=log_plays,
        user_friends=None if data.user_friends is None else sp.csr_matrix(data.user_friends),
        tag_similarity=tag_similarity,
        tag_vectors=tag_vectors,
        profile_source=log_plays,
        als=als,
    )
    _CACHE.append((data, key, comps))
    del _CACHE[:-_CACHE_SIZE]
    return comps


def _normalise_rows(scores: FloatArray, seen: sp.csr_matrix) -> FloatArray:
    """Scale each row so its best unheard item scores 1 (rows without a positive score stay)."""
    masked = np.array(scores, dtype=np.float64)
    mask_rows(masked, seen)
    best = masked.max(axis=1, keepdims=True)
    scale = np.where(np.isfinite(best) & (best > 0), best, 1.0)
    return np.asarray(masked / scale)


class Hybrid(DenseScoringMixin):
    """EASE + popularity-scaled PureSVD + ALS + friends + tag neighbours + tag profile, fused.

    ``l2``, ``factors``, ``pop_exponent``, ``tag_k`` (the components' own parameters) were tuned
    on the validation split with the fusion; the fusion weights and ``als_alpha`` are the grid.
    """

    name = "Hybrid"
    GRID: ClassVar[dict[str, list[Any]]] = {
        "w_als": [1.0, 1.5, 2.0, 3.0],
        "w_svd": [0.5, 1.0, 1.5, 2.0, 3.0],
        "w_friends": [0.3, 0.5, 0.7, 1.0],
        "w_tag_knn": [0.5, 0.7, 1.0, 1.5],
        "w_tag_profile": [0.3, 0.5, 0.8, 1.4],
        "als_alpha": [0.5, 1.0, 2.0],
    }
    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "l2": (1e-3, 1e6),
        "factors": (4, 512),
        "pop_exponent": (0.0, 1.0),
        "w_svd": (0.0, 20.0),
        "w_friends": (0.0, 20.0),
        "w_tag_knn": (0.0, 20.0),
        "w_tag_profile": (0.0, 20.0),
        "tag_k": (5, 2000),
        "w_als": (0.0, 20.0),
        "als_alpha": (0.05, 100.0),
    }

    def __init__(
        self,
        *,
        l2: float = 50.0,
        factors: int = 64,
        pop_exponent: float = 0.25,
        w_svd: float = 1.5,
        w_friends: float = 0.7,
        w_tag_knn: float = 1.0,
        w_tag_profile: float = 0.5,
        tag_k: int = 50,
        w_als: float = 2.0,
        als_factors: int = 48,
        als_regularization: float = 30.0,
        als_alpha: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.l2 = l2
        self.factors = factors
        self.pop_exponent = pop_exponent
        self.w_svd = w_svd
        self.w_friends = w_friends
        self.w_tag_knn = w_tag_knn
        self.w_tag_profile = w_tag_profile
        self.tag_k = tag_k
        self.w_als = w_als
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.random_state = random_state
        self._c: _Components | None = None

    def fit(self, data: TrainingData) -> None:
        als_params = None
        if self.w_als:
            als_params = {
                "factors": self.als_factors,
                "regularization": self.als_regularization,
                "alpha": self.als_alpha,
                "weighting": "bm25",
            }
        self._c = _fit_components(
            data,
            self.l2,
            self.factors,
            self.pop_exponent,
            self.tag_k,
            self.random_state,
            als_params,
        )
        self._seen = self._c.binary

    def component_scores(self, users: IntArray) -> dict[str, FloatArray]:
        """Each component's raw scores for a block of users (users x items)."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        x = c.binary[users]
        out: dict[str, FloatArray] = {"ease": c.ease.score(users)}
        if self.w_svd:
            out["svd"] = np.asarray((x @ sp.diags(c.svd_scale) @ c.svd_items) @ c.svd_items.T)
        if self.w_als and c.als is not None:
            out["als"] = c.als.score(users)
        if self.w_friends and c.user_friends is not None:
            out["friends"] = np.asarray((c.user_friends[users] @ c.friends_source).toarray())
        if self.w_tag_knn and c.tag_similarity is not None:
            out["tag_knn"] = np.asarray((x @ c.tag_similarity).toarray())
        if self.w_tag_profile and c.tag_vectors is not None:
            profile = np.asarray((c.profile_source[users] @ c.tag_vectors).toarray())
            norms = np.linalg.norm(profile, axis=1, keepdims=True)
            profile /= np.where(norms > 0, norms, 1.0)
            out["tag_profile"] = np.asarray((c.tag_vectors @ profile.T).T)
        return out

    @property
    def n_items(self) -> int:
        """Items the components were fitted on (0 before fitting)."""
        return 0 if self._c is None else int(self._c.binary.shape[1])

    def component_scores_rows(
        self, plays: sp.csr_matrix, friend_plays: Sequence[sp.csr_matrix] | None = None
    ) -> dict[str, FloatArray]:
        """Each component's raw scores for play-count rows given directly (rows x fitted items),
        e.g. users' *current* histories, against the fitted components: nothing is refitted.

        ``friend_plays[r]`` holds the play-count rows of row ``r``'s friends (any number of rows;
        each is log-weighted and normalised as in training). ALS rows are folded in."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        plays = sp.csr_matrix(plays, dtype=np.float64)
        if plays.shape[1] != c.binary.shape[1]:
            raise ValueError(
                f"rows have {plays.shape[1]} columns, the Hybrid was fitted on {c.binary.shape[1]}"
            )
        x = reweight(plays, "binary")
        out: dict[str, FloatArray] = {"ease": c.ease.score_rows(x)}
        if self.w_svd:
            out["svd"] = np.asarray((x @ sp.diags(c.svd_scale) @ c.svd_items) @ c.svd_items.T)
        if self.w_als and c.als is not None:
            out["als"] = c.als.score_rows(plays)
        if self.w_friends and friend_plays is not None:
            rows = [
                np.asarray(row_normalise(reweight(f, "log")).sum(axis=0)).ravel()
                if f.shape[0]
                else np.zeros(plays.shape[1])
                for f in friend_plays
            ]
            out["friends"] = np.vstack(rows) if rows else np.zeros((0, plays.shape[1]))
        if self.w_tag_knn and c.tag_similarity is not None:
            out["tag_knn"] = np.asarray((x @ c.tag_similarity).toarray())
        if self.w_tag_profile and c.tag_vectors is not None:
            log_plays = row_normalise(reweight(plays, "log"))
            profile = np.asarray((log_plays @ c.tag_vectors).toarray())
            norms = np.linalg.norm(profile, axis=1, keepdims=True)
            profile /= np.where(norms > 0, norms, 1.0)
            out["tag_profile"] = np.asarray((c.tag_vectors @ profile.T).T)
        return out

    def score_rows(
        self, plays: sp.csr_matrix, friend_plays: Sequence[sp.csr_matrix] | None = None
    ) -> FloatArray:
        """The fused scores of :meth:`component_scores_rows` (rows x fitted items). Each component
        is scaled by the row's best *unheard* item, as in :meth:`score`, but heard items keep
        their scaled score (the caller decides whether to exclude them)."""
        plays = sp.csr_matrix(plays, dtype=np.float64)
        seen = reweight(plays, "binary")
        weights = self.weights()
        total = np.zeros((plays.shape[0], self.n_items))
        for name, raw in self.component_scores_rows(plays, friend_plays).items():
            masked = np.array(raw, dtype=np.float64)
            mask_rows(masked, seen)
            best = masked.max(axis=1, keepdims=True)
            scale = np.where(np.isfinite(best) & (best > 0), best, 1.0)
            total += weights[name] * (raw / scale)
        return total

    def weights(self) -> dict[str, float]:
        return {
            "ease": 1.0,
            "svd": self.w_svd,
            "als": self.w_als,
            "friends": self.w_friends,
            "tag_knn": self.w_tag_knn,
            "tag_profile": self.w_tag_profile,
        }

    def score(self, users: IntArray) -> FloatArray:
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        seen = c.binary[users]
        weights = self.weights()
        total = np.zeros((len(users), c.binary.shape[1]))
        for name, raw in self.component_scores(users).items():
            total += weights[name] * _normalise_rows(raw, seen)
        return total

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]:
        """Items the fused model would recommend to someone who listened to ``item`` only."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        col = self._c.ease.item_weights(item) if self._c else np.zeros(0)
        col = col / max(float(col.max(initial=0.0)), 1e-12)
        svd = c.svd_items @ (c.svd_scale[item] * c.svd_items[item])
        col += self.w_svd * svd / max(float(np.delete(svd, item).max(initial=0.0)), 1e-12)
        if c.tag_similarity is not None:
            tags = c.tag_similarity[item].toarray().ravel()
            col += self.w_tag_knn * tags / max(float(tags.max(initial=0.0)), 1e-12)
        return similar_from_column(col, item, n)
