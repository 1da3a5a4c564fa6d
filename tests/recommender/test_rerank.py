"""The Hybrid's learned re-ranker: trees evaluated as LightGBM does, candidates permuted, the
batch and serving paths agreeing, and training from the data alone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from musicgraph.recommender.base import TrainingData
from musicgraph.recommender.hybrid import ComponentParts, Hybrid
from musicgraph.recommender.rerank import (
    FEATURES,
    Reranker,
    RerankError,
    permute_scores,
    save_trained,
    top_candidates,
    train_reranker,
)

FRIENDS_PLAYING = FEATURES.index("friends_playing")


def _two_scenes(seed: int = 5) -> TrainingData:
    """40 users over 16 artists in two scenes (0-7, 8-15), tags per scene, random friendships."""
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for u in range(40):
        base = 0 if u < 20 else 8
        for a in rng.choice(8, size=int(rng.integers(4, 8)), replace=False):
            rows.append(u)
            cols.append(base + int(a))
            vals.append(float(rng.integers(1, 30)))
    plays = sp.csr_matrix((vals, (rows, cols)), shape=(40, 16))
    tags = sp.csr_matrix(
        (np.ones(20), (np.r_[np.arange(16), [1, 2, 9, 10]], np.r_[[0] * 8, [1] * 8, [2] * 4])),
        shape=(16, 3),
    )
    pairs = rng.integers(0, 40, size=(60, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    friends = sp.csr_matrix(
        (
            np.ones(2 * len(pairs)),
            (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]),
        ),
        shape=(40, 40),
    )
    friends.data[:] = 1.0
    return TrainingData(user_items=plays, item_tags=tags, user_friends=friends)


PARAMS: dict[str, Any] = {
    "l2": 5.0,
    "factors": 4,
    "tag_k": 5,
    "als_factors": 4,
    "als_regularization": 1.0,
    "w_als": 1.0,
}


def _random_booster(seed: int = 0, rounds: int = 12, leaves: int = 7) -> lgb.Booster:
    """A LightGBM ranker on random features and labels: its splits use every feature."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((600, len(FEATURES)))
    y = (x[:, 1] + x[:, FRIENDS_PLAYING] + 0.5 * rng.standard_normal(600) > 1).astype(float)
    params = {
        "objective": "lambdarank",
        "num_leaves": leaves,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 1,
    }
    return lgb.train(params, lgb.Dataset(x, y, group=[20] * 30), num_boost_round=rounds)


def _friends_first(k: int = 10) -> Reranker:
    """One tree: candidates some friend played score 1, the rest 0."""
    dump = {
        "tree_info": [
            {
                "tree_structure": {
                    "split_feature": FRIENDS_PLAYING,
                    "threshold": 0.5,
                    "decision_type": "<=",
                    "left_child": {"leaf_value": 0.0},
                    "right_child": {"leaf_value": 1.0},
                }
            }
        ]
    }
    return Reranker.from_lightgbm(dump, k)


