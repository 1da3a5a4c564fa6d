"""The evaluation harness: splits, the leakage rule, metrics, tuning, and an end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from musicgraph.cli import main
from musicgraph.recommender.evaluate import (
    EvaluationError,
    HetRec,
    Method,
    load_hetrec,
    load_tuned,
    protocol_split,
    ranking_metrics,
    run_protocol,
    training_data,
    tune,
    validation_split,
)


def _matrix(seed: int = 0, users: int = 40, items: int = 60) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 12, users)
    rows, cols = [], []
    for u, c in enumerate(counts):
        rows += [u] * int(c)
        cols += rng.choice(items, int(c), replace=False).tolist()
    data = rng.integers(1, 500, len(rows)).astype(np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(users, items))


def test_split_sizes_and_partition() -> None:
    """Users with >= 5 items lose floor(20%) (at least 1) to test; train and test partition the input."""
    m = _matrix()
    split = protocol_split(m, 3)
    counts = np.diff(m.indptr)
    n_test = np.diff(split.test.indptr)
    expected = np.where(counts >= 5, np.maximum(1, np.floor(0.2 * counts)), 0)
    assert n_test.tolist() == expected.astype(int).tolist()
    assert (split.train.multiply(split.test)).nnz == 0
    assert abs(split.train + split.test - m).max() == 0


def test_split_is_deterministic_by_seed() -> None:
    """The same seed gives the same split; another seed gives another one."""
    m = _matrix()
    a, b, c = protocol_split(m, 1), protocol_split(m, 1), protocol_split(m, 2)
    assert (a.test != b.test).nnz == 0
    assert (a.test != c.test).nnz > 0


def test_validation_split_comes_from_the_seed_zero_train() -> None:
    """Validation holds out part of seed 0's train only; seed 0's test never enters it."""
    m = _matrix()
    outer = protocol_split(m, 0)
    val = validation_split(m, 0)
    assert abs(val.train + val.test - outer.train).max() == 0
    assert val.test.multiply(outer.test).nnz == 0


def _tiny_hetrec() -> HetRec:
    ui = sp.csr_matrix(np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 4.0, 0.0, 5.0]]))
    # (user, artist, tag): user 0 tags artists 0 and 2, user 1 tags artist 2 and 3.
    triples = np.array([[0, 0, 0], [0, 2, 1], [0, 2, 2], [1, 2, 1], [1, 3, 0]], dtype=np.int64)
    return HetRec(
        user_items=ui,
        tag_assignments=triples,
        user_friends=sp.csr_matrix((2, 2)),
        user_ids=np.array([10, 11]),
        artist_ids=np.array([1, 2, 3, 4]),
        tag_ids=np.array([7, 8, 9]),
    )


def test_leakage_rule_drops_own_tags_on_held_out_artists() -> None:
    """A user's tags on their held-out artist are dropped; other users' tags on it stay."""
    h = _tiny_hetrec()
    held = sp.csr_matrix(([1.0], ([0], [2])), shape=(2, 4))  # user 0's artist 2 is test
    data = training_data(h, h.user_items - h.user_items.multiply(held), held)
    assert data.user_item_tags is not None and data.item_tags is not None
    kept = {tuple(t) for t in data.user_item_tags.tolist()}
    assert kept == {(0, 0, 0), (1, 2, 1), (1, 3, 0)}
    assert data.item_tags.toarray().tolist() == [
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
    ]


def test_metrics_on_a_hand_computed_example() -> None:
    """Recall, NDCG, precision, coverage and popularity match values computed by hand."""
    test = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float64))
    recs = np.array([[1, 2], [3, 4]])
    popularity = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    got = ranking_metrics(recs, test, np.array([0, 1]), popularity, 6, ks=(1, 2))
    assert got["recall@1"] == pytest.approx((1 / 1 + 0) / 2)
    assert got["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert got["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    idcg_user0 = 1 + 1 / np.log2(3)
    assert got["ndcg@2"] == pytest.approx((1 / idcg_user0 + 0) / 2)
    assert got["ndcg@1"] == pytest.approx(0.5)
    assert got["coverage@2"] == pytest.approx(4 / 6)
    assert got["coverage@1"] == pytest.approx(2 / 6)
    assert got["popularity@2"] == pytest.approx((20 + 30 + 40 + 50) / 4)


def test_tune_extends_a_grid_whose_optimum_sits_on_the_edge() -> None:
    """Coordinate ascent finds the optimum and widens a grid until the optimum is inside it."""

    def objective(params: dict[str, Any]) -> float:
        return -((np.log2(params["l2"]) - 6.0) ** 2) - (0.0 if params["kind"] == "b" else 1.0)

    method = Method("toy", dict, grid={"l2": [1.0, 2.0, 4.0], "kind": ["a", "b"]})
    best, score, grid = tune(method, objective)
    assert best == {"l2": 64.0, "kind": "b"}
    assert score == 0.0
    assert grid["l2"][0] < 64.0 < grid["l2"][-1]


def test_load_hetrec_reports_a_missing_folder(tmp_path: Path) -> None:
    """A data folder without the HetRec files fails with the missing path in the message."""
    with pytest.raises(EvaluationError, match=r"user_artists\.dat"):
        load_hetrec(tmp_path)


@pytest.mark.slow
def test_protocol_end_to_end_on_a_hetrec_subset(hetrec_dir: Path, tmp_path: Path) -> None:
    """The CLI runs the whole protocol on 200 users and writes the documented JSON."""
    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--data",
            str(hetrec_dir),
            "--users",
            "200",
            "--seeds",
            "0",
            "1",
            "--no-tune",
            "--quiet",
            "--threads",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["default"] == "Hybrid+rerank"
    assert set(doc["baselines"]) == {"MostPopular", "ItemKNN", "RP3beta", "EASE", "ALS"}
    assert doc["seeds"] == [0, 1]
    for name in [doc["default"], *doc["baselines"]]:
        for key in ("ndcg@20", "recall@20", "precision@10", "coverage@20", "popularity@20"):
            assert set(doc[name][key]) == {"mean", "std"}
        assert 0.0 <= doc[name]["ndcg@20"]["mean"] <= 1.0
    assert doc["MostPopular"]["ndcg@20"]["mean"] < doc["Hybrid"]["ndcg@20"]["mean"]
    assert doc["MostPopular"]["ndcg@20"]["mean"] < doc["Hybrid+rerank"]["ndcg@20"]["mean"]


def test_run_protocol_tunes_on_validation_only(hetrec_dir: Path) -> None:
    """Tuning a method on a subset reports its validation score and the grid it searched."""
    h = load_hetrec(hetrec_dir).subset(120)
    tuned: dict[str, Any] = {}
    report = run_protocol(h, seeds=[0], methods=["MostPopular", "RP3beta"], tuned=tuned)
    assert "params" in tuned["RP3beta"] and "validation_ndcg@20" in tuned["RP3beta"]
    assert report.baselines == ["MostPopular", "RP3beta"]
    assert "| RP3beta |" in report.markdown()
    assert load_tuned(Path("/nonexistent.json")) == {}
