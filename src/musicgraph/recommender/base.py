"""The one small interface every recommender shares (after benfred/implicit).

Recommenders work on integer indices over sparse matrices; the projection owns the id<->index maps.
``fit`` learns from a :class:`TrainingData`, ``recommend`` and ``similar_items`` return
``(indices, scores)`` arrays sorted by score descending. Nothing here imports GraphQL or a database
driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainingData:
    """What a recommender learns from; every matrix is CSR with rows and columns as indices.

    - ``user_items``: users x items, weights = play counts (listens, or artist-level counts).
    - ``item_tags``: items x tags, weights = tag counts (optional: content edges).
    - ``user_friends``: users x users, 1 for a friendship (optional).
    - ``item_item``: items x items, external similarity scores (optional: SIMILAR edges).
    - ``playlist_items``: playlists x items (optional).
    - ``user_item_tags``: the per-user tag assignments as (user, item, tag) index triples, so that
      methods which use tags can drop a user's own tags on held-out items (the leakage rule of
      DESIGN.md section 6). ``item_tags`` is built from it when it is given.
    """

    user_items: sp.csr_matrix
    item_tags: sp.csr_matrix | None = None
    user_friends: sp.csr_matrix | None = None
    item_item: sp.csr_matrix | None = None
    playlist_items: sp.csr_matrix | None = None
    user_item_tags: npt.NDArray[np.int64] | None = None

    @property
    def n_users(self) -> int:
        return int(self.user_items.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.user_items.shape[1])


def without_held_out_tags(
    train: sp.csr_matrix,
    held_out: sp.csr_matrix,
    assignments: npt.NDArray[np.int64],
    n_tags: int,
    user_friends: sp.csr_matrix | None,
) -> TrainingData:
    """TrainingData on the listens ``train`` whose tag edges follow the leakage rule of DESIGN.md
    section 6: every (user, item, tag) assignment whose (user, item) pair is in ``held_out`` is
    dropped, the others make ``item_tags`` (one count per assignment)."""
    if len(assignments):
        held = sp.csr_matrix(held_out, dtype=bool)
        leaked = np.asarray(held[assignments[:, 0], assignments[:, 1]]).ravel().astype(bool)
        kept = assignments[~leaked]
    else:
        kept = assignments
    item_tags = sp.csr_matrix(
        (np.ones(len(kept)), (kept[:, 1], kept[:, 2])), shape=(train.shape[1], n_tags)
    )
    item_tags.sum_duplicates()
    return TrainingData(
        user_items=sp.csr_matrix(train),
        item_tags=item_tags,
        user_friends=user_friends,
        user_item_tags=kept,
    )


class Recommender(Protocol):
    """fit / recommend / similar_items over indices, returning ``(indices, scores)``."""

    name: str

    def fit(self, data: TrainingData) -> None: ...

    def recommend(
        self, user: int, *, n: int = 20, exclude: IntArray | None = None
    ) -> tuple[IntArray, FloatArray]:
        """Top ``n`` items for ``user``; items in ``exclude`` (and, by default, the user's own
        training items) never appear."""

    def recommend_many(self, users: IntArray, *, n: int = 20) -> IntArray:
        """Top ``n`` item indices for each user (rows), own training items excluded; for evaluation."""

    def similar_items(self, item: int, *, n: int = 20) -> tuple[IntArray, FloatArray]: ...
