"""Explanations: the seeds behind each recommendation, their shares, and counted evidence."""

from __future__ import annotations

import pytest

from musicgraph.recommender.engine import Controls, RecommendationEngine
from musicgraph.recommender.projection import Projection
from tests.recommender.test_engine import NOW, community_projection


def shared_listeners(p: Projection, a: str, b: str) -> int:
    """Brute force: users who played both tracks."""
    ut = p.edge_dict("user_track")
    users_a = {u for (u, t) in ut if t == a}
    users_b = {u for (u, t) in ut if t == b}
    return len(users_a & users_b)


@pytest.mark.parametrize("mode", ["exact", "sampled"])
def test_reasons_name_the_seeds_with_shares_and_counted_evidence(mode: str) -> None:
    """Each item lists contributing seeds (shares in 0..1, best first) and true listener counts."""
    engine = RecommendationEngine(community_projection(), mode=mode, clock=lambda: NOW)
    p = engine.projection
    res = engine.recommend("me", controls=Controls(limit=4))
    for rec in res.items:
        seed_reasons = [r for r in rec.reasons if r.seed_kind == "track"]
        assert seed_reasons, rec
        assert {r.seed_id for r in seed_reasons} <= {"r0", "r1"}
        shares = [r.share for r in seed_reasons]
        assert all(0.0 <= s <= 1.0 for s in shares)
        assert shares == sorted(shares, reverse=True)
        assert sum(shares) == pytest.approx(1.0)
        for r in seed_reasons:
            assert r.shared_listeners == shared_listeners(p, r.seed_id, rec.item_id)
            if r.shared_listeners:
                assert f"{r.shared_listeners} listeners of r" in r.evidence or (
                    f"{r.shared_listeners} listener of r" in r.evidence
                )


def test_evidence_names_shared_tags_and_friends() -> None:
    """Shared tags are named and friends who play the item are counted."""
    engine = RecommendationEngine(community_projection(), clock=lambda: NOW)
    res = engine.recommend("me", controls=Controls(limit=6))
    by_id = {r.item_id: r for r in res.items}
    r2 = by_id["r2"]
    tagged = [r for r in r2.reasons if r.shared_tags]
    assert tagged and tagged[0].shared_tags == ("rock",)
    assert "tagged rock like" in tagged[0].evidence
    friend = [r for rec in res.items for r in rec.reasons if r.seed_kind == "friend"]
    assert friend and all(r.friends > 0 for r in friend)
    assert "of your friends play" in friend[0].evidence


def test_the_seed_that_explains_more_gets_the_larger_share() -> None:
    """An item reached mostly through one seed credits that seed with most of the score."""
    engine = RecommendationEngine(community_projection(), mode="exact", clock=lambda: NOW)
    res = engine.recommend(None, controls=Controls(limit=3, seeds=("j0", "r0")))
    j1 = next(r for r in res.items if r.item_id == "j1")
    assert j1.reasons[0].seed_id == "j0" and j1.reasons[0].share > 0.9


def test_explanations_can_be_turned_off() -> None:
    """explain=False returns the same items without reasons."""
    engine = RecommendationEngine(community_projection(), clock=lambda: NOW)
    on = engine.recommend("me", controls=Controls(limit=4))
    off = engine.recommend("me", controls=Controls(limit=4, explain=False))
    assert [r.item_id for r in on.items] == [r.item_id for r in off.items]
    assert all(r.reasons == () for r in off.items)
