"""Offline evaluation on HetRec 2011 Last.fm-2K: the fixed protocol of DESIGN.md section 6.

Items are artists, weights are play counts. For each seed, every user with at least 5 artists has
a random 20% of their artists (at least 1) held out as test, the rest is train. Hyper-parameters
are tuned once, on a validation split (20% of each user's train, from seed 0), then fixed for all
seeds. Metrics at k = 10 and 20: Recall@k (hits / min(k, |test|)), NDCG@k (binary relevance),
Precision@k, catalogue coverage and the mean popularity (training listeners) of what is
recommended. Train items are never recommended.

Leakage: a user's own tag assignments on one of their held-out artists are dropped from the tag
edges (test pairs, and validation pairs while tuning); friends and everyone else's tags stay.

``musicgraph evaluate`` runs it all and prints one markdown table; ``--json FILE`` writes the
numbers. Tuned parameters are cached in ``tuned_hetrec.json`` beside this module (``--retune``
recomputes them, only ever from the validation split).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.errors import MusicgraphError
from musicgraph.recommender.base import (
    FloatArray,
    IntArray,
    Recommender,
    TrainingData,
    without_held_out_tags,
)

if TYPE_CHECKING:
    from musicgraph.recommender.rerank import Reranker

KS = (10, 20)
TEST_FRACTION = 0.2
MIN_USER_ITEMS = 5
VALIDATION_SEED = 0
TUNED_PATH = Path(__file__).with_name("tuned_hetrec.json")
DEFAULT_DATA = Path("../shared/data/hetrec2011-lastfm-2k")
TUNE_METRIC = "ndcg@20"


class EvaluationError(MusicgraphError):
    """The evaluation could not run (missing data files, unknown method, missing tuning)."""


# --- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HetRec:
    """HetRec Last.fm-2K as index arrays: users and artists are rows/columns of ``user_items``."""

    user_items: sp.csr_matrix  # users x artists, play counts
    tag_assignments: npt.NDArray[np.int64]  # (user, artist, tag) index triples
    user_friends: sp.csr_matrix  # users x users, symmetric 0/1
    user_ids: IntArray
    artist_ids: IntArray
    tag_ids: IntArray

    @property
    def n_users(self) -> int:
        return int(self.user_items.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.user_items.shape[1])

    @property
    def n_tags(self) -> int:
        return len(self.tag_ids)

    def subset(self, n_users: int) -> HetRec:
        """The first ``n_users`` users with their listens, tags and friendships (for fast tests)."""
        keep = np.arange(min(n_users, self.n_users))
        ui = sp.csr_matrix(self.user_items[keep])
        items = np.flatnonzero(np.diff(ui.tocsc().indptr))
        item_map = np.full(self.n_items, -1, dtype=np.int64)
        item_map[items] = np.arange(len(items))
        ta = self.tag_assignments
        ta = ta[(ta[:, 0] < len(keep)) & (item_map[ta[:, 1]] >= 0)]
        ta = np.stack([ta[:, 0], item_map[ta[:, 1]], ta[:, 2]], axis=1)
        return HetRec(
            user_items=sp.csr_matrix(ui[:, items]),
            tag_assignments=ta,
            user_friends=sp.csr_matrix(self.user_friends[keep][:, keep]),
            user_ids=self.user_ids[keep],
            artist_ids=self.artist_ids[items],
            tag_ids=self.tag_ids,
        )


def _read_table(path: Path, columns: int) -> npt.NDArray[np.int64]:
    if not path.is_file():
        raise EvaluationError(
            f"HetRec file missing: {path} (pass --data DIR pointing at hetrec2011-lastfm-2k)"
        )
    try:
        table = np.loadtxt(path, skiprows=1, dtype=np.int64, usecols=range(columns), ndmin=2)
    except ValueError as exc:
        raise EvaluationError(f"cannot parse {path}: {exc}") from exc
    return table


def load_hetrec(directory: Path) -> HetRec:
    """Read user_artists.dat, user_taggedartists.dat and user_friends.dat from ``directory``."""
    directory = Path(directory)
    ua = _read_table(directory / "user_artists.dat", 3)
    ta = _read_table(directory / "user_taggedartists.dat", 3)
    fr = _read_table(directory / "user_friends.dat", 2)
    user_ids = np.unique(ua[:, 0])
    artist_ids = np.unique(ua[:, 1])
    u = np.searchsorted(user_ids, ua[:, 0])
    a = np.searchsorted(artist_ids, ua[:, 1])
    ui = sp.csr_matrix(
        (ua[:, 2].astype(np.float64), (u, a)), shape=(len(user_ids), len(artist_ids))
    )
    ui.sum_duplicates()
    # Tag assignments of catalogue users on catalogue artists (items are the listened artists).
    known = np.isin(ta[:, 0], user_ids) & np.isin(ta[:, 1], artist_ids)
    ta = ta[known]
    tag_ids = np.unique(ta[:, 2])
    triples = np.unique(
        np.stack(
            [
                np.searchsorted(user_ids, ta[:, 0]),
                np.searchsorted(artist_ids, ta[:, 1]),
                np.searchsorted(tag_ids, ta[:, 2]),
            ],
            axis=1,
        ),
        axis=0,
    )
    fr = fr[np.isin(fr[:, 0], user_ids) & np.isin(fr[:, 1], user_ids)]
    f0, f1 = np.searchsorted(user_ids, fr[:, 0]), np.searchsorted(user_ids, fr[:, 1])
    friends = sp.csr_matrix(
        (np.ones(2 * len(fr)), (np.r_[f0, f1], np.r_[f1, f0])), shape=(len(user_ids),) * 2
    )
    friends.data[:] = 1.0
    friends.sum_duplicates()
    friends.data[:] = 1.0
    return HetRec(
        user_items=ui,
        tag_assignments=triples.astype(np.int64),
        user_friends=friends,
        user_ids=user_ids,
        artist_ids=artist_ids,
        tag_ids=tag_ids,
    )


# --- splits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """``train`` + ``test`` = the input matrix; a pair is in exactly one of them."""

    train: sp.csr_matrix
    test: sp.csr_matrix


def split_user_items(
    user_items: sp.csr_matrix,
    rng: np.random.Generator,
    *,
    fraction: float = TEST_FRACTION,
    min_items: int = MIN_USER_ITEMS,
) -> Split:
    """Hold out a random ``fraction`` (at least 1) of each user's items, for users with at least
    ``min_items`` items; other users keep everything in train."""
    m = sp.csr_matrix(user_items)
    m.sort_indices()
    counts = np.diff(m.indptr)
    n_test = np.where(counts >= min_items, np.maximum(1, np.floor(fraction * counts)), 0)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    keys = rng.random(m.nnz)
    order = np.lexsort((keys, rows))  # by row, then random key
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    is_test = rank < n_test[rows]
    cols = m.indices
    test = sp.csr_matrix((m.data[is_test], (rows[is_test], cols[is_test])), shape=m.shape)
    train = sp.csr_matrix((m.data[~is_test], (rows[~is_test], cols[~is_test])), shape=m.shape)
    return Split(train=train, test=test)


def protocol_split(user_items: sp.csr_matrix, seed: int) -> Split:
    """The test split of one protocol seed."""
    return split_user_items(user_items, np.random.default_rng(seed))


def validation_split(user_items: sp.csr_matrix, seed: int = VALIDATION_SEED) -> Split:
    """20% of each user's train (of the test split of ``seed``) as validation, the rest train."""
    outer = protocol_split(user_items, seed)
    return split_user_items(outer.train, np.random.default_rng([seed, 1]))


