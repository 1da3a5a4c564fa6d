"""The engine serves the tuned Hybrid for artist recommendations on small graphs: fitted in the
background, scored from the user's current row, explained, and under the same controls."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from musicgraph.events import Event
from musicgraph.recommender.base import TrainingData
from musicgraph.recommender.engine import Controls, RecommendationEngine
from musicgraph.recommender.hybrid import Hybrid
from musicgraph.recommender.projection import Projection
from musicgraph.recommender.scoring import best_positions

NOW = 1_700_000_000
# small fixed params: the test graph is tiny (the tuned ones are for HetRec)
PARAMS = {
    "factors": 4,
    "als_factors": 4,
    "als_regularization": 1.0,
    "als2_factors": 4,
    "als2_regularization": 1.0,
    "l2": 5.0,
    "tag_k": 5,
}


def two_scenes() -> Projection:
    """Rock artists R0-R5 (tracks r<artist>-<n>) played by users 0-14, jazz artists J0-J5 by users
    15-29; "me" played R0 and R1 and has users 2 and 3 as friends. Rock artists are tagged rock,
    jazz ones jazz, R5 also "loud"."""
    artists = [f"R{i}" for i in range(6)] + [f"J{i}" for i in range(6)]
    tracks = [f"{a.lower()}-{n}" for a in artists for n in range(2)]
    track_artist = np.repeat(np.arange(12), 2)
    users = [f"u{i}" for i in range(30)] + ["me"]
    rng = np.random.default_rng(7)
    rows: list[int] = []
    cols: list[int] = []
    counts: list[int] = []
    for u in range(30):
        scene = 0 if u < 15 else 6
        for a in rng.choice(6, size=4, replace=False):
            rows.append(u)
            cols.append(int(2 * (scene + a) + rng.integers(2)))
            counts.append(int(rng.integers(1, 9)))
    me = users.index("me")
    for t, n in ((0, 5), (2, 3)):
        rows.append(me)
        cols.append(t)
        counts.append(n)
    times = np.full(len(rows), NOW - 86_400)
    return Projection.from_arrays(
        user_ids=users,
        track_ids=tracks,
        artist_ids=artists,
        tag_names=["rock", "jazz", "loud"],
        listens=(np.array(rows), np.array(cols), np.array(counts), times),
        track_artist=track_artist,
        artist_tags=(
            np.array([*range(12), 5]),
            np.array([0] * 6 + [1] * 6 + [2]),
            np.ones(13),
        ),
        friends=(np.array([me, me]), np.array([2, 3])),
    )


def fitted_engine(**options: object) -> RecommendationEngine:
    engine = RecommendationEngine(
        two_scenes(),
        clock=lambda: NOW,
        hybrid_params=PARAMS,
        **options,  # type: ignore[arg-type]
    )
    engine.fit_hybrid()
    return engine


def artist_ids(engine: RecommendationEngine, **controls: object) -> tuple[str, list[str]]:
    res = engine.recommend("me", kind="artist", controls=Controls(**controls))  # type: ignore[arg-type]
    return res.method, [r.item_id for r in res.items]


def test_hybrid_serves_artists_with_explanations() -> None:
    """A fitted engine answers artist requests with the Hybrid, rock first, each item explained
    by the user's history seeds with shares and counted evidence."""
    engine = fitted_engine()
    res = engine.recommend("me", kind="artist", controls=Controls(limit=4))
    assert res.method == "hybrid"
    got = [r.item_id for r in res.items]
    assert got and all(a.startswith("R") for a in got[:3])
    assert not {"R0", "R1"} & set(got)
    top = res.items[0]
    seeds = [r for r in top.reasons if r.seed_kind == "artist"]
    assert seeds and {r.seed_id for r in seeds} <= {"R0", "R1"}
    assert 0.99 <= sum(r.share for r in top.reasons) <= 1.01
    assert all(r.evidence for r in top.reasons)
    assert engine.stats.hybrid == "fitted" and engine.stats.hybrid_fits == 1


def test_hybrid_keeps_the_controls() -> None:
    """Heard artists come back only when asked, tag filters and the limit hold, and tracks and
    seed radio keep the walk."""
    engine = fitted_engine()
    _, heard_too = artist_ids(engine, limit=12, exclude_heard=False)
    assert {"R0", "R1"} <= set(heard_too)
    method, jazz = artist_ids(engine, limit=3, include_tags=("jazz",))
    assert method == "hybrid" and jazz and all(a.startswith("J") for a in jazz)
    _, not_loud = artist_ids(engine, limit=12, exclude_tags=("loud",))
    assert "R5" not in not_loud
    _, two = artist_ids(engine, limit=2, novelty=1.0)
    assert len(two) == 2
    assert engine.recommend("me", kind="track").method == "exact-ppr"
    radio = engine.recommend("me", kind="artist", controls=Controls(seeds=("J0",)))
    assert radio.method.startswith("seed-radio:")


