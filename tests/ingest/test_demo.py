"""The synthetic demo graph: deterministic, shaped like real listening, loadable twice."""

from __future__ import annotations

import numpy as np
import pytest

from musicgraph.errors import MusicgraphError
from musicgraph.graph.base import GraphStore
from musicgraph.ingest.demo import DAY, DEMO_END, DemoConfig, generate, load_demo

TINY = DemoConfig(users=120, artists=150, tracks=1_500, listens=12_000, seed=7)


def test_same_seed_same_graph_other_seed_other_graph() -> None:
    """Generation depends only on the seed and the size."""
    a, b = generate(TINY), generate(TINY)
    assert a.artist_names == b.artist_names and a.track_titles == b.track_titles
    assert np.array_equal(a.listen_track, b.listen_track)
    assert np.array_equal(a.listen_at, b.listen_at)
    assert a.friendships == b.friendships and a.playlists == b.playlists
    c = generate(DemoConfig(users=120, artists=150, tracks=1_500, listens=12_000, seed=8))
    assert not np.array_equal(a.listen_track[:100], c.listen_track[:100])


def test_graph_has_the_shape_of_real_listening() -> None:
    """Zipf popularity, community friendships, sessions in time order, some skips, both kinds of
    playlists, names unique."""
    g = generate(DemoConfig(users=400, artists=400, tracks=4_000, listens=40_000, seed=1))
    n = len(g.listen_user)
    assert 0.9 * 40_000 < n < 1.1 * 40_000
    plays = np.bincount(g.listen_track, minlength=len(g.track_titles))
    top = np.sort(plays)[::-1]
    assert top[: len(top) // 100].sum() > 0.08 * n  # the top 1% of tracks: > 8% of plays
    assert (plays == 0).sum() > 0.1 * len(plays)  # and a long tail nobody played
    same = sum(g.user_genre[u] == g.user_genre[v] for u, v in g.friendships)
    assert same > 0.6 * len(g.friendships)
    assert 0.05 < g.listen_skipped.mean() < 0.09
    assert g.listen_at.min() >= DEMO_END - 366 * DAY and g.listen_at.max() < DEMO_END + DAY
    # listens are ordered per user by time
    order = np.lexsort((g.listen_at, g.listen_user))
    assert np.array_equal(order, np.arange(n))
    public = [p[3] for p in g.playlists]
    assert any(public) and not all(public)
    assert g.ratings and {r[2] for r in g.ratings} <= {1, -1}
    assert len(set(g.artist_names)) == len(g.artist_names)
    assert len(set(g.user_names)) == len(g.user_names)


@pytest.mark.parametrize(
    ("size", "listens", "users"),
    [
        ("small", 30_000, 300),
        ("default", 300_000, 3_000),
        ("1000000", 1_000_000, 10_000),
        ("2m", 2_000_000, 20_000),
        ("500k", 500_000, 5_000),
    ],
)
def test_size_presets_and_numbers(size: str, listens: int, users: int) -> None:
    """--size takes a preset or a number of listens; users and tracks scale with it."""
    config = DemoConfig.for_size(size, seed=3)
    assert (config.listens, config.users, config.seed) == (listens, users, 3)


def test_bad_size_says_what_is_expected() -> None:
    """An unknown --size names the accepted values."""
    with pytest.raises(MusicgraphError, match="expected small, default, large or a number"):
        DemoConfig.for_size("huge")


async def test_load_into_store_twice(store: GraphStore) -> None:
    """Loading writes users, catalogue, listens, friends, playlists and ratings; again adds nothing."""
    result = await load_demo(store, TINY)
    counts = await store.counts()
    assert counts.users == 120 and counts.tracks == 1_500 and counts.artists == 150
    assert counts.listens + counts.skips == result.listens
    assert counts.skips == result.skips > 0
    assert counts.friendships == result.friendships > 0
    assert counts.playlists == result.playlists > 0 and counts.ratings == result.ratings > 0
    assert counts.taggings == result.taggings
    assert counts.enrichment == {}  # invented tracks are not queued for outside APIs

    again = await load_demo(store, TINY)
    assert (again.listens, again.playlists) == (0, 0)
    assert await store.counts() == counts
