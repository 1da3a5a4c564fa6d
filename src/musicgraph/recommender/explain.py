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

Listener overlaps and one-hop mass of every (item, seed) pair come from one compiled pass over
the items' and the seeds' listeners (:func:`overlaps`), which also counts the friends; playlists
are counted the same way for the pairs that are shown, and each item's best seeds are picked in
one more (:func:`~musicgraph.recommender.kernels.shown_reasons`). Shared tags, wanted for
the shown pairs only, come from per-item ranked tag lists, per-seed tag sets and per-pair answers
kept across requests (:class:`TagNames`). Python touches only what is returned: one
:class:`Reason` and one sentence per shown pair, built field by field in list comprehensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from musicgraph.graph.models import ItemKind
from musicgraph.recommender.base import FloatArray, IntArray
from musicgraph.recommender.kernels import NO_DEGREE, NO_INTS, overlap_counts, shown_reasons
from musicgraph.recommender.projection import DynamicCSR, Projection
from musicgraph.recommender.random_walk import WalkParams, WalkResult


class Reason(NamedTuple):
    """One seed's part in a recommendation (the GraphQL ``Reason`` type maps this one-to-one).

    A named tuple: an answer holds some 80 of them, and a tuple is built in a quarter of the time
    a frozen dataclass takes (0.12 against 0.43 us even with its ``__dict__`` set at once)."""

    seed_id: str
    seed_kind: str  # "track" | "artist" | "tag" | "friend" | "playlist"
    share: float  # 0..1 of the item's score
    evidence: str
    shared_listeners: int = 0
    shared_tags: tuple[str, ...] = ()
    friends: int = 0
    playlists: int = 0


_tuple = tuple.__new__


def _reason(
    seed_id: str,
    seed_kind: str,
    share: float,
    evidence: str,
    shared_listeners: int,
    shared_tags: tuple[str, ...],
    friends: int,
    playlists: int,
) -> Reason:
    """``Reason(...)`` with every field given, without the keyword handling of its ``__new__``."""
    r: Reason = _tuple(
        Reason,
        (seed_id, seed_kind, share, evidence, shared_listeners, shared_tags, friends, playlists),
    )
    return r


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


@dataclass
class Overlaps:
    """What :func:`overlaps` counts for R items and S seeds."""

    counts: IntArray  # R x S shared columns
    mass: FloatArray | None  # R x S sum of 1 / col_degree over the shared columns
    probe: IntArray | None  # R: how many of the ``probe`` columns each item has


def overlaps(
    m: DynamicCSR,
    items: IntArray,
    seeds: IntArray,
    n_cols: int,
    col_degree: npt.NDArray[np.integer[Any]] | None = None,
    probe: IntArray | None = None,
) -> Overlaps:
    """``counts[r, s] = |m[items[r]] & m[seeds[s]]|`` (shared columns: listeners, playlists) for
    every pair at once; with ``col_degree``, ``mass[r, s]`` = the sum of ``1 / col_degree`` over
    the shared columns; with ``probe`` (columns, e.g. the user's friends), how many of them each
    item has. ``items`` must not repeat.

    One compiled pass (:func:`~musicgraph.recommender.kernels.overlap_counts`): a small table
    of the items' columns, read at the seeds' entries (on HetRec, inside requests, 0.12 ms as a
    dozen numpy calls and a sparse product; 0.07 ms compiled)."""
    counts, mass, probed = overlap_counts(
        m.start,
        m.length,
        m.indices,
        np.asarray(items, dtype=np.int64),
        np.asarray(seeds, dtype=np.int64),
        NO_DEGREE if col_degree is None else col_degree,
        NO_INTS if probe is None else np.asarray(probe, dtype=np.int64),
        n_cols,
    )
    return Overlaps(
        counts, mass if col_degree is not None else None, probed if probe is not None else None
    )