def test_hybrid_explanations_can_be_turned_off() -> None:
    """With explain off the hybrid's items carry no reasons."""
    res = fitted_engine().recommend("me", kind="artist", controls=Controls(explain=False))
    assert res.method == "hybrid" and res.items and all(not r.reasons for r in res.items)


def test_a_user_with_likes_but_no_plays_gets_the_walk() -> None:
    """A user whose only history is a liked track has no row for the Hybrid to score: the walk
    answers instead of an empty list."""
    engine = fitted_engine()
    engine.projection.set_ratings("fan", [("j0-0", 1)])
    res = engine.recommend("fan", kind="artist")
    assert res.method == "exact-ppr" and res.items


def test_a_graph_above_the_threshold_keeps_the_walk() -> None:
    """Above the users x artists threshold the engine never fits the Hybrid and walks."""
    engine = RecommendationEngine(two_scenes(), hybrid_max_users=10)
    assert not engine.hybrid_eligible()
    assert engine.stats.hybrid == "too-large"
    assert engine.recommend("me", kind="artist").method == "exact-ppr"


async def test_walk_until_the_background_fit_is_done() -> None:
    """start() fits in a worker thread; until then artist requests walk and say so, then the
    Hybrid answers."""
    engine = RecommendationEngine(two_scenes(), clock=lambda: NOW, hybrid_params=PARAMS)
    await engine.start()
    try:
        first = engine.recommend("me", kind="artist")
        assert first.method in ("hybrid-pending:exact-ppr", "hybrid")
        assert engine.stats.hybrid in ("pending", "fitted")
        await engine.wait_hybrid()
        assert engine.recommend("me", kind="artist").method == "hybrid"
        assert engine.stats.hybrid == "fitted"
    finally:
        await engine.stop()


async def test_a_new_listen_changes_hybrid_results_without_a_refit() -> None:
    """A listen event is reflected by the next hybrid answer (the user's current row is scored
    against the fitted components) before any refit."""
    engine = RecommendationEngine(
        two_scenes(), clock=lambda: NOW, hybrid_params=PARAMS, hybrid_refit_after=10_000
    )
    await engine.start()
    try:
        await engine.wait_hybrid()
        _, before = artist_ids(engine, limit=12)
        assert "J0" in before
        listens = [{"track_id": f"j{a}-0", "listened_at": NOW, "skipped": False} for a in range(3)]
        for _ in range(3):
            await engine.apply_event(
                Event("listens.recorded", payload={"listens": listens}, user_id="me")
            )
        method, after = artist_ids(engine, limit=12)
        assert method == "hybrid" and engine.stats.hybrid_fits == 1
        assert not {"J0", "J1", "J2"} & set(after)  # now heard
        assert after[:3] != before[:3]
        assert any(a.startswith("J") for a in after[:3])  # jazz moved up
    finally:
        await engine.stop()


def test_a_fit_computes_every_users_vectors_up_front() -> None:
    """After a fit, every user with listens has their Hybrid vectors kept (no first request
    pays for them), and answering them adds no entry."""
    engine = fitted_engine()
    fit = engine._hybrid
    assert fit is not None
    with_listens = int((engine.projection.user_artist.fwd.length > 0).sum())
    assert len(fit.model._users) == with_listens
    for user in engine.projection.users.ids:
        engine.recommend(user, kind="artist", controls=Controls(limit=3))
    assert len(fit.model._users) == with_listens


async def test_a_listen_event_computes_the_users_new_vectors_before_their_next_request() -> None:
    """Applying a listen keeps the Hybrid vectors of the user's new row at once: the request
    that follows finds them (it adds no entry) and answers from the new row."""
    engine = fitted_engine()
    fit = engine._hybrid
    assert fit is not None
    kept = len(fit.model._users)
    listens = [{"track_id": "j3-0", "listened_at": NOW, "skipped": False}]
    await engine.apply_event(Event("listens.recorded", payload={"listens": listens}, user_id="me"))
    assert len(fit.model._users) == kept + 1
    _, after = artist_ids(engine, limit=12)
    assert len(fit.model._users) == kept + 1
    assert "J3" not in after  # heard now


async def test_a_user_new_since_the_fit_gets_the_hybrid() -> None:
    """A user whose first listens arrive after the fit is scored from their row at once."""
    engine = fitted_engine()
    listens = [{"track_id": f"j{a}-1", "listened_at": NOW, "skipped": False} for a in (0, 1)]
    await engine.apply_event(
        Event("listens.recorded", payload={"listens": listens}, user_id="newbie")
    )
    res = engine.recommend("newbie", kind="artist", controls=Controls(limit=3))
    assert res.method == "hybrid"
    assert [r.item_id for r in res.items] and all(r.item_id.startswith("J") for r in res.items)
    assert not {"J0", "J1"} & {r.item_id for r in res.items}


