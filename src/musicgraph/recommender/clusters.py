"""Taste clusters: a user's artists grouped into communities of the artist similarity graph.

The graph is small (the user's heaviest artists, a few hundred at most), so networkx does the work:
artists are joined by their SIMILAR edges and by co-listening (cosine of their listener sets over
the whole projection, each artist keeping its strongest neighbours), and Louvain (seeded, so the
answer is stable) finds the communities. Each cluster carries its share of the user's listening,
which is what listening stats and a diversity figure need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from musicgraph.errors import RecommenderError
from musicgraph.recommender.projection import Projection


@dataclass(frozen=True)
class TasteCluster:
    """One community of the user's artists, heaviest first."""

    label: str  # the name of the cluster's most played artist
    artist_ids: tuple[str, ...]
    share: float  # of the user's artist-level listening
    top_tags: tuple[str, ...] = ()


def taste_clusters(
    projection: Projection,
    user_id: str,
    *,
    max_artists: int = 200,
    neighbours: int = 5,
    seed: int = 0,
) -> list[TasteCluster]:
    """Communities of ``user_id``'s artists, by share of listening (largest first)."""
    p = projection
    u = p.users.get(user_id)
    if u is None:
        raise RecommenderError(f"unknown user {user_id!r}: not in the recommender's graph")
    rel = p.user_artist.fwd
    artists = rel.row(u).astype(np.int64)
    weights = rel.row_weights(u).astype(np.float64)
    if artists.size == 0:
        return []
    if artists.size > max_artists:
        keep = np.argsort(-weights, kind="stable")[:max_artists]
        artists, weights = artists[keep], weights[keep]
    g = nx.Graph()
    for a, w in zip(artists.tolist(), weights.tolist(), strict=True):
        g.add_node(a, weight=w)
    chosen = set(artists.tolist())
    sim = p.artist_sim
    for a in artists.tolist():
        if a < sim.n_rows:
            for b, s in zip(sim.row(a).tolist(), sim.row_weights(a).tolist(), strict=True):
                if b in chosen and b != a:
                    g.add_edge(
                        a, b, weight=max(float(s), g.get_edge_data(a, b, {}).get("weight", 0))
                    )
    iu = p.user_artist.rev.to_csr()[artists]
    co = (iu @ iu.T).toarray().astype(np.float64)
    deg = np.sqrt(np.diag(co))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.nan_to_num(co / np.outer(deg, deg))
    np.fill_diagonal(cos, 0.0)
    for i in range(artists.size):
        order = np.argsort(-cos[i])[:neighbours]
        for j in order.tolist():
            if cos[i, j] > 0:
                a, b = int(artists[i]), int(artists[j])
                old = g.get_edge_data(a, b, {}).get("weight", 0.0)
                g.add_edge(a, b, weight=max(old, float(cos[i, j])))
    communities = nx.community.louvain_communities(g, weight="weight", seed=seed)
    total = float(weights.sum()) or 1.0
    wmap = dict(zip(artists.tolist(), weights.tolist(), strict=True))
    out: list[TasteCluster] = []
    for com in communities:
        members = sorted(com, key=lambda a: -wmap[a])
        share = sum(wmap[a] for a in members) / total
        tags: dict[int, float] = {}
        for a in members:
            if a < p.artist_tag.fwd.n_rows:
                for t, c in zip(
                    p.artist_tag.fwd.row(a).tolist(),
                    p.artist_tag.fwd.row_weights(a).tolist(),
                    strict=True,
                ):
                    tags[t] = tags.get(t, 0.0) + c
        top = tuple(p.tags.ids[t] for t, _ in sorted(tags.items(), key=lambda kv: -kv[1])[:3])
        out.append(
            TasteCluster(
                label=p.item_name("artist", members[0]),
                artist_ids=tuple(p.artists.ids[a] for a in members),
                share=share,
                top_tags=top,
            )
        )
    out.sort(key=lambda c: -c.share)
    return out


def taste_diversity(clusters: list[TasteCluster]) -> float:
    """The effective number of clusters (exp of the entropy of their shares): 1 = one taste."""
    shares = [c.share for c in clusters if c.share > 0]
    if not shares:
        return 0.0
    total = sum(shares)
    return math.exp(-sum((s / total) * math.log(s / total) for s in shares))
