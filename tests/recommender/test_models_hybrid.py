"""The default Hybrid: tags reach artists no one has heard, friends count, fusion is weighted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from musicgraph.recommender.base import TrainingData
from musicgraph.recommender.hybrid import (
    Hybrid,
    _ByLength,
    _normalise_rows,
    _UserCache,
    _UserVectors,
)
from musicgraph.recommender.scoring import kernel_csr, rows_sum

# Items 0-2 rock, 3-5 jazz, item 6 a rock artist nobody has listened to (tagged only).
PLAYS = sp.csr_matrix(
    np.array(
        [
            [5, 3, 2, 0, 0, 0, 0],
            [4, 2, 6, 0, 0, 0, 0],
            [3, 7, 0, 0, 0, 0, 0],
            [0, 0, 0, 4, 5, 2, 0],
            [0, 0, 0, 3, 1, 6, 0],
            [0, 0, 0, 8, 2, 0, 0],
        ],
        dtype=np.float64,
    )
)
# Tags: 0 = rock, 1 = guitar, 2 = jazz, 3 = sax.
ITEM_TAGS = sp.csr_matrix(
    np.array(
        [
            [3, 1, 0, 0],
            [2, 2, 0, 0],
            [4, 0, 0, 0],
            [0, 0, 3, 1],
            [0, 0, 2, 2],
            [0, 0, 1, 0],
            [5, 2, 0, 0],
        ],
        dtype=np.float64,
    )
)


def _hybrid(**weights: Any) -> Hybrid:
    return Hybrid(**{"l2": 1.0, "factors": 2, "w_als": 0.0, "w_als2": 0.0, **weights})


def test_tags_reach_an_artist_nobody_listened_to() -> None:
    """With tag components on, a rock listener gets the unheard rock artist before any jazz."""
    model = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=1.0, w_tag_profile=1.0)
    model.fit(TrainingData(user_items=PLAYS, item_tags=ITEM_TAGS))
    ids, _ = model.recommend(0, n=4)
    assert ids[0] == 6
    assert set(ids[1:].tolist()) == {3, 4, 5}


def test_without_tag_edges_the_cold_artist_gets_nothing_from_tags() -> None:
    """Dropping the cold artist's tag edges (as the leakage rule may) removes its tag scores."""
    tags = ITEM_TAGS.tolil()
    tags[6, :] = 0
    model = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=1.0, w_tag_profile=1.0)
    model.fit(TrainingData(user_items=PLAYS, item_tags=sp.csr_matrix(tags)))
    parts = model.component_scores(np.array([0]))
    assert parts["tag_knn"][0, 6] == 0.0
    assert parts["tag_profile"][0, 6] == 0.0


def test_friends_listening_is_recommended() -> None:
    """A user whose only friend plays jazz gets jazz from the friends component."""
    friends = sp.csr_matrix(([1.0, 1.0], ([2, 3], [3, 2])), shape=(6, 6))
    model = _hybrid(w_svd=0.0, w_friends=1.0, w_tag_knn=0.0, w_tag_profile=0.0)
    model.fit(TrainingData(user_items=PLAYS, user_friends=friends))
    friends_scores = model.component_scores(np.array([2]))["friends"][0]
    assert np.argmax(friends_scores) == 4  # user 3's most played is item 4 (5 plays, log-scaled)
    assert friends_scores[:3].sum() == 0.0


def test_normalisation_puts_each_users_best_unheard_item_at_one() -> None:
    """Rows are scaled so the best unheard item scores 1 and heard items are -inf."""
    raw = np.array([[9.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float64))
    out = _normalise_rows(raw, seen)
    assert out[0].tolist() == [-np.inf, 0.5, 1.0]
    assert out[1].tolist() == [0.0, 0.0, 0.0]


def test_fusion_weights_change_the_ranking_without_refitting() -> None:
    """Two Hybrids on the same data share fitted components; their weights alone differ."""
    data = TrainingData(user_items=PLAYS, item_tags=ITEM_TAGS)
    plain = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=0.0, w_tag_profile=0.0)
    tagged = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=5.0, w_tag_profile=5.0)
    plain.fit(data)
    tagged.fit(data)
    assert plain._c is tagged._c
    assert plain.recommend(2, n=1)[0][0] == 2
    assert tagged.recommend(2, n=1)[0][0] in (2, 6)
    assert tagged.score(np.array([2]))[0, 6] > plain.score(np.array([2]))[0, 6]


