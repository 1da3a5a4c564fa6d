"""Compiled loops for the request path, where numpy would take a dozen calls over the same data.

A HetRec request is about a millisecond, and most of the numpy calls in it touch a few thousand
values, where a call's fixed cost (a few microseconds: argument checks, a temporary, a second
pass) is most of its time. The loops here do such a step in one pass, compiled by numba (cached
on disk beside this file, or in numba's cache directory where this one is read-only: a machine
compiles them once, 2.5 s alone and about 10 s in a fresh clone's first server start, and a
process reads them back in some 0.3 s;
:meth:`RecommendationEngine.load <musicgraph.recommender.engine.RecommendationEngine.load>` calls
:func:`warm` in a worker thread so that no request waits for it). They release the GIL.

Each one is checked against a plain numpy or Python version of the same in the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

F = TypeVar("F", bound=Callable[..., Any])
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.integer[Any]]  # int32 or int64 (numba compiles one version for each)


def _jit(f: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True)(f))


def _jit_sums(f: F) -> F:
    """:func:`_jit` for loops that sum: the sums may be reassociated (summed in several lanes at
    once, in vector registers), which changes them in the last bits only; infinities and NaN
    keep their meaning."""
    return cast(F, numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})(f))


# the lowest set bit of a word, by de Bruijn multiplication: table[(low * C) >> 58] is its index
_DEBRUIJN = np.uint64(0x03F79D71B4CA8B09)
_BIT_INDEX = np.zeros(64, dtype=np.int64)
for _i in range(64):
    _BIT_INDEX[((1 << _i) * 0x03F79D71B4CA8B09 % (1 << 64)) >> 58] = _i


@_jit
def overlap_counts(
    start: I64,
    length: Ints,
    indices: Ints,
    items: I64,
    seeds: I64,
    degree: Ints,
    probe: I64,
    n_cols: int,
) -> tuple[I64, F64, I64]:
    """For rows ``items`` (R) and ``seeds`` (S) of a pooled matrix given by its arrays (row ``i``
    is ``indices[start[i] : start[i] + length[i]]``, distinct columns): ``counts[r, s]``, the
    columns both rows have; when ``degree`` (one per column) is not empty, ``mass[r, s]``, the
    sum of ``1 / degree`` over those columns (summed in float32); ``probed[r]``, how many of the
    ``probe`` columns row ``r`` has. Columns at or past ``n_cols`` and rows past the arrays
    count nothing.

    Items go 64 at a time: each column the block's items have gets a row of a small table, 1
    where an item has it; every entry of a seed adds its column's row to the seed's sums (in
    vector registers). The cost is the rows' lengths times the block, whatever the number of
    shared pairs (popular seeds and items share tens of thousands)."""
    n_r = items.size
    n_s = seeds.size
    n_rows = start.size
    with_mass = degree.size > 0
    counts_t = np.zeros((n_s, n_r), dtype=np.float32)  # seed by seed: a contiguous row each
    mass_t = np.zeros((n_s, n_r), dtype=np.float32)
    probed = np.zeros(n_r, dtype=np.int64)
    slot = np.full(n_cols, -1, dtype=np.int32)  # the column's row in the table
    for lo in range(0, n_r, 64):
        hi = min(lo + 64, n_r)
        width = hi - lo
        n_t = 0
        for r in range(lo, hi):
            row = items[r]
            if row < n_rows:
                for k in range(start[row], start[row] + length[row]):
                    col = indices[k]
                    if col < n_cols and slot[col] < 0:
                        slot[col] = n_t
                        n_t += 1
        table = np.zeros((n_t, width), dtype=np.float32)
        for r in range(lo, hi):
            row = items[r]
            if row < n_rows:
                for k in range(start[row], start[row] + length[row]):
                    col = indices[k]
                    if col < n_cols:
                        table[slot[col], r - lo] = 1.0
        for s in range(n_s):
            row = seeds[s]
            if row >= n_rows:
                continue
            seed_counts = counts_t[s, lo:hi]
            seed_mass = mass_t[s, lo:hi]
            for k in range(start[row], start[row] + length[row]):
                col = indices[k]
                if col >= n_cols or slot[col] < 0:
                    continue
                has = table[slot[col]]
                weight = np.float32(1.0 / degree[col]) if with_mass else np.float32(0.0)
                for r in range(width):
                    seed_counts[r] += has[r]
                    seed_mass[r] += has[r] * weight
        for col in probe:
            if col < n_cols and slot[col] >= 0:
                has = table[slot[col]]
                for r in range(width):
                    probed[lo + r] += np.int64(has[r])
        for r in range(lo, hi):  # the slots back to -1 for the next block
            row = items[r]
            if row < n_rows:
                for k in range(start[row], start[row] + length[row]):
                    if indices[k] < n_cols:
                        slot[indices[k]] = -1
    return counts_t.T.astype(np.int64), mass_t.T.astype(np.float64), probed


@_jit
def tree_scores(
    x: F64,
    features: I64,
    cuts: F64,
    cut_start: I64,
    mask_start: I64,
    masks: npt.NDArray[np.uint16],
    leaf_value: F64,
    leaves: int,
    base: float,
) -> F64:
    """The summed leaf values of stacked trees for each row of ``x`` (rows x features), by the
    per-feature bins of :class:`~musicgraph.recommender.rerank._FeatureBins`: for each
    ``features[j]``, the thresholds ``cuts[cut_start[j] : cut_start[j + 1]]`` (ascending), and
    ``masks[mask_start[j] + bin]`` the leaf bits (per tree) that the nodes below the value
    clear. A tree's leaf is its lowest bit left. ``bin`` counts the thresholds strictly below the
    value (a NaN is above all of them, as numpy sorts it)."""
    one = np.uint64(1)
    n_rows = x.shape[0]
    n_trees = masks.shape[1]
    out = np.empty(n_rows, dtype=np.float64)
    cleared = np.empty(n_trees, dtype=np.uint16)
    for i in range(n_rows):
        cleared[:] = 0
        for j in range(features.size):
            value = x[i, features[j]]
            lo = cut_start[j]
            hi = cut_start[j + 1]
            if value != value:
                b = hi
            else:
                b = lo
                while b < hi:
                    mid = (b + hi) >> 1
                    if cuts[mid] < value:
                        b = mid + 1
                    else:
                        hi = mid
            row = masks[mask_start[j] + b - cut_start[j]]
            for t in range(n_trees):
                cleared[t] |= row[t]
        total = base
        for t in range(n_trees):
            alive = np.uint64(0xFFFF ^ cleared[t])
            low = alive & (~alive + one)
            total += leaf_value[t * leaves + _BIT_INDEX[(low * _DEBRUIJN) >> np.uint64(58)]]
        out[i] = total
    return out


@_jit_sums
def fuse_rows(
    block: npt.NDArray[np.float32], heard: I64, weights: F64, use_std: bool
) -> tuple[F64, F64]:
    """``sum_j weights[j] / scale[j] * block[j]`` (float64) and the ``scale`` of each row of
    ``block`` (components x items, float32) over the items not in ``heard`` (distinct): its standard
    deviation (``use_std``) or its maximum, 1 where that is not a positive number. The heard
    entries are set aside while the rows are summed (their large scores would swamp the others'
    in the sums of squares), then put back; sums are float64."""
    m, n = block.shape
    n_heard = heard.size
    saved = np.empty((m, n_heard), dtype=np.float32)
    scales = np.ones(m, dtype=np.float64)
    fill = np.float32(0.0) if use_std else np.float32(-np.inf)
    n_unheard = n - n_heard
    for j in range(m):
        row = block[j]
        for q in range(n_heard):
            saved[j, q] = row[heard[q]]
            row[heard[q]] = fill
        if use_std:
            total = 0.0
            squares = 0.0
            for i in range(n):
                v = np.float64(row[i])
                total += v
                squares += v * v
            count = max(n_unheard, 1)
            mean = total / count
            var = squares / count - mean * mean
            stat = np.sqrt(max(var, 0.0)) if n_unheard > 0 else 0.0
        else:
            best = -np.inf
            for i in range(n):
                best = max(best, np.float64(row[i]))
            stat = best
        if np.isfinite(stat) and stat > 0:
            scales[j] = stat
        for q in range(n_heard):
            row[heard[q]] = saved[j, q]
    coef = weights / scales
    out = np.zeros(n, dtype=np.float64)
    for j in range(m):
        c = coef[j]
        row = block[j]
        for i in range(n):
            out[i] += c * row[i]
    return out, scales


@_jit
def best_unheard(scores: F64, heard: I64, k: int) -> I64:
    """The ``k`` best finite scores' positions, ``heard`` left out (fewer if fewer exist), best
    first, equal scores by position; ``scores`` is left as it was. As
    :func:`~musicgraph.recommender.scoring.best_positions` does, a threshold falling by quarters
    from the best score finds a few more than ``k`` in a pass or two, and only those are
    sorted."""
    n = scores.size
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    saved = np.empty(heard.size, dtype=np.float64)
    for q in range(heard.size):
        saved[q] = scores[heard[q]]
        scores[heard[q]] = -np.inf
    top = -np.inf
    for i in range(n):
        top = max(top, scores[i])
    # the items above a threshold falling by quarters from the best score, until there are k
    # (all the finite ones when the best is not positive or the threshold gets negligible)
    found = np.empty(n, dtype=np.int64)
    threshold = top / 4 if top > 0 else -np.inf
    while True:
        if not threshold > top * 1e-6:
            threshold = -np.inf
        m = 0
        for i in range(n):
            v = scores[i]
            if v > threshold and np.isfinite(v):
                found[m] = i
                m += 1
        if m >= k or threshold == -np.inf:
            break
        threshold /= 4
    picked = found[:m]
    values = np.empty(m, dtype=np.float64)
    for j in range(m):
        values[j] = -scores[picked[j]]
    if m > k:  # only what ties with the k-th best or beats it is sorted
        kth = np.partition(values, k - 1)[k - 1]
        keep = values <= kth
        picked = picked[keep]
        values = values[keep]
    order = np.argsort(values, kind="mergesort")  # stable: equal scores by position
    for q in range(heard.size):
        scores[heard[q]] = saved[q]
    return picked[order[:k]]


@_jit
def shown_reasons(contrib: F64, picks: int) -> tuple[I64, I64, F64]:
    """Each item's (row's) best ``picks`` origins (columns) by contribution, best first, equal
    ones in column order: the first always, the others when they gave something. Returns the
    shown pairs item by item, best first: (row, column, share of the row's total; 0 where the
    total is not positive)."""
    n_r, n_k = contrib.shape
    picks = min(picks, n_k)
    rows = np.empty(n_r * picks, dtype=np.int64)
    cols = np.empty(n_r * picks, dtype=np.int64)
    shares = np.empty(n_r * picks, dtype=np.float64)
    taken = np.zeros(n_k, dtype=np.bool_)
    m = 0
    for r in range(n_r):
        total = 0.0
        for c in range(n_k):
            total += contrib[r, c]
        first = m
        for j in range(picks):
            best = -np.inf
            at = -1
            for c in range(n_k):
                if not taken[c] and (at < 0 or contrib[r, c] > best):
                    best = contrib[r, c]
                    at = c
            if j > 0 and not best > 0:
                break
            taken[at] = True
            rows[m] = r
            cols[m] = at
            shares[m] = best / total if total > 0 else 0.0
            m += 1
        for q in range(first, m):
            taken[cols[q]] = False
    return rows[:m], cols[:m], shares[:m]


@_jit
def candidate_features(
    blend: F64,
    block: npt.NDArray[np.float32],
    scales: F64,
    component_rows: I64,
    candidates: I64,
    log_popularity: F64,
    log_tags: F64,
    n_history: int,
    history_popularity: float,
    n_friends: float,
    friend_items: I64,
) -> F64:
    """The re-ranker's feature rows of one user's candidates (the layout of
    :data:`~musicgraph.recommender.rerank.FEATURES`, as
    :func:`~musicgraph.recommender.rerank.features` builds them) from what the Hybrid's
    :meth:`~musicgraph.recommender.hybrid.Hybrid.score_one` computed: the fused scores
    ``blend``, and component ``c``'s raw scores in ``block[component_rows[c]]`` (-1: the Hybrid
    lacks it, 0) to be divided by its scale. ``friend_items`` are the friends' items, one entry
    per (friend, item); ``history_popularity`` the mean log popularity of the heard items."""
    n_c = component_rows.size
    k = candidates.size
    x = np.zeros((k, 1 + n_c + 6), dtype=np.float64)
    # how many friends have each candidate: a slot per item, set for the candidates only
    slot = np.full(blend.size, -1, dtype=np.int32)
    for j in range(k):
        slot[candidates[j]] = j
    playing = np.zeros(k, dtype=np.float64)
    for item in friend_items:
        if item < slot.size and slot[item] >= 0:
            playing[slot[item]] += 1.0
    b = 1 + n_c
    for j in range(k):
        item = candidates[j]
        x[j, 0] = blend[item]
        for c in range(n_c):
            row = component_rows[c]
            if row >= 0:
                x[j, 1 + c] = np.float64(block[row, item]) / scales[row]
        x[j, b] = log_popularity[item]
        x[j, b + 1] = np.log1p(n_history)
        x[j, b + 2] = np.log1p(n_friends)
        x[j, b + 3] = playing[j]
        x[j, b + 4] = history_popularity
        x[j, b + 5] = log_tags[item]
    return x


NO_DEGREE: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
NO_INTS: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)


def warm() -> None:
    """Compile every kernel here (or read it from numba's cache) for the array types serving
    passes, on tiny inputs: seconds the first time on a machine, some 0.3 s after."""
    i32, i64 = np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int64)
    overlap_counts(i64, i32, i32, i64, i64, np.ones(1, dtype=np.int32), i64, 1)
    overlap_counts(i64, i32, i32, i64, i64, NO_DEGREE, NO_INTS, 1)
    best_unheard(np.ones(3), i64, 2)
    shown_reasons(np.ones((2, 3)), 2)
    fuse_rows(np.ones((2, 3), dtype=np.float32), i64, np.ones(2), True)
    fuse_rows(np.ones((2, 3), dtype=np.float32), i64, np.ones(2), False)
    candidate_features(
        np.zeros(1),
        np.zeros((1, 1), dtype=np.float32),
        np.ones(1),
        i64,
        i64,
        np.zeros(1),
        np.zeros(1),
        0,
        0.0,
        0.0,
        i64,
    )
    tree_scores(
        np.zeros((1, 1)),
        i64,
        np.zeros(1),
        np.array([0, 1]),
        i64,
        np.zeros((2, 1), dtype=np.uint16),
        np.zeros(1),
        1,
        0.0,
    )
