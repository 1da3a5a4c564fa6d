"""The Pixie walk and its exact twin, against known answers and a brute-force oracle."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from musicgraph.recommender.base import TrainingData
from musicgraph.recommender.projection import Projection
from musicgraph.recommender.random_walk import (
    ExactOperator,
    RandomWalkRecommender,
    TypeWeights,
    WalkGraph,
    WalkParams,
    combine,
    exact_ppr,
    exact_walk,
    history_seeds,
    pixie_walk,
    seed_budget,
)


def two_tastes() -> Projection:
    """Users 0-3 play tracks 0-2 (plus a little of 3), users 4-7 play tracks 3-5."""
    rows, cols = [], []
    for u in range(4):
        for t in (0, 1, 2):
            rows.append(u), cols.append(t)
    rows.append(0), cols.append(3)
    for u in range(4, 8):
        for t in (3, 4, 5):
            rows.append(u), cols.append(t)
    return Projection.from_arrays(
        user_ids=[f"u{i}" for i in range(9)],
        track_ids=[f"t{i}" for i in range(6)],
        artist_ids=["a0", "a1"],
        listens=(np.array(rows), np.array(cols), np.ones(len(rows))),
        track_artist=np.array([0, 0, 0, 1, 1, 1]),
    )


@pytest.mark.parametrize("method", ["exact", "sampled"])
def test_a_walk_stays_in_its_taste_community(method: str) -> None:
    """From track 1 the walk ranks its own community (0, 2) above the other one (4, 5)."""
    g = WalkGraph(two_tastes(), "track")
    params = WalkParams(steps=5000)
    seeds, w = np.array([1]), np.ones(1)
    if method == "exact":
        res = exact_walk(g, seeds, w, params)
    else:
        res = pixie_walk(g, seeds, w, params, np.random.default_rng(0))
    scores = dict(zip(res.items.tolist(), res.scores.tolist(), strict=True))
    assert min(scores[0], scores[2]) > max(scores.get(4, 0.0), scores.get(5, 0.0))
    top, _ = res.top(3)
    assert set(top.tolist()) == {0, 1, 2}


def random_graph(seed: int = 0) -> Projection:
    rng = np.random.default_rng(seed)
    n_u, n_t, n_g, n_p = 12, 15, 5, 4
    lu, lt = rng.integers(n_u, size=60), rng.integers(n_t, size=60)
    tt, tg = rng.integers(n_t, size=25), rng.integers(n_g, size=25)
    fu, fv = rng.integers(n_u, size=15), rng.integers(n_u, size=15)
    su, sv = rng.integers(n_t, size=20), rng.integers(n_t, size=20)
    pp, pt = rng.integers(n_p, size=20), rng.integers(n_t, size=20)
    return Projection.from_arrays(
        user_ids=[f"u{i}" for i in range(n_u)],
        track_ids=[f"t{i}" for i in range(n_t)],
        tag_names=[f"g{i}" for i in range(n_g)],
        playlist_ids=[f"p{i}" for i in range(n_p)],
        listens=(lu, lt, np.ones(60)),
        track_tags=(tt, tg, np.ones(25)),
        friends=(fu, fv),
        track_sim=(su, sv, np.ones(20)),
        playlist_tracks=(pp, pt),
    )


def brute_force_transitions(p: Projection, w: TypeWeights) -> np.ndarray:
    """T[i, j]: the probability that one hop from track i lands on track j, by enumeration."""
    n = len(p.tracks)
    ui = p.user_track.fwd.to_dict()
    items_of: dict[int, list[int]] = {}
    users_of: dict[int, list[int]] = {}
    for u, t in ui:
        items_of.setdefault(u, []).append(t)
        users_of.setdefault(t, []).append(u)
    tags_of: dict[int, list[int]] = {}
    tracks_of_tag: dict[int, list[int]] = {}
    for t, g in p.track_tag.fwd.to_dict():
        tags_of.setdefault(t, []).append(g)
        tracks_of_tag.setdefault(g, []).append(t)
    friends_of: dict[int, list[int]] = {}
    for u, v in p.friends.to_dict():
        friends_of.setdefault(u, []).append(v)
    sim_of: dict[int, list[int]] = {}
    for a, b in p.track_sim.to_dict():
        sim_of.setdefault(a, []).append(b)
    pls_of: dict[int, list[int]] = {}
    tracks_of_pl: dict[int, list[int]] = {}
    for pl, t in p.playlist_track.fwd.to_dict():
        pls_of.setdefault(t, []).append(pl)
        tracks_of_pl.setdefault(pl, []).append(t)
    f = w.friend / (1 + w.friend)
    T = np.zeros((n, n))
    for i in range(n):
        avail = {
            "listen": w.listen if users_of.get(i) else 0.0,
            "tag": w.tag if tags_of.get(i) else 0.0,
            "similar": w.similar if sim_of.get(i) else 0.0,
            "playlist": w.playlist if pls_of.get(i) else 0.0,
        }
        total = sum(avail.values())
        if total == 0:
            continue
        for u in users_of.get(i, []):
            pu = avail["listen"] / total / len(users_of[i])
            fr = friends_of.get(u, [])
            stay = pu * (1 - f) if fr else pu
            for j in items_of.get(u, []):
                T[i, j] += stay / len(items_of[u])
            for v in fr:
                for j in items_of.get(v, []):
                    T[i, j] += pu * f / len(fr) / len(items_of[v])
        for g in tags_of.get(i, []):
            for j in tracks_of_tag[g]:
                T[i, j] += avail["tag"] / total / len(tags_of[i]) / len(tracks_of_tag[g])
        for j in sim_of.get(i, []):
            T[i, j] += avail["similar"] / total / len(sim_of[i])
        for pl in pls_of.get(i, []):
            for j in tracks_of_pl[pl]:
                T[i, j] += avail["playlist"] / total / len(pls_of[i]) / len(tracks_of_pl[pl])
    return T


WEIGHTS = TypeWeights(listen=1.0, tag=0.5, similar=0.3, playlist=0.4, friend=0.6)


def test_exact_operator_matches_the_brute_force_transition_matrix() -> None:
    """One factored hop equals the enumerated typed transition matrix, row by row."""
    p = random_graph()
    T = brute_force_transitions(p, WEIGHTS)
    op = ExactOperator(WalkGraph(p, "track"), WEIGHTS, dtype=np.float64)
    n = T.shape[0]
    got = np.stack([op.apply(np.eye(n)[i]) for i in range(n)])
    np.testing.assert_allclose(got, T, atol=1e-12)
    np.testing.assert_allclose(op.apply(np.eye(n)), T.T, atol=1e-12)  # block form


def test_exact_ppr_matches_the_closed_form() -> None:
    """Power iteration equals m T (I - (1-a) T)^-1, solved densely."""
    p = random_graph(1)
    T = brute_force_transitions(p, WEIGHTS)
    op = ExactOperator(WalkGraph(p, "track"), WEIGHTS, dtype=np.float64)
    params = WalkParams(alpha=0.3, tol=1e-13, max_hops=400)
    m = np.zeros(T.shape[0])
    m[[0, 3]] = [2.0, 1.0]
    got, _ = exact_ppr(op, m, params)
    want = m @ T @ np.linalg.inv(np.eye(T.shape[0]) - 0.7 * T)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_listen_only_ppr_agrees_with_networkx_pagerank() -> None:
    """Without typed edges the hop chain is the item graph T, and networkx's personalised
    PageRank on T (restart alpha, dangling mass back to the seed) ranks items the same way."""
    p = two_tastes()
    w = TypeWeights()
    T = brute_force_transitions(p, w)
    op = ExactOperator(WalkGraph(p, "track"), w, dtype=np.float64)
    params = WalkParams(alpha=0.4, tol=1e-14, max_hops=500)
    m = np.zeros(6)
    m[1] = 1.0
    ours, _ = exact_ppr(op, m, params)
    g = nx.DiGraph()
    for i in range(6):
        for j in range(6):
            if T[i, j] > 0:
                g.add_edge(i, j, weight=T[i, j])
    pr = nx.pagerank(g, alpha=0.6, personalization={1: 1.0}, weight="weight", tol=1e-14)
    # networkx also counts the restart mass at the seed itself; the rest is proportional
    theirs = np.array([pr[i] for i in range(6)])
    theirs[1] -= 0.4
    np.testing.assert_allclose(ours / ours.sum(), theirs / theirs.sum(), atol=1e-6)


@pytest.mark.parametrize("expected_arrival", [True, False])
def test_sampled_visits_converge_to_the_exact_vector(expected_arrival: bool) -> None:
    """Without boosting, sampled visit frequencies match exact PPR within sampling error, with
    arrivals counted by expectation (Rao-Blackwellised) or as sampled."""
    p = random_graph(2)
    g = WalkGraph(p, "track")
    params = WalkParams(
        alpha=0.35,
        steps=400_000,
        weights=WEIGHTS,
        boost=False,
        tol=1e-12,
        expected_arrival=expected_arrival,
    )
    seeds, w = np.array([0, 5]), np.array([1.0, 2.0])
    exact = exact_walk(g, seeds, w, params)
    sampled = pixie_walk(g, seeds, w, params, np.random.default_rng(3))
    e = np.zeros(len(p.tracks))
    e[exact.items] = exact.scores
    s = np.zeros(len(p.tracks))
    s[sampled.items] = sampled.scores
    assert np.abs(e / e.sum() - s / s.sum()).sum() < 0.03


def test_expected_arrivals_lower_the_variance() -> None:
    """Counting a listener's items by expectation gives a closer estimate for the same budget."""
    p = random_graph(4)
    g = WalkGraph(p, "track")
    exact = exact_walk(g, np.array([0]), np.ones(1), WalkParams(boost=False, tol=1e-12))
    e = np.zeros(len(p.tracks))
    e[exact.items] = exact.scores
    e /= e.sum()

    def error(expected: bool) -> float:
        errs = []
        for seed in range(20):
            params = WalkParams(steps=2000, boost=False, expected_arrival=expected)
            res = pixie_walk(g, np.array([0]), np.ones(1), params, np.random.default_rng(seed))
            s = np.zeros(len(p.tracks))
            s[res.items] = res.scores
            errs.append(np.abs(s / s.sum() - e).sum())
        return float(np.mean(errs))

    assert error(True) < 0.7 * error(False)


