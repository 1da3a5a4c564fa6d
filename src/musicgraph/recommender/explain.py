"""Why an item was recommended: the seeds that contributed most, their share, and the evidence.

For each recommended item and each seed the walk started from, the *contribution* is what the seed
put into the item's score: its per-seed visits when the walk was sampled (square-rooted under
multi-hit boosting, as they enter the score), or, for the exact method whose power iteration pools
all seeds, the seed's one-hop transition mass into the item (walks per seed times the probability
of reaching the item in one hop through shared listeners, tags, similarity and playlists). Shares
are contributions normalised per item; seeds that came from one origin (an artist or a tag expanded
into several seed items) are summed.

The evidence is counted, not guessed: shared listeners (users who played both), shared tags (with
names), common playlists, and how many of the user's friends play the item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.graph.models import ItemKind
from musicgraph.recommender.base import FloatArray, IntArray
from musicgraph.recommender.projection import DynamicCSR, Projection
from musicgraph.recommender.random_walk import WalkParams, WalkResult


@dataclass(frozen=True)
class Reason:
    """One seed's part in a recommendation (the GraphQL ``Reason`` type maps this one-to-one)."""

    seed_id: str
    seed_kind: str  # "track" | "artist" | "tag" | "friend" | "playlist"
    share: float  # 0..1 of the item's score
    evidence: str
    shared_listeners: int = 0
    shared_tags: tuple[str, ...] = ()
    friends: int = 0
    playlists: int = 0


@dataclass(frozen=True)
class SeedOrigin:
    """Where a walk seed came from: the user's history, a liked track, or a request seed."""

    seed_id: str
    seed_kind: str
    label: str


def rows_csr(m: DynamicCSR, rows: IntArray, n_cols: int, *, binary: bool = True) -> sp.csr_matrix:
    """The given rows of a pooled matrix as a small CSR (a gather; never the whole matrix)."""
    rows = np.asarray(rows, dtype=np.int64)
    length = m.length[rows].astype(np.int64)
    indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(length, out=indptr[1:])
    pos = np.repeat(m.start[rows] - indptr[:-1], length) + np.arange(indptr[-1], dtype=np.int64)
    data = np.ones(pos.size) if binary or m.weights is None else m.weights[pos].astype(np.float64)
    return sp.csr_matrix((data, m.indices[pos], indptr), shape=(rows.size, n_cols))


def _gather_rows(m: DynamicCSR, rows: IntArray) -> tuple[IntArray, IntArray]:
    """All entries of the given rows at once: (column, position of the row in ``rows``)."""
    length = m.length[rows].astype(np.int64)
    offsets = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    pos = np.repeat(m.start[rows] - offsets[:-1], length) + np.arange(offsets[-1], dtype=np.int64)
    slot = np.repeat(np.arange(rows.size, dtype=np.int64), length)
    return m.indices[pos].astype(np.int64), slot