def _brute_force_ease(plays: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE's B from its definition, inverting the items x items Gram matrix directly."""
    x = (plays.toarray() > 0).astype(np.float64)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return np.asarray(b)


@pytest.mark.parametrize("scale", ["max", "std"])
def test_score_one_matches_the_batch_scores_with_every_component(scale: str) -> None:
    """Serving one row (score_one) gives the batch path's fused scores, both ALS and friends
    included, under either scale."""
    rng = np.random.default_rng(0)
    n_users, n_items, n_tags = 40, 30, 8
    plays = sp.csr_matrix(
        rng.integers(1, 20, (n_users, n_items)) * (rng.random((n_users, n_items)) < 0.3),
        dtype=np.float64,
    )
    tags = sp.csr_matrix(
        rng.integers(1, 5, (n_items, n_tags)) * (rng.random((n_items, n_tags)) < 0.4),
        dtype=np.float64,
    )
    pairs = rng.integers(0, n_users, (60, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    friends = sp.csr_matrix(
        (
            np.ones(2 * len(pairs)),
            (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]),
        ),
        shape=(n_users, n_users),
    )
    friends.data[:] = 1.0
    model = Hybrid(
        l2=5.0,
        factors=4,
        w_als=1.0,
        als_factors=4,
        als_regularization=1.0,
        w_als2=2.0,
        als2_factors=6,
        als2_regularization=3.0,
        als2_alpha=2.0,
        scale=scale,
        tag_side=1.0,
    )
    model.fit(TrainingData(user_items=plays, item_tags=tags, user_friends=friends))
    for user in range(n_users):
        row = plays[user]
        fr = friends[user].indices
        frows = sp.csr_matrix(plays[fr])
        expected = model.score_rows(row, [frows])[0]
        slot = np.repeat(np.arange(fr.size), np.diff(frows.indptr))
        got = model.score_one(row.indices, row.data, frows.indices, frows.data, slot)
        unheard = np.setdiff1d(np.arange(n_items), row.indices)
        np.testing.assert_allclose(got[unheard], expected[unheard], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", ["max", "std"])
def test_score_one_ease_part_is_exact_ease(scale: str) -> None:
    """With every other weight zero, score_one is x B for B from EASE's closed form, divided by
    the best unheard score ("max") or by the population std of the unheard scores ("std")."""
    rng = np.random.default_rng(1)
    plays = sp.csr_matrix(
        rng.integers(1, 9, (25, 12)) * (rng.random((25, 12)) < 0.4), dtype=np.float64
    )
    model = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=0.0, w_tag_profile=0.0, scale=scale)
    model.fit(TrainingData(user_items=plays))
    b = _brute_force_ease(plays, 1.0)
    for user in range(plays.shape[0]):
        row = plays[user]
        x = (row.toarray()[0] > 0).astype(np.float64)
        expected = x @ b
        unheard = np.setdiff1d(np.arange(plays.shape[1]), row.indices)
        div = float(expected[unheard].max() if scale == "max" else expected[unheard].std())
        if div > 0:
            expected = expected / div
        got = model.score_one(row.indices, row.data)
        np.testing.assert_allclose(got[unheard], expected[unheard], rtol=1e-5, atol=1e-5)


def test_tags_as_pseudo_users_give_ease_weights_to_an_unheard_artist() -> None:
    """With tag_side on, EASE alone ranks the unheard (tagged rock) artist above all jazz for a
    rock listener; without it, EASE gives that artist nothing."""
    weights = {"w_svd": 0.0, "w_friends": 0.0, "w_tag_knn": 0.0, "w_tag_profile": 0.0}
    data = TrainingData(user_items=PLAYS, item_tags=ITEM_TAGS)
    plain = _hybrid(**weights)
    plain.fit(data)
    assert plain.component_scores(np.array([2]))["ease"][0, 6] == 0.0
    side = Hybrid(
        l2=1.0, factors=2, w_als=0.0, w_als2=0.0, tag_side=1.0, tag_side_min_items=1, **weights
    )
    side.fit(data)
    ease = side.component_scores(np.array([2]))["ease"][0]
    assert ease[6] > 0.0
    assert ease[6] > ease[3:6].max()


def test_tag_side_rows_keep_tags_on_enough_items() -> None:
    """Only tags on at least tag_side_min_items items become pseudo-users, scaled by tag_side."""
    from musicgraph.recommender.hybrid import _tag_side_rows

    rows = _tag_side_rows(TrainingData(user_items=PLAYS, item_tags=ITEM_TAGS), 2.0, 4)
    assert rows is not None
    # tag 0 (rock) is on items 0, 1, 2, 6; the others are on fewer than 4 items
    assert rows.shape == (1, 7)
    assert rows.toarray()[0].tolist() == [2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 2.0]
    assert _tag_side_rows(TrainingData(user_items=PLAYS), 1.0, 1) is None


def test_row_scales_are_the_max_or_the_std_of_the_finite_scores() -> None:
    """_row_scales divides by the best or the population std of each row's finite (unheard)
    scores, and by 1 where that is not positive or nothing is finite."""
    from musicgraph.recommender.hybrid import _row_scales

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(5, 9))
    scores[0, [1, 4]] = -np.inf
    scores[1, :] = -np.inf
    scores[2, :] = -1.0
    for how, stat in (("max", np.max), ("std", np.std)):
        got = _row_scales(scores, how).ravel()
        for r in (0, 3, 4):
            finite = scores[r][np.isfinite(scores[r])]
            assert got[r] == pytest.approx(float(stat(finite)))
        assert got[1] == 1.0
    assert _row_scales(scores, "std").ravel()[2] == 1.0  # a constant row has no spread
    assert _row_scales(scores, "max").ravel()[2] == 1.0  # nor a positive best


def test_an_unknown_scale_is_refused() -> None:
    """Hybrid(scale=...) accepts "max" and "std" only, naming what it got."""
    with pytest.raises(ValueError, match="'mean'"):
        Hybrid(scale="mean")


def test_the_second_als_is_served_by_its_fold_in() -> None:
    """With EASE and the second ALS only, score_one is their std-scaled sum, the ALS part being
    that model's own fold-in (implicit's recalculate_user)."""
    rng = np.random.default_rng(4)
    plays = sp.csr_matrix(
        rng.integers(1, 30, (30, 20)) * (rng.random((30, 20)) < 0.35), dtype=np.float64
    )
    model = _hybrid(
        w_svd=0.0,
        w_friends=0.0,
        w_tag_knn=0.0,
        w_tag_profile=0.0,
        w_als2=1.0,
        als2_factors=5,
        als2_regularization=2.0,
    )
    model.fit(TrainingData(user_items=plays))
    als2 = model._c.als2 if model._c is not None else None
    assert als2 is not None and model._c is not None and model._c.als is None
    for user in range(plays.shape[0]):
        row = plays[user]
        unheard = np.setdiff1d(np.arange(plays.shape[1]), row.indices)
        folded = als2.score_rows(row)[0]
        got = model.score_one(row.indices, row.data)
        ease = model.component_scores_rows(row)["ease"][0]
        s_ease, s_als = ease[unheard].std(), folded[unheard].std()
        expected = ease / (s_ease if s_ease > 0 else 1.0) + folded / (s_als if s_als > 0 else 1.0)
        np.testing.assert_allclose(got[unheard], expected[unheard], rtol=1e-3, atol=1e-3)


def test_rows_stored_by_length_give_the_same_products() -> None:
    """A matrix stored shortest row first multiplies a vector as the original does, in the
    original row order, empty rows included; its rows are where its rank says."""
    rng = np.random.default_rng(4)
    lengths = rng.choice([0, 1, 1, 2, 3, 9, 40], size=300)
    rows = np.repeat(np.arange(300), lengths)
    m = sp.csr_matrix(
        (rng.random(rows.size), (rows, rng.integers(0, 50, rows.size))), shape=(300, 50)
    )
    stored = _ByLength.of(m)
    assert (np.diff(np.diff(stored.m.indptr)) >= 0).all()  # shortest first
    x = rng.random(50)
    np.testing.assert_allclose(stored.dot(x), m @ x, rtol=1e-12, atol=0)
    for i in (0, 7, 299):
        assert (stored.m[stored.rank[i]] != m[i]).nnz == 0


def _random_fit(seed: int = 0) -> tuple[Hybrid, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    plays = sp.csr_matrix(
        rng.integers(1, 20, (40, 30)) * (rng.random((40, 30)) < 0.3), dtype=np.float64
    )
    tags = sp.csr_matrix(rng.integers(1, 5, (30, 8)) * (rng.random((30, 8)) < 0.4), dtype=float)
    model = Hybrid(l2=5.0, factors=4, w_als=1.0, als_factors=4, als_regularization=1.0)
    model.fit(TrainingData(user_items=plays, item_tags=tags))
    return model, plays


def test_kept_user_vectors_score_as_fresh_ones_and_a_changed_row_is_scored_anew() -> None:
    """A user's second request reuses the vectors the first computed (one cache entry) and
    scores the same; after a listen changes the row, the new row is scored, not the kept one."""
    model, plays = _random_fit()
    for user in range(plays.shape[0]):
        row = plays[user]
        first = model.score_one(row.indices, row.data)
        kept = len(model._users)
        again = model.score_one(row.indices, row.data)
        assert len(model._users) == kept  # answered from the kept vectors
        np.testing.assert_array_equal(again, first)
        np.testing.assert_allclose(first, model.score_rows(row)[0], rtol=1e-4, atol=1e-4)
    # user 0 plays an artist they had not heard: a new row, new vectors, the batch scores
    changed = plays[0].toarray()
    new_item = int(np.flatnonzero(changed[0] == 0)[0])
    changed[0, new_item] = 7.0
    row = sp.csr_matrix(changed)
    before = len(model._users)
    got = model.score_one(row.indices, row.data)
    assert len(model._users) == before + 1
    expected = model.score_rows(row)[0]
    unheard = np.setdiff1d(np.arange(plays.shape[1]), row.indices)
    np.testing.assert_allclose(got[unheard], expected[unheard], rtol=1e-4, atol=1e-4)


def test_user_cache_keeps_its_byte_bound_dropping_the_least_recently_used() -> None:
    """Past its bound the cache drops the entry used longest ago; a lookup counts as a use."""

    def vectors(size: int) -> _UserVectors:
        return _UserVectors(np.zeros(1, dtype=np.float32), None, None, None, None, size)

    cache = _UserCache(max_bytes=3 * 101)
    for key in (b"a", b"b", b"c"):
        assert cache.put(key, vectors(100))
    assert cache.get(b"a") is not None  # a is now the most recent
    assert cache.put(b"d", vectors(100))
    assert cache.get(b"b") is None  # the least recently used went
    assert all(cache.get(k) is not None for k in (b"a", b"c", b"d"))
    assert cache.bytes <= cache.max_bytes and len(cache) == 3
    assert not cache.put(b"huge", vectors(10_000))  # larger than the whole cache
    assert len(cache) == 3


def test_warming_users_stops_at_the_cache_bound() -> None:
    """warm_users keeps every row while they fit, and stops before evicting its own."""
    model, plays = _random_fit(1)
    rows = [(plays[u].indices.astype(np.int64), plays[u].data) for u in range(plays.shape[0])]
    assert model.warm_users(rows) == sum(1 for r in rows if r[0].size)
    one = model._users.bytes / len(model._users)
    model._users = _UserCache(int(one * 10))
    kept = model.warm_users(rows)
    assert 5 <= kept < len(rows) and kept == len(model._users)  # none of its own evicted
    assert model._users.bytes <= model._users.max_bytes


def test_rows_sum_adds_exactly_the_wanted_rows() -> None:
    """rows_sum equals summing the gathered rows, whatever their order in the matrix, with
    repeated and empty rows, in float32 and float64, and leaves nothing of an earlier sum."""
    rng = np.random.default_rng(9)
    lengths = rng.choice([0, 1, 2, 5, 30], size=200)
    rows = np.repeat(np.arange(200), lengths)
    m = sp.csr_matrix(
        (rng.random(rows.size), (rows, rng.integers(0, 80, rows.size))), shape=(200, 80)
    )
    for dtype in (np.float32, np.float64):
        k = kernel_csr(m, dtype)
        out = np.full(80, 7.0, dtype=dtype)  # garbage from an earlier use
        for wanted in ([3, 150, 7, 7, 199, 0], [int(np.argmin(lengths))], []):
            idx = np.array(wanted, dtype=np.int64)
            expected = np.asarray(m[idx].sum(axis=0)).ravel() if idx.size else np.zeros(80)
            rows_sum(k, idx, out)
            np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
