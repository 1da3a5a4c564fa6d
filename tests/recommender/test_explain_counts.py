"""Explanations' evidence computed for many pairs at once equals a brute-force count with sets."""

from __future__ import annotations

import numpy as np
import pytest

from musicgraph.recommender import explain as ex
from musicgraph.recommender.engine import Controls, RecommendationEngine
from musicgraph.recommender.explain import Reason, SeedOrigin, TagNames, overlaps
from musicgraph.recommender.projection import Projection
from musicgraph.recommender.random_walk import WalkParams


def random_projection(seed: int = 0) -> Projection:
    """A small random graph: 40 users, 30 tracks, 12 artists, tags with counts, friends, playlists."""
    rng = np.random.default_rng(seed)
    n_users, n_tracks, n_artists, n_tags, n_pl = 40, 30, 12, 9, 6
    lu = rng.integers(n_users, size=400)
    lt = rng.integers(n_tracks, size=400)
    au = rng.integers(n_users, size=200)
    aa = rng.integers(n_artists, size=200)
    ta = rng.integers(n_artists, size=60)
    tt = rng.integers(n_tags, size=60)
    tw = rng.integers(1, 4, size=60).astype(np.float64)  # repeated counts: ties in tag weight
    tk = rng.integers(n_tracks, size=50)
    tg = rng.integers(n_tags, size=50)
    fa = rng.integers(n_users, size=60)
    fb = rng.integers(n_users, size=60)
    ok = fa != fb
    pp = rng.integers(n_pl, size=40)
    pt = rng.integers(n_tracks, size=40)
    return Projection.from_arrays(
        user_ids=[f"u{i}" for i in range(n_users)],
        track_ids=[f"t{i}" for i in range(n_tracks)],
        artist_ids=[f"a{i}" for i in range(n_artists)],
        tag_names=[f"g{i}" for i in range(n_tags)],
        playlist_ids=[f"p{i}" for i in range(n_pl)],
        listens=(lu, lt, np.ones(lu.size)),
        artist_listens=(au, aa, np.ones(au.size)),
        track_artist=rng.integers(n_artists, size=n_tracks),
        artist_tags=(ta, tt, tw),
        track_tags=(tk, tg, np.ones(tk.size)),
        friends=(fa[ok], fb[ok]),
        playlist_tracks=(pp, pt),
    )


def row_sets(m: ex.DynamicCSR) -> list[set[int]]:
    return [set(m.row(r).tolist()) for r in range(m.n_rows)]


def test_overlaps_match_set_intersections() -> None:
    """Shared listeners, their 1/degree mass and friends per item equal brute-force set counts."""
    p = random_projection(1)
    rel = p.listened("track")
    listeners = row_sets(rel.rev)
    degree = rel.fwd.length
    items = np.array([3, 0, 17, 29, 8], dtype=np.int64)
    seeds = np.array([5, 3, 11, 22, 8, 1, 1], dtype=np.int64)  # repeats and an item as a seed
    friends = np.array([2, 7, 11, 39], dtype=np.int64)
    got = overlaps(rel.rev, items, seeds, rel.fwd.n_rows, degree, probe=friends)
    assert got.mass is not None and got.probe is not None
    for r, i in enumerate(items.tolist()):
        assert got.probe[r] == len(listeners[i] & set(friends.tolist()))
        for s, j in enumerate(seeds.tolist()):
            shared = listeners[i] & listeners[j]
            assert got.counts[r, s] == len(shared)
            assert got.mass[r, s] == pytest.approx(sum(1.0 / degree[u] for u in shared), rel=1e-5)


def test_overlaps_of_more_items_than_a_word_has_bits() -> None:
    """150 items (three rounds of 64 bits) over rows grown in place (rows with room, moved rows):
    every count and mass equals the brute-force one, rows past the matrix count nothing."""
    rng = np.random.default_rng(7)
    n_items, n_cols = 160, 90
    rows, cols = rng.integers(n_items, size=3000), rng.integers(n_cols, size=3000)
    m = ex.DynamicCSR.from_coo(rows, cols, n_items, n_cols)
    for r, c in zip(
        rng.integers(n_items, size=300).tolist(),
        rng.integers(n_cols, size=300).tolist(),
        strict=True,
    ):
        m.add(r, c)
    sets = row_sets(m)
    degree = np.bincount(np.concatenate([m.row(r) for r in range(n_items)]), minlength=n_cols)
    degree = np.maximum(degree, 1).astype(np.int32)
    items = rng.permutation(n_items)[:150].astype(np.int64)
    seeds = np.concatenate([rng.integers(n_items, size=12), [n_items + 5]]).astype(np.int64)
    probe = np.array([0, 5, 44, 89, n_cols + 3], dtype=np.int64)
    got = overlaps(m, items, seeds, n_cols, degree, probe=probe)
    assert got.mass is not None and got.probe is not None
    want = np.array(
        [[len(sets[i] & (sets[j] if j < n_items else set())) for j in seeds] for i in items]
    )
    assert (got.counts == want).all() and want[:, :-1].sum() > 0
    mass = [
        [sum(1.0 / degree[u] for u in sets[i] & (sets[j] if j < n_items else set())) for j in seeds]
        for i in items
    ]
    assert np.allclose(got.mass, mass, rtol=1e-5)
    assert got.probe.tolist() == [len(sets[i] & set(probe.tolist())) for i in items]
    bare = overlaps(m, items, seeds, n_cols)
    assert (bare.counts == want).all() and bare.mass is None and bare.probe is None