@pytest.mark.parametrize("leaves", [2, 7, 16])
def test_flattened_trees_predict_what_lightgbm_predicts(leaves: int) -> None:
    """The stacked bit-mask evaluation gives LightGBM's own predictions, also after a JSON round
    trip."""
    booster = _random_booster(leaves=leaves)
    reranker = Reranker.from_lightgbm(booster.dump_model(), 50)
    again = Reranker.from_json(json.loads(json.dumps(reranker.to_json())))
    x = np.random.default_rng(1).standard_normal((300, len(FEATURES)))
    np.testing.assert_allclose(reranker.predict(x), booster.predict(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(again.predict(x), booster.predict(x), rtol=0, atol=1e-12)


def _walk_trees(dump: dict[str, Any], row: npt.NDArray[np.float64]) -> float:
    """The dumped trees evaluated one node at a time (``<=`` goes left): the plain reading."""
    total = 0.0
    for info in dump["tree_info"]:
        node = info["tree_structure"]
        while "split_feature" in node:
            go_left = row[node["split_feature"]] <= node["threshold"]
            node = node["left_child"] if go_left else node["right_child"]
        total += node["leaf_value"]
    return total


def test_values_on_and_beside_a_threshold_go_where_the_split_sends_them() -> None:
    """A value equal to a split's threshold goes left (``<=``), the next float above goes right:
    the per-feature threshold search agrees with a node-by-node walk of the dumped trees on the
    boundaries themselves. (LightGBM's own predictions can differ exactly on a boundary,
    which its dumped thresholds do not pin down to the last bit.)"""
    booster = _random_booster(leaves=16)
    dump = booster.dump_model()
    reranker = Reranker.from_lightgbm(dump, 50)
    rng = np.random.default_rng(2)
    x = np.empty((400, len(FEATURES)))
    for f in range(len(FEATURES)):
        mine = (reranker.node_feature == f) & (reranker.node_clear > 0)
        cuts = np.unique(reranker.node_threshold[mine])
        on = rng.choice(cuts, 400) if cuts.size else rng.standard_normal(400)
        x[:, f] = np.where(rng.random(400) < 0.5, on, np.nextafter(on, np.inf))
    expected = np.array([_walk_trees(dump, row) for row in x])
    np.testing.assert_allclose(reranker.predict(x), expected, rtol=0, atol=1e-12)


def test_permuting_keeps_the_scores_and_follows_the_order() -> None:
    """The item put first takes the best candidate score; other items keep theirs."""
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3])
    cands = top_candidates(scores, np.array([0]), 3)
    assert cands.tolist() == [3, 2, 4]
    permute_scores(scores, cands, np.array([2, 0, 1]))
    assert scores.tolist() == [0.9, 0.1, 0.3, 0.5, 0.7]


def test_the_reranker_puts_the_friends_artist_first() -> None:
    """A re-ranker that trusts friends lifts the one candidate a friend plays, an artist of the
    other scene, from the bottom of the fused ranking to the top."""
    data = _two_scenes()
    user, friend, artist = 3, 40, 15  # user 3 is of scene 0-7; the new user 40 plays only 15
    plays = sp.lil_matrix((41, 16))
    plays[:40] = data.user_items
    plays[friend, artist] = 10.0
    friends = sp.csr_matrix(([1.0, 1.0], ([user, friend], [friend, user])), shape=(41, 41))
    data = TrainingData(
        user_items=sp.csr_matrix(plays), item_tags=data.item_tags, user_friends=friends
    )
    model = Hybrid(**PARAMS)
    model.fit(data)
    plain, _ = model.recommend(user, n=12)
    assert artist in plain.tolist() and plain[0] != artist
    model.reranker = _friends_first(k=16)
    reranked, _ = model.recommend(user, n=12)
    assert reranked[0] == artist
    assert sorted(reranked.tolist()) == sorted(plain.tolist())


def test_serving_and_batch_rerank_the_same_way() -> None:
    """Hybrid.score_one + rerank_one (the engine's path) re-ranks each user's candidates as
    Hybrid.score does for a block: score_one hands on the same scaled component scores, and the
    same top items come out (without ALS, whose batch user factors are the fit's, not a
    fold-in)."""
    data = _two_scenes()
    model = Hybrid(**{**PARAMS, "w_als": 0.0})
    model.fit(data)
    model.reranker = Reranker.from_lightgbm(_random_booster().dump_model(), 8)
    model.prepare_serving()
    users = np.arange(40)
    batch = model.score(users)
    _, scaled = model.scaled_components(users)
    plays = sp.csr_matrix(data.user_items)
    friends = data.user_friends
    assert friends is not None
    for u in users.tolist():
        row = plays[u]
        fr = friends[u].indices
        frows = plays[fr]
        slot = np.repeat(np.arange(fr.size), np.diff(frows.indptr))
        items = row.indices.astype(np.int64)
        parts = ComponentParts()
        one = model.score_one(items, row.data, frows.indices, frows.data, slot, parts)
        assert set(parts) <= set(scaled) and "ease" in parts
        unheard = np.setdiff1d(np.arange(16), items)
        for name in scaled:  # a component serving skips (no friends) is a feature of 0
            raw, scale = parts.get(name, (np.zeros(16), 1.0))
            np.testing.assert_allclose(
                raw[unheard] / scale, scaled[name][u, unheard], rtol=1e-4, atol=1e-4
            )
        model.rerank_one(one, items, parts, frows.indices.astype(np.int64), fr.size)
        # compared as values: the permuted scores of tied candidates are equal either way
        np.testing.assert_allclose(one[unheard], batch[u, unheard], rtol=1e-5, atol=1e-5)
    assert not np.allclose(batch, model.scaled_components(users)[0])  # it did re-rank