def training_data(hetrec: HetRec, train: sp.csr_matrix, held_out: sp.csr_matrix) -> TrainingData:
    """TrainingData of one split, with the leakage rule applied to the tag edges: every (user,
    artist, tag) assignment whose (user, artist) pair is held out is dropped."""
    return without_held_out_tags(
        train, held_out, hetrec.tag_assignments, hetrec.n_tags, hetrec.user_friends
    )


# --- metrics --------------------------------------------------------------------------------------


def ranking_metrics(
    recs: IntArray,
    test: sp.csr_matrix,
    users: IntArray,
    popularity: FloatArray,
    n_items: int,
    ks: Sequence[int] = KS,
) -> dict[str, float]:
    """Recall, NDCG (binary), Precision, coverage and mean popularity at each k, averaged over
    ``users`` (rows of ``recs``, which holds at least max(ks) items per user)."""
    test_rows = sp.csr_matrix(test[users], dtype=bool)
    n_relevant = np.diff(test_rows.indptr)
    if np.any(n_relevant == 0):
        raise EvaluationError("ranking_metrics: every evaluated user needs at least one test item")
    kmax = max(ks)
    row_idx = np.repeat(np.arange(len(users)), recs.shape[1])
    hits = np.asarray(test_rows[row_idx, recs.ravel()]).reshape(recs.shape).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    out: dict[str, float] = {}
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(axis=1)
        cap = np.minimum(k, n_relevant)
        idcg = np.cumsum(discounts[:k])[cap - 1]
        out[f"recall@{k}"] = float(np.mean(n_hits / cap))
        out[f"ndcg@{k}"] = float(np.mean((h * discounts[:k]).sum(axis=1) / idcg))
        out[f"precision@{k}"] = float(np.mean(n_hits / k))
        out[f"coverage@{k}"] = float(len(np.unique(recs[:, :k])) / n_items)
        out[f"popularity@{k}"] = float(np.mean(popularity[recs[:, :k]]))
    return out


