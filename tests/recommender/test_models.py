"""Every recommender on tiny matrices with known right answers, and against brute-force oracles."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp

from musicgraph.recommender.base import Recommender, TrainingData
from musicgraph.recommender.cooccurrence import (
    ItemKNN,
    SessionItemKNN,
    cosine_similarity,
    session_cooccurrence,
)
from musicgraph.recommender.ease import EASE
from musicgraph.recommender.hybrid import Hybrid
from musicgraph.recommender.popularity import MostPopular
from musicgraph.recommender.rp3beta import RP3beta
from musicgraph.recommender.scoring import NotFittedError, top_k_per_column, top_n_rows

# Users 0-2 share the "rock" block (items 0-2), users 3-5 the "jazz" block (items 3-5); user 2
# has not heard item 2 yet, user 5 not item 5; item 6 is heard by one rock listener only.
TINY = sp.csr_matrix(
    np.array(
        [
            [5, 3, 2, 0, 0, 0, 1],
            [4, 2, 6, 0, 0, 0, 0],
            [3, 7, 0, 0, 0, 0, 0],
            [0, 0, 0, 4, 5, 2, 0],
            [0, 0, 0, 3, 1, 6, 0],
            [0, 0, 0, 8, 2, 0, 0],
        ],
        dtype=np.float64,
    )
)


def _als() -> Recommender:
    pytest.importorskip("implicit")
    from musicgraph.recommender.als import ALS

    return ALS(
        factors=2, regularization=0.1, alpha=4.0, iterations=30, weighting="binary", num_threads=1
    )


FACTORIES: dict[str, Callable[[], Recommender]] = {
    "ItemKNN": lambda: ItemKNN(k=None, shrinkage=0.0, weighting="binary"),
    "RP3beta": lambda: RP3beta(alpha=1.0, beta=0.0),
    "EASE": lambda: EASE(l2=1.0),
    "ALS": _als,
    "Hybrid": lambda: Hybrid(
        l2=1.0,
        factors=2,
        als_factors=2,
        als_regularization=0.1,
        als2_factors=2,
        als2_regularization=0.1,
    ),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_model_recommends_the_missing_item_of_the_users_block(name: str) -> None:
    """Each collaborative model recommends a user the unheard item of their own taste block."""
    model = FACTORIES[name]()
    model.fit(TrainingData(user_items=TINY))
    ids, scores = model.recommend(2, n=3)
    assert ids[0] == 2
    assert np.all(np.diff(scores) <= 0)
    recs = model.recommend_many(np.array([2, 5]), n=1)
    assert recs[:, 0].tolist() == [2, 5]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_model_never_recommends_training_or_excluded_items(name: str) -> None:
    """Training items of the user and items in ``exclude`` never come back."""
    model = FACTORIES[name]()
    model.fit(TrainingData(user_items=TINY))
    ids, _ = model.recommend(0, n=7, exclude=np.array([3]))
    assert set(ids.tolist()).isdisjoint({0, 1, 2, 6, 3})
    many = model.recommend_many(np.arange(6), n=3)
    for user in range(6):
        assert set(many[user].tolist()).isdisjoint(set(TINY[user].indices.tolist()))


@pytest.mark.parametrize("name", ["ItemKNN", "RP3beta", "EASE"])
def test_similar_items_stay_in_the_taste_block(name: str) -> None:
    """The most similar items of a rock item are rock items, never itself."""
    model = FACTORIES[name]()
    model.fit(TrainingData(user_items=TINY))
    ids, scores = model.similar_items(0, n=2)
    assert 0 not in ids.tolist()
    assert set(ids.tolist()) <= {1, 2, 6}
    assert np.all(scores > 0)


def test_unfitted_model_says_so() -> None:
    """Asking an unfitted model for recommendations raises NotFittedError naming the model."""
    with pytest.raises(NotFittedError, match="EASE"):
        EASE().recommend(0)


def test_most_popular_ranks_by_listeners() -> None:
    """MostPopular orders unheard items by their number of listeners, ties by index."""
    model = MostPopular()
    model.fit(TrainingData(user_items=TINY))
    ids, scores = model.recommend(2, n=5)
    # listeners: item 2 -> 2, items 3, 4 -> 3, item 5 -> 2, item 6 -> 1
    assert ids.tolist() == [3, 4, 2, 5, 6]
    assert scores.tolist() == [3, 3, 2, 2, 1]


def _random_matrix(
    seed: int, users: int = 12, items: int = 9, density: float = 0.4
) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < density) * rng.integers(1, 20, (users, items))
    return sp.csr_matrix(dense.astype(np.float64))


@pytest.mark.parametrize(("shrinkage", "k"), [(0.0, None), (3.0, None), (1.0, 3)])
def test_cosine_matches_brute_force(shrinkage: float, k: int | None) -> None:
    """Cosine with shrinkage and top-K equals a loop over every item pair."""
    x = _random_matrix(1).toarray()
    n = x.shape[1]
    oracle = np.zeros((n, n))
    for i, j in itertools.product(range(n), range(n)):
        if i != j:
            dot = sum(x[u, i] * x[u, j] for u in range(x.shape[0]))
            norm = np.sqrt((x[:, i] ** 2).sum()) * np.sqrt((x[:, j] ** 2).sum())
            oracle[i, j] = dot / (norm + shrinkage)
    if k is not None:
        for j in range(n):
            col = oracle[:, j]
            cutoff = np.sort(col)[-k]
            col[col < cutoff] = 0.0
    got = cosine_similarity(sp.csr_matrix(x), shrinkage=shrinkage, k=k).toarray()
    assert np.allclose(got, oracle)


def test_top_k_per_column_keeps_the_largest() -> None:
    """top_k_per_column keeps exactly the k largest entries of each column."""
    m = sp.csr_matrix(np.array([[5.0, 1.0], [3.0, 2.0], [4.0, 0.0]]))
    assert top_k_per_column(m, 2).toarray().tolist() == [[5.0, 1.0], [0.0, 2.0], [4.0, 0.0]]


def test_top_n_rows_orders_best_first_with_index_ties() -> None:
    """top_n_rows returns the best n per row, best first, ties by lower index."""
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert top_n_rows(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (0.7, 0.3)])
def test_rp3beta_matches_the_three_step_walk(alpha: float, beta: float) -> None:
    """Exact RP3beta equals the sum over all three-step paths u->i->v->j, penalised by deg(j)."""
    x = _random_matrix(2)
    dense = x.toarray()
    users, items = dense.shape
    p_ui = dense / dense.sum(axis=1, keepdims=True).clip(min=1e-300)
    p_iu = (dense / dense.sum(axis=0, keepdims=True).clip(min=1e-300)).T
    degree = (dense > 0).sum(axis=0)
    model = RP3beta(alpha=alpha, beta=beta, weighting="count")
    model.fit(TrainingData(user_items=x))
    got = model.score(np.arange(users))
    for u, j in itertools.product(range(users), range(items)):
        total = sum(
            p_ui[u, i] ** alpha * p_iu[i, v] ** alpha * p_ui[v, j] ** alpha
            for i in range(items)
            for v in range(users)
            if p_ui[u, i] > 0 and p_iu[i, v] > 0 and p_ui[v, j] > 0
        )
        expected = total / degree[j] ** beta if degree[j] else 0.0
        assert got[u, j] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _ease_primal(x: np.ndarray, l2: float) -> np.ndarray:
    gram = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_dual_form_equals_the_primal_closed_form() -> None:
    """EASE through the users x users inverse gives exactly Steck's items x items solution."""
    x = _random_matrix(3, users=7, items=11)
    model = EASE(l2=2.5, weighting="count")
    model.fit(TrainingData(user_items=x))
    b = _ease_primal(x.toarray(), 2.5)
    assert np.allclose(model.score(np.arange(7)), x.toarray() @ b)
    assert np.allclose(model.item_weights(4), b[4])


