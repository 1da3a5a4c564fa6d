"""Playlist generation (ordered so neighbours fit, saved in the store) and taste clusters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from musicgraph.errors import RecommenderError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Track
from musicgraph.recommender.clusters import taste_clusters, taste_diversity
from musicgraph.recommender.engine import Controls, RecommendationEngine
from musicgraph.recommender.playlist import order_tracks, transition_costs
from musicgraph.recommender.projection import Projection
from tests.recommender.test_engine import NOW, community_projection, seed_store


def test_order_puts_close_tempos_and_keys_next_to_each_other() -> None:
    """With no shared listeners, tracks are chained by tempo: each step is the smallest gap."""
    p = Projection.from_arrays(user_ids=["u"], track_ids=[f"t{i}" for i in range(5)])
    p.update_tracks(
        [Track(f"t{i}", f"T{i}", bpm=b, key=0) for i, b in enumerate([80, 140, 100, 120, 90])]
    )
    order = order_tracks(p, np.arange(5))
    bpms = [float(p.features["bpm"][i]) for i in order]
    assert bpms == [80, 90, 100, 120, 140]


def test_shared_listeners_make_tracks_neighbours() -> None:
    """Tracks of one listening community are closer to each other than to the other community."""
    p = community_projection()
    tracks = np.array([0, 6, 1, 7, 2])  # r0, j0, r1, j1, r2
    cost = transition_costs(p, tracks)
    assert cost[0, 2] < cost[0, 1] and cost[1, 3] < cost[1, 2]
    order = [p.tracks.ids[i] for i in order_tracks(p, tracks)]
    assert order[0] == "r0"
    # communities stay together: one switch between rock and jazz
    kinds = [t[0] for t in order]
    assert sum(a != b for a, b in itertools.pairwise(kinds)) == 1


async def test_generate_playlist_saves_an_ordered_playlist(sqlite_store: GraphStore) -> None:
    """A generated playlist starts with its seed, has the asked length and lands in the store."""
    ids_ = await seed_store(sqlite_store)
    engine = await RecommendationEngine.load(sqlite_store, clock=lambda: NOW)
    pl = await engine.generate_playlist(
        sqlite_store,
        ids_["carol"],
        seeds=(ids_["Rock 0"],),
        length=3,
        controls=Controls(exclude_heard=False),
        name="radio",
    )
    entries = await sqlite_store.playlist_entries(pl.id)
    assert pl.name == "radio" and pl.owner_id == ids_["carol"]
    assert len(entries) == 3 and entries[0].track_id == ids_["Rock 0"]
    assert len({e.track_id for e in entries}) == 3
    assert engine.projection.playlists.get(pl.id) is not None
    with pytest.raises(RecommenderError, match="playlist length"):
        await engine.generate_playlist(sqlite_store, ids_["carol"], length=0)


def test_taste_clusters_split_two_tastes() -> None:
    """A user who plays rock (A, B) and jazz (C, D) has two clusters, with their shares."""
    rows, cols, counts = [], [], []
    for u in range(5):
        rows += [u, u]
        cols += [0, 1]
        counts += [1, 1]
    for u in range(5, 10):
        rows += [u, u]
        cols += [2, 3]
        counts += [1, 1]
    rows += [10, 10, 10, 10]
    cols += [0, 1, 2, 3]
    counts += [5, 2, 1, 1]
    p = Projection.from_arrays(
        user_ids=[f"u{i}" for i in range(10)] + ["me"],
        artist_ids=["A", "B", "C", "D"],
        artist_listens=(np.array(rows), np.array(cols), np.array(counts)),
    )
    clusters = taste_clusters(p, "me")
    groups = sorted(sorted(c.artist_ids) for c in clusters)
    assert groups == [["A", "B"], ["C", "D"]]
    assert sum(c.share for c in clusters) == pytest.approx(1.0)
    assert clusters[0].label == "A" and clusters[0].share == pytest.approx(7 / 9)
    assert 1.0 < taste_diversity(clusters) < 2.0
    assert [c.artist_ids for c in taste_clusters(p, "u0")] == [("A", "B")]
    with pytest.raises(RecommenderError, match="unknown user"):
        taste_clusters(p, "ghost")