def test_training_uses_held_out_splits_of_the_data_alone() -> None:
    """train_reranker fits trees from the data's own validation splits and records the Hybrid
    parameters they were trained for; the Hybrid serves with them."""
    data = _two_scenes()
    reranker = train_reranker(
        data, PARAMS, resamples=2, k=8, lgb_params={"min_data_in_leaf": 5}, rounds=5
    )
    assert reranker.params == PARAMS
    assert reranker.k == 8 and reranker.n_trees == 5
    model = Hybrid(**PARAMS)
    model.fit(data)
    model.reranker = reranker
    recs = model.recommend_many(np.arange(40), n=3)
    assert recs.shape == (40, 3)
    seen = data.user_items
    assert not any(seen[u, recs[u]].nnz for u in range(40))


def test_top_candidates_match_a_full_sort() -> None:
    """The threshold shortcut picks the k best unheard items of a full sort, best first (ties by
    index), and leaves the scores as they were."""
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(1, 500))
        scores = rng.standard_normal(n) * rng.choice([1e-9, 1.0, 1e6])
        if trial % 4 == 0:
            scores = -np.abs(scores)
        if trial % 3 == 1:  # ties, the k-th's among them
            scores = np.round(scores * 3 / max(float(np.abs(scores).max()), 1e-300))
        before = scores.copy()
        heard = rng.choice(n, size=int(rng.integers(0, n)), replace=False).astype(np.int64)
        k = int(rng.integers(1, 120))
        got = top_candidates(scores, heard, k)
        unheard = np.setdiff1d(np.arange(n), heard)
        want = unheard[np.lexsort((unheard, -scores[unheard]))][:k]
        assert got.tolist() == want.tolist()
        assert np.array_equal(scores, before)


def test_trees_that_see_no_difference_keep_the_fused_order() -> None:
    """A re-ranker of constant trees (what a too-small training set yields) changes nothing."""
    data = _two_scenes()
    model = Hybrid(**PARAMS)
    model.fit(data)
    users = np.arange(40)
    plain = model.score(users)
    model.reranker = Reranker.from_lightgbm(
        {"tree_info": [{"tree_structure": {"leaf_value": 0.3}}]}, 10
    )
    np.testing.assert_array_equal(model.score(users), plain)


def test_the_engine_serves_a_reranker_fitted_on_its_own_data() -> None:
    """With hybrid_rerank="fit" the engine trains a re-ranker at fit time from its snapshot and
    serves the order the batch path gives; "stored" skips a re-ranker trained for other
    parameters; an unknown mode is refused."""
    from musicgraph.errors import RecommenderError
    from musicgraph.recommender.engine import Controls, RecommendationEngine
    from tests.recommender.test_engine_hybrid import NOW, two_scenes
    from tests.recommender.test_engine_hybrid import PARAMS as ENGINE_PARAMS

    params = {**ENGINE_PARAMS, "w_als": 0.0}
    engine = RecommendationEngine(
        two_scenes(),
        clock=lambda: NOW,
        hybrid_params=params,
        hybrid_rerank="fit",
        hybrid_rerank_resamples=2,
    )
    engine.fit_hybrid()
    fit = engine._hybrid
    assert fit is not None and fit.model.reranker is not None
    assert fit.model.reranker.params == params
    res = engine.recommend("me", kind="artist", controls=Controls(limit=5))
    assert res.method == "hybrid"
    me = engine.projection.users.get("me")
    assert me is not None
    batch = fit.model.score(np.array([me]))[0]
    ids = engine.projection.artists.ids
    want = [ids[i] for i in np.argsort(-batch, kind="stable")[:5] if batch[i] > 0]
    assert [r.item_id for r in res.items] == want

    stored = RecommendationEngine(
        two_scenes(), clock=lambda: NOW, hybrid_params=params, hybrid_rerank="stored"
    )
    stored.fit_hybrid()
    assert stored._hybrid is not None and stored._hybrid.model.reranker is None
    with pytest.raises(RecommenderError, match="hybrid_rerank"):
        RecommendationEngine(two_scenes(), hybrid_rerank="always")


