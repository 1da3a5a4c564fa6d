"""Why an item was recommended: the seeds that contributed most, their share, and the evidence.

For each recommended item and each seed the walk started from, the *contribution* is what the seed
put into the item's score: its per-seed visits when the walk was sampled (square-rooted under
multi-hit boosting, as they enter the score), or, for the exact method whose power iteration pools
all seeds, the seed's one-hop transition mass into the item (walks per seed times the probability
of reaching the item in one hop through shared listeners, tags, similarity and playlists). Shares
are contributions normalised per item; seeds that came from one origin (an artist or a tag expanded
into several seed items) are summed.

The evidence is counted, not guessed: shared listeners (users who played both), shared tags (with
names), common playlists, and how many of the user's friends play the item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from musicgraph.graph.models import ItemKind
from musicgraph.recommender.base import FloatArray, IntArray
from musicgraph.recommender.projection import Projection
from musicgraph.recommender.random_walk import WalkParams, WalkResult


@dataclass(frozen=True)
class Reason:
    """One seed's part in a recommendation (the GraphQL ``Reason`` type maps this one-to-one)."""

    seed_id: str
    seed_kind: str  # "track" | "artist" | "tag" | "friend" | "playlist"
    share: float  # 0..1 of the item's score
    evidence: str
    shared_listeners: int = 0
    shared_tags: tuple[str, ...] = ()
    friends: int = 0
    playlists: int = 0


@dataclass(frozen=True)
class SeedOrigin:
    """Where a walk seed came from: the user's history, a liked track, or a request seed."""

    seed_id: str
    seed_kind: str
    label: str


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)


def explain(
    projection: Projection,
    kind: ItemKind,
    items: IntArray,
    seeds: IntArray,
    origins: list[SeedOrigin],
    walk: WalkResult | None,
    params: WalkParams,
    walks_per_seed: FloatArray,
    *,
    user: int | None = None,
    max_reasons: int = 3,
) -> list[tuple[Reason, ...]]:
    """Reasons for each of ``items`` (in order); ``origins`` has one entry per seed."""
    p = projection
    n_r, n_s = items.size, seeds.size
    if n_r == 0:
        return []
    if n_s == 0:
        return [() for _ in range(n_r)]
    iu = p.listened(kind).rev.to_csr()  # items x users, ones
    iu_r, iu_s = iu[items], iu[seeds]
    shared = (iu_r @ iu_s.T).toarray()  # R x S shared listeners
    tag_rel = p.tagged(kind).fwd
    if tag_rel.nnz:
        it = tag_rel.to_csr()
        it_r, it_s = _binary(it[items]), _binary(it[seeds])
        shared_tags = (it_r @ it_s.T).toarray()
    else:
        it_r = it_s = None
        shared_tags = np.zeros((n_r, n_s))
    common_pl = np.zeros((n_r, n_s))
    if kind == "track" and p.playlist_track.nnz:
        tp = p.playlist_track.rev.to_csr()
        common_pl = (tp[items] @ tp[seeds].T).toarray()

    contrib = _contributions(
        p, kind, items, seeds, walk, params, walks_per_seed, (iu_r, iu_s), (it_r, it_s)
    )

    friends_play = np.zeros(n_r, dtype=np.int64)
    if user is not None and user < p.friends.n_rows and p.friends.length[user] > 0:
        fr = p.friends.row(user)
        friends_play = np.asarray(iu_r[:, fr].sum(axis=1)).ravel().astype(np.int64)

    out: list[tuple[Reason, ...]] = []
    for r in range(n_r):
        item = int(items[r])
        by_origin: dict[int, float] = {}
        first_seed: dict[int, int] = {}
        keys: dict[tuple[str, str], int] = {}
        for s in range(n_s):
            o = origins[s]
            k = keys.setdefault((o.seed_id, o.seed_kind), len(keys))
            by_origin[k] = by_origin.get(k, 0.0) + float(contrib[r, s])
            # the seed item of this origin with the most evidence speaks for it
            best = first_seed.get(k)
            if (
                best is None
                or shared[r, s] + shared_tags[r, s] > shared[r, best] + shared_tags[r, best]
            ):
                first_seed[k] = s
        total = sum(by_origin.values())
        ranked = sorted(by_origin.items(), key=lambda kv: -kv[1])
        reasons: list[Reason] = []
        for k, c in ranked[:max_reasons]:
            if c <= 0 and reasons:
                break
            s = first_seed[k]
            o = origins[s]
            tags = _shared_tag_names(p, kind, item, int(seeds[s])) if shared_tags[r, s] else ()
            reasons.append(
                Reason(
                    seed_id=o.seed_id,
                    seed_kind=o.seed_kind,
                    share=float(c / total) if total > 0 else 0.0,
                    evidence=_sentence(
                        o,
                        p.item_name(kind, item),
                        int(shared[r, s]),
                        tags,
                        int(common_pl[r, s]),
                    ),
                    shared_listeners=int(shared[r, s]),
                    shared_tags=tags,
                    playlists=int(common_pl[r, s]),
                )
            )
        if friends_play[r] > 0:
            n = int(friends_play[r])
            reasons.append(
                Reason(
                    seed_id=p.users.ids[user] if user is not None else "",
                    seed_kind="friend",
                    share=0.0,
                    evidence=f"{n} of your friends play {p.item_name(kind, item)}",
                    friends=n,
                )
            )
        out.append(tuple(reasons))
    return out