def explain(
    projection: Projection,
    kind: ItemKind,
    items: IntArray,
    seeds: IntArray,
    origins: list[SeedOrigin],
    walk: WalkResult | None,
    params: WalkParams,
    walks_per_seed: FloatArray,
    *,
    user: int | None = None,
    max_reasons: int = 3,
    tag_names: TagNames | None = None,
) -> list[tuple[Reason, ...]]:
    """Reasons for each of ``items`` (in order); ``origins`` has one entry per seed.

    ``tag_names`` may be kept across calls (the engine does) to read each tag row once."""
    p = projection
    n_r, n_s = items.size, seeds.size
    if n_r == 0:
        return []
    if n_s == 0:
        return [() for _ in range(n_r)]
    counts: list[IntArray] = []
    contrib = _contributions(p, kind, items, seeds, walk, params, walks_per_seed, counts)

    # group seeds by origin (an artist or tag expanded into several seed items is one reason);
    # the seed of an origin that gave the item most speaks for it
    keys: dict[tuple[str, str], int] = {}
    group = np.array(
        [keys.setdefault((o.seed_id, o.seed_kind), len(keys)) for o in origins], dtype=np.int64
    )
    n_k = len(keys)
    if n_k == n_s:
        by_origin = np.zeros((n_r, n_k))
        by_origin[:, group] = contrib
        speaker = np.broadcast_to(np.argsort(group), (n_r, n_k))
    else:
        onehot = np.zeros((n_s, n_k))
        onehot[np.arange(n_s), group] = 1.0
        by_origin = contrib @ onehot
        speaker = np.zeros((n_r, n_k), dtype=np.int64)
        ranked_seeds = contrib + 1e-12 * walks_per_seed[None, :]
        for k in range(n_k):
            members = np.flatnonzero(group == k)
            speaker[:, k] = members[np.argmax(ranked_seeds[:, members], axis=1)]
    totals = by_origin.sum(axis=1)
    share = np.divide(
        by_origin, totals[:, None], out=np.zeros_like(by_origin), where=totals[:, None] > 0
    )
    order = np.argsort(-by_origin, axis=1, kind="stable")[:, : min(max_reasons, n_k)]

    evidence = _Evidence(p, kind, user, tag_names)
    n_friends_of = evidence.friends_playing_many(items)
    # plain lists: element reads of small numpy arrays in the loop cost more than the work
    order_l = order.tolist()
    by_origin_l = by_origin.tolist()
    share_l = share.tolist()
    speaker_l = speaker.tolist()
    counts_l = counts[0].tolist() if counts else None
    seeds_l = seeds.tolist()
    items_l = items.tolist()
    user_id = p.users.ids[user] if user is not None else ""
    out: list[tuple[Reason, ...]] = []
    for r in range(n_r):
        item = items_l[r]
        name = p.item_name(kind, item)
        reasons: list[Reason] = []
        row_by, row_share, row_speaker = by_origin_l[r], share_l[r], speaker_l[r]
        for k in order_l[r]:
            if row_by[k] <= 0 and reasons:
                break
            s_ = row_speaker[k]
            o = origins[s_]
            seed = seeds_l[s_]
            n_shared = (
                int(counts_l[r][s_])
                if counts_l is not None
                else evidence.shared_listeners(item, seed)
            )
            tags = evidence.shared_tags(item, seed)
            n_pl = evidence.common_playlists(item, seed)
            reasons.append(
                Reason(
                    seed_id=o.seed_id,
                    seed_kind=o.seed_kind,
                    share=row_share[k],
                    evidence=_sentence(o, name, n_shared, tags, n_pl),
                    shared_listeners=n_shared,
                    shared_tags=tags,
                    playlists=n_pl,
                )
            )
        n_friends = n_friends_of[r]
        if n_friends:
            reasons.append(
                Reason(
                    seed_id=user_id,
                    seed_kind="friend",
                    share=0.0,
                    evidence=f"{n_friends} of your friends play {name}",
                    friends=n_friends,
                )
            )
        out.append(tuple(reasons))
    return out