def test_the_engine_takes_its_answer_from_the_reranked_candidates() -> None:
    """When the re-ranker's candidates cover the answer (limit + heard), the engine answers from
    them without a second pass over the scores, and every user gets the batch path's order; a
    window on what counts as heard (old plays may come back) takes the full pass, and agrees."""
    from musicgraph.recommender.engine import Controls, RecommendationEngine
    from tests.recommender.test_engine_hybrid import NOW, two_scenes
    from tests.recommender.test_engine_hybrid import PARAMS as ENGINE_PARAMS

    engine = RecommendationEngine(
        two_scenes(), clock=lambda: NOW, hybrid_params={**ENGINE_PARAMS, "w_als": 0.0}
    )
    engine.fit_hybrid()
    fit = engine._hybrid
    assert fit is not None
    fit.model.reranker = Reranker.from_lightgbm(_random_booster().dump_model(), 8)
    p = engine.projection
    users = np.arange(len(p.users))
    batch = fit.model.score(users)
    for u in users.tolist():
        row = batch[u]
        want = [p.artists.ids[i] for i in np.argsort(-row, kind="stable")[:3] if row[i] > 0]
        for c in (Controls(limit=3), Controls(limit=3, exclude_heard_within_days=3650)):
            got = engine.recommend(p.users.ids[u], kind="artist", controls=c)
            assert got.method == "hybrid"
            assert [r.item_id for r in got.items] == want, (u, c)


def _auto_engine(path: Path | None = None) -> Any:
    """An engine on the two-scene graph whose re-ranker is trained by ``auto`` (kept in
    ``path``)."""
    from musicgraph.recommender.engine import RecommendationEngine
    from tests.recommender.test_engine_hybrid import NOW, two_scenes
    from tests.recommender.test_engine_hybrid import PARAMS as ENGINE_PARAMS

    return RecommendationEngine(
        two_scenes(),
        clock=lambda: NOW,
        hybrid_params={**ENGINE_PARAMS, "w_als": 0.0},
        hybrid_rerank="auto",
        hybrid_rerank_resamples=2,
        hybrid_rerank_path=path,
    )


def _counting_trainer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import musicgraph.recommender.engine as engine_module

    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Reranker:
        calls.append(1)
        return train_reranker(*args, **kwargs)

    monkeypatch.setattr(engine_module, "train_reranker", counted)
    return calls


async def _fit_and_wait(engine: Any) -> None:
    task = engine.schedule_hybrid_fit()
    assert task is not None
    await task
    assert engine.wait_reranker(timeout=120)


async def test_auto_trains_one_reranker_in_the_background_and_keeps_it() -> None:
    """With hybrid_rerank="auto" the first background fit serves the Hybrid alone while a
    re-ranker trains on the engine's own graph; once trained it joins that Hybrid, and a refit of
    the same graph reuses it instead of training again."""
    from musicgraph.recommender.engine import Controls

    engine = _auto_engine()
    params = engine._hybrid_params()
    await _fit_and_wait(engine)
    first = engine._hybrid
    assert first is not None and first.model.reranker is not None
    assert first.model.reranker.params == params
    trained = first.model.reranker
    assert engine.recommend("me", kind="artist", controls=Controls(limit=5)).method == "hybrid"
    thread = engine._rerank_thread
    task = engine.schedule_hybrid_fit()
    assert task is not None
    await task
    second = engine._hybrid
    assert second is not None and second is not first
    assert second.model.reranker is trained
    assert engine._rerank_thread is thread  # nothing trained again


