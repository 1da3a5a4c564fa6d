"""The default Hybrid: tags reach artists no one has heard, friends count, fusion is weighted."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from musicgraph.recommender.base import TrainingData
from musicgraph.recommender.hybrid import Hybrid, _normalise_rows

# Items 0-2 rock, 3-5 jazz, item 6 a rock artist nobody has listened to (tagged only).
PLAYS = sp.csr_matrix(
    np.array(
        [
            [5, 3, 2, 0, 0, 0, 0],
            [4, 2, 6, 0, 0, 0, 0],
            [3, 7, 0, 0, 0, 0, 0],
            [0, 0, 0, 4, 5, 2, 0],
            [0, 0, 0, 3, 1, 6, 0],
            [0, 0, 0, 8, 2, 0, 0],
        ],
        dtype=np.float64,
    )
)
# Tags: 0 = rock, 1 = guitar, 2 = jazz, 3 = sax.
ITEM_TAGS = sp.csr_matrix(
    np.array(
        [
            [3, 1, 0, 0],
            [2, 2, 0, 0],
            [4, 0, 0, 0],
            [0, 0, 3, 1],
            [0, 0, 2, 2],
            [0, 0, 1, 0],
            [5, 2, 0, 0],
        ],
        dtype=np.float64,
    )
)


def _hybrid(**weights: float) -> Hybrid:
    return Hybrid(**{"l2": 1.0, "factors": 2, "w_als": 0.0, **weights})


def test_tags_reach_an_artist_nobody_listened_to() -> None:
    """With tag components on, a rock listener gets the unheard rock artist before any jazz."""
    model = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=1.0, w_tag_profile=1.0)
    model.fit(TrainingData(user_items=PLAYS, item_tags=ITEM_TAGS))
    ids, _ = model.recommend(0, n=4)
    assert ids[0] == 6
    assert set(ids[1:].tolist()) == {3, 4, 5}


def test_without_tag_edges_the_cold_artist_gets_nothing_from_tags() -> None:
    """Dropping the cold artist's tag edges (as the leakage rule may) removes its tag scores."""
    tags = ITEM_TAGS.tolil()
    tags[6, :] = 0
    model = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=1.0, w_tag_profile=1.0)
    model.fit(TrainingData(user_items=PLAYS, item_tags=sp.csr_matrix(tags)))
    parts = model.component_scores(np.array([0]))
    assert parts["tag_knn"][0, 6] == 0.0
    assert parts["tag_profile"][0, 6] == 0.0


def test_friends_listening_is_recommended() -> None:
    """A user whose only friend plays jazz gets jazz from the friends component."""
    friends = sp.csr_matrix(([1.0, 1.0], ([2, 3], [3, 2])), shape=(6, 6))
    model = _hybrid(w_svd=0.0, w_friends=1.0, w_tag_knn=0.0, w_tag_profile=0.0)
    model.fit(TrainingData(user_items=PLAYS, user_friends=friends))
    friends_scores = model.component_scores(np.array([2]))["friends"][0]
    assert np.argmax(friends_scores) == 4  # user 3's most played is item 4 (5 plays, log-scaled)
    assert friends_scores[:3].sum() == 0.0


def test_normalisation_puts_each_users_best_unheard_item_at_one() -> None:
    """Rows are scaled so the best unheard item scores 1 and heard items are -inf."""
    raw = np.array([[9.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float64))
    out = _normalise_rows(raw, seen)
    assert out[0].tolist() == [-np.inf, 0.5, 1.0]
    assert out[1].tolist() == [0.0, 0.0, 0.0]


def test_fusion_weights_change_the_ranking_without_refitting() -> None:
    """Two Hybrids on the same data share fitted components; their weights alone differ."""
    data = TrainingData(user_items=PLAYS, item_tags=ITEM_TAGS)
    plain = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=0.0, w_tag_profile=0.0)
    tagged = _hybrid(w_svd=0.0, w_friends=0.0, w_tag_knn=5.0, w_tag_profile=5.0)
    plain.fit(data)
    tagged.fit(data)
    assert plain._c is tagged._c
    assert plain.recommend(2, n=1)[0][0] == 2
    assert tagged.recommend(2, n=1)[0][0] in (2, 6)
    assert tagged.score(np.array([2]))[0, 6] > plain.score(np.array([2]))[0, 6]
