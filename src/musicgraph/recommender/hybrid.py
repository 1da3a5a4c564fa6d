"""Our default recommender: normalised score fusion of co-listening and tag signals.

Its components, each computable from the matrices the serving projection holds (user-item play
counts, item-tag counts, user-user friendships), each cheap to serve from a precomputed item-item
(or item-factor) matrix:

- ``ease``: EASE (Steck 2019) on binary listens, the strongest co-listening model; with
  ``tag_side > 0`` each tag on at least ``tag_side_min_items`` artists joins its Gram matrix as a
  pseudo-user (Jeunen et al. 2020, "closed-form models with side information"), so co-tagged
  artists share weights and artists no one listened to get EASE scores too.
- ``svd``: PureSVD (Cremonesi et al. 2010) of the listens with columns scaled by
  popularity^-``pop_exponent``; the item-item matrix is the low-rank ``V V^T``.
- ``friends``: what the user's friends play (their row-normalised log play counts).
- ``tag_knn``: item-item cosine of TF-IDF tag vectors (top ``tag_k``), applied to the user's
  listens; reaches artists no one has listened to yet.
- ``tag_profile``: cosine between the user's tag profile (their listens' tag vectors) and items.
- ``als``: implicit-feedback ALS factors on BM25-weighted plays (``implicit``, an optional extra;
  set ``w_als=0`` to serve without it). Item factors are precomputed; a user's vector is a
  small least-squares fold-in of their listens.
- ``als2``: an optional second ALS, more regularised (``als2_*``: 32 factors, regularisation 90,
  alpha 2), served the same way; off by default (``w_als2=0``). With it (``w_als=6, w_als2=4,
  w_svd=1``) the test seeds 0-4 give NDCG@20 0.3096, Recall@20 0.3028 (a 64-factor one: 0.3098 /
  0.3028) against 0.3087 / 0.3017 without, but its fold-in and product add about 0.2 ms (64
  factors: 0.35 ms) to a user's 1.0 ms of scoring, past the serving budget.

Each component's scores are divided by a per-user scale computed over the user's unheard items,
then summed with weights tuned on the validation split (``ease`` has weight 1). With
``scale="std"`` (the default) the scale is the standard deviation of the component's scores over
those items: a z-score without its shift (a shift per user and component adds the same amount to
every item, so it cannot change the ranking, and leaving it out keeps the best items positive).
``scale="max"`` divides by the best unheard score instead (every component's top item scores 1).
The max puts a component with one stand-out item on the same footing as one that separates a
hundred items from the rest; the spread tells them apart. Measured on the protocol's test seeds
0-4 with weights re-tuned on the validation split, std over max: NDCG@20 0.3051 -> 0.3087,
Recall@20 0.2986 -> 0.3017 (validation 0.2398 -> 0.2417); seeds 5-9 in the commit message.

Serving one user (:meth:`Hybrid.score_one`) computes the same scores as the batch path without
sparse-matrix objects or dense users x items blocks: EASE through its exact Woodbury form with
``Z^T M`` precomputed (items x users, float32), so a user costs a gather of their items' rows and
one sparse product with the listens; PureSVD and ALS as small factor products (ALS folded in by
its normal equations); friends, tag neighbours and the tag profile as gathers of a few sparse
rows. :meth:`Hybrid.prepare_serving` builds those arrays once per fit (the engine does it in the
worker thread that fits); the two sparse matrices multiplied whole are stored shortest row first
(:class:`_ByLength`). The components fill one components x items block, scaled and summed in one
compiled pass (:func:`~musicgraph.recommender.kernels.fuse_rows`). What depends on the user's listens alone (EASE's ``x Z^T M``, the SVD and ALS user
vectors, the tag profile) is kept per row, as a factor model keeps its user factors: computed for
every user right after a fit (:meth:`Hybrid.warm_users`) and again for a row that changed (the
engine does it as it applies a listen).

Optionally (``reranker``, off unless set) a learned re-ranker (:mod:`~.rerank`) orders the fused
score's best 100 unheard items again from the components' scaled scores and a few context
features (popularity, friends, tags); :meth:`score` applies it to a block, :meth:`rerank_one` to
:meth:`score_one`'s output (candidates, feature rows and trees each one compiled pass,
:mod:`~musicgraph.recommender.kernels`). ``musicgraph evaluate`` reports it as ``Hybrid+rerank``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from musicgraph.recommender.als import ALS
from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.cooccurrence import cosine_similarity
from musicgraph.recommender.ease import EASE
from musicgraph.recommender.kernels import NO_INTS, candidate_features, fuse_rows
from musicgraph.recommender.rerank import (
    COMPONENTS as RERANK_COMPONENTS,
)
from musicgraph.recommender.rerank import (
    ItemContext,
    Reranker,
    permute_scores,
    top_candidates,
)
from musicgraph.recommender.rerank import (
    features as rerank_features,
)
from musicgraph.recommender.scoring import (
    BM25_B,
    BM25_K1,
    DenseScoringMixin,
    NotFittedError,
    kernel_csr,
    mask_rows,
    matvec,
    reweight,
    row_normalise,
    rows_sum,
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
    als2: ALS | None = None


F32 = npt.NDArray[np.float32]
# what :meth:`Hybrid.score_one` may compute, in its order
_COMPONENTS = ("ease", "svd", "als", "als2", "friends", "tag_knn", "tag_profile")


@dataclass
class _AlsServing:
    """One ALS model's arrays for folding a user in (see :meth:`Hybrid._als_fold_in`)."""

    items_t: F32  # factors x items (see _Serving.svd_t for why transposed)
    yty: FloatArray  # factors x factors: Y^T Y + regularization I
    alpha: float
    length_norm: FloatArray  # bm25 length normalisation per item (training plays)
    weighting: str

    @classmethod
    def of(cls, a: ALS) -> _AlsServing:
        assert a.item_factors is not None
        y = np.asarray(a.item_factors, dtype=np.float64)
        plays = a._item_plays if a._item_plays is not None else np.ones(y.shape[0])
        mean_plays = float(plays.mean()) or 1.0
        return cls(
            items_t=np.ascontiguousarray(y.T, dtype=np.float32),
            yty=y.T @ y + a.regularization * np.eye(y.shape[1]),
            alpha=a.alpha,
            length_norm=(1.0 - BM25_B) + BM25_B * plays / mean_plays,
            weighting=a.weighting,
        )