def _contributions(
    p: Projection,
    kind: ItemKind,
    items: IntArray,
    seeds: IntArray,
    walk: WalkResult | None,
    params: WalkParams,
    walks_per_seed: FloatArray,
    counts_out: list[IntArray],
) -> FloatArray:
    """R x S contribution of each seed to each item (see the module docstring); when it counts
    shared listeners on the way, the R x S counts are appended to ``counts_out``."""
    if walk is not None and walk.seed_visits.shape[0] == seeds.size and walk.seed_visits.nnz:
        sv = sp.coo_matrix(walk.seed_visits)
        pos = {int(item): r for r, item in enumerate(items.tolist())}
        hit = np.isin(sv.col, items)
        v: FloatArray = np.zeros((items.size, seeds.size))
        rows = np.array([pos[int(c)] for c in sv.col[hit]], dtype=np.int64)
        v[rows, sv.row[hit]] = sv.data[hit]
        return np.sqrt(v) if params.boost else v
    # one-hop transition mass, weighted by walks per seed (the exact method's graphs are small)
    w = params.weights
    listened = p.listened(kind)
    n_users = listened.fwd.n_rows
    user_deg = listened.fwd.length[:n_users].astype(np.float64)
    inv_u = np.divide(1.0, user_deg, out=np.zeros_like(user_deg), where=user_deg > 0)
    rev = listened.rev
    deg_s = rev.length[seeds].astype(np.float64)
    if n_users * items.size <= 4_000_000:
        # users x items 0/1 matrix of who plays each item; the rows of each seed's listeners,
        # summed (weighted by 1/deg(user) for the mass), are the seed's overlaps with every item
        b_ur = np.zeros((n_users, items.size), dtype=np.float32)
        r_users, r_slot = _gather_rows(rev, items)
        b_ur[r_users, r_slot] = 1.0
        s_users, _ = _gather_rows(rev, seeds)
        length = rev.length[seeds].astype(np.int64)
        nonempty = length > 0
        starts = (np.cumsum(length) - length)[nonempty]
        via_users = np.zeros((items.size, seeds.size))
        counts = np.zeros((items.size, seeds.size), dtype=np.int64)
        if s_users.size:
            picked = b_ur[s_users]
            counts[:, nonempty] = np.add.reduceat(picked, starts, axis=0).T
            picked *= inv_u[s_users].astype(np.float32)[:, None]
            via_users[:, nonempty] = np.add.reduceat(picked, starts, axis=0).T
        counts_out.append(counts)
    else:
        iu_r = rows_csr(rev, items, n_users)
        iu_s = rows_csr(rev, seeds, n_users)
        via_users = (iu_r @ sp.diags(inv_u) @ iu_s.T).toarray()
    via_users *= np.divide(1.0, deg_s, out=np.zeros(seeds.size), where=deg_s > 0)
    out = w.listen * via_users
    tags = p.tagged(kind)
    if w.tag > 0 and tags.nnz:
        n_tags = tags.rev.n_rows
        tag_deg = tags.rev.length[:n_tags].astype(np.float64)
        inv_t = np.divide(1.0, tag_deg, out=np.zeros_like(tag_deg), where=tag_deg > 0)
        it_r = rows_csr(tags.fwd, items, n_tags)
        it_s = rows_csr(tags.fwd, seeds, n_tags)
        deg_t = np.diff(it_s.indptr).astype(np.float64)
        via_tags = (it_r @ sp.diags(inv_t) @ it_s.T).toarray()
        via_tags *= np.divide(1.0, deg_t, out=np.zeros(seeds.size), where=deg_t > 0)
        out = out + w.tag * via_tags
    sim = p.similar(kind)
    if w.similar > 0 and sim.nnz:
        s_rows = rows_csr(sim, seeds, sim.n_cols)
        out = out + w.similar * (s_rows[:, items] > 0).toarray().T
    result: FloatArray = out * walks_per_seed[None, :]
    return result


