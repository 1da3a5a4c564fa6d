"""The in-memory projection: sparse rows that grow in place and match a fresh build."""

from __future__ import annotations

import numpy as np
import pytest

from musicgraph.graph.models import Similarity, Track
from musicgraph.recommender.projection import DynamicCSR, Projection, Relation


def _dense(m: DynamicCSR) -> np.ndarray:
    return np.asarray(m.to_csr().todense())


def test_dynamic_csr_matches_a_dense_oracle_under_random_appends_and_removals() -> None:
    """Random adds, sets and removals (with rows moving and compactions) equal a dense matrix."""
    rng = np.random.default_rng(0)
    m = DynamicCSR.from_coo([0, 1, 1], [2, 0, 2], 3, 5, weights=[1, 2, 3], weighted=True)
    oracle = np.zeros((3, 5))
    oracle[0, 2], oracle[1, 0], oracle[1, 2] = 1, 2, 3
    for step in range(3000):
        if step % 500 == 499:
            m.resize(n_rows=m.n_rows + 1, n_cols=m.n_cols + 2)
            oracle = np.pad(oracle, ((0, 1), (0, 2)))
        r = int(rng.integers(m.n_rows))
        c = int(rng.integers(m.n_cols))
        op = rng.random()
        if op < 0.6:
            m.add(r, c, 1.0)
            oracle[r, c] += 1
        elif op < 0.8:
            m.set(r, c, 5.0)
            oracle[r, c] = 5
        else:
            m.remove(r, c)
            oracle[r, c] = 0
    np.testing.assert_allclose(_dense(m), oracle)
    assert m.nnz == int((oracle != 0).sum())
    m.compact()
    np.testing.assert_allclose(_dense(m), oracle)
    assert m.compactions >= 1


def test_appends_are_amortised_constant_and_reclaim_holes() -> None:
    """Many appends to many rows keep the pool within a small factor of the live edges."""
    m = DynamicCSR(1000, 10_000, weighted=True, timed=True)
    rng = np.random.default_rng(1)
    for _ in range(50_000):
        m.add(int(rng.integers(1000)), int(rng.integers(10_000)), 1.0, 7)
    assert m.used <= 3 * m.nnz
    assert m.holes <= 0.25 * m.used + 4 * 1000


def test_relation_keeps_both_directions_in_step() -> None:
    """The reverse rows of a relation always hold exactly the transposed forward edges."""
    rel = Relation.from_coo([0, 0, 1], [1, 2, 2], 2, 3, weights=[1, 1, 4])
    rel.add(1, 0, 2.0)
    rel.add(0, 1, 1.0)  # existing edge: weight only
    rel.remove(0, 2)
    fwd = _dense(rel.fwd) != 0
    rev = _dense(rel.rev) != 0
    np.testing.assert_array_equal(fwd.T, rev)
    assert rel.fwd.get(0, 1) == 2.0


def test_sample_draws_uniform_neighbours_and_minus_one_for_empty_rows() -> None:
    """Vectorised sampling returns a neighbour of each row, uniformly, and -1 for an empty row."""
    m = DynamicCSR.from_coo([0, 0, 0, 2], [1, 2, 3, 0], 3, 4, weighted=False)
    rng = np.random.default_rng(2)
    rows = np.zeros(30_000, dtype=np.int64)
    got = m.sample(rows, rng.random(rows.size))
    counts = np.bincount(got, minlength=4)
    assert counts[0] == 0
    assert np.allclose(counts[1:] / rows.size, 1 / 3, atol=0.02)
    assert m.sample(np.array([1, 2]), np.array([0.5, 0.5])).tolist() == [-1, 0]


def _build(listens: list[tuple[int, int, int, int]], **kw: object) -> Projection:
    u, t, c, at = (np.array(x) for x in zip(*listens, strict=True))
    return Projection.from_arrays(
        user_ids=["u0", "u1", "u2"],
        track_ids=["t0", "t1", "t2", "t3"],
        artist_ids=["a0", "a1"],
        listens=(u, t, c, at),
        track_artist=np.array([0, 0, 1, 1]),
        **kw,  # type: ignore[arg-type]
    )


