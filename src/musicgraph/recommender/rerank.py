"""A learned re-ranker of the Hybrid's best candidates (stacking, Wolpert 1992).

The Hybrid ranks by a weighted sum of its components' scaled scores, one set of weights for every
user and item. The re-ranker takes the sum's best :attr:`Reranker.k` unheard items of a user and
orders them again with gradient-boosted trees (LambdaMART, Burges 2010; LightGBM's ``lambdarank``)
over per-(user, item) features (:data:`FEATURES`):

- the fused score and each component's scaled score (the terms of the sum, unweighted),
- the item's log popularity (listeners in training) and log number of distinct tags,
- the user's log history size, log number of friends, mean log popularity of their history, and
  how many of their friends listened to the item.

The trees can so weigh a component by context (tags count more for a short history, friends for
an item many friends play, popularity differently for users of the mainstream and of the tail),
which one linear sum cannot. The re-ranker only permutes the candidates: the item it puts at
position ``j`` takes the ``j``-th best fused score, so scores keep their scale (the serving
controls, e.g. the novelty penalty, apply to them unchanged) and items past the candidates keep
theirs.

Training (:func:`train_reranker`, needs ``lightgbm``) uses only the training data it is given:
each of ``resamples`` validation splits holds out 20% of every user's items (as the protocol's
validation split does), fits the Hybrid on the rest, and labels each candidate 1 if it was held out.
``musicgraph evaluate`` trains it on the validation splits of seed 0 and stores it in
``rerank_hetrec.json`` beside ``tuned_hetrec.json``; serving applies it without LightGBM: the
trees are stacked into flat arrays and evaluated by QuickScorer's bit masks
(Lucchese et al., SIGIR 2015): every split an item fails clears the leaves of that node's left
subtree, and the item's leaf in each tree is the lowest bit left. The nodes an item fails are found
per feature, as QuickScorer does, by where its value falls among that feature's sorted thresholds
(one lookup of the OR of their masks, not one comparison per node), in one compiled pass over the
candidates (:func:`~musicgraph.recommender.kernels.tree_scores`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.errors import MusicgraphError
from musicgraph.recommender.base import (
    FloatArray,
    IntArray,
    TrainingData,
    without_held_out_tags,
)
from musicgraph.recommender.kernels import best_unheard, tree_scores

COMPONENTS = ("ease", "svd", "als", "friends", "tag_knn", "tag_profile")
FEATURES = (
    "blend",
    *COMPONENTS,
    "log_popularity",
    "log_history",
    "log_friends",
    "friends_playing",
    "history_popularity",
    "log_tags",
)
RERANK_PATH = Path(__file__).with_name("rerank_hetrec.json")
# LightGBM parameters chosen on the validation splits of seed 0 (leave-one-split-out over three
# of them, NDCG@20 / Recall@20): 7 leaves 0.2420 / 0.2753, 11 leaves 0.2437 / 0.2763, 15 leaves
# 0.2440 / 0.2764 (0.2437 / 0.2757 with 200 a leaf); 120 trees at half the rate 0.2443 / 0.2766,
# no better than 60 for twice the trees to serve; 150 or 200 candidates instead of 100, and
# ItemKNN and RP3beta scores as features, no better.
LGB_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 400,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 30,
    "verbose": -1,
    "num_threads": 1,
}
ROUNDS = 60
MAX_LEAVES = 16
U16 = npt.NDArray[np.uint16]


class RerankError(MusicgraphError):
    """A re-ranker could not be trained or read (missing lightgbm, a malformed file)."""


@dataclass(frozen=True)
class ItemContext:
    """Per-item features of one fit: log1p(listeners) and log1p(distinct tags)."""

    log_popularity: FloatArray
    log_tags: FloatArray

    @classmethod
    def of(cls, binary: sp.csr_matrix, tag_vectors: sp.csr_matrix | None) -> ItemContext:
        """From the fit's 0/1 user-item matrix and its item tag vectors (one nonzero per tag)."""
        popularity = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
        n_tags = (
            np.zeros(binary.shape[1])
            if tag_vectors is None
            else np.diff(sp.csr_matrix(tag_vectors).indptr).astype(np.float64)
        )
        return cls(np.log1p(popularity), np.log1p(n_tags))