class _Evidence:
    """Counted evidence for (item, seed) pairs, each row read once per explanation.

    Listener overlaps use a scratch mask over users: a seed's listeners are marked once, then an
    item's listeners are looked up in it, so the cost is the rows' lengths, not a matrix product.
    """

    def __init__(
        self, p: Projection, kind: ItemKind, user: int | None, tag_names: TagNames | None
    ) -> None:
        self.p = p
        self.kind = kind
        self.rev = p.listened(kind).rev
        self.n_users = p.listened(kind).fwd.n_rows
        self._masks: dict[int, npt.NDArray[np.bool_]] = {}
        self.tags = tag_names if tag_names is not None else TagNames(p, kind)
        self._friend_mask: npt.NDArray[np.bool_] | None = None
        if user is not None and user < p.friends.n_rows and p.friends.length[user] > 0:
            self._friend_mask = np.zeros(self.n_users, dtype=bool)
            self._friend_mask[p.friends.row(user)] = True
        self._seed_pl: dict[int, set[int]] = {}

    def shared_listeners(self, item: int, seed: int) -> int:
        mask = self._masks.get(seed)
        if mask is None:
            if len(self._masks) >= 32:  # bound the scratch memory; reuse the oldest mask
                mask = self._masks.pop(next(iter(self._masks)))
                mask[:] = False
            else:
                mask = np.zeros(self.n_users, dtype=bool)
            mask[self.rev.row(seed)] = True
            self._masks[seed] = mask
        return int(mask[self.rev.row(item)].sum())

    def shared_tags(self, item: int, seed: int) -> tuple[str, ...]:
        return self.tags.shared(item, seed)

    def common_playlists(self, item: int, seed: int) -> int:
        if self.kind != "track" or not self.p.playlist_track.nnz:
            return 0
        rev = self.p.playlist_track.rev
        pls = self._seed_pl.get(seed)
        if pls is None:
            pls = self._seed_pl[seed] = set(rev.row(seed).tolist())
        return sum(1 for pl in rev.row(item).tolist() if pl in pls)

    def friends_playing_many(self, items: IntArray) -> list[int]:
        """How many of the user's friends play each of ``items`` (one gather for all)."""
        if self._friend_mask is None or items.size == 0:
            return [0] * int(items.size)
        users, slot = _gather_rows(self.rev, np.asarray(items, dtype=np.int64))
        hits = slot[self._friend_mask[users]]
        counts: list[int] = np.bincount(hits, minlength=items.size).tolist()
        return counts

    def friends_playing(self, item: int) -> int:
        if self._friend_mask is None:
            return 0
        return int(self._friend_mask[self.rev.row(item)].sum())


class TagNames:
    """Shared tag names of (item, seed) pairs. Each item's tags are read once (its ``top`` heaviest,
    ranked) and each seed's tag set once; the cache empties itself when the tags change."""

    def __init__(self, p: Projection, kind: ItemKind, *, top: int = 20, max_entries: int = 50_000):
        self.p = p
        self.rel = p.tagged(kind).fwd
        self.top = top
        self.max_entries = max_entries
        self._version = self.rel.version
        self.sets: dict[int, set[int]] = {}
        self.ranked: dict[int, list[int]] = {}

    def shared(self, a: int, b: int, limit: int = 3) -> tuple[str, ...]:
        """Names of the tags ``a`` and ``b`` share, heaviest on ``a`` first."""
        if self.rel.version != self._version or len(self.ranked) > self.max_entries:
            self.sets.clear()
            self.ranked.clear()
            self._version = self.rel.version
        seed_tags = self.sets.get(b)
        if seed_tags is None:
            seed_tags = self.sets[b] = set(self.rel.row(b).tolist())
        if not seed_tags:
            return ()
        ranked = self.ranked.get(a)
        if ranked is None:
            row, w = self.rel.row(a), self.rel.row_weights(a)
            if row.size > self.top:
                keep = np.argpartition(-w, self.top - 1)[: self.top]
                row, w = row[keep], w[keep]
            ranked = self.ranked[a] = row[np.argsort(-w, kind="stable")].tolist()
        out: list[str] = []
        for t in ranked:
            if t in seed_tags:
                out.append(self.p.tags.ids[t])
                if len(out) == limit:
                    break
        return tuple(out)


def _sentence(
    origin: SeedOrigin, item_name: str, listeners: int, tags: tuple[str, ...], playlists: int
) -> str:
    if origin.seed_kind == "tag":
        tag = origin.seed_id.removeprefix("tag:")
        return f"{item_name} is tagged {tag}"
    parts: list[str] = []
    if listeners:
        who = "listener" if listeners == 1 else "listeners"
        verb = "also plays" if listeners == 1 else "also play"
        parts.append(f"{listeners} {who} of {origin.label} {verb} {item_name}")
    if tags:
        parts.append(f"tagged {', '.join(tags)} like {origin.label}")
    if playlists:
        parts.append(f"in {playlists} playlist{'s' if playlists != 1 else ''} with {origin.label}")
    if not parts:
        return f"close to {origin.label} in the listening graph"
    return "; ".join(parts)