def evaluate_model(
    model: Recommender, data: TrainingData, test: sp.csr_matrix, ks: Sequence[int] = KS
) -> dict[str, float]:
    """Fit ``model`` on ``data`` and score its top max(ks) lists against ``test``."""
    model.fit(data)
    users = np.flatnonzero(np.diff(sp.csr_matrix(test).indptr)).astype(np.int64)
    recs = model.recommend_many(users, n=max(ks))
    popularity = np.asarray((data.user_items > 0).sum(axis=0), dtype=np.float64).ravel()
    return ranking_metrics(recs, test, users, popularity, data.n_items, ks)


# --- methods and tuning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A named recommender factory and the grid its hyper-parameters are tuned over."""

    name: str
    factory: Callable[..., Recommender]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    baseline: bool = True


def _methods() -> dict[str, Method]:
    from musicgraph.recommender.cooccurrence import ItemKNN
    from musicgraph.recommender.ease import EASE
    from musicgraph.recommender.hybrid import Hybrid
    from musicgraph.recommender.popularity import MostPopular
    from musicgraph.recommender.rp3beta import RP3beta

    methods = [
        Method("MostPopular", MostPopular),
        Method(
            "ItemKNN",
            ItemKNN,
            grid={
                "weighting": ["binary", "log", "bm25"],
                "k": [100, 200, 400, 800, 1600],
                "shrinkage": [0.0, 2.0, 5.0, 10.0, 20.0, 80.0],
            },
            bounds={"k": (1, 20000), "shrinkage": (0, 1e6)},
        ),
        Method(
            "RP3beta",
            RP3beta,
            grid={
                "weighting": ["binary", "log", "bm25"],
                "alpha": [0.4, 0.5, 0.6, 0.7, 0.8, 1.0],
                "beta": [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8],
            },
            bounds={"alpha": (0.05, 3.0), "beta": (0.0, 2.0)},
        ),
        Method(
            "EASE",
            EASE,
            grid={
                "weighting": ["binary", "log", "bm25"],
                "l2": [25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 400.0, 800.0],
            },
            bounds={"l2": (1e-3, 1e7)},
        ),
        Method(
            "ALS",
            _als_factory(),
            grid={
                "weighting": ["binary", "log", "bm25"],
                "factors": [16, 32, 48, 64, 128],
                "regularization": [0.1, 1.0, 3.0, 10.0, 30.0],
                "alpha": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
            },
            bounds={"factors": (2, 1024), "regularization": (1e-5, 1e4), "alpha": (0.01, 1e4)},
        ),
        Method("Hybrid", Hybrid, grid=Hybrid.GRID, bounds=Hybrid.BOUNDS, baseline=False),
        # the Hybrid (its tuned parameters) with its learned re-ranker (hybrid_reranker)
        Method(RERANKED, Hybrid, baseline=False),
    ]
    return {m.name: m for m in methods}


def _als_factory() -> Callable[..., Recommender]:
    def make(**params: Any) -> Recommender:
        from musicgraph.recommender.als import ALS

        return ALS(**params)

    return make


RERANKED = "Hybrid+rerank"
# what the server serves: the Hybrid with a re-ranker trained on the graph's own data
# (MUSICGRAPH_HYBRID_RERANK=auto), here on seed 0's validation splits
DEFAULT_METHOD = RERANKED


def _extend(values: list[Any], at_low: bool, lo: float, hi: float) -> Any | None:
    """The next grid value beyond an edge (geometric for positive grids), None if out of bounds."""
    if len(values) < 2 or not _is_numeric(values):
        return None
    a, b = (values[1], values[0]) if at_low else (values[-2], values[-1])
    new = b * (b / a) if a > 0 and b > 0 else b + (b - a)
    if isinstance(values[0], int) and not isinstance(values[0], bool):
        new = round(new)
    if not (lo <= new <= hi) or new in values:
        return None
    return new