async def test_auto_serves_the_hybrid_alone_when_training_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-ranker that cannot be trained leaves the Hybrid serving without one."""
    import musicgraph.recommender.engine as engine_module
    from musicgraph.recommender.engine import Controls

    def broken(*args: Any, **kwargs: Any) -> Reranker:
        raise RerankError("no held-out listens to learn from")

    monkeypatch.setattr(engine_module, "train_reranker", broken)
    engine = _auto_engine()
    await _fit_and_wait(engine)
    assert engine._hybrid is not None and engine._hybrid.model.reranker is None
    res = engine.recommend("me", kind="artist", controls=Controls(limit=5))
    assert res.method == "hybrid" and res.items


async def test_auto_keeps_its_reranker_beside_the_store_for_other_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first engine on a graph trains the re-ranker and keeps it in its file (no lock left
    behind); a second engine (another worker, a restart) loads it instead of training, and so
    does the synchronous fit `musicgraph recommend` runs."""
    calls = _counting_trainer(monkeypatch)
    path = tmp_path / "graph.db-rerank.json"
    first = _auto_engine(path)
    await _fit_and_wait(first)
    assert calls == [1] and path.exists()
    assert not path.with_name(path.name + ".lock").exists()
    second = _auto_engine(path)
    await _fit_and_wait(second)
    assert calls == [1]
    assert second._hybrid.model.reranker.to_json() == first._hybrid.model.reranker.to_json()
    cli = _auto_engine(path)
    cli.fit_hybrid()
    assert calls == [1] and cli._hybrid.model.reranker is not None


async def test_auto_waits_for_the_process_that_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process holds the lock, an engine waits for the re-ranker it keeps instead
    of training one too; a lock left by a trainer that died (too old, or its process gone) is
    taken over."""
    import musicgraph.recommender.engine as engine_module

    monkeypatch.setattr(engine_module, "RERANK_POLL_SECONDS", 0.05)
    path = tmp_path / "graph.db-rerank.json"
    source = _auto_engine(tmp_path / "elsewhere.json")
    await _fit_and_wait(source)
    trained = source._hybrid.model.reranker
    calls = _counting_trainer(monkeypatch)
    lock = path.with_name(path.name + ".lock")
    lock.write_text(str(os.getpid()))  # a live holder
    waiting = _auto_engine(path)
    task = waiting.schedule_hybrid_fit()
    assert task is not None
    await task
    assert not waiting.wait_reranker(timeout=0.3)  # still waiting on the other process
    save_trained(path, trained, int(waiting._hybrid_snapshot().user_items.nnz))
    lock.unlink()
    assert waiting.wait_reranker(timeout=30)
    assert calls == [] and waiting._hybrid.model.reranker.to_json() == trained.to_json()

    path.unlink()
    lock.write_text(str(os.getpid()))
    old = time.time() - 2 * engine_module.RERANK_LOCK_SECONDS
    os.utime(lock, (old, old))
    orphan = _auto_engine(path)
    await _fit_and_wait(orphan)
    assert calls == [1] and path.exists() and not lock.exists()

    path.unlink()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()
    gone = str(proc.pid)
    lock.write_text(gone)  # a server stopped while it trained
    restarted = _auto_engine(path)
    await _fit_and_wait(restarted)
    assert calls == [1, 1] and path.exists() and not lock.exists()


async def test_a_long_training_keeps_its_lock_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trainer touches its lock while it trains, so an engine that starts waiting after the
    lock's staleness limit has passed still waits for it instead of training a second one."""
    import musicgraph.recommender.engine as engine_module

    monkeypatch.setattr(engine_module, "RERANK_POLL_SECONDS", 0.05)
    monkeypatch.setattr(engine_module, "RERANK_HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(engine_module, "RERANK_LOCK_SECONDS", 0.4)
    calls: list[int] = []

    def slow(*args: Any, **kwargs: Any) -> Reranker:
        calls.append(1)
        time.sleep(1.5)  # longer than the staleness limit, many heartbeats
        return train_reranker(*args, **kwargs)

    monkeypatch.setattr(engine_module, "train_reranker", slow)
    path = tmp_path / "graph.db-rerank.json"
    lock = path.with_name(path.name + ".lock")
    trainer = _auto_engine(path)
    task = trainer.schedule_hybrid_fit()
    assert task is not None
    await task
    await asyncio.sleep(0.9)  # past the staleness limit since the lock was taken
    assert calls == [1] and lock.exists()
    assert time.time() - lock.stat().st_mtime < 0.4  # kept fresh
    waiting = _auto_engine(path)
    await _fit_and_wait(waiting)
    assert trainer.wait_reranker(timeout=60)
    assert calls == [1] and not lock.exists()
    assert waiting._hybrid.model.reranker.to_json() == trainer._hybrid.model.reranker.to_json()