def test_ease_side_rows_shape_the_gram_matrix_only() -> None:
    """Side rows join X in the Gram matrix (as pseudo-users) but are not scored as users."""
    x = _random_matrix(4, users=6, items=8)
    side = _random_matrix(5, users=3, items=8)
    model = EASE(l2=1.5, weighting="count")
    model.fit(TrainingData(user_items=x), side=side)
    b = _ease_primal(np.vstack([x.toarray(), side.toarray()]), 1.5)
    assert np.allclose(model.score(np.arange(6)), x.toarray() @ b)


def _session_oracle(
    listens: list[tuple[int, int, float]],
    n_items: int,
    gap: float,
    cap: float,
    artist: list[int] | None,
) -> np.ndarray:
    by_user: dict[int, list[tuple[float, int]]] = {}
    for u, i, t in listens:
        by_user.setdefault(u, []).append((t, i))
    out = np.zeros((n_items, n_items))
    for _, events in by_user.items():
        events.sort()
        sessions: list[set[int]] = []
        last = None
        for t, i in events:
            if last is None or t - last > gap:
                sessions.append(set())
            sessions[-1].add(i)
            last = t
        per_user = np.zeros((n_items, n_items))
        for s in sessions:
            for a in s:
                for b in s:
                    if a != b and artist is not None and artist[a] == artist[b]:
                        continue
                    per_user[a, b] += 1
        out += np.minimum(per_user, cap)
    return out


@pytest.mark.parametrize(("cap", "exclude"), [(1.0, False), (2.0, False), (5.0, True)])
def test_session_cooccurrence_matches_brute_force(cap: float, exclude: bool) -> None:
    """Session co-listening counts equal a loop over every user's sessions and item pairs."""
    rng = np.random.default_rng(7)
    listens = [
        (int(u), int(i), float(t))
        for u, i, t in zip(
            rng.integers(0, 4, 120),
            rng.integers(0, 8, 120),
            rng.integers(0, 20_000, 120),
            strict=True,
        )
    ]
    artist = [0, 0, 1, 1, 2, 2, 3, 3]
    users, items, ts = (np.array(c) for c in zip(*listens, strict=True))
    got = session_cooccurrence(
        users,
        items,
        ts,
        n_items=8,
        session_gap=900.0,
        max_per_user=cap,
        item_artist=artist,
        exclude_same_artist=exclude,
    ).toarray()
    oracle = _session_oracle(listens, 8, 900.0, cap, artist if exclude else None)
    assert np.allclose(got, oracle)


def test_session_itemknn_links_items_heard_in_one_session() -> None:
    """Items heard within the session gap become neighbours; a long pause separates sessions."""
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([0, 1, 2, 0, 1])
    ts = np.array([0.0, 60.0, 100_000.0, 0.0, 30.0])
    ui = sp.csr_matrix((np.ones(5), (users, items)), shape=(3, 3))
    model = SessionItemKNN(k=None, shrinkage=0.0, session_gap=1800.0)
    model.fit_sessions(TrainingData(user_items=ui), (users, items, ts))
    sim = model.similarity
    assert sim is not None
    assert sim[0, 1] > 0
    assert sim[0, 2] == 0