def test_the_walk_is_deterministic_given_a_seed() -> None:
    """The same generator seed gives the same visits; another seed gives other counts."""
    g = WalkGraph(random_graph(3), "track")
    params = WalkParams(steps=3000, weights=WEIGHTS)
    a = pixie_walk(g, np.array([1, 2]), np.ones(2), params, np.random.default_rng(7))
    b = pixie_walk(g, np.array([1, 2]), np.ones(2), params, np.random.default_rng(7))
    c = pixie_walk(g, np.array([1, 2]), np.ones(2), params, np.random.default_rng(8))
    assert a.items.tolist() == b.items.tolist() and a.scores.tolist() == b.scores.tolist()
    assert a.scores.tolist() != c.scores.tolist()


def test_seed_budget_grows_with_degree_and_weight() -> None:
    """A better connected seed, and a heavier one, get more walks (Pixie's deg (C - log deg))."""
    p = two_tastes()
    g = WalkGraph(p, "track")
    params = WalkParams(steps=1000)
    walks = seed_budget(g, np.array([3, 4]), np.ones(2), params)  # deg 5 vs deg 4
    assert walks[0] > walks[1]
    walks = seed_budget(g, np.array([4, 5]), np.array([1.0, 3.0]), params)
    assert walks[1] == pytest.approx(3 * walks[0])
    assert walks.sum() == pytest.approx(params.steps * params.alpha)