def _contributions(
    p: Projection,
    kind: ItemKind,
    items: IntArray,
    seeds: IntArray,
    walk: WalkResult | None,
    params: WalkParams,
    walks_per_seed: FloatArray,
    iu: tuple[sp.csr_matrix, sp.csr_matrix],
    it: tuple[sp.csr_matrix | None, sp.csr_matrix | None],
) -> FloatArray:
    """R x S contribution of each seed to each item (see the module docstring)."""
    if walk is not None and walk.seed_visits.shape[0] == seeds.size and walk.seed_visits.nnz:
        v: FloatArray = walk.seed_visits[:, items].toarray().T
        return np.sqrt(v) if params.boost else v
    # one-hop transition mass, weighted by walks per seed
    w = params.weights
    listened = p.listened(kind)
    user_deg = listened.fwd.length[: listened.fwd.n_rows].astype(np.float64)
    inv_u = np.divide(1.0, user_deg, out=np.zeros_like(user_deg), where=user_deg > 0)
    deg_s = listened.rev.length[seeds].astype(np.float64)
    via_users = (iu[0] @ sp.diags(inv_u) @ iu[1].T).toarray()
    via_users *= np.divide(1.0, deg_s, out=np.zeros(seeds.size), where=deg_s > 0)
    out = w.listen * via_users
    it_r, it_s = it
    if w.tag > 0 and it_r is not None and it_s is not None:
        tags = p.tagged(kind)
        tag_deg = tags.rev.length[: tags.rev.n_rows].astype(np.float64)
        inv_t = np.divide(1.0, tag_deg, out=np.zeros_like(tag_deg), where=tag_deg > 0)
        deg_t = tags.fwd.length[seeds].astype(np.float64)
        via_tags = (it_r @ sp.diags(inv_t) @ it_s.T).toarray()
        via_tags *= np.divide(1.0, deg_t, out=np.zeros(seeds.size), where=deg_t > 0)
        out = out + w.tag * via_tags
    if w.similar > 0:
        sim = p.similar(kind).to_csr()
        if sim.nnz:
            out = out + w.similar * (sim[seeds][:, items] > 0).toarray().T
    result: FloatArray = out * walks_per_seed[None, :]
    return result


def _shared_tag_names(
    p: Projection, kind: ItemKind, a: int, b: int, limit: int = 3
) -> tuple[str, ...]:
    rel = p.tagged(kind).fwd
    ta, wa = rel.row(a), rel.row_weights(a)
    common = np.intersect1d(ta, rel.row(b))
    if common.size == 0:
        return ()
    weight = {int(t): float(w) for t, w in zip(ta.tolist(), wa.tolist(), strict=True)}
    best = sorted(common.tolist(), key=lambda t: -weight.get(int(t), 0.0))[:limit]
    return tuple(p.tags.ids[int(t)] for t in best)


def _sentence(
    origin: SeedOrigin, item_name: str, listeners: int, tags: tuple[str, ...], playlists: int
) -> str:
    if origin.seed_kind == "tag":
        tag = origin.seed_id.removeprefix("tag:")
        return f"{item_name} is tagged {tag}"
    parts: list[str] = []
    if listeners:
        who = "listener" if listeners == 1 else "listeners"
        verb = "also plays" if listeners == 1 else "also play"
        parts.append(f"{listeners} {who} of {origin.label} {verb} {item_name}")
    if tags:
        parts.append(f"tagged {', '.join(tags)} like {origin.label}")
    if playlists:
        parts.append(f"in {playlists} playlist{'s' if playlists != 1 else ''} with {origin.label}")
    if not parts:
        return f"close to {origin.label} in the listening graph"
    return "; ".join(parts)
