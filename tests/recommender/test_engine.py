"""The recommendation engine: methods, controls, cold starts and errors, on a graph with known
answers (two taste communities)."""

from __future__ import annotations

import numpy as np
import pytest

from musicgraph.errors import RecommenderError
from musicgraph.graph.models import Track
from musicgraph.recommender.engine import Controls, RecommendationEngine
from musicgraph.recommender.projection import Projection

DAY = 86_400
NOW = 1_700_000_000


def community_projection() -> Projection:
    """Rock: tracks r0-r5 by artists A (r0-r2) and B (r3-r5), played by users 0-5.
    Jazz: tracks j0-j3 by artist C, played by users 6-9. User "me" played r0 and r1 (r0 long ago).
    Track r5 is the most popular rock track (also played by users 6 and 7)."""
    tracks = [f"r{i}" for i in range(6)] + [f"j{i}" for i in range(4)]
    users = [f"u{i}" for i in range(10)] + ["me"]
    rows, cols, counts, times = [], [], [], []

    def play(u: int, t: int, n: int = 1, at: int = NOW - DAY) -> None:
        rows.append(u), cols.append(t), counts.append(n), times.append(at)

    for u in range(6):
        for t in range(6):
            if (u + t) % 3 != 0 or t == 5:
                play(u, t)
    for u in range(6, 10):
        for t in range(6, 10):
            play(u, t)
    play(6, 5)
    play(7, 5)
    me = users.index("me")
    play(me, 0, 5, NOW - 400 * DAY)
    play(me, 1, 2, NOW - DAY)
    p = Projection.from_arrays(
        user_ids=users,
        track_ids=tracks,
        artist_ids=["A", "B", "C"],
        tag_names=["rock", "jazz", "loud"],
        listens=(np.array(rows), np.array(cols), np.array(counts), np.array(times)),
        track_artist=np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2]),
        track_tags=(np.array([0, 1, 2, 3, 4, 5, 6, 7, 3]), np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])),
        artist_tags=(np.array([0, 1, 2]), np.array([0, 0, 1])),
        friends=(np.array([me, me]), np.array([2, 3])),
    )
    p.update_tracks(
        [
            Track("r2", "Second", artist_ids=("A",), bpm=120.0, energy=0.9, valence=0.2),
            Track("r3", "Third", artist_ids=("B",), bpm=90.0, energy=0.3, valence=0.8),
            Track("r4", "Fourth", artist_ids=("B",), bpm=125.0, energy=0.7, valence=0.5),
        ]
    )
    return p


@pytest.fixture
def engine() -> RecommendationEngine:
    return RecommendationEngine(community_projection(), clock=lambda: NOW, popularity_beta=0.0)


def ids(result: object) -> list[str]:
    return [r.item_id for r in result.items]  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["auto", "exact", "sampled"])
def test_recommends_the_users_community_and_says_how(mode: str) -> None:
    """A rock listener gets rock tracks first, not heard ones, with the method named."""
    engine = RecommendationEngine(community_projection(), mode=mode, clock=lambda: NOW)
    res = engine.recommend("me", controls=Controls(limit=4))
    assert set(ids(res)) == {"r2", "r3", "r4", "r5"}
    assert res.method == ("pixie-sampled" if mode == "sampled" else "exact-ppr")
    assert res.elapsed_ms > 0
    assert [r.score for r in res.items] == sorted((r.score for r in res.items), reverse=True)


def test_small_graphs_are_scored_exactly_and_big_budgets_are_sampled() -> None:
    """The engine picks exact power iteration within its budget and sampling above it."""
    p = community_projection()
    assert RecommendationEngine(p).choose("track") == "exact"
    assert RecommendationEngine(p, exact_budget=10).choose("track") == "sampled"
    assert RecommendationEngine(p, exact_budget=10).recommend("me").method == "pixie-sampled"


def test_unknown_user_is_a_clear_error(engine: RecommendationEngine) -> None:
    """An id the graph has never seen raises RecommenderError naming it."""
    with pytest.raises(RecommenderError, match="unknown user 'nobody'"):
        engine.recommend("nobody")


def test_cold_starts_fall_back_to_popularity_or_seed_radio(engine: RecommendationEngine) -> None:
    """No user and no seeds is popularity; seeds make seed radio, also for unknown users."""
    pop = engine.recommend(None, controls=Controls(limit=3))
    assert pop.method == "popularity"
    assert ids(pop)[0] == "r5"
    assert pop.items[0].reasons[0].evidence.endswith("8 listeners")
    radio = engine.recommend("nobody", controls=Controls(limit=3, seeds=("j0",)))
    assert radio.method == "seed-radio:exact-ppr"
    assert set(ids(radio)) <= {"j1", "j2", "j3", "r5"} and "j0" not in ids(radio)
    engine.add_user("newcomer")
    assert engine.recommend("newcomer").method == "popularity"