@dataclass(frozen=True)
class _FeatureBins:
    """QuickScorer's per-feature view of the stacked trees: a feature's value falls in one of
    the bins its split thresholds cut (``bin`` = how many thresholds lie strictly below it), and
    every node of that feature whose threshold lies below fails (the value goes right, as it is
    not ``<=``). ``masks[offset[f] + bin]`` is, per tree, the OR of the leaf bits those nodes clear
    (cumulative over the sorted thresholds), so an item's cleared bits are one sorted search and
    one row lookup per feature, instead of one comparison per node (840 for 60 trees of 15
    leaves)."""

    features: IntArray  # the features some node splits on
    thresholds: tuple[FloatArray, ...]  # per such feature, its distinct thresholds, ascending
    offset: IntArray  # per such feature, its first row in ``masks``
    masks: U16  # bins x trees

    @classmethod
    def of(cls, r: Reranker) -> _FeatureBins:
        n_trees = r.n_trees
        if n_trees == 0 or r.depth == 0:
            return cls(
                np.zeros(0, dtype=np.int64),
                (),
                np.zeros(0, dtype=np.int64),
                np.zeros((1, n_trees), dtype=np.uint16),
            )
        feature = r.node_feature.reshape(-1, n_trees)
        threshold = r.node_threshold.reshape(feature.shape)
        clear = r.node_clear.reshape(feature.shape)
        tree = np.broadcast_to(np.arange(n_trees), feature.shape)
        real = clear > 0  # padding nodes never clear anything
        used = np.unique(feature[real])
        thresholds: list[FloatArray] = []
        blocks: list[U16] = []
        offset = np.zeros(used.size, dtype=np.int64)
        start = 0
        for j, f in enumerate(used.tolist()):
            mine = real & (feature == f)
            cuts = np.unique(threshold[mine])
            block = np.zeros((cuts.size + 1, n_trees), dtype=np.uint16)
            # a node with threshold cuts[i] fails in bins i + 1 and above
            rank = np.searchsorted(cuts, threshold[mine]) + 1
            np.bitwise_or.at(block, (rank, tree[mine]), clear[mine])
            np.bitwise_or.accumulate(block, axis=0, out=block)
            thresholds.append(cuts)
            blocks.append(block)
            offset[j] = start
            start += block.shape[0]
        masks = np.concatenate(blocks) if blocks else np.zeros((1, n_trees), dtype=np.uint16)
        return cls(used.astype(np.int64), tuple(thresholds), offset, masks)

    def cuts(self) -> tuple[FloatArray, IntArray]:
        """The thresholds of every feature in one array, and where each feature's start (with
        the end as a last entry)."""
        flat = np.concatenate(self.thresholds) if self.thresholds else np.zeros(0)
        start = np.zeros(len(self.thresholds) + 1, dtype=np.int64)
        np.cumsum([t.size for t in self.thresholds], out=start[1:])
        return flat, start


