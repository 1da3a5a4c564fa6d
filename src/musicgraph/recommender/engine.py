"""The serving side of the recommender: one engine over the in-memory projection.

:class:`RecommendationEngine` is what the API and the CLI call. It loads a
:class:`~musicgraph.recommender.projection.Projection` from the store once, keeps it current from
the event bus, and answers every request from RAM:

- ``recommend(user, kind, controls)``: a random walk with restart from the user's history (seeds
  weighted by log-count and recency, liked tracks added), scored *exactly* by power iteration when
  the graph is small enough for the budget (``method="exact-ppr"``) and *sampled* with the
  vectorised Pixie walk otherwise (``"pixie-sampled"``); a request with ``seeds`` is seed radio
  (``"seed-radio:<method>"``); a user without history and without seeds gets ``"popularity"``.
- artist recommendations from the user's history are served by the tuned
  :class:`~musicgraph.recommender.hybrid.Hybrid` (``method="hybrid"``), the model the offline
  evaluation names as default, when the graph is small enough for it (see *Hybrid* below).
- ``similar(item)``: the same walk from one item.
- controls (:class:`Controls`) filter and re-rank the candidates; every item can say why
  (:class:`Reason`, see :mod:`musicgraph.recommender.explain`).

Live updates (``start``/``stop``): the engine subscribes to the bus and applies, in place, events
with these payloads (``event.user_id`` set where it concerns one user):

- ``listens.recorded``: ``{"listens": [{"track_id", "listened_at", "skipped"}, ...]}`` (new only)
- ``ratings.changed``: anything; the user's ratings are re-read (``store.get_ratings``); without a
  store, ``{"track_id", "score"}`` or ``{"ratings": [{"track_id", "score"}, ...]}`` (score
  ``None`` clears)
- ``playlists.changed``: ``{"playlist_id"}``; the playlist's entries are re-read (gone = emptied)
- ``similarity.added``: ``{"similarities": [{"item_kind", "source_id", "target_id", "score",
  "source"}, ...]}`` or ``{"kind", "item_ids"}`` (re-read with ``store.get_similar``)
- ``tracks.updated``: ``{"track_ids": [...]}`` (re-read with ``store.get_tracks``)
- ``tags.changed``: ``{"kind", "item_ids"}`` (re-read with ``store.get_tags``)
- ``graph.imported``: anything (a bulk import that sent no event per row, e.g. ``musicgraph import
  hetrec``); the projection is built again from the store (:meth:`RecommendationEngine.reload`)

and then publishes ``Event("recommendations.updated", user_id=..., payload={"kinds": [...]})`` for
the user concerned (with no ``user_id`` after a reload: everyone's may have changed).

Hybrid: with ``hybrid=True`` (the default) and at most ``hybrid_max_users`` users,
``hybrid_max_artists`` artists and ``hybrid_max_cells`` users x artists (defaults 20k, 100k and 50M:
EASE's fit holds a dense users x artists block and a users x users inverse; HetRec Last.fm-2K is
1.9k x 17.6k), :meth:`RecommendationEngine.start` fits the Hybrid's components in a worker thread
(``asyncio.to_thread``; the event loop never waits for a fit) on a snapshot of the projection's
user-artist plays, artist tags and friendships, with the tuned parameters of
``tuned_hetrec.json`` (``w_als=0`` when the optional ``implicit`` package is missing). Until the
first fit is done, artist requests are answered by the walk with ``method`` prefixed
``"hybrid-pending:"`` (an engine never started, e.g. the CLI's, just serves the walk). Each request
scores the user's *current* row of the projection against the fitted components (EASE and PureSVD
products, ALS fold-in, friends' current plays, tag profile), so a new listen counts at once;
components are refitted in the background after ``hybrid_refit_after`` applied events or every
``hybrid_refit_seconds`` when something changed. Artists added since the last fit are not
candidates until the next one. Seed radio and ``similar`` keep the walk. Explanations attribute
the hybrid's top items to the user's history seeds through the same evidence path as the walk
(:func:`~musicgraph.recommender.explain.explain`, one-hop mass), and the controls are applied to
the hybrid's scores as to the walk's (the walk's ``popularity_beta`` is not: the Hybrid is tuned
without it; ``novelty`` is).

A user id the projection has never seen is an error (``RecommenderError``) unless the request has
seeds; a freshly created account can be announced with :meth:`RecommendationEngine.add_user` so
that it gets popularity until its first listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from musicgraph.errors import RecommenderError
from musicgraph.events import Event, EventBus, Subscription, Topic
from musicgraph.graph.models import ItemKind, Similarity
from musicgraph.logging import get_logger
from musicgraph.recommender import kernels
from musicgraph.recommender.base import FloatArray, IntArray, TrainingData
from musicgraph.recommender.explain import Reason, SeedOrigin, TagNames, explain
from musicgraph.recommender.hybrid import ComponentParts, Hybrid
from musicgraph.recommender.projection import Projection
from musicgraph.recommender.random_walk import (
    ExactOperator,
    WalkGraph,
    WalkParams,
    WalkResult,
    exact_walk,
    history_seeds,
    pixie_walk,
    seed_budget,
)
from musicgraph.recommender.rerank import (
    Reranker,
    load_reranker,
    load_trained,
    save_trained,
    train_reranker,
)
from musicgraph.recommender.scoring import best_positions

if TYPE_CHECKING:
    from musicgraph.graph.base import GraphStore
    from musicgraph.graph.models import Playlist
    from musicgraph.recommender.clusters import TasteCluster

__all__ = [
    "Controls",
    "EngineStats",
    "Reason",
    "Recommendation",
    "RecommendationEngine",
    "RecommendationResult",
]

log = get_logger(__name__)

_KINDS: tuple[ItemKind, ...] = ("track", "artist")
_TOPICS: tuple[Topic, ...] = (
    "listens.recorded",
    "ratings.changed",
    "playlists.changed",
    "similarity.added",
    "tracks.updated",
    "tags.changed",
    "graph.imported",
)
MAX_LIMIT = 500


@dataclass(frozen=True)
class Controls:
    """What a request may ask for (DESIGN.md section 3, "Controls")."""

    limit: int = 20
    seeds: tuple[str, ...] = ()  # track or artist ids, or "tag:<name>"
    exclude_heard: bool = True
    exclude_heard_within_days: int | None = None  # only what was heard in the last N days
    max_per_artist: int | None = None
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    novelty: float = 0.0  # 0..1 popularity penalty
    bpm: tuple[float, float] | None = None
    energy: tuple[float, float] | None = None
    valence: tuple[float, float] | None = None
    explain: bool = True


class Recommendation(NamedTuple):
    """One recommended item (a named tuple: built 20 times an answer, at a quarter of a frozen
    dataclass's cost)."""

    item_id: str
    kind: ItemKind
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class RecommendationResult:
    items: tuple[Recommendation, ...]
    # "exact-ppr" | "pixie-sampled" | "seed-radio:..." | "popularity" | "hybrid"
    # | "hybrid-pending:<walk method>"
    method: str
    elapsed_ms: float


@dataclass(frozen=True)
class EngineStats:
    users: int
    items: int
    edges: int
    memory_bytes: int
    loaded: bool
    tracks: int = 0
    artists: int = 0
    tags: int = 0
    events_applied: int = 0
    last_load_ms: float = 0.0
    hybrid: str = "off"  # "off" | "pending" | "fitted" | "failed" | "too-large"
    hybrid_fits: int = 0
    last_hybrid_fit_ms: float = 0.0


@dataclass
class _Seeds:
    items: IntArray
    weights: FloatArray
    origins: list[SeedOrigin] = field(default_factory=list)


@dataclass
class _HybridFit:
    """A fitted Hybrid and the shape of the snapshot it was fitted on."""

    model: Hybrid
    n_users: int
    n_artists: int


def hybrid_params() -> dict[str, Any]:
    """The Hybrid's tuned parameters (``tuned_hetrec.json``), ``w_als=0`` without ``implicit``."""
    from musicgraph.recommender.evaluate import load_tuned

    params: dict[str, Any] = dict(load_tuned().get("Hybrid", {}).get("params", {}))
    if importlib.util.find_spec("implicit") is None:
        params["w_als"] = 0.0
    return params


class RecommendationEngine:
    """Recommendations from the in-memory projection (see the module docstring).

    Options: ``params`` (:class:`WalkParams`, per kind via ``params_track``/``params_artist``),
    ``mode`` ("auto", "exact" or "sampled"), ``exact_budget`` (edges an exact answer may touch,
    hops included; above it the walk is sampled), ``popularity_beta`` (score divided by
    item degree^beta, as RP3beta does), ``seed`` (random seed of the sampled walk), ``store`` (for
    re-reads on events and playlist generation), ``clock`` (seconds, for "heard within N days"),
    ``hybrid`` and ``hybrid_*`` (the Hybrid for artists; see the module docstring).
    ``hybrid_rerank`` picks the Hybrid's learned re-ranker (:mod:`~.rerank`): ``"off"`` (the
    default) none; ``"stored"`` the one
    ``musicgraph evaluate`` trained on HetRec's seed-0 validation splits and stored in
    ``rerank_hetrec.json``, used only with the Hybrid parameters it was trained for (its
    features are that Hybrid's scores); ``"fit"`` one trained at every fit on the engine's own
    snapshot, from ``hybrid_rerank_resamples`` validation splits of it (each one more Hybrid fit
    in the worker thread: for a catalogue unlike HetRec); ``"auto"`` one trained on the engine's
    own graph once, in a background thread after the first background fit
    (:meth:`schedule_hybrid_fit`; the Hybrid serves alone meanwhile), kept for later fits and
    trained again when the graph's listens have grown by half; with ``hybrid_rerank_path`` it is
    kept in that file, and an engine that finds one there trained on a graph like its own loads it
    instead of training (every worker and restart of a server share it; while one process
    trains, the others wait for its file). With one, a request costs about
    0.2 ms more on HetRec (the trees over the best 100 candidates, fed the component scores
    :meth:`Hybrid.score_one` computed).
    """

    def __init__(
        self,
        projection: Projection,
        *,
        store: GraphStore | None = None,
        bus: EventBus | None = None,
        params: WalkParams | None = None,
        params_track: WalkParams | None = None,
        params_artist: WalkParams | None = None,
        mode: str = "auto",
        exact_budget: int = 4_000_000,
        popularity_beta: float = 0.5,
        seed: int = 0,
        clock: Any = time.time,
        loaded: bool = True,
        hybrid: bool = True,
        hybrid_params: dict[str, Any] | None = None,
        hybrid_max_users: int = 20_000,
        hybrid_max_artists: int = 100_000,
        hybrid_max_cells: int = 50_000_000,
        hybrid_refit_after: int = 1_000,
        hybrid_refit_seconds: float = 3_600.0,
        hybrid_rerank: str = "off",
        hybrid_rerank_resamples: int = 4,
        hybrid_rerank_path: Path | None = None,
    ) -> None:
        if mode not in ("auto", "exact", "sampled"):
            raise RecommenderError(f"unknown walk mode {mode!r}: use auto, exact or sampled")
        if hybrid_rerank not in RERANK_MODES:
            raise RecommenderError(
                f"unknown hybrid_rerank {hybrid_rerank!r}: use {', '.join(RERANK_MODES)}"
            )
        self.projection = projection
        self.store = store
        self.bus = bus
        base = params or WalkParams()
        self.params: dict[ItemKind, WalkParams] = {
            "track": params_track or base,
            "artist": params_artist or base,
        }
        self.mode = mode
        self.exact_budget = exact_budget
        self.popularity_beta = popularity_beta
        # _popularity_divisors: per (kind, penalty), every item's divisor and the listens' version
        self._divisors: dict[tuple[str, float], tuple[tuple[int, ...], FloatArray]] = {}
        self.seed = seed
        self.clock = clock
        self._loaded = loaded
        self._ops: dict[ItemKind, tuple[tuple[int, ...], ExactOperator]] = {}
        self._tag_names: dict[ItemKind, TagNames] = {k: TagNames(projection, k) for k in _KINDS}
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._events_applied = 0
        self._load_ms = 0.0
        self._requests = 0
        self.hybrid = hybrid
        self.hybrid_params = hybrid_params
        self.hybrid_max_users = hybrid_max_users
        self.hybrid_max_artists = hybrid_max_artists
        self.hybrid_max_cells = hybrid_max_cells
        self.hybrid_refit_after = hybrid_refit_after
        self.hybrid_refit_seconds = hybrid_refit_seconds
        self.hybrid_rerank = hybrid_rerank
        self.hybrid_rerank_resamples = hybrid_rerank_resamples
        self.hybrid_rerank_path = hybrid_rerank_path
        self._hybrid: _HybridFit | None = None
        self._graphs: dict[str, tuple[tuple[int, ...], WalkGraph]] = {}
        self._hybrid_state = "off"
        self._hybrid_task: asyncio.Task[None] | None = None
        self._hybrid_timer: asyncio.Task[None] | None = None
        self._hybrid_changes = 0
        self._hybrid_fits = 0
        self._hybrid_fit_ms = 0.0
        # hybrid_rerank="auto": the re-ranker trained on this graph, the listens it saw, and the
        # background thread training one
        self._reranker: Reranker | None = None
        self._reranker_listens = 0
        self._rerank_thread: threading.Thread | None = None

    @classmethod
    async def load(
        cls, store: GraphStore, bus: EventBus | None = None, **options: Any
    ) -> RecommendationEngine:
        """Build the projection from ``store`` and return an engine over it (not yet listening:
        call :meth:`start` to follow the bus)."""
        t0 = time.perf_counter()
        projection = await Projection.load(store)
        await asyncio.to_thread(kernels.warm)  # so that no request compiles them
        engine = cls(projection, store=store, bus=bus, **options)
        engine._log_load("recommender.loaded", t0)
        return engine

    def _log_load(self, event: str, t0: float, **extra: Any) -> None:
        """Keep and log how long a (re)load since ``t0`` took, and what the projection holds."""
        self._load_ms = (time.perf_counter() - t0) * 1000
        p = self.projection
        log.info(
            event,
            users=len(p.users),
            tracks=len(p.tracks),
            artists=len(p.artists),
            ms=round(self._load_ms, 1),
            **extra,
        )

    # --- stats --------------------------------------------------------------------------------------
    @property
    def stats(self) -> EngineStats:
        s = self.projection.stats()
        return EngineStats(
            users=s.users,
            items=s.items,
            edges=s.edges,
            memory_bytes=s.edge_bytes + s.id_bytes,
            loaded=self._loaded,
            tracks=s.tracks,
            artists=s.artists,
            tags=s.tags,
            events_applied=self._events_applied,
            last_load_ms=self._load_ms,
            hybrid=self._hybrid_state,
            hybrid_fits=self._hybrid_fits,
            last_hybrid_fit_ms=self._hybrid_fit_ms,
        )

    # --- requests -----------------------------------------------------------------------------------
    def recommend(
        self, user_id: str | None, *, kind: ItemKind = "track", controls: Controls | None = None
    ) -> RecommendationResult:
        """Top items of ``kind`` for ``user_id`` under ``controls`` (see the module docstring)."""
        t0 = time.perf_counter()
        c = controls or Controls()
        _check(kind, c)
        p = self.projection
        user = p.users.get(user_id) if user_id is not None else None
        if user_id is not None and user is None and not c.seeds:
            raise RecommenderError(
                f"unknown user {user_id!r}: the recommender has no listens, ratings or friends "
                "for this id (record a listen first, or pass seeds for seed radio)"
            )
        if c.seeds:
            seeds = self._request_seeds(c.seeds, kind)
            prefix = "seed-radio:"
        else:
            seeds = (
                self._history_seeds(user, kind, origins=False)
                if user is not None
                else _Seeds(*_empty())
            )
            prefix = ""
        penalty: float | None = None
        fused: tuple[IntArray, FloatArray] | None = None
        if kind == "artist" and user is not None and not c.seeds and self._hybrid is not None:
            # a history of liked tracks only (no plays) scores nothing: the walk answers it
            fused = self._hybrid_scores(self._hybrid, user, c) if seeds.items.size else None
            fused = fused if fused is not None and fused[0].size else None
        if seeds.items.size == 0:
            items, scores = self._popularity(kind)
            walk: WalkResult | None = None
            method = "popularity"
            walks = np.zeros(0)
        elif fused is not None:
            items, scores = fused
            walk = None
            walks = (
                seed_budget(self._graph(kind), seeds.items, seeds.weights, self.params[kind])
                if c.explain
                else np.zeros(0)
            )
            method = "hybrid"
            penalty = c.novelty
        else:
            walk, walks = self._walk(kind, seeds)
            items, scores = walk.items, walk.scores
            method = prefix + walk.method
            if kind == "artist" and not c.seeds and self._hybrid_state == "pending":
                method = "hybrid-pending:" + method
        # the items asked for are not news; items reached from a tag are what tag radio is for
        exclude_seeds = (
            seeds.items[[o.seed_kind != "tag" for o in seeds.origins]] if c.seeds else None
        )
        top_items, top_scores = self._rank(
            kind, user, items, scores, c, exclude_seeds, penalty=penalty
        )
        reasons: list[tuple[Reason, ...]]
        if c.explain and (walk is not None or method == "hybrid"):
            reasons = explain(
                p,
                kind,
                top_items,
                seeds.items,
                # history seeds are their own origins: explain names only the seeds it shows
                seeds.origins if c.seeds else None,
                walk,
                self.params[kind],
                walks,
                user=user,
                tag_names=self._tag_names[kind],
            )
        elif c.explain and walk is None:
            reasons = [self._popular_reason(kind, int(i)) for i in top_items]
        else:
            reasons = [()] * top_items.size
        ids = p.items(kind).ids
        new = tuple.__new__
        recs: tuple[Recommendation, ...] = tuple(
            new(Recommendation, (ids[i], kind, s, r))
            for i, s, r in zip(top_items.tolist(), top_scores.tolist(), reasons, strict=True)
        )
        self._requests += 1
        return RecommendationResult(recs, method, (time.perf_counter() - t0) * 1000)

    def similar(
        self, item_id: str, *, kind: ItemKind = "track", limit: int = 20
    ) -> RecommendationResult:
        """Items of ``kind`` close to ``item_id`` in the graph (a walk from that one item)."""
        t0 = time.perf_counter()
        if kind not in _KINDS:
            raise RecommenderError(f"unknown kind {kind!r}: use 'track' or 'artist'")
        if not 1 <= limit <= MAX_LIMIT:
            raise RecommenderError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        p = self.projection
        i = p.items(kind).get(item_id)
        if i is None:
            raise RecommenderError(f"unknown {kind} {item_id!r}: not in the recommender's graph")
        seeds = _Seeds(
            np.array([i], dtype=np.int64),
            np.ones(1),
            [SeedOrigin(item_id, kind, p.item_name(kind, i))],
        )
        walk, walks = self._walk(kind, seeds)
        c = Controls(limit=limit, exclude_heard=False)
        top_items, top_scores = self._rank(kind, None, walk.items, walk.scores, c, seeds.items)
        reasons = explain(
            p,
            kind,
            top_items,
            seeds.items,
            seeds.origins,
            walk,
            self.params[kind],
            walks,
            tag_names=self._tag_names[kind],
        )
        ids = p.items(kind).ids
        recs = tuple(
            Recommendation(ids[int(j)], kind, float(s), r)
            for j, s, r in zip(top_items, top_scores, reasons, strict=True)
        )
        return RecommendationResult(recs, walk.method, (time.perf_counter() - t0) * 1000)

    async def generate_playlist(
        self,
        store: GraphStore,
        user_id: str,
        *,
        seeds: Sequence[str] = (),
        length: int = 20,
        controls: Controls | None = None,
        name: str = "Generated playlist",
        public: bool = False,
    ) -> Playlist:
        """Recommend ``length`` tracks (from ``seeds`` or the user's history), order them so that
        neighbours fit, and save them as a playlist of ``user_id``."""
        from musicgraph.recommender.playlist import generate_playlist

        return await generate_playlist(
            self,
            store,
            user_id,
            seeds=tuple(seeds),
            length=length,
            controls=controls or Controls(),
            name=name,
            public=public,
        )

    def taste_clusters(self, user_id: str, *, max_artists: int = 200) -> list[TasteCluster]:
        """The user's artists grouped into communities of the artist similarity graph."""
        from musicgraph.recommender.clusters import taste_clusters

        return taste_clusters(self.projection, user_id, max_artists=max_artists)

    # --- seeds ----------------------------------------------------------------------------------------
    def _history_seeds(self, user: int, kind: ItemKind, *, origins: bool = True) -> _Seeds:
        """The user's history as weighted seeds; ``origins`` (names for explanations) only when
        asked for."""
        p = self.projection
        rel = p.listened(kind).fwd
        items, w = history_seeds(
            rel.row(user).astype(np.int64), rel.row_weights(user), rel.row_times(user)
        )
        liked = [t for t, s in p.ratings.get(user, {}).items() if s > 0]
        if liked:
            top = float(w.max(initial=1.0))
            extra = (
                np.array(liked, dtype=np.int64)
                if kind == "track"
                else np.array([a for a in (p.artist_of(t) for t in liked) if a >= 0], np.int64)
            )
            items = np.concatenate([items, extra])
            w = np.concatenate([w, np.full(extra.size, top)])
            items, inverse = np.unique(items, return_inverse=True)
            w = np.bincount(inverse, weights=w, minlength=items.size).astype(np.float64)
        if not origins:
            return _Seeds(items, w)
        ids = p.items(kind).ids
        named = [SeedOrigin(ids[i], kind, p.item_name(kind, i)) for i in items.tolist()]
        return _Seeds(items, w, named)

    def _request_seeds(self, seeds: Sequence[str], kind: ItemKind) -> _Seeds:
        p = self.projection
        items: list[int] = []
        weights: list[float] = []
        origins: list[SeedOrigin] = []

        def put(idx: Sequence[int], ws: Sequence[float], origin: SeedOrigin) -> None:
            total = float(sum(ws)) or 1.0
            for i, w in zip(idx, ws, strict=True):
                items.append(int(i))
                weights.append(float(w) / total)
                origins.append(origin)

        for s in seeds:
            if s.startswith("tag:"):
                name = s[4:].strip()
                tagged = self._items_with_tag(kind, name, limit=50)
                if tagged.size == 0:
                    raise RecommenderError(f"unknown seed {s!r}: no {kind} is tagged {name!r}")
                pop = self._degrees(kind, tagged).astype(np.float64) + 1.0
                put(tagged.tolist(), pop.tolist(), SeedOrigin(s, "tag", name))
                continue
            t = p.tracks.get(s)
            a = p.artists.get(s)
            if t is not None:
                origin = SeedOrigin(s, "track", p.item_name("track", t))
                if kind == "track":
                    put([t], [1.0], origin)
                elif p.artist_of(t) >= 0:
                    put([p.artist_of(t)], [1.0], origin)
            elif a is not None:
                origin = SeedOrigin(s, "artist", p.item_name("artist", a))
                if kind == "artist":
                    put([a], [1.0], origin)
                else:
                    tracks = p.artist_track.row(a).astype(np.int64)
                    if tracks.size:
                        pop = self._degrees("track", tracks).astype(np.float64) + 1.0
                        order = np.argsort(-pop)[:20]
                        put(tracks[order].tolist(), pop[order].tolist(), origin)
            else:
                raise RecommenderError(
                    f"unknown seed {s!r}: not a track or artist id in the graph, nor tag:<name>"
                )
        return _Seeds(np.array(items, dtype=np.int64), np.array(weights), origins)

    def _items_with_tag(self, kind: ItemKind, name: str, *, limit: int | None = None) -> IntArray:
        p = self.projection
        g = p.tags.get(name) if name in p.tags else p.tags.get(name.strip().lower())
        if g is None:
            return np.zeros(0, dtype=np.int64)
        out = p.tagged(kind).rev.row(g).astype(np.int64)
        if kind == "track":
            arts = p.artist_tag.rev.row(g).tolist() if g < p.artist_tag.rev.n_rows else []
            via = [p.artist_track.row(int(a)) for a in arts]
            if via:
                out = np.unique(np.concatenate([out, *[v.astype(np.int64) for v in via]]))
        if limit is not None and out.size > limit:
            pop = self._degrees(kind, out)
            out = out[np.argsort(-pop, kind="stable")[:limit]]
        return out

    # --- scoring ---------------------------------------------------------------------------------------
    def _degrees(self, kind: ItemKind, items: IntArray | None = None) -> IntArray:
        """Listeners per item (of the given items only, when given: no catalogue-wide copy)."""
        rev = self.projection.listened(kind).rev
        if items is None:
            return rev.length[: rev.n_rows].astype(np.int64)
        return rev.length[items].astype(np.int64)

    def choose(self, kind: ItemKind) -> str:
        """ "exact" or "sampled" for a walk over ``kind`` now (by graph size and budget)."""
        if self.mode != "auto":
            return self.mode
        params = self.params[kind]
        graph = self._graph(kind)
        hops = max(1.0, np.log(max(params.tol, 1e-12)) / np.log(max(1.0 - params.alpha, 1e-9)))
        return "exact" if graph.cost(params.weights) * hops <= self.exact_budget else "sampled"

    def _graph(self, kind: ItemKind) -> WalkGraph:
        """The walk's view of the projection, kept while the relations it reads and the item
        count stay the same (its degree cache then survives between requests)."""
        p = self.projection
        rel, tags = p.listened(kind), p.tagged(kind)
        key = (
            p.n_items(kind),
            id(rel.fwd),
            id(rel.rev),
            id(tags.fwd),
            id(tags.rev),
            id(p.friends),
            id(p.similar(kind)),
            id(p.playlist_track.fwd),
            id(p.playlist_track.rev),
        )
        cached = self._graphs.get(kind)
        if cached is not None and cached[0] == key:
            return cached[1]
        graph = WalkGraph(p, kind)
        self._graphs[kind] = (key, graph)
        return graph

    def _operator(self, kind: ItemKind, graph: WalkGraph) -> ExactOperator:
        params = self.params[kind]
        key = (
            graph.user_item.version,
            graph.item_tag.version,
            graph.friends.version,
            graph.similar.version,
            graph.playlist_item.version if graph.playlist_item is not None else 0,
            graph.n_items,
        )
        cached = self._ops.get(kind)
        if cached is not None and cached[0] == key:
            return cached[1]
        op = ExactOperator(graph, params.weights)
        self._ops[kind] = (key, op)
        return op

    def _walk(self, kind: ItemKind, seeds: _Seeds) -> tuple[WalkResult, FloatArray]:
        params = self.params[kind]
        graph = self._graph(kind)
        walks = seed_budget(graph, seeds.items, seeds.weights, params)
        if self.choose(kind) == "exact":
            res = exact_walk(
                graph, seeds.items, seeds.weights, params, op=self._operator(kind, graph)
            )
        else:
            rng = np.random.default_rng(self.seed)
            res = pixie_walk(graph, seeds.items, seeds.weights, params, rng)
        return res, walks

    def _popularity(self, kind: ItemKind) -> tuple[IntArray, FloatArray]:
        deg = self._degrees(kind)
        items = np.flatnonzero(deg > 0).astype(np.int64)
        return items, deg[items].astype(np.float64)

    def _popular_reason(self, kind: ItemKind, item: int) -> tuple[Reason, ...]:
        n = int(self._degrees(kind, np.array([item]))[0])
        name = self.projection.item_name(kind, item)
        return (
            Reason(
                seed_id="popular",
                seed_kind=kind,
                share=1.0,
                evidence=f"{name} is popular: {n} listener{'s' if n != 1 else ''}",
                shared_listeners=n,
            ),
        )

    def _rank(
        self,
        kind: ItemKind,
        user: int | None,
        items: IntArray,
        scores: FloatArray,
        c: Controls,
        exclude: IntArray | None,
        *,
        penalty: float | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Apply the controls to the candidates and keep the best ``c.limit`` (scores divided by
        (listeners + 1)^``penalty``, by default ``popularity_beta + c.novelty``)."""
        p = self.projection
        n = p.n_items(kind)
        keep = np.ones(items.size, dtype=bool)
        banned = np.zeros(0, dtype=np.int64)
        if exclude is not None:
            banned = np.concatenate([banned, exclude])
        if user is not None:
            if c.exclude_heard:
                rel = p.listened(kind).fwd
                heard = rel.row(user).astype(np.int64)
                if c.exclude_heard_within_days is not None:
                    since = self.clock() - c.exclude_heard_within_days * 86_400
                    heard = heard[rel.row_times(user).astype(np.float64) >= since]
                banned = np.concatenate([banned, heard])
            if kind == "track":
                disliked = [t for t, s in p.ratings.get(user, {}).items() if s < 0]
                banned = np.concatenate([banned, np.array(disliked, dtype=np.int64)])
        if banned.size:
            mask = np.zeros(n, dtype=bool)
            mask[banned[banned < n]] = True
            keep &= ~mask[items]
        if c.include_tags or c.exclude_tags:
            for tags, want in ((c.include_tags, True), (c.exclude_tags, False)):
                if not tags:
                    continue
                mask = np.zeros(n, dtype=bool)
                for t in tags:
                    mask[self._items_with_tag(kind, t)] = True
                keep &= mask[items] if want else ~mask[items]
        for name, rng_ in (("bpm", c.bpm), ("energy", c.energy), ("valence", c.valence)):
            if rng_ is not None:
                v = p.features[name][items]
                keep &= (v >= rng_[0]) & (v <= rng_[1])  # NaN (not enriched) fails both
        items, scores = items[keep], scores[keep]
        if penalty is None:
            penalty = self.popularity_beta + c.novelty
        if penalty > 0 and items.size:
            scores = scores / self._popularity_divisors(kind, items, penalty)
        return _top_capped(p, kind, items, scores, c.limit, c.max_per_artist)

    def _popularity_divisors(self, kind: ItemKind, items: IntArray, penalty: float) -> FloatArray:
        """``(listeners + 1) ** penalty`` of ``items``. For many items (a walk's answer spans
        the catalogue) from every item's divisor, computed once per change of the listens and
        kept (a power per item cost 85 us of a HetRec request); for a few, computed for them."""
        if items.size * 8 < self.projection.n_items(kind):
            deg = self._degrees(kind, items).astype(np.float64)
            few: FloatArray = np.power(deg + 1.0, penalty)
            return few
        rev = self.projection.listened(kind).rev
        version = (id(rev), rev.version, rev.n_rows)
        kept = self._divisors.get((kind, penalty))
        if kept is None or kept[0] != version:
            if len(self._divisors) >= 8:  # a few kinds and novelty settings at a time
                self._divisors.clear()
            deg = self._degrees(kind).astype(np.float64)
            kept = self._divisors[(kind, penalty)] = (version, np.power(deg + 1.0, penalty))
        table = kept[1]
        if items.size and int(items.max()) >= table.size:  # items with no listeners row yet
            table = np.concatenate([table, np.ones(int(items.max()) + 1 - table.size)])
        many: FloatArray = table[items]
        return many

    # --- live -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Follow the bus: apply graph events in place and announce fresh recommendations."""
        if self.hybrid_eligible() and self._hybrid_timer is None:
            self._hybrid_state = "pending" if self._hybrid is None else self._hybrid_state
            self.schedule_hybrid_fit()
            self._hybrid_timer = asyncio.create_task(self._hybrid_clock(), name="hybrid-refit")
        if self.bus is None or self._task is not None:
            return
        self._sub = self.bus.subscribe(_TOPICS)
        self._task = asyncio.create_task(self._consume(self._sub), name="recommender-events")

    async def stop(self) -> None:
        for task in (self._hybrid_timer, self._hybrid_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._hybrid_timer = self._hybrid_task = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    async def reload(self) -> None:
        """Build the projection again from the store and serve from it (after a bulk import that
        announced itself with one ``graph.imported`` event). Requests keep the old projection
        until the new one is complete; everything derived from it is dropped, and the Hybrid, fitted
        on the old one's indices, is fitted again in the background (artists are served by the walk,
        ``hybrid-pending:``, meanwhile). Events that arrive while it loads are applied after it, so
        a listen recorded during the load may count twice in play counts until the next reload."""
        if self.store is None:
            return
        t0 = time.perf_counter()
        projection = await Projection.load(self.store)
        task, self._hybrid_task = self._hybrid_task, None
        if task is not None:
            task.cancel()  # a fit of the old projection's snapshot: its result would not fit
        self.projection = projection
        self._divisors.clear()
        self._ops.clear()
        self._graphs.clear()
        self._tag_names = {k: TagNames(projection, k) for k in _KINDS}
        self._hybrid = None
        if self._hybrid_timer is not None and self.hybrid_eligible():
            self._hybrid_state = "pending"
            self.schedule_hybrid_fit()
        elif self._hybrid_state == "fitted":  # an engine not started (fitted by hand) has none now
            self._hybrid_state = "off"
        # hybrid "pending": refitting; "too-large": the walk serves
        self._log_load("recommender.reloaded", t0, hybrid=self._hybrid_state)

    async def _consume(self, sub: Subscription) -> None:
        async for event in sub:
            try:
                await self.apply_event(event)
            except Exception as exc:  # keep following the bus whatever one event does
                log.exception("recommender.event_failed", topic=event.topic, error=str(exc))

    async def apply_event(self, event: Event) -> None:
        """Apply one graph event to the projection, then publish ``recommendations.updated`` for
        the user it concerns (see the module docstring for payloads)."""
        p = self.projection
        payload = event.payload
        kinds: list[str] = []
        if event.topic == "listens.recorded" and event.user_id:
            rows = payload.get("listens", [])
            unknown = [r["track_id"] for r in rows if r["track_id"] not in p.tracks]
            artists: dict[str, str | None] = {}
            if unknown and self.store is not None:
                tracks = await self.store.get_tracks(unknown)
                found = [t for t in tracks if t is not None]
                p.update_tracks(found)
                artists = {t.id: (t.artist_ids[0] if t.artist_ids else None) for t in found}
            p.apply_listens(
                event.user_id,
                [(r["track_id"], int(r["listened_at"]), bool(r.get("skipped"))) for r in rows],
                track_artists=artists,
            )
            self._keep_hybrid_vectors(event.user_id)
            kinds = ["track", "artist"]
        elif event.topic == "ratings.changed" and event.user_id:
            if self.store is not None:
                ratings = await self.store.get_ratings(event.user_id)
                p.set_ratings(event.user_id, [(r.track_id, r.score) for r in ratings])
            else:
                u = p.users.add(event.user_id)
                current = {p.tracks.ids[t]: s for t, s in p.ratings.get(u, {}).items()}
                # one change at the top (rateTrack), or many under "ratings" (an import)
                for change in payload.get("ratings") or [payload]:
                    if change.get("score") is None:
                        current.pop(change.get("track_id", ""), None)
                    else:
                        current[change["track_id"]] = int(change["score"])
                p.set_ratings(event.user_id, list(current.items()))
            kinds = ["track", "artist"]
        elif event.topic == "playlists.changed":
            pid = payload.get("playlist_id")
            if pid and self.store is not None:
                pl = (await self.store.get_playlists([pid]))[0]
                entries = await self.store.playlist_entries(pid) if pl is not None else []
                p.set_playlist(pid, [e.track_id for e in entries])
            elif pid and "track_ids" in payload:
                p.set_playlist(pid, list(payload["track_ids"]))
            kinds = ["track"]
        elif event.topic == "similarity.added":
            if "similarities" in payload:
                p.add_similarities(Similarity(**row) for row in payload["similarities"])
            elif self.store is not None and "item_ids" in payload:
                kind = payload.get("kind", "track")
                for item_id in payload["item_ids"]:
                    p.add_similarities(await self.store.get_similar(kind, item_id, limit=200))
            kinds = ["track", "artist"]
        elif event.topic == "tracks.updated" and self.store is not None:
            ids = list(payload.get("track_ids", []))
            if ids:
                p.update_tracks([t for t in await self.store.get_tracks(ids) if t is not None])
        elif event.topic == "graph.imported" and self.store is not None:
            await self.reload()
            kinds = ["track", "artist"]
        elif event.topic == "tags.changed" and self.store is not None:
            kind = payload.get("kind", "track")
            ids = list(payload.get("item_ids", []))
            if ids:
                for item_id, rows in zip(ids, await self.store.get_tags(kind, ids), strict=True):
                    p.set_tags(kind, item_id, [(t.tag, t.count) for t in rows])
        self._events_applied += 1
        if event.topic in ("listens.recorded", "ratings.changed", "tags.changed"):
            self._hybrid_changes += 1
            if self._hybrid_changes >= self.hybrid_refit_after and self._hybrid_timer is not None:
                self.schedule_hybrid_fit()
        if kinds and (event.user_id or event.topic == "graph.imported") and self.bus is not None:
            self.bus.publish(
                Event("recommendations.updated", payload={"kinds": kinds}, user_id=event.user_id)
            )

    # --- hybrid ------------------------------------------------------------------------------------
    def hybrid_eligible(self) -> bool:
        """Whether the graph is small enough for the Hybrid (see the module docstring)."""
        if not self.hybrid:
            return False
        nu, na = self.projection.n_users, self.projection.n_items("artist")
        ok = (
            nu <= self.hybrid_max_users
            and na <= self.hybrid_max_artists
            and nu * na <= self.hybrid_max_cells
        )
        if not ok:
            self._hybrid_state = "too-large"
        return ok

    def _hybrid_snapshot(self) -> TrainingData:
        """The projection's artist matrices, copied (fits run in a thread while events apply)."""
        p = self.projection
        plays = sp.csr_matrix(p.user_artist.fwd.to_csr(), dtype=np.float64, copy=True)
        tags = sp.csr_matrix(p.artist_tag.fwd.to_csr(), dtype=np.float64, copy=True)
        tags.resize((plays.shape[1], max(len(p.tags), tags.shape[1])))
        friends = sp.csr_matrix(p.friends.to_csr(), dtype=np.float64, copy=True)
        friends.resize((plays.shape[0], plays.shape[0]))
        return TrainingData(user_items=plays, item_tags=tags, user_friends=friends)

    def fit_hybrid(self, *, warm: bool = True) -> None:
        """Fit the Hybrid now, in this thread (the bench, tests and ``musicgraph recommend``;
        the server uses :meth:`schedule_hybrid_fit`). With ``hybrid_rerank="auto"`` it takes the
        re-ranker kept in :attr:`hybrid_rerank_path` when it suits this graph, and trains none.
        ``warm=False`` skips computing every user's vectors (a one-shot answer for one user)."""
        path = self.hybrid_rerank_path
        if self.hybrid_rerank == "auto" and self._reranker is None and path is not None:
            found = load_trained(path)
            listens = self.projection.user_artist.fwd.nnz
            if found is not None and listens * 2 <= found[1] * 3:
                self._reranker, self._reranker_listens = found
        self._install_hybrid(
            _fit_hybrid(
                self._hybrid_snapshot(),
                self._hybrid_params(),
                self.hybrid_rerank,
                self.hybrid_rerank_resamples,
            )
        )
        if warm and self._hybrid is not None:
            self._warm_hybrid(self._hybrid)

    def _hybrid_params(self) -> dict[str, Any]:
        return dict(self.hybrid_params) if self.hybrid_params is not None else hybrid_params()

    def _install_hybrid(self, fitted: tuple[_HybridFit, float]) -> None:
        r = self._reranker
        if self.hybrid_rerank == "auto" and r is not None and r.params == self._hybrid_params():
            fitted[0].model.reranker = r
        self._hybrid, ms = fitted
        self._hybrid_state = "fitted"
        self._hybrid_fits += 1
        self._hybrid_fit_ms = ms

    def schedule_hybrid_fit(self) -> asyncio.Task[None] | None:
        """Start a background (re)fit unless one is running; returns its task. A graph grown
        past the threshold drops the Hybrid (the walk serves) instead."""
        if self._hybrid_task is not None and not self._hybrid_task.done():
            return self._hybrid_task
        if not self.hybrid_eligible():
            self._hybrid = None
            return None
        self._hybrid_changes = 0
        data = self._hybrid_snapshot()  # taken on the loop, between events
        params = self._hybrid_params()

        async def run() -> None:
            try:
                fitted = await asyncio.to_thread(
                    _fit_hybrid, data, params, self.hybrid_rerank, self.hybrid_rerank_resamples
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the walk keeps serving
                log.exception("recommender.hybrid_fit_failed", error=str(exc))
                if self._hybrid is None:
                    self._hybrid_state = "failed"
                return
            self._install_hybrid(fitted)
            log.info(
                "recommender.hybrid_fitted",
                users=fitted[0].n_users,
                artists=fitted[0].n_artists,
                ms=round(fitted[1], 1),
            )
            await asyncio.to_thread(self._warm_hybrid, fitted[0])
            if self.hybrid_rerank == "auto":
                self._train_reranker_in_background(data, params)

        self._hybrid_task = asyncio.create_task(run(), name="hybrid-fit")
        return self._hybrid_task

    def _train_reranker_in_background(self, data: TrainingData, params: dict[str, Any]) -> None:
        """Give the installed Hybrid a re-ranker for ``data`` (the snapshot just fitted), in a
        daemon thread: the one kept in memory or in :attr:`hybrid_rerank_path` when it was
        trained on at least two thirds of these listens, else one trained now (and kept). A
        daemon thread, so a server that stops does not wait for it; a failure leaves the Hybrid
        serving alone."""
        if self._rerank_thread is not None and self._rerank_thread.is_alive():
            return
        listens = int(data.user_items.nnz)
        if self._reranker is not None and listens * 2 <= self._reranker_listens * 3:
            return

        def use(r: Reranker, basis: int) -> None:
            self._reranker, self._reranker_listens = r, basis
            fit = self._hybrid
            if fit is not None and r.params == self._hybrid_params():
                fit.model.reranker = r

        def kept() -> tuple[Reranker, int] | None:
            path = self.hybrid_rerank_path
            found = load_trained(path) if path is not None else None
            if found is None or found[0].params != params or listens * 2 > found[1] * 3:
                return None
            return found

        def work() -> None:
            t0 = time.perf_counter()
            path = self.hybrid_rerank_path
            lock = None if path is None else path.with_name(path.name + ".lock")
            try:
                found = kept()
                if found is None and lock is not None:
                    found = self._await_other_trainer(lock, kept)
                if found is not None:
                    use(*found)
                    log.info("recommender.rerank_loaded", path=str(path), listens=found[1])
                    return
                beating = None if lock is None else _Heartbeat(lock)
                try:
                    r = train_reranker(data, params, resamples=self.hybrid_rerank_resamples)
                    if path is not None:
                        save_trained(path, r, listens)
                finally:
                    if beating is not None:
                        beating.release()
            except Exception as exc:  # the Hybrid keeps serving without one
                log.warning("recommender.rerank_failed", error=str(exc))
                return
            use(r, listens)
            log.info(
                "recommender.rerank_trained",
                listens=listens,
                seconds=round(time.perf_counter() - t0, 1),
            )

        self._rerank_thread = threading.Thread(target=work, name="rerank-train", daemon=True)
        self._rerank_thread.start()

    def _await_other_trainer(
        self, lock: Path, kept: Callable[[], tuple[Reranker, int] | None]
    ) -> tuple[Reranker, int] | None:
        """Take ``lock`` (this process trains: None), or, while another process holds it, wait
        for the re-ranker it keeps. A lock whose process is gone (a server stopped while it
        trained), or not touched for :data:`RERANK_LOCK_SECONDS` (its trainer touches it every
        :data:`RERANK_HEARTBEAT_SECONDS`, however long training takes), is taken over."""
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    age = time.time() - lock.stat().st_mtime
                    holder = lock.read_text().strip()
                except FileNotFoundError:
                    continue  # released just now: look again
                if age > RERANK_LOCK_SECONDS or not _process_alive(holder):
                    lock.unlink(missing_ok=True)
                    continue
                time.sleep(RERANK_POLL_SECONDS)
                found = kept()
                if found is not None:
                    return found
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            found = kept()  # kept between our first look and the lock: use it, release the lock
            if found is not None:
                lock.unlink(missing_ok=True)
            return found

    def wait_reranker(self, timeout: float | None = None) -> bool:
        """Wait for a re-ranker being trained in the background (tests, benches); True when
        none is training any more."""
        thread = self._rerank_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    async def wait_hybrid(self) -> None:
        """Wait for a running background fit (tests, startup scripts)."""
        if self._hybrid_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._hybrid_task)

    async def _hybrid_clock(self) -> None:
        while True:
            await asyncio.sleep(self.hybrid_refit_seconds)
            if self._hybrid_changes > 0:
                self.schedule_hybrid_fit()

    def _hybrid_scores(
        self, fit: _HybridFit, user: int, c: Controls
    ) -> tuple[IntArray, FloatArray]:
        """Fused Hybrid scores of the user's current row (positive ones, fitted artists only):
        :meth:`Hybrid.score_one` on the projection's arrays, no sparse matrices built. Without
        tag filters or a novelty penalty the order is final, so only the best ``limit`` + heard
        items go on to the controls (with a re-ranker, its candidates when they are enough)."""
        p = self.projection
        rel = p.user_artist.fwd
        cols, w = self._hybrid_row(fit, user)
        f_items = f_plays = f_slot = None
        n_friends = 0
        if user < p.friends.n_rows and p.friends.length[user] > 0:
            friends = p.friends.row(user).astype(np.int64)
            friends = friends[friends < rel.n_rows]
            n_friends = int(friends.size)
            length = rel.length[friends].astype(np.int64)
            offsets = np.cumsum(length) - length
            pos = np.repeat(rel.start[friends] - offsets, length) + np.arange(int(length.sum()))
            f_items = rel.indices[pos].astype(np.int64)
            f_plays = (
                np.ones(pos.size) if rel.weights is None else rel.weights[pos].astype(np.float64)
            )
            f_slot = np.repeat(np.arange(friends.size), length)
            ok = f_plays > 0
            if not ok.all():
                f_items, f_plays, f_slot = f_items[ok], f_plays[ok], f_slot[ok]
        # the learned re-ranker permutes the best candidates' scores, reading the components'
        # scores that score_one computed on the way
        parts = ComponentParts() if fit.model.reranker is not None else None
        scores = fit.model.score_one(cols, w, f_items, f_plays, f_slot, parts)
        ranked = None
        if parts is not None:
            ranked = fit.model.rerank_one(scores, cols, parts, f_items, n_friends)
        best = c.limit + int(rel.length[user])
        if not (c.novelty or c.include_tags or c.exclude_tags) and best < scores.size:
            if (
                ranked is not None
                and ranked.size >= best
                and c.exclude_heard
                and c.exclude_heard_within_days is None
            ):
                # everything heard is excluded, and the re-ranked candidates are the best
                # unheard items, best first: no second pass over the scores
                items = ranked[:best]
                items = items[scores[items] > 0]
            else:
                items = best_positions(scores, best)
                items = items[scores[items] > 0]
        else:
            items = np.flatnonzero(scores > 0).astype(np.int64)
        return items, scores[items]

    def _hybrid_row(self, fit: _HybridFit, user: int) -> tuple[IntArray, FloatArray]:
        """The user's artists known to the fit and their play counts, as the Hybrid scores them."""
        rel = self.projection.user_artist.fwd
        cols = rel.row(user).astype(np.int64)
        w = rel.row_weights(user).astype(np.float64)
        keep = (cols < fit.n_artists) & (w > 0)
        if not keep.all():
            cols, w = cols[keep], w[keep]
        return cols, w

    def _keep_hybrid_vectors(self, user_id: str) -> None:
        """Compute the Hybrid vectors of a user whose listens just changed, so that their next
        request (the one a listen is usually followed by) does not pay for them."""
        fit = self._hybrid
        user = self.projection.users.get(user_id)
        if fit is None or user is None or user >= self.projection.user_artist.fwd.n_rows:
            return
        cols, w = self._hybrid_row(fit, user)
        if cols.size:
            fit.model.user_vectors(cols, w)

    def _warm_hybrid(self, fit: _HybridFit) -> None:
        """Compute every user's Hybrid vectors now (:meth:`Hybrid.warm_users`, as many as its
        cache holds), so that a user's first request after a fit does not pay for them. Runs in
        a worker thread in the server while events apply: a row read mid-change only makes an
        entry no request asks for (entries are keyed by the row they were computed from)."""
        t0 = time.perf_counter()
        n_users = min(fit.n_users, self.projection.user_artist.fwd.n_rows)

        def rows() -> Iterator[tuple[IntArray, FloatArray]]:
            for user in range(n_users):
                try:
                    yield self._hybrid_row(fit, user)
                except (IndexError, ValueError):  # the pool moved under a concurrent change
                    continue

        kept = fit.model.warm_users(rows())
        log.debug(
            "recommender.hybrid_users_warmed",
            users=kept,
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )

    def add_user(self, user_id: str) -> None:
        """Make a user without any edges known (a new account), so that ``recommend`` answers
        with popularity instead of an unknown-user error."""
        self.projection.add_user(user_id)


RERANK_MODES = ("off", "stored", "fit", "auto")


class _Heartbeat:
    """Touches a held lock file every :data:`RERANK_HEARTBEAT_SECONDS` from a daemon thread
    until :meth:`release`, so that waiting processes can tell a long training from a dead one."""

    def __init__(self, lock: Path) -> None:
        self._lock = lock
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rerank-lock-beat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(RERANK_HEARTBEAT_SECONDS):
            try:
                os.utime(self._lock)
            except OSError:  # taken away: nothing left to keep fresh
                return

    def release(self) -> None:
        """Stop touching the lock, then remove it."""
        self._stopped.set()
        self._thread.join()
        self._lock.unlink(missing_ok=True)


def _process_alive(pid_text: str) -> bool:
    """Whether the process whose id a re-ranker lock holds still runs (on this machine, beside
    the SQLite file); a lock being written (no id yet) counts as alive."""
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


# a re-ranker lock not touched for this long is a trainer that died or hangs (its trainer touches
# it every RERANK_HEARTBEAT_SECONDS); others look for its file every RERANK_POLL_SECONDS
RERANK_LOCK_SECONDS = 300.0
RERANK_HEARTBEAT_SECONDS = 30.0
RERANK_POLL_SECONDS = 2.0


def _fit_hybrid(
    data: TrainingData, params: dict[str, Any], rerank: str = "stored", resamples: int = 4
) -> tuple[_HybridFit, float]:
    """Fit a Hybrid on ``data`` (runs in a worker thread), with its re-ranker per ``rerank``
    (see :class:`RecommendationEngine`); returns it and the milliseconds."""
    t0 = time.perf_counter()
    model = Hybrid(**params)
    model.fit(data)
    if rerank == "stored":
        stored = load_reranker()
        # its features are the scores of the Hybrid it was trained with: only for that one
        model.reranker = stored if stored is not None and stored.params == params else None
    elif rerank == "fit":
        model.reranker = train_reranker(data, params, resamples=resamples)
    model.prepare_serving()
    return _HybridFit(model, data.n_users, data.n_items), (time.perf_counter() - t0) * 1000


def _empty() -> tuple[IntArray, FloatArray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0)


def _check(kind: str, c: Controls) -> None:
    if kind not in _KINDS:
        raise RecommenderError(f"unknown kind {kind!r}: use 'track' or 'artist'")
    if not 1 <= c.limit <= MAX_LIMIT:
        raise RecommenderError(f"limit must be between 1 and {MAX_LIMIT}, got {c.limit}")
    if not 0.0 <= c.novelty <= 1.0:
        raise RecommenderError(f"novelty must be between 0 and 1, got {c.novelty}")
    if c.max_per_artist is not None and c.max_per_artist < 1:
        raise RecommenderError(f"max_per_artist must be at least 1, got {c.max_per_artist}")
    if c.exclude_heard_within_days is not None and c.exclude_heard_within_days < 0:
        raise RecommenderError(
            f"exclude_heard_within_days must be >= 0, got {c.exclude_heard_within_days}"
        )
    for name in ("bpm", "energy", "valence"):
        r = getattr(c, name)
        if r is None:
            continue
        if kind != "track":
            raise RecommenderError(f"{name} ranges apply to tracks only, not to {kind}s")
        if len(r) != 2 or r[0] > r[1]:
            raise RecommenderError(f"{name} range must be (low, high) with low <= high, got {r}")


def _top_capped(
    p: Projection,
    kind: ItemKind,
    items: IntArray,
    scores: FloatArray,
    limit: int,
    max_per_artist: int | None,
) -> tuple[IntArray, FloatArray]:
    """The best ``limit`` items, at most ``max_per_artist`` per artist (tracks)."""
    if items.size == 0:
        return items, scores
    cap = max_per_artist if kind == "track" else None
    want = limit if cap is None else min(items.size, limit * 8 + 64)
    while True:
        k = min(want, items.size)
        idx = best_positions(scores, k)
        idx = idx[np.lexsort((items[idx], -scores[idx]))]  # score desc, then index: stable
        if cap is None:
            idx = idx[:limit]
            return items[idx], scores[idx]
        per: dict[int, int] = {}
        chosen: list[int] = []
        for j in idx.tolist():
            a = p.artist_of(int(items[j]))
            if a >= 0:
                if per.get(a, 0) >= cap:
                    continue
                per[a] = per.get(a, 0) + 1
            chosen.append(j)
            if len(chosen) == limit:
                break
        if len(chosen) == limit or k == items.size:
            sel = np.array(chosen, dtype=np.int64)
            return items[sel], scores[sel]
        want *= 4