def brute_shared_tags(p: Projection, item: int, seed: int, top: int = 20) -> tuple[str, ...]:
    """The item's tags heaviest first (ties in row order), its ``top`` first, that the seed has."""
    rel = p.tagged("artist").fwd
    tags, weights = rel.row(item).tolist(), rel.row_weights(item).tolist()
    order = sorted(range(len(tags)), key=lambda k: (-weights[k], k))
    ranked = [tags[k] for k in order][:top]
    seed_tags = set(rel.row(seed).tolist())
    return tuple(p.tags.ids[t] for t in ranked if t in seed_tags)[:3]


@pytest.mark.parametrize("top", [20, 2])
def test_shared_tags_of_many_pairs_match_brute_force(top: int) -> None:
    """Shared tag names of every (item, seed) pair equal the brute-force ranking and filter."""
    p = random_projection(2)
    names = TagNames(p, "artist", top=top)
    items = np.arange(12, dtype=np.int64)
    seeds = np.array([0, 4, 7, 11], dtype=np.int64)
    pr, ps = np.divmod(np.arange(items.size * seeds.size), seeds.size)
    got = names.shared_pairs(items, pr, ps, seeds)
    again = names.shared_pairs(items, pr, ps, seeds)  # from the cache this time
    want = [
        brute_shared_tags(p, int(items[r]), int(seeds[s]), top) for r, s in zip(pr, ps, strict=True)
    ]
    assert got == want and again == want
    assert any(want)


def test_tag_cache_follows_tag_changes() -> None:
    """After an item's tags change, its shared tags are read again, not served from the cache."""
    p = random_projection(3)
    names = TagNames(p, "artist")
    before = names.shared(0, 1)
    p.set_tags("artist", "a0", [("g8", 50)])  # now a0's heaviest tag
    p.set_tags("artist", "a1", [("g8", 1)])
    after = names.shared(0, 1)
    assert after[0] == "g8" and after == brute_shared_tags(p, 0, 1) and after != before


def test_history_origins_made_lazily_equal_explicit_ones() -> None:
    """Explaining with origins=None gives the reasons that one named origin per seed gives."""
    p = random_projection(4)
    items = np.array([2, 5, 9, 0], dtype=np.int64)
    seeds = np.array([1, 3, 4, 7, 8], dtype=np.int64)
    named = [SeedOrigin(p.artists.ids[s], "artist", p.item_name("artist", s)) for s in seeds]
    walks = np.linspace(1.0, 2.0, seeds.size)
    args = (p, "artist", items, seeds)
    lazy = ex.explain(*args, None, None, WalkParams(), walks, user=0)
    explicit = ex.explain(*args, named, None, WalkParams(), walks, user=0)
    assert lazy == explicit
    assert any(r.shared_listeners for reasons in lazy for r in reasons)


def test_fast_reason_is_an_ordinary_reason() -> None:
    """A Reason made by the fast constructor equals, hashes and converts like Reason(...)."""
    fast = ex._reason("a1", "artist", 0.5, "why", 3, ("rock",), 0, 1)
    slow = Reason("a1", "artist", 0.5, "why", 3, ("rock",), 0, 1)
    assert fast == slow and hash(fast) == hash(slow) and fast._asdict() == slow._asdict()
    assert type(fast) is Reason and fast.share == 0.5 and fast.shared_tags == ("rock",)
    with pytest.raises(AttributeError):
        fast.share = 1.0  # type: ignore[misc]


def test_track_reasons_count_playlists_and_listeners_exactly() -> None:
    """Track explanations carry brute-force shared listener and common playlist counts."""
    p = random_projection(5)
    engine = RecommendationEngine(p, mode="exact")
    listeners = row_sets(p.user_track.rev)
    playlists = row_sets(p.playlist_track.rev)
    res = engine.recommend("u3", kind="track", controls=Controls(limit=8))
    assert res.items
    for rec in res.items:
        i = p.tracks.index[rec.item_id]
        for r in rec.reasons:
            if r.seed_kind != "track":
                continue
            s = p.tracks.index[r.seed_id]
            assert r.shared_listeners == len(listeners[i] & listeners[s])
            assert r.playlists == len(playlists[i] & playlists[s])


def test_items_without_any_tags_share_none() -> None:
    """With no tag edges at all, every pair shares no tags and explanations still work."""
    p = Projection.from_arrays(
        user_ids=["u0", "u1"],
        artist_ids=["a0", "a1", "a2"],
        artist_listens=(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2]), np.ones(4)),
    )
    names = TagNames(p, "artist")
    assert names.shared(0, 1) == () and names.shared(2, 0) == ()
    walks = np.ones(2)
    reasons = ex.explain(
        p, "artist", np.array([2]), np.array([0, 1]), None, None, WalkParams(), walks
    )
    assert reasons[0][0].seed_id == "a1" and reasons[0][0].shared_listeners == 1