def test_from_arrays_aggregates_tracks_into_artists() -> None:
    """User→artist weights are track listens summed by the track's artist plus direct counts."""
    p = _build(
        [(0, 0, 2, 10), (0, 1, 3, 20), (1, 2, 1, 5)],
        artist_listens=(np.array([1]), np.array([1]), np.array([4])),
    )
    ua = p.edge_dict("user_artist")
    assert ua[("u0", "a0")] == (5.0, 20)
    assert ua[("u1", "a1")] == (5.0, 5)
    assert set(p.edge_dict("artist_user")) == {("a0", "u0"), ("a1", "u1")}
    assert p.edge_dict("artist_track")[("a1", "t3")] == (1.0, 0)


def test_live_listens_equal_a_fresh_build() -> None:
    """Applying listens as events gives exactly the edges of a projection built with them."""
    base = [(0, 0, 2, 10), (0, 1, 3, 20), (1, 2, 1, 5)]
    live = _build(base)
    live.apply_listens("u0", [("t0", 30, False), ("t2", 31, False), ("t3", 32, True)])
    live.apply_listens("u9", [("t9", 40, False)], track_artists={"t9": "a1"})
    fresh = Projection.from_arrays(
        user_ids=["u0", "u1", "u2", "u9"],
        track_ids=["t0", "t1", "t2", "t3", "t9"],
        artist_ids=["a0", "a1"],
        listens=(
            np.array([0, 0, 1, 0, 0, 3]),
            np.array([0, 1, 2, 0, 2, 4]),
            np.array([2, 3, 1, 1, 1, 1]),
            np.array([10, 20, 5, 30, 31, 40]),
        ),
        track_artist=np.array([0, 0, 1, 1, 1]),
    )
    for name in ("user_track", "track_user", "user_artist", "artist_user", "artist_track"):
        assert live.edge_dict(name) == fresh.edge_dict(name), name
    assert live.users.get("u9") == 3
    assert live.tracks.get("t9") == 4


def test_playlists_similarities_ratings_and_tracks_update_in_place() -> None:
    """Playlist rows are replaced, similarities keep the best score, ratings and features land."""
    p = _build(
        [(0, 0, 1, 1)],
        playlist_ids=["p0"],
        playlist_tracks=(np.array([0, 0]), np.array([0, 1])),
    )
    assert set(p.edge_dict("playlist_track")) == {("p0", "t0"), ("p0", "t1")}
    p.set_playlist("p0", ["t2", "t3", "t2"])
    assert set(p.edge_dict("track_playlist")) == {("t2", "p0"), ("t3", "p0")}
    p.add_similarities(
        [
            Similarity("track", "t0", "t1", 0.5, "lastfm"),
            Similarity("track", "t0", "t1", 0.2, "other"),
            Similarity("artist", "a0", "a9", 0.9, "lastfm"),
        ]
    )
    assert p.edge_dict("track_sim")[("t0", "t1")][0] == pytest.approx(0.5)
    assert ("a0", "a9") in p.edge_dict("artist_sim")
    p.set_ratings("u1", [("t3", -1), ("t1", 1)])
    assert p.ratings[1] == {3: -1, 1: 1}
    p.update_tracks([Track("t5", "New", artist_ids=("a1",), bpm=120.0, energy=0.5)])
    t5 = p.tracks.get("t5")
    assert t5 is not None
    assert p.features["bpm"][t5] == 120.0
    assert np.isnan(p.features["valence"][t5])
    assert p.artist_of(t5) == p.artists.get("a1")
    assert p.item_name("track", t5) == "New"


def test_memory_per_edge_is_under_forty_bytes() -> None:
    """A random listening graph costs well under 40 bytes per edge, also after live appends."""
    rng = np.random.default_rng(3)
    n_u, n_t, n_e = 2000, 20_000, 200_000
    u = rng.integers(n_u, size=n_e)
    t = rng.integers(n_t, size=n_e)
    p = Projection.from_arrays(
        user_ids=[f"u{i}" for i in range(n_u)],
        track_ids=[f"t{i}" for i in range(n_t)],
        artist_ids=[f"a{i}" for i in range(2000)],
        listens=(u, t, np.ones(n_e), np.full(n_e, 100)),
        track_artist=rng.integers(2000, size=n_t),
    )
    assert p.stats().bytes_per_edge < 40
    for i in range(20_000):
        p.apply_listens(f"u{i % n_u}", [(f"t{rng.integers(n_t)}", 200 + i, False)])
    assert p.stats().bytes_per_edge < 40
