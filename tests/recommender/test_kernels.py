"""The compiled kernels against plain numpy versions of the same (the others, overlaps and tree
scores, are checked against brute-force counts and LightGBM in their modules' tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musicgraph.recommender import kernels
from musicgraph.recommender.hybrid import _row_scales


@pytest.mark.parametrize("how", ["std", "max"])
def test_fuse_rows_scales_over_unheard_items_and_sums_the_weighted_rows(how: str) -> None:
    """Each row's scale is _row_scales' over the unheard items (heard ones masked), 1 for a row
    with nothing positive; the sum weighs the whole rows, heard items included; the block comes
    back unchanged."""
    rng = np.random.default_rng(3)
    block = rng.normal(size=(5, 400)).astype(np.float32)
    heard = rng.choice(400, size=37, replace=False).astype(np.int64)
    block[0, heard] = 1e4  # heard items' large scores must not count
    block[2] = 0.0  # nothing to scale by: 1
    block[3] = -np.abs(block[3])  # no positive maximum (with "max"): 1
    weights = np.array([1.0, 2.0, 0.5, 4.0, 0.75])
    before = block.copy()
    total, scales = kernels.fuse_rows(block, heard, weights, how == "std")
    masked = block.astype(np.float64)
    masked[:, heard] = -np.inf
    want_scales = _row_scales(masked, how).ravel()
    np.testing.assert_allclose(scales, want_scales, rtol=1e-9)
    assert scales[2] == 1.0
    if how == "max":
        assert scales[3] == 1.0
    want = (weights / want_scales) @ block.astype(np.float64)
    np.testing.assert_allclose(total, want, rtol=1e-9, atol=1e-9)
    assert (block == before).all()


def test_fuse_rows_with_every_item_heard_scales_by_one() -> None:
    block = np.arange(6, dtype=np.float32).reshape(2, 3)
    total, scales = kernels.fuse_rows(block, np.arange(3), np.ones(2), True)
    assert scales.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(total, block.sum(axis=0))


def test_warm_compiles_every_kernel() -> None:
    kernels.warm()
    for kernel in KERNELS.values():
        assert kernel.signatures


def reasons_by_sorting(contrib: np.ndarray, picks: int) -> list[tuple[int, int, float]]:
    """Each row's columns sorted by (contribution desc, column), the first ``picks``: the first
    always, the others when positive; shares of the row's total (0 when it is not positive)."""
    out = []
    for r, row in enumerate(contrib.tolist()):
        total = sum(row)
        ranked = sorted(range(len(row)), key=lambda c: (-row[c], c))[:picks]
        for j, c in enumerate(ranked):
            if j == 0 or row[c] > 0:
                out.append((r, c, row[c] / total if total > 0 else 0.0))
    return out


def test_shown_reasons_pick_what_a_sort_picks_ties_and_zeros_included() -> None:
    rng = np.random.default_rng(5)
    contrib = rng.integers(0, 4, size=(30, 9)).astype(np.float64)  # many ties and zeros
    contrib[3] = 0.0  # nothing given: the first origin is still shown, with share 0
    contrib[4, :] = -1.0
    for picks in (1, 3, 9, 12):
        rows, cols, shares = kernels.shown_reasons(contrib, picks)
        got = list(zip(rows.tolist(), cols.tolist(), shares.tolist(), strict=True))
        want = reasons_by_sorting(contrib, picks)
        assert [g[:2] for g in got] == [w[:2] for w in want]
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-12)


def test_candidate_features_are_the_rerankers_feature_rows() -> None:
    """The compiled feature rows equal rerank.features' for the same candidates, a component
    the Hybrid lacks (its row -1) counting 0 and friends' items counted per candidate."""
    from musicgraph.recommender.rerank import COMPONENTS, ItemContext, features

    rng = np.random.default_rng(9)
    n = 300
    block = rng.normal(size=(4, n)).astype(np.float32)
    names = ("ease", "svd", "friends", "tag_profile")  # no als, no tag_knn
    scales = rng.uniform(0.5, 2.0, size=4)
    blend = rng.normal(size=n)
    ctx = ItemContext(rng.uniform(0, 5, n), rng.uniform(0, 3, n))
    candidates = rng.choice(n, size=40, replace=False).astype(np.int64)
    history = rng.choice(n, size=25, replace=False).astype(np.int64)
    friend_items = np.concatenate([candidates[:10], candidates[:3], rng.integers(0, n, 30)])
    rows = np.array([names.index(c) if c in names else -1 for c in COMPONENTS], dtype=np.int64)
    got = kernels.candidate_features(
        blend,
        block,
        scales,
        rows,
        candidates,
        ctx.log_popularity,
        ctx.log_tags,
        history.size,
        float(ctx.log_popularity[history].mean()),
        7.0,
        friend_items.astype(np.int64),
    )
    parts = {c: block[j, candidates].astype(np.float64) / scales[j] for j, c in enumerate(names)}
    playing = np.array([(friend_items == c).sum() for c in candidates], dtype=np.float64)
    want = features(
        blend[candidates],
        parts,
        ctx,
        candidates,
        history=history,
        n_friends=7.0,
        friends_playing=playing,
    )
    assert got.tolist() == want.tolist()
    assert (got[:, 1 + COMPONENTS.index("als")] == 0).all() and playing.max() >= 2


def requests_after_warm() -> dict[str, int]:
    """In a fresh process: warm(), then Hybrid answers with a re-ranker and explanations, walks
    for tracks and artists, seed radio and similar items; returns the signatures each kernel
    gained after warm()."""
    from musicgraph.recommender.engine import Controls, RecommendationEngine
    from musicgraph.recommender.rerank import Reranker
    from tests.recommender.test_engine_hybrid import NOW, two_scenes
    from tests.recommender.test_engine_hybrid import PARAMS as ENGINE_PARAMS
    from tests.recommender.test_rerank import _random_booster

    engine = RecommendationEngine(
        two_scenes(), clock=lambda: NOW, hybrid_params={**ENGINE_PARAMS, "w_als": 0.0}
    )
    engine.fit_hybrid()
    assert engine._hybrid is not None
    engine._hybrid.model.reranker = Reranker.from_lightgbm(_random_booster().dump_model(), 8)
    kernels.warm()
    before = {name: len(kernel.signatures) for name, kernel in KERNELS.items()}
    p = engine.projection
    for user in p.users.ids:
        for explain in (True, False):
            c = Controls(limit=5, explain=explain)
            assert engine.recommend(user, kind="artist", controls=c).method == "hybrid"
            engine.recommend(user, kind="track", controls=c)
    engine.recommend(None, kind="artist", controls=Controls(seeds=[p.artists.ids[0]]))
    engine.similar(p.tracks.ids[0], kind="track")
    return {name: len(k.signatures) - before[name] for name, k in KERNELS.items()}


KERNELS = {
    name: getattr(kernels, name)
    for name in (
        "overlap_counts",
        "best_unheard",
        "shown_reasons",
        "fuse_rows",
        "candidate_features",
        "tree_scores",
    )
}


def test_after_warm_no_request_compiles_a_kernel() -> None:
    """warm() compiles each kernel for the very array types requests pass: in a fresh process
    (no other test's types compiled), requests after it add no signature (a new one would be
    compiled inside a request, for a second or more)."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import json; from tests.recommender.test_kernels import requests_after_warm; "
        "print(json.dumps(requests_after_warm()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout.strip().splitlines()[-1])
    assert added == dict.fromkeys(KERNELS, 0)