def _is_numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def tune(
    method: Method,
    evaluate: Callable[[dict[str, Any]], float],
    *,
    max_rounds: int = 3,
    max_extensions: int = 4,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], float, dict[str, list[Any]]]:
    """Maximise ``evaluate(params)`` over ``method.grid``: every combination of the categorical
    parameters (e.g. the weighting), each with coordinate ascent over the numeric ones. A numeric
    parameter whose best value sits on the edge of its grid gets the grid extended (within
    ``method.bounds``) so the optimum ends up inside it. Returns the best params, their score and
    the grid searched for them."""
    categorical = {k: list(v) for k, v in method.grid.items() if not _is_numeric(list(v))}
    numeric = {k: list(v) for k, v in method.grid.items() if _is_numeric(list(v))}
    cache: dict[str, float] = {}

    def score(params: dict[str, Any]) -> float:
        key = json.dumps(params, sort_keys=True)
        if key not in cache:
            cache[key] = evaluate(params)
            if log:
                log(f"  {method.name} {key} -> {cache[key]:.4f}")
        return cache[key]

    results: list[tuple[float, dict[str, Any], dict[str, list[Any]]]] = []
    for combo in itertools.product(*categorical.values()):
        fixed = dict(zip(categorical, combo, strict=True))
        grid = {k: list(v) for k, v in numeric.items()}
        current = {**fixed, **{k: v[len(v) // 2] for k, v in grid.items()}}
        best = score(current)
        for _ in range(max_rounds):
            changed = False
            for name in grid:
                extensions = 0
                while True:
                    values = grid[name]
                    tried = [(score({**current, name: v}), -i, v) for i, v in enumerate(values)]
                    top_score, _, top_value = max(tried)
                    if top_score > best:
                        changed = changed or current[name] != top_value
                        current = {**current, name: top_value}
                        best = top_score
                    idx = values.index(current[name])
                    edge_low, edge_high = idx == 0, idx == len(values) - 1
                    if not (edge_low or edge_high) or extensions >= max_extensions:
                        break
                    lo, hi = method.bounds.get(name, (-math.inf, math.inf))
                    new = _extend(values, edge_low, lo, hi)
                    if new is None:
                        break
                    grid[name] = [new, *values] if edge_low else [*values, new]
                    extensions += 1
            if not changed:
                break
        results.append((best, current, {**categorical, **grid}))
    best_score, best_params, best_grid = max(results, key=lambda r: r[0])
    ordered = {k: best_params[k] for k in method.grid}
    return ordered, best_score, {k: best_grid[k] for k in method.grid}


def load_tuned(path: Path = TUNED_PATH) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data


def hybrid_reranker(
    hetrec: HetRec,
    params: dict[str, Any],
    stored: dict[str, Reranker],
    *,
    train_missing: bool = True,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
) -> Reranker | None:
    """The Hybrid's re-ranker for ``params``: ``stored[RERANK_PATH.name]`` when it was trained
    for these parameters, else (``train_missing``) one trained on seed 0's train split by
    :func:`~musicgraph.recommender.rerank.train_reranker` (its splits are validation splits of
    seed 0: the first one is the protocol's) and put in ``stored``; None otherwise."""
    from musicgraph.recommender.rerank import RERANK_PATH, train_reranker

    current = stored.get(RERANK_PATH.name)
    if current is not None and current.params == params and not retrain:
        return current
    if not train_missing and not retrain:
        return None
    outer = protocol_split(hetrec.user_items, VALIDATION_SEED)
    t0 = time.perf_counter()
    reranker = train_reranker(
        training_data(hetrec, outer.train, outer.test), params, seed=VALIDATION_SEED, log=log
    )
    stored[RERANK_PATH.name] = reranker
    if log:
        log(f"trained the Hybrid's re-ranker ({time.perf_counter() - t0:.0f}s)")
    return reranker


def _reranked_hybrid(params: dict[str, Any], seed: int, reranker: Reranker | None) -> Recommender:
    from musicgraph.recommender.hybrid import Hybrid

    model = Hybrid(**params, random_state=seed)
    model.reranker = reranker
    return model


# --- the protocol ---------------------------------------------------------------------------------


@dataclass
class Report:
    """Per method, per metric, the values of each seed; plus what was tuned."""

    seeds: list[int]
    per_seed: dict[str, list[dict[str, float]]]
    tuned: dict[str, dict[str, Any]]
    default: str
    baselines: list[str]
    seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, runs in self.per_seed.items():
            metrics: dict[str, dict[str, float]] = {}
            for key in runs[0]:
                vals = np.array([r[key] for r in runs])
                std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
                metrics[key] = {"mean": float(vals.mean()), "std": std}
            out[name] = metrics
        return out

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.summary())
        doc["default"] = self.default
        doc["baselines"] = self.baselines
        doc["seeds"] = self.seeds
        doc["tuned_params"] = self.tuned
        doc["per_seed"] = self.per_seed
        doc["seconds"] = round(self.seconds, 1)
        return doc

    def markdown(self, ks: Sequence[int] = KS) -> str:
        summary = self.summary()
        cols = [f"{m}@{k}" for k in sorted(ks, reverse=True) for m in ("ndcg", "recall")]
        cols += [f"precision@{k}" for k in sorted(ks, reverse=True)]
        cols += [f"{m}@{k}" for k in sorted(ks, reverse=True) for m in ("coverage", "popularity")]
        lines = [
            "| method | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        order = sorted(summary, key=lambda n: -summary[n]["ndcg@20"]["mean"])
        for name in order:
            label = f"**{name}** (default)" if name == self.default else name
            cells = []
            for c in cols:
                m = summary[name][c]
                fmt = "{:.1f} ± {:.1f}" if c.startswith("popularity") else "{:.4f} ± {:.4f}"
                cells.append(fmt.format(m["mean"], m["std"]))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _factory_for(method: Method, params: dict[str, Any], seed: int) -> Recommender:
    params = dict(params)
    if method.name in ("ALS", "Hybrid"):
        params.setdefault("random_state", seed)
    return method.factory(**params)


def run_protocol(
    hetrec: HetRec,
    *,
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    methods: Sequence[str] | None = None,
    tuned: dict[str, dict[str, Any]] | None = None,
    tune_missing: bool = True,
    retune: bool = False,
    log: Callable[[str], None] | None = None,
    rerankers: dict[str, Reranker] | None = None,
) -> Report:
    """Tune (on the validation split of seed 0) what is not tuned yet, then evaluate every method
    on the test split of every seed. ``tuned`` is updated in place with what was tuned;
    ``rerankers`` (the stored re-rankers by file name, see :func:`hybrid_reranker`) with what
    was trained."""
    rerankers = {} if rerankers is None else rerankers
    started = time.perf_counter()
    registry = _methods()
    names = list(methods) if methods else list(registry)
    for n in names:
        if n not in registry:
            raise EvaluationError(f"unknown method {n!r}; known: {', '.join(registry)}")
    tuned = {} if tuned is None else tuned
    val: tuple[TrainingData, sp.csr_matrix] | None = None
    for name in names:
        method = registry[name]
        if not method.grid:
            tuned.setdefault(name, {})
            continue
        if name in tuned and not retune:
            continue
        if not tune_missing and not retune:
            raise EvaluationError(
                f"no tuned parameters for {name} in {TUNED_PATH}; run without --no-tune"
            )
        if val is None:
            split = validation_split(hetrec.user_items, VALIDATION_SEED)
            outer_test = protocol_split(hetrec.user_items, VALIDATION_SEED).test
            # While tuning, both the validation pairs and the test pairs are held out of the tags.
            val = (training_data(hetrec, split.train, split.test + outer_test), split.test)
        vdata, vtest = val
        t0 = time.perf_counter()
        m = method

        def objective(
            params: dict[str, Any],
            m: Method = m,
            vdata: TrainingData = vdata,
            vtest: sp.csr_matrix = vtest,
        ) -> float:
            model = _factory_for(m, params, VALIDATION_SEED)
            return evaluate_model(model, vdata, vtest)[TUNE_METRIC]

        best, score, grid = tune(method, objective, log=log)
        tuned[name] = {"params": best, "validation_" + TUNE_METRIC: score, "grid": grid}
        if log:
            log(
                f"tuned {name}: {best} (validation {TUNE_METRIC} {score:.4f}, "
                f"{time.perf_counter() - t0:.0f}s)"
            )
    reranker = None
    if RERANKED in names:
        if "params" not in tuned.get("Hybrid", {}):
            raise EvaluationError(f"{RERANKED} needs the Hybrid's tuned parameters: run Hybrid too")
        reranker = hybrid_reranker(
            hetrec,
            tuned["Hybrid"]["params"],
            rerankers,
            train_missing=tune_missing or retune,
            retrain=retune,
            log=log,
        )
    per_seed: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    seeds = list(seeds)
    for seed in seeds:
        split = protocol_split(hetrec.user_items, seed)
        data = training_data(hetrec, split.train, split.test)
        for name in names:
            method = registry[name]
            params = tuned.get(name, {}).get("params", {})
            t0 = time.perf_counter()
            if name == RERANKED:
                model = _reranked_hybrid(tuned["Hybrid"]["params"], seed, reranker)
            else:
                model = _factory_for(method, params, seed)
            metrics = evaluate_model(model, data, split.test)
            per_seed[name].append(metrics)
            if log:
                log(
                    f"seed {seed} {name}: ndcg@20 {metrics['ndcg@20']:.4f} recall@20 "
                    f"{metrics['recall@20']:.4f} ({time.perf_counter() - t0:.1f}s)"
                )
    return Report(
        seeds=seeds,
        per_seed=per_seed,
        tuned={n: tuned.get(n, {}) for n in names},
        default=DEFAULT_METHOD,
        baselines=[n for n in names if registry[n].baseline],
        seconds=time.perf_counter() - started,
    )


# --- CLI ------------------------------------------------------------------------------------------


def _limit_threads(n: int) -> None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl comes with implicit
        return
    threadpool_limits(limits=n)


def cmd_evaluate(args: argparse.Namespace) -> int:
    _limit_threads(args.threads)
    data_dir = args.data if args.data is not None else _default_data_dir()
    hetrec = load_hetrec(data_dir)
    if args.users:
        hetrec = hetrec.subset(args.users)
    tuned_path = args.tuned or TUNED_PATH
    stored = {} if args.retune else load_tuned(tuned_path)
    tuned = dict(stored)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    from musicgraph.recommender.rerank import RERANK_PATH, load_reranker

    rerank_path = tuned_path.with_name(RERANK_PATH.name)
    stored_reranker = None if args.retune else load_reranker(rerank_path)
    rerankers = {} if stored_reranker is None else {RERANK_PATH.name: stored_reranker}
    report = run_protocol(
        hetrec,
        seeds=args.seeds,
        methods=args.methods,
        tuned=tuned,
        tune_missing=not args.no_tune,
        retune=args.retune,
        log=log,
        rerankers=rerankers,
    )
    if tuned != stored and not args.users:
        merged = {**load_tuned(tuned_path), **tuned}
        tuned_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        log(f"tuned parameters written to {tuned_path}")
    trained = rerankers.get(RERANK_PATH.name)
    if trained is not None and trained is not stored_reranker and not args.users:
        trained.save(rerank_path)
        log(f"the Hybrid's re-ranker written to {rerank_path}")
    print(report.markdown())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
    return 0


def _default_data_dir() -> Path:
    env = os.environ.get("MUSICGRAPH_HETREC_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base / DEFAULT_DATA
        if candidate.is_dir():
            return candidate
    return DEFAULT_DATA


def register(subparsers: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    """``musicgraph evaluate``: the offline protocol of DESIGN.md section 6."""
    p = subparsers.add_parser(
        "evaluate",
        help="offline evaluation on HetRec Last.fm-2K (DESIGN.md section 6): one markdown table",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the hetrec2011-lastfm-2k folder (default: $MUSICGRAPH_HETREC_DIR or "
        "../shared/data/hetrec2011-lastfm-2k)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="methods to run (default: all): "
        + ", ".join(["MostPopular", "ItemKNN", "RP3beta", "EASE", "ALS", "Hybrid", RERANKED]),
    )
    tuning = p.add_mutually_exclusive_group()
    tuning.add_argument(
        "--no-tune",
        action="store_true",
        help="only use the stored tuned parameters (fail if one is missing)",
    )
    tuning.add_argument(
        "--retune",
        action="store_true",
        help="re-tune every method on the validation split and store the result",
    )
    p.add_argument(
        "--tuned",
        type=Path,
        default=None,
        help=f"tuned-parameter file (default: {TUNED_PATH.name} in the package)",
    )
    p.add_argument(
        "--users",
        type=int,
        default=None,
        help="only the first N users (a quick smoke run; nothing is stored)",
    )
    p.add_argument("--threads", type=int, default=2, help="BLAS / implicit threads (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_evaluate)