def test_artist_and_tag_seeds(engine: RecommendationEngine) -> None:
    """An artist seed radios its neighbourhood; a tag seed starts from the items tagged with it."""
    res = engine.recommend(None, kind="artist", controls=Controls(limit=2, seeds=("C",)))
    assert ids(res)[0] == "B"  # C's listeners 6 and 7 also play r5 by B
    res = engine.recommend(None, controls=Controls(limit=3, seeds=("tag:jazz",)))
    assert set(ids(res)) <= {"j0", "j1", "j2", "j3"}
    assert res.items[0].reasons[0].seed_kind == "tag"
    with pytest.raises(RecommenderError, match="unknown seed 'zzz'"):
        engine.recommend(None, controls=Controls(seeds=("zzz",)))


def test_artist_recommendations(engine: RecommendationEngine) -> None:
    """Artist-level recommendations exclude the user's artists and find the community's."""
    res = engine.recommend("me", kind="artist", controls=Controls(limit=2))
    assert ids(res)[0] == "B"
    assert "A" not in ids(res)


def test_exclude_heard_ever_or_within_days(engine: RecommendationEngine) -> None:
    """Heard items are excluded by default, all of them, or only those heard in the last N days."""
    everything = ids(engine.recommend("me", controls=Controls(limit=10, exclude_heard=False)))
    assert {"r0", "r1"} <= set(everything)
    recent = ids(engine.recommend("me", controls=Controls(limit=10, exclude_heard_within_days=30)))
    assert "r0" in recent and "r1" not in recent  # r0 was heard 400 days ago


def test_max_per_artist(engine: RecommendationEngine) -> None:
    """No more than N tracks of one artist."""
    res = engine.recommend("me", controls=Controls(limit=3, max_per_artist=1, exclude_heard=False))
    artists = [engine.projection.artist_of(engine.projection.tracks.index[i]) for i in ids(res)]
    assert len(artists) == len(set(artists)) == 3


def test_tag_filters_cover_track_and_artist_tags(engine: RecommendationEngine) -> None:
    """include_tags keeps only tagged items (own tags or the artist's); exclude_tags drops them."""
    loud = ids(engine.recommend("me", controls=Controls(include_tags=("loud",))))
    assert loud == ["r3"]
    jazz = ids(engine.recommend("me", controls=Controls(limit=10, include_tags=("jazz",))))
    assert set(jazz) == {"j0", "j1", "j2", "j3"}  # C is tagged jazz, so all of its tracks
    no_rock = ids(engine.recommend("me", controls=Controls(limit=10, exclude_tags=("rock",))))
    assert no_rock and all(i.startswith("j") for i in no_rock)


def test_audio_feature_ranges(engine: RecommendationEngine) -> None:
    """bpm, energy and valence ranges keep only enriched tracks inside them."""
    assert set(ids(engine.recommend("me", controls=Controls(bpm=(100, 130))))) == {"r2", "r4"}
    assert ids(engine.recommend("me", controls=Controls(energy=(0.0, 0.5)))) == ["r3"]
    assert ids(engine.recommend("me", controls=Controls(valence=(0.4, 0.6)))) == ["r4"]
    with pytest.raises(RecommenderError, match="bpm ranges apply to tracks only"):
        engine.recommend("me", kind="artist", controls=Controls(bpm=(1, 2)))
    with pytest.raises(RecommenderError, match="low <= high"):
        engine.recommend("me", controls=Controls(energy=(0.9, 0.1)))


def test_novelty_pushes_popular_items_down(engine: RecommendationEngine) -> None:
    """With the novelty knob up, the most popular track loses rank."""
    plain = ids(engine.recommend("me", controls=Controls(limit=4)))
    novel = ids(engine.recommend("me", controls=Controls(limit=4, novelty=1.0)))
    assert novel.index("r5") > plain.index("r5")
    with pytest.raises(RecommenderError, match="novelty"):
        engine.recommend("me", controls=Controls(novelty=2.0))


def test_dislikes_never_come_back_and_likes_boost(engine: RecommendationEngine) -> None:
    """A disliked track disappears; a liked jazz track brings jazz into the list."""
    p = engine.projection
    before = ids(engine.recommend("me", controls=Controls(limit=10)))
    assert "r2" in before
    p.set_ratings("me", [("r2", -1)])
    after = ids(engine.recommend("me", controls=Controls(limit=10, exclude_heard=False)))
    assert "r2" not in after
    p.set_ratings("me", [("r2", -1), ("j0", 1)])
    liked = ids(engine.recommend("me", controls=Controls(limit=4)))
    assert {"j1", "j2", "j3"} & set(liked)


def test_similar_items(engine: RecommendationEngine) -> None:
    """similar() ranks the item's community first and never returns the item itself."""
    res = engine.similar("j0", kind="track", limit=3)
    assert set(ids(res)) == {"j1", "j2", "j3"}
    assert res.items[0].reasons[0].seed_id == "j0"
    with pytest.raises(RecommenderError, match="unknown track 'zz'"):
        engine.similar("zz", kind="track")


def test_limits_are_checked(engine: RecommendationEngine) -> None:
    """A limit out of range is refused with the allowed range."""
    with pytest.raises(RecommenderError, match="limit must be between 1 and"):
        engine.recommend("me", controls=Controls(limit=0))


def test_stats(engine: RecommendationEngine) -> None:
    """Stats count users, items and edges, and report the memory held."""
    s = engine.stats
    assert s.loaded and s.users == 11 and s.items == 13 and s.edges > 30 and s.memory_bytes > 0