def explain(
    projection: Projection,
    kind: ItemKind,
    items: IntArray,
    seeds: IntArray,
    origins: Sequence[SeedOrigin] | None,
    walk: WalkResult | None,
    params: WalkParams,
    walks_per_seed: FloatArray,
    *,
    user: int | None = None,
    max_reasons: int = 3,
    tag_names: TagNames | None = None,
) -> list[tuple[Reason, ...]]:
    """Reasons for each of ``items`` (in order, no repeats); ``origins`` has one entry per seed,
    or is None when every seed is its own origin, an item of ``kind`` named by the projection (the
    user's history: then origins are made only for the seeds that are shown).

    ``tag_names`` may be kept across calls (the engine does) to rank each item's tags once."""
    p = projection
    items = np.asarray(items, dtype=np.int64)
    seeds = np.asarray(seeds, dtype=np.int64)
    n_r, n_s = items.size, seeds.size
    if n_r == 0:
        return []
    if n_s == 0:
        return [() for _ in range(n_r)]
    friends = None
    if user is not None and user < p.friends.n_rows and p.friends.length[user] > 0:
        friends = p.friends.row(user).astype(np.int64)
    contrib, listen = _contributions(p, kind, items, seeds, walk, params, walks_per_seed, friends)

    # group seeds by origin (an artist or tag expanded into several seed items is one reason);
    # the seed of an origin that gave the item most speaks for it
    speaker: IntArray | None = None
    if origins is None:
        by_origin = contrib
    else:
        keys: dict[tuple[str, str], int] = {}
        group = np.array(
            [keys.setdefault((o.seed_id, o.seed_kind), len(keys)) for o in origins],
            dtype=np.int64,
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
    # the shown (item, origin) pairs, item by item, best first (equal ones in origin order):
    # every origin that gave the item something, and the best one even when none did
    pr, pk, pair_shares = shown_reasons(
        np.ascontiguousarray(by_origin, dtype=np.float64), max_reasons
    )
    ps = pk if speaker is None else speaker[pr, pk]
    pair_seeds = seeds[ps]
    shares = pair_shares.tolist()

    if listen is None:
        # the sampled walk's contributions count no listeners: count them for the shown seeds
        uniq, inverse = np.unique(ps, return_inverse=True)
        rel = p.listened(kind)
        listen = overlaps(rel.rev, items, seeds[uniq], rel.fwd.n_rows, probe=friends)
        n_shared = listen.counts[pr, inverse].tolist()
    else:
        n_shared = listen.counts[pr, ps].tolist()
    n_pl: list[int] = [0] * pr.size
    if kind == "track" and p.playlist_track.nnz:
        uniq, inverse = np.unique(ps, return_inverse=True)
        pl = p.playlist_track
        n_pl = overlaps(pl.rev, items, seeds[uniq], pl.fwd.n_rows).counts[pr, inverse].tolist()

    # Python from here on: one Reason and one sentence per shown pair, field by field in list
    # comprehensions (a third cheaper than one loop doing everything per pair)
    il = items.tolist()
    names = p.track_names if kind == "track" else p.artist_names
    seed_ids = p.items(kind).ids
    n_names = len(names)
    item_names = [(names[i] if i < n_names else None) or seed_ids[i] for i in il]
    tag_names = tag_names if tag_names is not None else TagNames(p, kind)
    kept = tag_names.prepare(il)  # (item << 32 | seed) -> shared tag names, of earlier answers
    pr_l, seed_l = pr.tolist(), pair_seeds.tolist()
    pair_keys = ((items[pr] << 32) | pair_seeds).tolist()
    found = [kept.get(k) for k in pair_keys]
    tags = tag_names.fill(pair_keys, found) if None in found else cast(list[tuple[str, ...]], found)
    if origins is None:
        labels = {sd: (names[sd] if sd < n_names else None) or seed_ids[sd] for sd in set(seed_l)}
        ids_l = [seed_ids[sd] for sd in seed_l]
        kinds = [kind] * len(seed_l)
        labs = [labels[sd] for sd in seed_l]
    else:
        shown_origins = [origins[s] for s in ps.tolist()]
        ids_l = [o.seed_id for o in shown_origins]
        kinds = [o.seed_kind for o in shown_origins]
        labs = [o.label for o in shown_origins]
    i_names = [item_names[r] for r in pr_l]
    evidence = [
        (
            f"{n} listeners of {lb} also play {it}"
            + (f"; tagged {', '.join(tg)} like {lb}" if tg else "")
        )
        if n > 1 and not pl and k != "tag"  # the usual sentence, inline
        else _sentence(sid, k, lb, it, n, tg, pl)
        for sid, k, lb, it, n, tg, pl in zip(
            ids_l, kinds, labs, i_names, n_shared, tags, n_pl, strict=True
        )
    ]
    reasons: list[Reason] = [
        _tuple(Reason, (sid, k, sh, ev, n, tg, 0, pl))
        for sid, k, sh, ev, n, tg, pl in zip(
            ids_l, kinds, shares, evidence, n_shared, tags, n_pl, strict=True
        )
    ]
    bounds: list[int] = np.searchsorted(pr, np.arange(n_r + 1)).tolist()
    out = [reasons[bounds[r] : bounds[r + 1]] for r in range(n_r)]
    if listen.probe is not None:
        user_id = p.users.ids[user] if user is not None else ""
        for r, n_friends in enumerate(listen.probe.tolist()):
            if n_friends:
                out[r].append(
                    _reason(
                        user_id,
                        "friend",
                        0.0,
                        f"{n_friends} of your friends play {item_names[r]}",
                        0,
                        (),
                        n_friends,
                        0,
                    )
                )
    return [tuple(x) for x in out]


def _contributions(
    p: Projection,
    kind: ItemKind,
    items: IntArray,
    seeds: IntArray,
    walk: WalkResult | None,
    params: WalkParams,
    walks_per_seed: FloatArray,
    friends: IntArray | None = None,
) -> tuple[FloatArray, Overlaps | None]:
    """R x S contribution of each seed to each item (see the module docstring), and the
    listener :class:`Overlaps` of every pair (friends probed) when it counts them on the way (the
    one-hop mass does)."""
    n_s = seeds.size
    if walk is not None and walk.seed_visits.shape[0] == n_s and walk.seed_visits.nnz:
        # the items' columns of the seeds x items visit counts (scipy's column selection, in C:
        # the visits of all seeds span thousands of items, of which R are wanted)
        sv = sp.csr_matrix(walk.seed_visits)
        v: FloatArray = np.asarray(sv[:, items].toarray(), dtype=np.float64).T
        return (np.sqrt(v) if params.boost else v), None
    # one-hop transition mass, weighted by walks per seed
    w = params.weights
    listened = p.listened(kind)
    rev = listened.rev
    deg_s = rev.length[seeds].astype(np.float64)
    listen = overlaps(rev, items, seeds, listened.fwd.n_rows, listened.fwd.length, probe=friends)
    assert listen.mass is not None
    # walks per seed / seed degree: the probability mass each shared listener carries
    per_seed = np.divide(walks_per_seed, deg_s, out=np.zeros(n_s), where=deg_s > 0)
    out = (w.listen * listen.mass) * per_seed
    tags = p.tagged(kind)
    if w.tag > 0 and tags.nnz:
        n_tags = tags.rev.n_rows
        tag_deg = tags.rev.length[:n_tags].astype(np.float64)
        inv_t = np.divide(1.0, tag_deg, out=np.zeros_like(tag_deg), where=tag_deg > 0)
        it_r = rows_csr(tags.fwd, items, n_tags)
        it_s = rows_csr(tags.fwd, seeds, n_tags)
        deg_t = np.diff(it_s.indptr).astype(np.float64)
        via_tags = (it_r @ sp.diags(inv_t) @ it_s.T).toarray()
        via_tags *= np.divide(1.0, deg_t, out=np.zeros(n_s), where=deg_t > 0)
        out = out + w.tag * via_tags * walks_per_seed
    sim = p.similar(kind)
    if w.similar > 0 and sim.nnz:
        s_rows = rows_csr(sim, seeds, sim.n_cols)
        out = out + w.similar * (s_rows[:, items] > 0).toarray().T * walks_per_seed
    return out, listen


class TagNames:
    """Shared tag names of (item, seed) pairs. Each item's ``top`` heaviest tags (ranked, as a
    list) and each seed's tag set are read once and kept, so a lookup is a short scan in Python
    (measured against a numpy version of the same, bit sets per tag: twice as fast for the ~60
    pairs of an answer, cold caches included), and each pair's answer is kept too: popular items
    are explained by popular seeds again and again (on HetRec 74% of the pairs of 1,000 random
    users' answers had been asked before), and a kept answer is one dictionary probe instead of
    twenty set probes that miss the CPU caches after the scoring. When the tags change the
    caches empty themselves, and on a graph with at most ``rank_all_edges`` tag edges every item
    is ranked again at once; each cache also empties itself past ``max_entries``."""

    def __init__(
        self,
        p: Projection,
        kind: ItemKind,
        *,
        top: int = 20,
        max_entries: int = 50_000,
        rank_all_edges: int = 250_000,
    ):
        self.p = p
        self.kind = kind
        self.top = top
        self.max_entries = max_entries  # per cache (ranked items, seed tag sets, pair answers)
        self.rank_all_edges = rank_all_edges
        self._key: tuple[int, int] = (0, -1)
        self.ranked: dict[int, list[int]] = {}
        self.sets: dict[int, set[int]] = {}
        self.pairs: dict[int, dict[int, tuple[str, ...]]] = {}  # limit -> pair -> names
        self._limit = 3

    def _current(self) -> DynamicCSR:
        rel = self.p.tagged(self.kind).fwd
        key = (id(rel), rel.version)
        if key != self._key:
            self.ranked.clear()
            self.sets.clear()
            self.pairs.clear()
            self._key = key
            if 0 < rel.nnz <= self.rank_all_edges and rel.n_rows <= self.max_entries:
                # a small graph's items are ranked at once (HetRec: 108k tag edges, ~20 ms; the
                # bound keeps this pause short), so no answer waits for its items to be ranked
                self._rank(rel, list(range(rel.n_rows)))
        caches: list[dict[int, Any]] = [self.ranked, self.sets, *self.pairs.values()]
        for cache in caches:
            if len(cache) > self.max_entries:
                cache.clear()
        return rel

    def _rank(self, rel: DynamicCSR, missing: list[int]) -> None:
        """Rank the tags of the ``missing`` items (all at once): heaviest first, ties in row
        order; the ``top`` first kept."""
        if not rel.nnz:
            self.ranked.update((i, []) for i in missing)
            return
        rows = np.array(missing, dtype=np.int64)
        pos, offsets, length = _safe_positions(rel, rows)
        slot = np.repeat(np.arange(rows.size, dtype=np.int64), length)
        weight = np.ones(pos.size, dtype=np.float32) if rel.weights is None else rel.weights[pos]
        order = np.lexsort((-weight, slot))  # stable: ties keep the row order
        keep = order[np.arange(order.size, dtype=np.int64) - offsets[:-1][slot[order]] < self.top]
        tags: list[int] = rel.indices[pos[keep]].tolist()
        bounds: list[int] = np.searchsorted(slot[keep], np.arange(rows.size + 1)).tolist()
        for j, i in enumerate(missing):
            self.ranked[i] = tags[bounds[j] : bounds[j + 1]]

    def prepare(self, items: list[int], limit: int = 3) -> dict[int, tuple[str, ...]]:
        """Rank the tags of ``items`` not ranked yet (at once), and return the kept answers for
        ``limit``: ``(item << 32) | seed`` -> shared tag names (fill misses with :meth:`pair`)."""
        rel = self._current()
        missing = [i for i in items if i not in self.ranked]
        if missing:
            self._rank(rel, missing)
        self._limit = limit
        return self.pairs.setdefault(limit, {})

    def fill(self, keys: list[int], answers: list[tuple[str, ...] | None]) -> list[tuple[str, ...]]:
        """``answers`` with each None replaced by the shared tag names of its pair ``keys[q]``
        (``item << 32 | seed``; 2**32 items of a kind is far beyond a projection in RAM),
        computed and kept (after :meth:`prepare`)."""
        rel = self.p.tagged(self.kind).fwd
        ranked, sets, names, limit = self.ranked, self.sets, self.p.tags.ids, self._limit
        kept = self.pairs.setdefault(limit, {})  # (emptied meanwhile if the tags changed)
        n_rows = rel.n_rows
        out: list[tuple[str, ...]] = []
        for key, answer in zip(keys, answers, strict=True):
            if answer is None:
                item, seed = key >> 32, key & 0xFFFFFFFF
                item_tags = ranked.get(item)
                if item_tags is None:
                    self._rank(rel, [item])
                    item_tags = ranked[item]
                seed_tags = sets.get(seed)
                if seed_tags is None:
                    row = rel.row(seed).tolist() if seed < n_rows else []
                    seed_tags = sets[seed] = set(row)
                both = seed_tags.intersection(item_tags)  # a C loop over the item's top tags
                found = [t for t in item_tags if t in both] if both else []
                answer = kept[key] = tuple([names[t] for t in found[:limit]]) if found else ()
            out.append(answer)
        return out

    def shared_pairs(
        self,
        items: IntArray,
        pair_item: IntArray,
        pair_seed: IntArray,
        seeds: IntArray,
        limit: int = 3,
    ) -> list[tuple[str, ...]]:
        """For each pair ``(items[pair_item[q]], seeds[pair_seed[q]])``: the names of the tags
        both have, at most ``limit``, heaviest on the item first (among its ``top``)."""
        kept = self.prepare(items.tolist(), limit)
        keys = ((items[pair_item] << 32) | seeds[pair_seed]).tolist()
        return self.fill(keys, [kept.get(k) for k in keys])

    def shared(self, a: int, b: int, limit: int = 3) -> tuple[str, ...]:
        """Names of the tags ``a`` and ``b`` share, heaviest on ``a`` first."""
        zero = np.zeros(1, dtype=np.int64)
        one = np.array([a, b], dtype=np.int64)
        return self.shared_pairs(one[:1], zero, zero, one[1:], limit)[0]


def _safe_positions(m: DynamicCSR, rows: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Pool positions of every entry of the given rows, row after row, each row's offset into
    them (``offsets[i]:offsets[i + 1]`` is row ``i``) and its length; rows past the matrix's end
    count as empty."""
    safe = np.minimum(rows, m.n_rows - 1)
    length = np.where(rows < m.n_rows, m.length[safe], 0).astype(np.int64)
    offsets = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    pos = np.repeat(m.start[safe] - offsets[:-1], length) + np.arange(offsets[-1], dtype=np.int64)
    return pos, offsets, length


def _sentence(
    seed_id: str,
    seed_kind: str,
    label: str,
    item_name: str,
    listeners: int,
    tags: tuple[str, ...],
    playlists: int,
) -> str:
    if seed_kind == "tag":
        return f"{item_name} is tagged {seed_id.removeprefix('tag:')}"
    parts: list[str] = []
    if listeners:
        if listeners == 1:
            parts.append(f"1 listener of {label} also plays {item_name}")
        else:
            parts.append(f"{listeners} listeners of {label} also play {item_name}")
    if tags:
        parts.append(f"tagged {', '.join(tags)} like {label}")
    if playlists:
        parts.append(f"in {playlists} playlist{'s' if playlists != 1 else ''} with {label}")
    if not parts:
        return f"close to {label} in the listening graph"
    return "; ".join(parts)