def test_early_stopping_spends_fewer_steps() -> None:
    """Once enough items have enough visits the walk stops before its budget."""
    g = WalkGraph(two_tastes(), "track")
    full = pixie_walk(
        g, np.array([0]), np.ones(1), WalkParams(steps=20_000), np.random.default_rng(0)
    )
    early = pixie_walk(
        g,
        np.array([0]),
        np.ones(1),
        WalkParams(steps=20_000, stop_items=3, stop_visits=100, batches=10),
        np.random.default_rng(0),
    )
    assert early.steps < full.steps / 2


def test_multi_hit_boosting_prefers_items_reached_from_several_seeds() -> None:
    """(sum sqrt V)^2 ranks an item seen 8 times from two seeds over one seen 9 times from one."""
    visits = sp.csr_matrix(np.array([[4.0, 9.0], [4.0, 0.0]]))
    items, scores = combine(visits, boost=True)
    assert items.tolist()[0] == 0 and scores[0] == pytest.approx(16.0)
    items, _ = combine(visits, boost=False)
    assert sorted(items.tolist()) == [0, 1]


def test_history_seeds_weigh_count_and_recency() -> None:
    """More plays weigh more; a listen one half-life older weighs half."""
    day = 86_400
    items, w = history_seeds(
        np.array([1, 2, 3]),
        np.array([9.0, 9.0, 1.0]),
        np.array([100 * day, 10 * day, 100 * day]),
        half_life_days=90,
    )
    weight = dict(zip(items.tolist(), w.tolist(), strict=True))
    assert weight[2] == pytest.approx(weight[1] / 2)
    assert weight[1] > weight[3]


@pytest.mark.parametrize("mode", ["exact", "sampled"])
def test_recommender_interface_on_a_tiny_matrix(mode: str) -> None:
    """fit/recommend/similar_items: own items are never recommended, the community comes first."""
    ui = sp.csr_matrix(
        np.array(
            [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 1, 1, 1]],
            dtype=float,
        )
    )
    rec = RandomWalkRecommender(mode=mode, params=WalkParams(steps=20_000))
    rec.fit(TrainingData(user_items=ui))
    ids, scores = rec.recommend(0, n=2)
    assert ids[0] == 2 and 0 not in ids and 1 not in ids
    assert scores[0] >= scores[1]
    ids, _ = rec.similar_items(3, n=1)
    assert ids.tolist() == [4]
    assert rec.recommend_many(np.array([0, 3]), n=1).shape == (2, 1)