@dataclass(frozen=True)
class Reranker:
    """Boosted trees over :data:`FEATURES`, as flat arrays (see the module docstring).

    Every tree is padded to ``depth`` internal nodes (a padding node never fails), stored node
    slot after node slot (slot ``d`` of every tree, then slot ``d + 1``): ``node_feature`` and
    ``node_threshold`` (an item goes left when its feature is ``<=`` the threshold) and
    ``node_clear`` (the bits of the leaves in the node's left subtree, cleared when the item goes
    right). ``leaf_value[t * leaves + j]`` is tree ``t``'s ``j``-th leaf from the left; ``base``
    sums the trees that are a single leaf."""

    k: int
    depth: int
    leaves: int
    node_feature: IntArray
    node_threshold: FloatArray
    node_clear: U16
    leaf_value: FloatArray
    base: float = 0.0
    # the Hybrid parameters it was trained for (its features are that Hybrid's scores)
    params: Mapping[str, Any] = field(default_factory=dict)
    _bins: _FeatureBins = field(init=False, repr=False, compare=False)
    _cuts: tuple[FloatArray, IntArray] = field(init=False, repr=False, compare=False)

    @property
    def n_trees(self) -> int:
        return self.leaf_value.size // max(self.leaves, 1)

    def __post_init__(self) -> None:
        bins = _FeatureBins.of(self)
        object.__setattr__(self, "_bins", bins)
        object.__setattr__(self, "_cuts", bins.cuts())

    def predict(self, x: FloatArray) -> FloatArray:
        """Scores (higher first) of feature rows ``x`` (rows x len(FEATURES))."""
        n_trees = self.n_trees
        if n_trees == 0 or x.shape[0] == 0:
            return np.full(x.shape[0], self.base)
        bins = self._bins
        out: FloatArray = tree_scores(
            np.ascontiguousarray(x, dtype=np.float64),
            bins.features,
            *self._cuts,
            bins.offset,
            bins.masks,
            self.leaf_value,
            self.leaves,
            float(self.base),
        )
        return out

    # --- re-ranking ------------------------------------------------------------------------------
    def order(self, x: FloatArray, candidates: IntArray) -> IntArray:
        """The new order (row positions, best first) of one user's candidate rows ``x``
        (:func:`features`); equal predictions keep the fused order (then item index), so trees
        that cannot tell candidates apart leave them as they were. The fused score is compared
        in float32, the precision serving computes it in, so both paths break ties alike."""
        fused = x[:, 0].astype(np.float32)
        return np.asarray(np.lexsort((candidates, -fused, -self.predict(x))), dtype=np.int64)

    # --- files -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "k": self.k,
            "depth": self.depth,
            "leaves": self.leaves,
            "node_feature": self.node_feature.tolist(),
            "node_threshold": [float(v) if np.isfinite(v) else None for v in self.node_threshold],
            "node_clear": self.node_clear.tolist(),
            "leaf_value": self.leaf_value.tolist(),
            "base": self.base,
            "hybrid_params": dict(self.params),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Reranker:
        if list(doc.get("features", ())) != list(FEATURES):
            raise RerankError(
                f"re-ranker features {doc.get('features')} are not this version's {list(FEATURES)}"
            )
        thresholds = [np.inf if v is None else float(v) for v in doc["node_threshold"]]
        return cls(
            k=int(doc["k"]),
            depth=int(doc["depth"]),
            leaves=int(doc["leaves"]),
            node_feature=np.asarray(doc["node_feature"], dtype=np.int64),
            node_threshold=np.asarray(thresholds, dtype=np.float64),
            node_clear=np.asarray(doc["node_clear"], dtype=np.uint16),
            leaf_value=np.asarray(doc["leaf_value"], dtype=np.float64),
            base=float(doc.get("base", 0.0)),
            params=dict(doc.get("hybrid_params", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()) + "\n")

    @classmethod
    def from_lightgbm(
        cls, model_dump: Mapping[str, Any], k: int, params: Mapping[str, Any] | None = None
    ) -> Reranker:
        """From LightGBM's ``Booster.dump_model()`` (numerical ``<=`` splits, at most
        :data:`MAX_LEAVES` leaves a tree)."""
        trees: list[tuple[list[float], list[tuple[int, float, int]]]] = []
        base = 0.0
        for info in model_dump["tree_info"]:
            root = info["tree_structure"]
            if "split_feature" not in root:
                base += float(root["leaf_value"])
                continue
            leaves: list[float] = []
            nodes: list[tuple[int, float, int]] = []
            _walk(root, leaves, nodes)
            if len(leaves) > MAX_LEAVES:
                raise RerankError(
                    f"a tree has {len(leaves)} leaves; at most {MAX_LEAVES} are supported"
                )
            trees.append((leaves, nodes))
        depth = max((len(n) for _, n in trees), default=0)
        n_leaves = max((len(lv) for lv, _ in trees), default=0)
        feature = np.zeros((depth, len(trees)), dtype=np.int64)
        threshold = np.full((depth, len(trees)), np.inf)
        clear = np.zeros((depth, len(trees)), dtype=np.uint16)
        values = np.zeros((len(trees), n_leaves))
        for t, (leaves, nodes) in enumerate(trees):
            values[t, : len(leaves)] = leaves
            for d, (f, thr, bits) in enumerate(nodes):
                feature[d, t], threshold[d, t], clear[d, t] = f, thr, bits
        return cls(
            k=k,
            depth=depth,
            leaves=n_leaves,
            node_feature=feature.ravel(),
            node_threshold=threshold.ravel(),
            node_clear=clear.ravel(),
            leaf_value=values.ravel(),
            base=base,
            params=dict(params or {}),
        )


def _walk(node: Mapping[str, Any], leaves: list[float], nodes: list[tuple[int, float, int]]) -> int:
    """Append a LightGBM subtree's leaves (left to right) and internal nodes (feature,
    threshold, left subtree's leaf bits) in pre-order; return the subtree's leaf bits."""
    if "split_feature" not in node:
        leaves.append(float(node["leaf_value"]))
        return 1 << (len(leaves) - 1)
    if node.get("decision_type", "<=") != "<=":
        raise RerankError(f"unsupported split {node.get('decision_type')!r}")
    slot = len(nodes)
    nodes.append((0, 0.0, 0))
    left = _walk(node["left_child"], leaves, nodes)
    right = _walk(node["right_child"], leaves, nodes)
    nodes[slot] = (int(node["split_feature"]), float(node["threshold"]), left)
    return left | right


def save_trained(path: Path, reranker: Reranker, listens: int) -> None:
    """Keep a re-ranker trained on a graph of ``listens`` user-item edges in ``path``, written
    whole or not at all (a temporary file renamed over it), for other processes to load."""
    doc = {"listens": int(listens), "reranker": reranker.to_json()}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    os.replace(tmp, path)


def load_trained(path: Path) -> tuple[Reranker, int] | None:
    """The re-ranker :func:`save_trained` kept in ``path`` and its edge count; None when there is
    none (or it cannot be read: it is trained again)."""
    try:
        doc = json.loads(path.read_text())
        return Reranker.from_json(doc["reranker"]), int(doc["listens"])
    except (OSError, ValueError, KeyError, TypeError, RerankError):
        return None


def load_reranker(path: Path = RERANK_PATH) -> Reranker | None:
    """The stored re-ranker, None when there is no file."""
    if not path.is_file():
        return None
    try:
        return Reranker.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise RerankError(f"cannot read the re-ranker in {path}: {exc}") from exc


def top_candidates(scores: FloatArray, heard: IntArray, k: int) -> IntArray:
    """The ``k`` best-scored items not in ``heard`` (fewer if fewer exist), best first (equal
    scores by index). ``scores`` is left as it was (heard items are masked while choosing).

    Compiled (:func:`~musicgraph.recommender.kernels.best_unheard`): on HetRec a quarter of the
    best score leaves 187 items at p50, at least 100 for 98% of the users, and only those are
    sorted."""
    return best_unheard(scores, np.asarray(heard, dtype=np.int64), k)


def permute_scores(scores: FloatArray, candidates: IntArray, order: IntArray) -> None:
    """Give ``candidates[order[j]]`` the ``j``-th best of the candidates' scores (in place)."""
    values = np.sort(scores[candidates])[::-1]
    scores[candidates[order]] = values


def features(
    blend: FloatArray,
    parts: Mapping[str, FloatArray],
    items: ItemContext,
    candidates: IntArray,
    *,
    history: IntArray,
    n_friends: float,
    friends_playing: FloatArray,
) -> FloatArray:
    """One user's candidate rows (candidates x len(FEATURES)): ``blend`` and ``parts[c]`` are the
    candidates' fused and scaled component scores (a component the Hybrid lacks counts 0; all
    finite, as candidates are unheard), ``history`` the user's heard items, ``friends_playing``
    how many friends heard each candidate."""
    x = np.zeros((candidates.size, len(FEATURES)))
    x[:, 0] = blend
    for j, name in enumerate(COMPONENTS, start=1):
        part = parts.get(name)
        if part is not None:
            x[:, j] = part
    b = 1 + len(COMPONENTS)
    x[:, b] = items.log_popularity[candidates]
    x[:, b + 1] = np.log1p(history.size)
    x[:, b + 2] = np.log1p(n_friends)
    x[:, b + 3] = friends_playing
    x[:, b + 4] = float(items.log_popularity[history].mean()) if history.size else 0.0
    x[:, b + 5] = items.log_tags[candidates]
    return x


def train_reranker(
    data: TrainingData,
    hybrid_params: Mapping[str, Any],
    *,
    resamples: int = 8,
    k: int = 100,
    seed: int = 0,
    fraction: float = 0.2,
    rounds: int = ROUNDS,
    lgb_params: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> Reranker:
    """Fit a :class:`Reranker` for a Hybrid with ``hybrid_params`` from ``data`` alone: split
    ``data`` ``resamples`` times (20% of each user's items held out, ``numpy`` seeds
    ``[seed, 1..resamples]``; with ``data`` the protocol's seed-0 train, the first one is the
    validation split), fit the Hybrid on each rest, label its top ``k`` candidates, and fit
    LambdaMART on them all. Tag assignments of held-out pairs are dropped (leakage rule)."""
    try:
        import lightgbm as lgb
    except ImportError as exc:  # pragma: no cover - lightgbm is a dependency
        raise RerankError("training the re-ranker needs lightgbm (pip install lightgbm)") from exc
    from musicgraph.recommender.evaluate import split_user_items
    from musicgraph.recommender.hybrid import Hybrid

    xs: list[FloatArray] = []
    ys: list[npt.NDArray[np.float64]] = []
    for r in range(1, resamples + 1):
        split = split_user_items(
            data.user_items, np.random.default_rng([seed, r]), fraction=fraction
        )
        sub = _without_pairs(data, split.train, split.test)
        model = Hybrid(**dict(hybrid_params), random_state=seed)
        model.fit(sub)
        test = sp.csr_matrix(split.test)
        users = np.flatnonzero(np.diff(test.indptr)).astype(np.int64)
        for start in range(0, users.size, 512):
            block = users[start : start + 512]
            scores, parts = model.scaled_components(block)
            for user, (c, x) in zip(
                block.tolist(), model.candidate_features(block, scores, parts, k), strict=True
            ):
                padded = np.zeros((k, len(FEATURES)))
                padded[: c.size] = x
                y = np.zeros(k)
                y[: c.size] = np.asarray(test[user, c].toarray()).ravel() > 0
                xs.append(padded)
                ys.append(y)
        if log:
            log(f"re-ranker: split {r}/{resamples} labelled")
    if not xs or not any(y.any() for y in ys):
        # nothing held out (every user under 5 items) or nothing found: no trees, no change
        return Reranker.from_lightgbm({"tree_info": []}, k, hybrid_params)
    x_all = np.stack(xs)
    y_all = np.stack(ys)
    params = {**LGB_PARAMS, "seed": seed, **(lgb_params or {})}
    ds = lgb.Dataset(
        x_all.reshape(-1, len(FEATURES)), y_all.ravel(), group=np.full(x_all.shape[0], k)
    )
    booster = lgb.train(params, ds, num_boost_round=rounds)
    return Reranker.from_lightgbm(booster.dump_model(), k, hybrid_params)


def _without_pairs(data: TrainingData, train: sp.csr_matrix, held: sp.csr_matrix) -> TrainingData:
    """``data`` with ``train`` as its listens and the tag assignments of ``held`` pairs dropped
    (when per-user assignments are known)."""
    triples = data.user_item_tags
    if triples is None or data.item_tags is None or not len(triples):
        return TrainingData(
            user_items=sp.csr_matrix(train),
            item_tags=data.item_tags,
            user_friends=data.user_friends,
            user_item_tags=triples,
        )
    return without_held_out_tags(train, held, triples, data.item_tags.shape[1], data.user_friends)