@dataclass
class _ByLength:
    """A CSR matrix stored with its rows shortest first, for products with a vector. A row's
    loop ends after the same number of entries row after row, which the CPU's branch predictor
    follows; in item order (most rows 1 to 3 entries long, a long tail) it mispredicts row after
    row once a request's other work has overwritten its history. Measured on HetRec between
    requests: EASE's items x users product 137 -> 71 us, the items x tags one 177 -> 77 us,
    for a gather back into item order of about 10 us."""

    m: sp.csr_matrix  # the rows, shortest first
    rank: IntArray  # rank[i]: where row i is stored in m

    @classmethod
    def of(cls, m: sp.spmatrix) -> _ByLength:
        csr = sp.csr_matrix(m)
        order = np.argsort(np.diff(csr.indptr), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return cls(kernel_csr(sp.csr_matrix(csr[order]), csr.dtype), rank.astype(np.int64))

    def dot(self, x: npt.NDArray[Any], out: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
        """``m @ x`` in the original row order (into ``out`` when given), in the matrix's
        dtype."""
        result: npt.NDArray[Any] = np.take(matvec(self.m, x), self.rank, out=out)
        return result


@dataclass
class _Serving:
    """Arrays for scoring one row at a time (see :meth:`Hybrid.score_one`)."""

    n_items: int
    ease_w: F32  # items x rows(Z): Z^T M, so x Z^T M is a sum of the user's rows
    ease_zt: _ByLength  # items x rows(Z): Z^T (float32)
    ease_factor: F32  # 1 / (l2 diag(P))
    # factors x items: a user's scores are the vector times this matrix, which BLAS reads
    # 20-30% faster than items x factors times the vector (HetRec, 64 factors: 145 vs 204 us
    # with cold caches)
    svd_t: F32 | None
    svd_scale: F32
    tag_sim: sp.csr_matrix | None  # items x items (row i: what listening to i adds), float32
    tag_vec: _ByLength | None  # items x tags, unit rows
    als: _AlsServing | None
    als2: _AlsServing | None


@dataclass(frozen=True)
class _UserVectors:
    """What :meth:`Hybrid.score_one` derives from a user's listens alone, before any product with
    the items: EASE's ``x Z^T M`` (one entry per row of ``Z``), the PureSVD and ALS user vectors
    (ALS folded in) and the unit tag profile's nonzero entries. A pure function of the listens,
    so it is kept per row (:class:`_UserCache`) like the user factors of any factor model."""

    ease: F32
    svd: F32 | None
    als: F32 | None
    als2: F32 | None
    profile: tuple[npt.NDArray[np.int32], F32] | None
    nbytes: int


class _UserCache:
    """:class:`_UserVectors` by the exact listens they were computed from (the row's item
    indices and play counts as bytes), at most ``max_bytes`` of them, least recently used out
    first. A row that changes is a new key, so an entry is never stale, only unused; a refit
    makes a new model with an empty cache."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: dict[bytes, _UserVectors] = {}
        self._lock = threading.Lock()  # evictions; a lookup is one dictionary probe

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _UserVectors | None:
        found = self._entries.get(key)
        if found is not None:
            with self._lock:  # most recently used last
                if self._entries.pop(key, None) is not None:
                    self._entries[key] = found
        return found

    def put(self, key: bytes, vectors: _UserVectors) -> bool:
        """Keep ``vectors``, dropping the least recently used entries as needed; False (nothing
        kept) when they are larger than the whole cache."""
        size = vectors.nbytes + len(key)
        if size > self.max_bytes:
            return False
        with self._lock:
            if key in self._entries:
                return True
            while self.bytes + size > self.max_bytes and self._entries:
                old_key = next(iter(self._entries))
                old = self._entries.pop(old_key)
                self.bytes -= old.nbytes + len(old_key)
            self._entries[key] = vectors
            self.bytes += size
        return True


class ComponentParts(Mapping[str, tuple[F32, float]]):
    """What :meth:`Hybrid.score_one` computed on the way, for :meth:`Hybrid.rerank_one`: each
    component's raw scores (a row of one block) and the scale they were divided by, before the
    weight; read as a mapping, component name -> (scores, scale)."""

    def __init__(self) -> None:
        self.block: F32 = np.zeros((0, 0), dtype=np.float32)
        self.names: tuple[str, ...] = ()
        self.scales: FloatArray = np.zeros(0)
        # per re-ranker component, its row in ``block`` (-1: not computed)
        self.rows: IntArray = np.full(len(RERANK_COMPONENTS), -1, dtype=np.int64)

    def fill(self, block: F32, names: tuple[str, ...], scales: FloatArray) -> None:
        self.block, self.scales = block, scales
        if names != self.names:
            self.names = names
            self.rows = np.array(
                [names.index(c) if c in names else -1 for c in RERANK_COMPONENTS], dtype=np.int64
            )

    def __getitem__(self, name: str) -> tuple[F32, float]:
        if name not in self.names:
            raise KeyError(name)
        j = self.names.index(name)
        return self.block[j], float(self.scales[j])

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


#: bytes of user vectors a fitted Hybrid keeps (HetRec: 1,892 users in about 31 MB)
USER_CACHE_BYTES = 128 << 20


def _gather_sum(
    indptr: IntArray,
    indices: IntArray,
    data: FloatArray,
    rows: IntArray,
    weights: FloatArray,
    n: int,
) -> FloatArray:
    """``sum_r weights[r] * M[rows[r]]`` for a CSR ``M`` given by its arrays, as a dense vector."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(n)
    offsets = np.cumsum(lens) - lens
    pos = np.repeat(starts - offsets, lens) + np.arange(total)
    out: FloatArray = np.bincount(
        indices[pos], weights=data[pos] * np.repeat(weights, lens), minlength=n
    ).astype(np.float64, copy=False)
    return out


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


def _tag_side_rows(data: TrainingData, weight: float, min_items: int) -> sp.csr_matrix | None:
    """Tags as pseudo-users for EASE (Jeunen et al. 2020): one 0/1 row per tag on at least
    ``min_items`` items, times ``weight``; None when off or without tags."""
    if weight <= 0 or data.item_tags is None or not data.item_tags.nnz:
        return None
    tagged = sp.csr_matrix(data.item_tags > 0, dtype=np.float64)
    df = np.asarray(tagged.sum(axis=0)).ravel()
    keep = np.flatnonzero(df >= min_items)
    if keep.size == 0:
        return None
    return sp.csr_matrix(tagged[:, keep].T) * weight


def _fit_components(
    data: TrainingData,
    l2: float,
    factors: int,
    pop_exponent: float,
    tag_k: int,
    seed: int,
    als_params: dict[str, Any] | None,
    tag_side: float = 0.0,
    tag_side_min_items: int = 5,
    als2_params: dict[str, Any] | None = None,
) -> _Components:
    key = (
        l2,
        factors,
        pop_exponent,
        tag_k,
        seed,
        sorted((als_params or {}).items()),
        tag_side,
        tag_side_min_items,
        sorted((als2_params or {}).items()),
    )
    for cached_data, cached_key, comps in _CACHE:
        if cached_data is data and cached_key == key:
            return comps
    binary = reweight(data.user_items, "binary")
    ease = EASE(l2=l2, weighting="binary")
    ease.fit(data, side=_tag_side_rows(data, tag_side, tag_side_min_items))
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
    als2 = None
    if als2_params is not None:
        als2 = ALS(**als2_params, random_state=seed)
        als2.fit(data)
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
        als2=als2,
    )
    _CACHE.append((data, key, comps))
    del _CACHE[:-_CACHE_SIZE]
    return comps


SCALES = ("max", "std")


def _row_scales(masked: FloatArray, how: str) -> FloatArray:
    """Per-row divisors (rows x 1) of scores whose heard items are -inf: the best finite score
    (``how="max"``) or the standard deviation of the finite scores (``"std"``); 1 where that is
    not positive (or a row has no finite score)."""
    finite = np.isfinite(masked)
    if how == "max":
        stat = masked.max(axis=1, keepdims=True)
    elif how == "std":
        vals = np.where(finite, masked, 0.0)
        count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
        mean = vals.sum(axis=1, keepdims=True) / count
        var = (vals * vals).sum(axis=1, keepdims=True) / count - mean * mean
        stat = np.sqrt(np.maximum(var, 0.0))
    else:
        raise ValueError(f"unknown scale {how!r}: use one of {', '.join(SCALES)}")
    return np.asarray(np.where(np.isfinite(stat) & (stat > 0), stat, 1.0))


def _normalise_rows(scores: FloatArray, seen: sp.csr_matrix, how: str = "max") -> FloatArray:
    """Scale each row by its :func:`_row_scales` over unheard items (``"max"``: the best unheard
    item scores 1); heard items become -inf."""
    masked = np.array(scores, dtype=np.float64)
    mask_rows(masked, seen)
    return np.asarray(masked / _row_scales(masked, how))


class Hybrid(DenseScoringMixin):
    """EASE + popularity-scaled PureSVD + ALS (+ a second) + friends + tag neighbours + tag
    profile, fused.

    ``l2``, ``factors``, ``pop_exponent``, ``tag_k``, ``als_*``, ``als2_*`` (the components' own
    parameters) were tuned on the validation split with the fusion; the fusion weights are the
    grid.
    """

    name = "Hybrid"
    GRID: ClassVar[dict[str, list[Any]]] = {
        "w_als": [2.0, 3.0, 4.0, 6.0, 8.0],
        "w_als2": [0.0],
        "w_svd": [1.0, 1.5, 2.0, 3.0, 4.0],
        "w_friends": [0.5, 0.75, 1.0, 1.5],
        "w_tag_knn": [1.0, 1.5, 2.0, 3.0],
        "w_tag_profile": [3.0, 4.0, 6.0, 8.0],
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
        "w_als2": (0.0, 20.0),
        "als_alpha": (0.05, 100.0),
        "tag_side": (0.0, 100.0),
        "tag_side_min_items": (1, 100_000),
    }

    def __init__(
        self,
        *,
        l2: float = 50.0,
        factors: int = 64,
        pop_exponent: float = 0.25,
        w_svd: float = 2.0,
        w_friends: float = 0.75,
        w_tag_knn: float = 1.0,
        w_tag_profile: float = 4.0,
        tag_k: int = 50,
        w_als: float = 4.0,
        als_factors: int = 48,
        als_regularization: float = 30.0,
        als_alpha: float = 1.0,
        w_als2: float = 0.0,
        als2_factors: int = 32,
        als2_regularization: float = 90.0,
        als2_alpha: float = 2.0,
        scale: str = "std",
        tag_side: float = 0.0,
        tag_side_min_items: int = 5,
        random_state: int = 0,
    ) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")
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
        self.w_als2 = w_als2
        self.als2_factors = als2_factors
        self.als2_regularization = als2_regularization
        self.als2_alpha = als2_alpha
        self.scale = scale
        self.tag_side = tag_side
        self.tag_side_min_items = tag_side_min_items
        self.random_state = random_state
        self._c: _Components | None = None
        self._serving: _Serving | None = None
        self._users = _UserCache(USER_CACHE_BYTES)
        # a learned re-ranker of the best candidates (musicgraph.recommender.rerank), or None
        self.reranker: Reranker | None = None
        self._item_context: ItemContext | None = None

    def fit(self, data: TrainingData) -> None:
        als_params = None
        if self.w_als:
            als_params = {
                "factors": self.als_factors,
                "regularization": self.als_regularization,
                "alpha": self.als_alpha,
                "weighting": "bm25",
            }
        als2_params = None
        if self.w_als2:
            als2_params = {
                "factors": self.als2_factors,
                "regularization": self.als2_regularization,
                "alpha": self.als2_alpha,
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
            self.tag_side,
            self.tag_side_min_items,
            als2_params,
        )
        self._seen = self._c.binary
        self._serving = None
        self._users = _UserCache(self._users.max_bytes)
        self._item_context = None

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
        if self.w_als2 and c.als2 is not None:
            out["als2"] = c.als2.score(users)
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
        if self.w_als2 and c.als2 is not None:
            out["als2"] = c.als2.score_rows(plays)
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
        is scaled over the row's *unheard* items, as in :meth:`score`, but heard items keep
        their scaled score (the caller decides whether to exclude them)."""
        plays = sp.csr_matrix(plays, dtype=np.float64)
        seen = reweight(plays, "binary")
        weights = self.weights()
        total = np.zeros((plays.shape[0], self.n_items))
        for name, raw in self.component_scores_rows(plays, friend_plays).items():
            masked = np.array(raw, dtype=np.float64)
            mask_rows(masked, seen)
            total += weights[name] * (raw / _row_scales(masked, self.scale))
        return total

    def prepare_serving(self) -> None:
        """Build the arrays :meth:`score_one` reads (once per fit; about 4 bytes x items x users
        for EASE's ``Z^T M``)."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        e = c.ease
        assert e._z is not None and e._m is not None and e._diag_p is not None
        zt = sp.csr_matrix(e._z.T, dtype=np.float64)
        ease_w = np.asarray(zt @ e._m, dtype=np.float32)
        zt = sp.csr_matrix(zt, dtype=np.float32)
        tag_sim = (
            None
            if c.tag_similarity is None
            else kernel_csr(sp.csr_matrix(c.tag_similarity), np.float32)
        )
        self._users = _UserCache(self._users.max_bytes)
        self._serving = _Serving(
            n_items=int(c.binary.shape[1]),
            ease_w=ease_w,
            ease_zt=_ByLength.of(zt),
            ease_factor=(1.0 / (e.l2 * e._diag_p)).astype(np.float32),
            svd_t=np.ascontiguousarray(c.svd_items.T, dtype=np.float32) if self.w_svd else None,
            svd_scale=c.svd_scale.astype(np.float32),
            tag_sim=tag_sim,
            tag_vec=None
            if c.tag_vectors is None
            else _ByLength.of(sp.csr_matrix(c.tag_vectors, dtype=np.float32)),
            als=_AlsServing.of(c.als) if self.w_als and c.als is not None else None,
            als2=_AlsServing.of(c.als2) if self.w_als2 and c.als2 is not None else None,
        )

    @staticmethod
    def _als_fold_in(s: _AlsServing, items: IntArray, plays: FloatArray) -> FloatArray:
        """One user's ALS factors by the normal equations implicit solves (confidence
        ``alpha * w`` on the model's weighting of the plays)."""
        if s.weighting == "bm25":
            idf = np.log(max(s.items_t.shape[1], 1)) - np.log1p(items.size)
            w = plays * (BM25_K1 + 1.0) / (BM25_K1 * s.length_norm[items] + plays) * idf
        elif s.weighting == "log":
            w = np.log1p(plays)
        elif s.weighting == "binary":
            w = np.ones(items.size)
        else:
            w = plays
        conf = s.alpha * w
        y = s.items_t[:, items].T.astype(np.float64)
        a = s.yty + (y.T * (conf - 1.0)) @ y
        b = y.T @ conf
        return np.asarray(np.linalg.solve(a, b))

    def user_vectors(self, items: IntArray, plays: FloatArray) -> _UserVectors:
        """The user's vectors for :meth:`score_one` (``items`` int64, ``plays`` float64, as it
        takes them), kept by the exact row: a user asking again skips EASE's gather of
        ``Z^T M`` rows (random rows of a large matrix), the ALS fold-in's solve and the tag
        profile's gather, about 0.18 ms of a HetRec request."""
        key = items.tobytes() + plays.tobytes()
        found = self._users.get(key)
        if found is not None:
            return found
        s = self._serving
        assert s is not None
        svd = None
        if self.w_svd and s.svd_t is not None:
            svd = s.svd_t[:, items] @ s.svd_scale[items]
        als = als2 = None
        if self.w_als and s.als is not None:
            als = self._als_fold_in(s.als, items, plays).astype(np.float32)
        if self.w_als2 and s.als2 is not None:
            als2 = self._als_fold_in(s.als2, items, plays).astype(np.float32)
        profile = None
        if self.w_tag_profile and s.tag_vec is not None:
            t = s.tag_vec.m
            rows = s.tag_vec.rank[items]
            dense = _gather_sum(t.indptr, t.indices, t.data, rows, np.log1p(plays), t.shape[1])
            norm2 = float(np.sqrt(dense @ dense))
            if norm2 > 0:
                nz = np.flatnonzero(dense).astype(np.int32)
                profile = (nz, (dense[nz] / norm2).astype(np.float32))
        ease = s.ease_w[items].sum(axis=0)
        parts = [ease, svd, als, als2, *(profile or ())]
        size = sum(a.nbytes for a in parts if a is not None) + 400  # + the objects
        vectors = _UserVectors(ease, svd, als, als2, profile, size)
        self._users.put(key, vectors)
        return vectors

    def forget_users(self) -> None:
        """Drop every kept user vector (the next request of each user computes them again)."""
        self._users = _UserCache(self._users.max_bytes)

    def warm_users(self, rows: Iterable[tuple[IntArray, FloatArray]]) -> int:
        """Compute and keep the user vectors of ``rows`` (as :meth:`score_one` takes them), until
        the cache is full; returns how many it keeps. The engine calls it once per fit, in the
        fitting thread, so that no user's first request pays for them."""
        if self._serving is None:
            self.prepare_serving()
        kept = largest = 0
        for items, plays in rows:
            if items.size == 0:
                continue
            vectors = self.user_vectors(items, plays)
            kept += 1
            largest = max(largest, vectors.nbytes + items.nbytes + plays.nbytes)
            if self._users.bytes + 2 * largest > self._users.max_bytes:
                break  # the next one could evict one of these
        return kept

    def score_one(
        self,
        items: IntArray,
        plays: FloatArray,
        friend_items: IntArray | None = None,
        friend_plays: FloatArray | None = None,
        friend_slot: IntArray | None = None,
        parts: ComponentParts | None = None,
    ) -> FloatArray:
        """The fused scores (one per fitted item) of one user with play counts ``plays`` on
        ``items`` (fitted item indices, no repeats, positive counts): what :meth:`score_rows`
        gives for that row, computed without sparse-matrix objects.

        ``friend_items``/``friend_plays`` are the friends' listens flattened, ``friend_slot``
        says which friend each belongs to (0..n_friends-1). ``parts`` receives each component's
        raw scores and the scale they were divided by, for :meth:`rerank_one`."""
        if self._serving is None:
            self.prepare_serving()
        s = self._serving
        assert s is not None
        n = s.n_items
        items = np.asarray(items, dtype=np.int64)
        plays = np.asarray(plays, dtype=np.float64)
        if items.size == 0:
            return np.zeros(n)
        u = self.user_vectors(items, plays)
        # one row per component, filled in place (float32), then scaled and summed all at once:
        # a handful of BLAS calls instead of a dozen numpy calls per component
        block = np.empty((len(_COMPONENTS), n), dtype=np.float32)
        names: list[str] = []
        weights: list[float] = []

        def row(name: str, weight: float) -> F32:
            names.append(name)
            weights.append(weight)
            out: F32 = block[len(names) - 1]
            return out

        # EASE: x - (x - (x Z^T M) Z) / l2 / diag(P), x binary
        ease = s.ease_zt.dot(u.ease, out=row("ease", 1.0))
        ease[items] -= 1.0
        ease *= s.ease_factor
        ease[items] += 1.0
        if u.svd is not None:
            assert s.svd_t is not None
            np.matmul(u.svd, s.svd_t, out=row("svd", self.w_svd))
        for name, weight, als, user in (
            ("als", self.w_als, s.als, u.als),
            ("als2", self.w_als2, s.als2, u.als2),
        ):
            if user is not None:
                assert als is not None
                np.matmul(user, als.items_t, out=row(name, weight))
        if self.w_friends and friend_items is not None and friend_items.size:
            assert friend_plays is not None and friend_slot is not None
            logs = np.log1p(np.asarray(friend_plays, dtype=np.float64))
            sums = np.bincount(friend_slot, weights=logs)
            norm = logs / sums[friend_slot]
            row("friends", self.w_friends)[:] = np.bincount(
                friend_items, weights=norm, minlength=n
            )[:n]
        if self.w_tag_knn and s.tag_sim is not None:
            rows_sum(s.tag_sim, items, row("tag_knn", self.w_tag_knn))
        if u.profile is not None:
            assert s.tag_vec is not None
            vector = np.zeros(s.tag_vec.m.shape[1], dtype=np.float32)
            vector[u.profile[0]] = u.profile[1]
            s.tag_vec.dot(vector, out=row("tag_profile", self.w_tag_profile))
        used = block[: len(names)]
        total, scales = fuse_rows(used, items, np.asarray(weights), self.scale == "std")
        if parts is not None:
            parts.fill(used, tuple(names), scales)
        return total

    def weights(self) -> dict[str, float]:
        return {
            "ease": 1.0,
            "svd": self.w_svd,
            "als": self.w_als,
            "als2": self.w_als2,
            "friends": self.w_friends,
            "tag_knn": self.w_tag_knn,
            "tag_profile": self.w_tag_profile,
        }

    def score(self, users: IntArray) -> FloatArray:
        total, parts = self.scaled_components(users)
        if self.reranker is not None:
            self._rerank_rows(users, total, parts)
        return total

    def scaled_components(self, users: IntArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        """The fused scores of a block of users and each component's scaled (unweighted)
        scores; heard items are -inf in both."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        seen = c.binary[users]
        weights = self.weights()
        total = np.zeros((len(users), c.binary.shape[1]))
        parts: dict[str, FloatArray] = {}
        for name, raw in self.component_scores(users).items():
            parts[name] = _normalise_rows(raw, seen, self.scale)
            total += weights[name] * parts[name]
        return total, parts

    # --- the re-ranker's inputs (musicgraph.recommender.rerank) ---------------------------------
    def seen_items(self) -> sp.csr_matrix:
        """The fit's 0/1 users x items matrix."""
        if self._c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        return self._c.binary

    def item_context(self) -> ItemContext:
        """Per-item re-ranker features of this fit (log listeners, log distinct tags)."""
        if self._c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        if self._item_context is None:
            self._item_context = ItemContext.of(self._c.binary, self._c.tag_vectors)
        return self._item_context

    def friends_playing(self, users: IntArray) -> sp.csr_matrix | None:
        """users x items: how many of each user's friends listened to each item (training)."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        if c.user_friends is None:
            return None
        return sp.csr_matrix(c.user_friends[users] @ c.binary)

    def friend_counts(self, users: IntArray) -> FloatArray:
        """Each user's number of friends."""
        c = self._c
        if c is None:
            raise NotFittedError("Hybrid is not fitted: call fit(data) first")
        if c.user_friends is None:
            return np.zeros(len(users))
        counts: FloatArray = np.diff(c.user_friends.indptr)[users].astype(np.float64)
        return counts

    def candidate_features(
        self, users: IntArray, total: FloatArray, parts: dict[str, FloatArray], k: int
    ) -> list[tuple[IntArray, FloatArray]]:
        """Each user's ``k`` best unheard candidates by ``total`` (rows of
        :meth:`scaled_components`) and their re-ranker feature rows."""
        ctx = self.item_context()
        seen = self.seen_items()
        friends = self.friends_playing(users)
        n_friends = self.friend_counts(users)
        out: list[tuple[IntArray, FloatArray]] = []
        for i, user in enumerate(np.asarray(users).tolist()):
            heard = seen.indices[seen.indptr[user] : seen.indptr[user + 1]].astype(np.int64)
            cands = top_candidates(total[i], heard, k)
            playing = (
                np.zeros(cands.size)
                if friends is None
                else np.asarray(friends[i, cands].toarray(), dtype=np.float64).ravel()
            )
            x = rerank_features(
                total[i, cands],
                {name: part[i, cands] for name, part in parts.items()},
                ctx,
                cands,
                history=heard,
                n_friends=float(n_friends[i]),
                friends_playing=playing,
            )
            out.append((cands, x))
        return out

    def _rerank_rows(
        self, users: IntArray, total: FloatArray, parts: dict[str, FloatArray]
    ) -> None:
        """Re-rank each row's best candidates in place (see :mod:`~.rerank`)."""
        r = self.reranker
        assert r is not None
        for i, (cands, x) in enumerate(self.candidate_features(users, total, parts, r.k)):
            permute_scores(total[i], cands, r.order(x, cands))

    def rerank_one(
        self,
        scores: FloatArray,
        items: IntArray,
        parts: ComponentParts,
        friend_items: IntArray | None = None,
        n_friends: int = 0,
    ) -> IntArray | None:
        """Re-rank in place the best candidates of :meth:`score_one`'s ``scores`` for the same
        ``items`` and ``friend_items`` (``n_friends``: the user's number of friends), as
        :meth:`score` does for a block, and return them in their new order (best first: the
        best unheard items, so a caller needs no second pass over the scores); a no-op that
        returns None without a re-ranker.

        ``parts`` is what :meth:`score_one` filled in (a component it skipped counts 0). The
        candidates' feature rows are :func:`~musicgraph.recommender.rerank.features`', built in
        one compiled pass (:func:`~musicgraph.recommender.kernels.candidate_features`)."""
        r = self.reranker
        if r is None or items.size == 0:
            return None
        items = np.asarray(items, dtype=np.int64)
        cands = top_candidates(scores, items, r.k)
        ctx = self.item_context()
        x = candidate_features(
            scores,
            parts.block,
            parts.scales,
            parts.rows,
            cands,
            ctx.log_popularity,
            ctx.log_tags,
            items.size,
            float(ctx.log_popularity[items].mean()),
            float(n_friends),
            NO_INTS if friend_items is None else np.asarray(friend_items, dtype=np.int64),
        )
        order = r.order(x, cands)
        permute_scores(scores, cands, order)
        ranked: IntArray = cands[order]
        return ranked

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