async def test_enough_changes_refit_in_the_background() -> None:
    """After ``hybrid_refit_after`` applied events the components are refitted off the loop."""
    engine = RecommendationEngine(
        two_scenes(), clock=lambda: NOW, hybrid_params=PARAMS, hybrid_refit_after=2
    )
    await engine.start()
    try:
        await engine.wait_hybrid()
        listen = [{"track_id": "j0-0", "listened_at": NOW, "skipped": False}]
        for _ in range(2):
            await engine.apply_event(
                Event("listens.recorded", payload={"listens": listen}, user_id="me")
            )
        await engine.wait_hybrid()
        assert engine.stats.hybrid_fits == 2
        assert engine.recommend("me", kind="artist").method == "hybrid"
    finally:
        await engine.stop()


async def test_a_failed_fit_leaves_the_walk_serving() -> None:
    """A fit that raises is logged; the walk keeps answering, without the pending prefix."""
    engine = RecommendationEngine(two_scenes(), hybrid_params={"no_such_param": 1})
    await engine.start()
    try:
        await engine.wait_hybrid()
        assert engine.stats.hybrid == "failed"
        assert engine.recommend("me", kind="artist").method == "exact-ppr"
    finally:
        await engine.stop()


@pytest.mark.parametrize("w_als", [0.0, 1.0])
def test_row_scoring_matches_the_fitted_users(w_als: float) -> None:
    """Hybrid.score_rows on training rows (friends' rows given) equals Hybrid.score on unheard
    items without ALS; with ALS folded in, the rows still rank the user's own scene first."""
    p = two_scenes()
    plays = sp.csr_matrix(p.user_artist.fwd.to_csr(), dtype=np.float64)
    friends = sp.csr_matrix(p.friends.to_csr(), dtype=np.float64)
    friends.resize((plays.shape[0], plays.shape[0]))
    tags = sp.csr_matrix(p.artist_tag.fwd.to_csr(), dtype=np.float64)
    model = Hybrid(**PARAMS, w_als=w_als, w_als2=w_als)  # type: ignore[arg-type]
    model.fit(TrainingData(user_items=plays, item_tags=tags, user_friends=friends))
    users = np.arange(plays.shape[0])
    friend_plays = [plays[friends[u].indices] for u in users]
    rows = model.score_rows(plays, friend_plays)
    if w_als == 0.0:
        full = model.score(users)
        finite = np.isfinite(full)
        np.testing.assert_allclose(rows[finite], full[finite], rtol=1e-6, atol=1e-9)
    me = p.users.get("me")
    assert me is not None
    unheard = [a for a in range(12) if a not in (0, 1)]
    best = max(unheard, key=lambda a: rows[me, a])
    assert best < 6


def testbest_positions_pick_what_a_full_sort_picks_ties_included() -> None:
    """Sorting best_positions' picks by (score desc, item) gives the first k of sorting every
    item so: with ties at the k-th score (a walk's visit counts tie often), scores that are all
    negative, k beyond the item count and k = 0."""
    rng = np.random.default_rng(5)
    for trial in range(80):
        n = int(rng.integers(1, 4000))
        scores = rng.integers(0, 40, n).astype(np.float64)  # many ties
        if trial % 4 == 1:
            scores = rng.standard_normal(n) * 1e3
        elif trial % 4 == 2:
            scores = -np.abs(scores) - 1.0  # nothing positive
        items = rng.permutation(n * 2)[:n]  # ties broken by item id, not position
        k = int(rng.integers(0, 300))
        everything = np.lexsort((items, -scores))[:k]
        picked = best_positions(scores, k)
        if k < n:
            assert picked.size >= k
        ordered = picked[np.lexsort((items[picked], -scores[picked]))][:k]
        assert ordered.tolist() == everything.tolist(), trial


def test_popularity_divisors_follow_a_new_listener() -> None:
    """The kept per-item divisors (listeners + 1) ** penalty are computed again once a listen
    gives an artist another listener, and are the same as computed for a few items directly."""
    engine = RecommendationEngine(two_scenes(), clock=lambda: NOW, hybrid=False)
    p = engine.projection
    artists = np.arange(p.n_items("artist"))
    listeners = p.listened("artist").rev.length[artists].astype(np.float64)
    before = engine._popularity_divisors("artist", artists, 0.5)
    np.testing.assert_allclose(before, (listeners + 1.0) ** 0.5)
    j5 = p.artists.get("J5")
    assert j5 is not None
    me = p.users.get("me")
    assert me is not None and j5 not in p.user_artist.fwd.row(me).tolist()
    p.apply_listens("me", [("j5-0", NOW, False)])
    after = engine._popularity_divisors("artist", artists, 0.5)
    assert after[j5] == pytest.approx((listeners[j5] + 2.0) ** 0.5)
    few = engine._popularity_divisors("artist", np.array([j5]), 0.5)  # computed directly
    assert few[0] == pytest.approx(after[j5])
    # kinds and penalties are kept side by side: asking for tracks does not drop the artists'
    tracks = np.arange(p.n_items("track"))
    engine._popularity_divisors("track", tracks, 0.5)
    engine._popularity_divisors("artist", artists, 1.0)
    assert ("artist", 0.5) in engine._divisors and ("track", 0.5) in engine._divisors
    np.testing.assert_allclose(
        engine._popularity_divisors("artist", artists, 1.0), listeners + 1.0 + (artists == j5)
    )
