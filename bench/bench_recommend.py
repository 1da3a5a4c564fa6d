"""Recommender serving benchmark: prints numbers, never passes or fails.

Sections (all by default; pick with --only):

All latency numbers are of one computation per request (no result cache; BLAS limited to one
thread), as wall time and as the thread's CPU time. The Hybrid keeps each user's vectors (its
user factors, computed for every user after a fit and when a listen is applied); a line
measures requests without them.

- ``hetrec``: single-user ``recommend`` latency p50/p99 (one thread, top 20, explanations on and
  off) on HetRec Last.fm-2K (items = artists), with the method the engine chose, the same with
  the sampled walk forced, and the engine's default for artists on a graph this size: the tuned
  Hybrid (fit time, then latency of scoring the user's current row; rows after a live listen
  included), what explanations add to its requests (on minus off, per user), and the Hybrid
  with its learned re-ranker (``hybrid_rerank="stored"``): right after the fit, after 2,000
  requests of other users, and with no user vectors kept.
- ``agreement``: the sampled Pixie walk against its exact counterpart (personalised PageRank by
  power iteration on the same typed graph, parameters matched, boosting off) on the protocol split
  of seed 0: mean top-20 overlap and NDCG@20 of both on the held-out artists, per step budget.
- ``served``: what the engine serves against what the evaluation measures, on the protocol split
  of seed 0: NDCG@20 of the Hybrid's batch ``recommend_many`` (the evaluation's path) and of
  ``engine.recommend(kind="artist")`` (method ``hybrid``: row scoring, ALS fold-in, controls) for
  every test user. The engine's projection holds every tag assignment (the evaluation drops the
  held-out pairs' own tags), so its number may be slightly optimistic.
- ``agreement-synthetic``: the same on a 2M-listen synthetic graph (100 users, exact as reference).
- ``store``: projection build rate streaming from a real SQLite store holding HetRec.
- ``synthetic``: a graph of 10M listens (100k users, 1M tracks, 100k artists; power-law
  popularity, generated in numpy): build rate, bytes per edge, recommend latency p50/p99 and the
  cost of applying one listen in place.

    .venv/bin/python bench/bench_recommend.py [--only hetrec served agreement store synthetic]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from musicgraph.heap import settle_for_serving
from musicgraph.recommender.engine import Controls, RecommendationEngine, hybrid_params
from musicgraph.recommender.evaluate import HetRec, load_hetrec, protocol_split
from musicgraph.recommender.projection import Projection
from musicgraph.recommender.random_walk import (
    TypeWeights,
    WalkGraph,
    WalkParams,
    exact_walk,
    history_seeds,
    pixie_walk,
)

HETREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "hetrec2011-lastfm-2k"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def hetrec_projection(h: HetRec, user_items: sp.csr_matrix | None = None) -> Projection:
    ui = sp.coo_matrix(h.user_items if user_items is None else user_items)
    ta = h.tag_assignments
    it = sp.coo_matrix(
        sp.csr_matrix((np.ones(len(ta)), (ta[:, 1], ta[:, 2])), shape=(h.n_items, h.n_tags))
    )
    fr = sp.coo_matrix(h.user_friends)
    return Projection.from_arrays(
        user_ids=[f"u{u}" for u in h.user_ids],
        artist_ids=[f"a{a}" for a in h.artist_ids],
        tag_names=[f"t{t}" for t in h.tag_ids],
        artist_listens=(ui.row, ui.col, ui.data),
        artist_tags=(it.row, it.col, it.data),
        friends=(fr.row, fr.col),
    )


def latency(
    engine: RecommendationEngine,
    users: list[str],
    kind: str,
    *,
    explain: bool,
    warm: int = 20,
    warm_users: list[str] | None = None,
    before_each: Callable[[], None] | None = None,
) -> tuple[str, str]:
    """Wall-clock and thread-CPU p50/p99 in ms (CPU time is what the request itself costs; on a
    shared machine wall time also holds the waits for a core), with the garbage collector set as
    the server sets it once its projection is loaded (``musicgraph.heap``). The first ``warm``
    users (or all of ``warm_users``, other users than those measured) are answered first;
    ``before_each`` runs before each measured request, outside its timing."""
    controls = Controls(limit=20, explain=explain)
    for u in users[:warm] if warm_users is None else warm_users:
        engine.recommend(u, kind=kind, controls=controls)  # type: ignore[arg-type]
    settle_for_serving()
    wall: list[float] = []
    cpu: list[float] = []
    method = ""
    for u in users:
        if before_each is not None:
            before_each()
        c0 = time.thread_time()
        t0 = time.perf_counter()
        res = engine.recommend(u, kind=kind, controls=controls)  # type: ignore[arg-type]
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        method = res.method
    text = (
        f"wall p50 {pct(wall, 50):6.2f} p99 {pct(wall, 99):6.2f} ms | "
        f"cpu p50 {pct(cpu, 50):6.2f} p99 {pct(cpu, 99):6.2f} ms"
    )
    return text, method


def explain_cost(engine: RecommendationEngine, users: list[str], kind: str) -> str:
    """What explanations add to one request: each user answered with explain off and on back to
    back (the order alternating), CPU of on minus off. Steadier than the difference of two
    separate runs' percentiles on a shared machine."""
    off, on = Controls(limit=20, explain=False), Controls(limit=20, explain=True)
    delta: list[float] = []
    for i, u in enumerate(users):
        cpu = {}
        for c in (off, on) if i % 2 else (on, off):
            c0 = time.thread_time()
            engine.recommend(u, kind=kind, controls=c)  # type: ignore[arg-type]
            cpu[c.explain] = (time.thread_time() - c0) * 1000
        delta.append(cpu[True] - cpu[False])
    return f"cpu p50 {pct(delta, 50):5.2f} p90 {pct(delta, 90):5.2f} ms"


def bench_hetrec(h: HetRec, n_requests: int) -> None:
    print("\n## HetRec Last.fm-2K: recommend latency (one thread, top 20, items = artists)")
    p = hetrec_projection(h)
    s = p.stats()
    print(
        f"graph: {s.users} users, {s.artists} artists, {s.tags} tags, {s.edges:,} edges, "
        f"{s.bytes_per_edge:.1f} B/edge (arrays), ids {s.id_bytes / 1e6:.1f} MB"
    )
    rng = np.random.default_rng(0)
    users = [p.users.ids[int(u)] for u in rng.integers(len(p.users), size=n_requests)]
    for mode in ("auto", "sampled"):
        engine = RecommendationEngine(p, mode=mode, hybrid=False)
        for explain in (False, True):
            text, method = latency(engine, users, "artist", explain=explain)
            print(
                f"mode={mode:8s} method={method:14s} explain={'on ' if explain else 'off'} "
                f"{text} ({len(users)} requests)"
            )
    engine = RecommendationEngine(p)
    t0 = time.perf_counter()
    engine.fit_hybrid()
    params = hybrid_params()
    print(
        f"hybrid fit (tuned params, w_als={params.get('w_als')}): "
        f"{time.perf_counter() - t0:.1f} s wall (the server fits in a worker thread)"
    )
    for explain in (False, True):
        text, method = latency(engine, users, "artist", explain=explain)
        print(
            f"default  method={method:14s} explain={'on ' if explain else 'off'} "
            f"{text} ({len(users)} requests)"
        )
    print(
        f"default  explanations' own cost (on minus off, same user back to back): "
        f"{explain_cost(engine, users, 'artist')}"
    )
    # what the server serves once its re-ranker is trained (MUSICGRAPH_HYBRID_RERANK=auto trains
    # one on its own graph; on HetRec, the stored one trained on seed 0's validation splits
    # stands in for it), which re-orders the best 100 candidates
    reranked = RecommendationEngine(p, hybrid_rerank="stored")
    reranked.fit_hybrid()
    hybrid_fit = reranked._hybrid
    if hybrid_fit is not None and hybrid_fit.model.reranker is not None:
        for explain in (False, True):
            text, method = latency(reranked, users, "artist", explain=explain)
            print(
                f"rerank   method={method:14s} explain={'on ' if explain else 'off'} "
                f"{text} ({len(users)} requests)"
            )
        # a server that has answered for a while: the explanations' per-pair tag answers
        # (TagNames) are mostly kept by then; warmed on 2,000 requests of other random users
        # (another seed), measured on the same users as above
        others = [
            p.users.ids[int(u)] for u in np.random.default_rng(1).integers(len(p.users), size=2000)
        ]
        text, method = latency(reranked, users, "artist", explain=True, warm_users=others)
        print(
            f"rerank   method={method:14s} explain=on  {text} (steady state: after 2,000 other requests)"
        )
        # no user vectors kept (a row the engine has not seen: the server computes them when it
        # applies a listen, and after each fit): EASE's x Z^T M, the SVD and ALS user vectors
        # and the tag profile are computed in the request
        text, method = latency(
            reranked, users, "artist", explain=True, before_each=hybrid_fit.model.forget_users
        )
        print(
            f"rerank   method={method:14s} explain=on  {text} (no user vectors kept: each "
            "computed in its request)"
        )
    else:
        print("rerank   (the stored re-ranker was not trained for these Hybrid parameters)")
    del reranked, hybrid_fit
    # a live listen of the user's top recommended artist: the next answer scores the changed row
    user = users[0]
    quiet = Controls(explain=False)
    top = engine.recommend(user, kind="artist", controls=quiet).items[0].item_id
    t0 = time.perf_counter()
    p.apply_listens(
        user,
        [("bench-live-track", int(time.time()), False)],
        track_artists={"bench-live-track": top},
    )
    after = engine.recommend(user, kind="artist", controls=quiet)
    ms = (time.perf_counter() - t0) * 1000
    gone = top not in {r.item_id for r in after.items}
    print(
        f"live listen of the top artist {top}: answer {ms:.1f} ms after applying it, "
        f"method={after.method}, {top} {'no longer recommended (heard)' if gone else 'STILL THERE'}"
    )


def bench_served(h: HetRec) -> None:
    print("\n## Hybrid served vs evaluated (HetRec protocol split, seed 0, NDCG@20)")
    from musicgraph.recommender.evaluate import ranking_metrics, training_data
    from musicgraph.recommender.hybrid import Hybrid

    split = protocol_split(h.user_items, 0)
    data = training_data(h, split.train, split.test)
    users = np.flatnonzero(np.diff(split.test.indptr)).astype(np.int64)
    pop = np.asarray((data.user_items > 0).sum(axis=0), dtype=np.float64).ravel()
    model = Hybrid(**hybrid_params(), random_state=0)
    model.fit(data)
    recs = model.recommend_many(users, n=20)
    evaluated = ranking_metrics(recs, split.test, users, pop, data.n_items, (20,))["ndcg@20"]
    p = hetrec_projection(h, split.train)
    engine = RecommendationEngine(p)
    engine.fit_hybrid()
    index = {a: i for i, a in enumerate(p.artists.ids)}
    controls = Controls(limit=20, explain=False)
    rows = []
    methods = set()
    for u in users.tolist():
        res = engine.recommend(p.users.ids[u], kind="artist", controls=controls)
        methods.add(res.method)
        row = [index[r.item_id] for r in res.items]
        rows.append(row + [0] * (20 - len(row)))
    served = ranking_metrics(np.array(rows), split.test, users, pop, data.n_items, (20,))["ndcg@20"]
    print(
        f"evaluated (Hybrid.recommend_many) {evaluated:.4f} | served (engine, "
        f"method={'/'.join(sorted(methods))}) {served:.4f} | {len(users)} test users"
    )


def ndcg_at(recs: list[int], relevant: set[int], k: int = 20) -> float:
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    gains = np.array([1.0 if r in relevant else 0.0 for r in recs[:k]])
    idcg = disc[: min(k, len(relevant))].sum()
    return float((gains * disc[: gains.size]).sum() / idcg) if idcg else 0.0


def bench_agreement(h: HetRec, n_users: int, budgets: list[int]) -> None:
    print("\n## Sampled walk vs exact PPR on HetRec (protocol split, seed 0; boost off)")
    split = protocol_split(h.user_items, 0)
    p = hetrec_projection(h, split.train)
    g = WalkGraph(p, "artist")
    test = sp.csr_matrix(split.test)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    users = np.random.default_rng(1).permutation(users)[:n_users]
    configs = {
        "listens": (TypeWeights(), 0.0),
        "listens, served ranking (score / deg^0.5)": (TypeWeights(), 0.5),
        "listens+tags+friends": (TypeWeights(listen=1.0, tag=0.5, friend=0.3), 0.0),
    }
    degree = p.user_artist.rev.length[: p.user_artist.rev.n_rows].astype(np.float64)
    for cname, (weights, beta) in configs.items():
        penalty = 1.0 / np.power(degree + 1.0, beta)
        base = WalkParams(alpha=0.5, weights=weights, boost=False, tol=1e-6)
        exact_top: dict[int, list[int]] = {}
        nd_exact: list[float] = []
        t_exact: list[float] = []
        seeds_of: dict[int, tuple[Any, Any]] = {}
        for u in users.tolist():
            ui = g.user_item
            seeds, w = history_seeds(ui.row(u).astype(np.int64), ui.row_weights(u), ui.row_times(u))
            seeds_of[u] = (seeds, w)
            t0 = time.perf_counter()
            res = exact_walk(g, seeds, w, base)
            t_exact.append((time.perf_counter() - t0) * 1000)
            exact_top[u] = _top_unseen(
                res.items, res.scores * penalty[res.items], set(seeds.tolist())
            )
            rel = set(test.indices[test.indptr[u] : test.indptr[u + 1]].tolist())
            nd_exact.append(ndcg_at(exact_top[u], rel))
        ne = float(np.mean(nd_exact))
        print(
            f"[{cname}] exact: NDCG@20 {ne:.4f}, {pct(t_exact, 50):.2f} ms p50 ({len(users)} users)"
        )
        for steps in budgets:
            params = WalkParams(alpha=0.5, weights=weights, boost=False, steps=steps)
            overlaps: list[float] = []
            nds: list[float] = []
            times: list[float] = []
            for u in users.tolist():
                seeds, w = seeds_of[u]
                t0 = time.perf_counter()
                res = pixie_walk(g, seeds, w, params, np.random.default_rng(u))
                times.append((time.perf_counter() - t0) * 1000)
                top = _top_unseen(res.items, res.scores * penalty[res.items], set(seeds.tolist()))
                overlaps.append(len(set(top) & set(exact_top[u])) / 20)
                rel = set(test.indices[test.indptr[u] : test.indptr[u + 1]].tolist())
                nds.append(ndcg_at(top, rel))
            ns = float(np.mean(nds))
            print(
                f"[{cname}] steps {steps:>7,}: top-20 overlap {np.mean(overlaps):.3f}, "
                f"NDCG@20 {ns:.4f} ({100 * (ns - ne) / ne:+.1f}% vs exact), "
                f"{pct(times, 50):.1f} ms p50"
            )


def _top_unseen(items: Any, scores: Any, seen: set[int], k: int = 20) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    out: list[int] = []
    for i in items[order].tolist():
        if i not in seen:
            out.append(i)
            if len(out) == k:
                break
    return out


def bench_agreement_synthetic(
    n_users: int, n_tracks: int, n_listens: int, n_users_eval: int
) -> None:
    print(
        f"\n## Sampled walk vs exact PPR on a synthetic graph ({n_listens:,} listens, "
        f"{n_users:,} users, {n_tracks:,} tracks; uniform random tastes, so rankings below the "
        "top are decided by small differences)"
    )
    a = synthetic_arrays(n_users, n_tracks, max(1, n_tracks // 10), n_listens)
    p = Projection.from_arrays(
        user_ids=[f"u{i}" for i in range(n_users)],
        track_ids=[f"t{i}" for i in range(n_tracks)],
        artist_ids=[f"a{i}" for i in range(max(1, n_tracks // 10))],
        listens=(a["users"], a["tracks"], np.ones(n_listens), a["times"]),
        track_artist=a["track_artist"],
    )
    g = WalkGraph(p, "track")
    degree = p.user_track.rev.length[: p.user_track.rev.n_rows].astype(np.float64)
    penalty = 1.0 / np.sqrt(degree + 1.0)
    users = np.random.default_rng(2).integers(n_users, size=n_users_eval).tolist()
    base = WalkParams(boost=False, tol=1e-4)
    exact_top: dict[int, list[int]] = {}
    exact_plain: dict[int, list[int]] = {}
    seeds_of: dict[int, tuple[Any, Any]] = {}
    from musicgraph.recommender.random_walk import ExactOperator

    op = ExactOperator(g, base.weights)
    t_exact = []
    for u in users:
        ui = g.user_item
        seeds, w = history_seeds(ui.row(u).astype(np.int64), ui.row_weights(u), ui.row_times(u))
        seeds_of[u] = (seeds, w)
        t0 = time.perf_counter()
        res = exact_walk(g, seeds, w, base, op=op)
        t_exact.append((time.perf_counter() - t0) * 1000)
        exact_top[u] = _top_unseen(res.items, res.scores * penalty[res.items], set(seeds.tolist()))
        exact_plain[u] = _top_unseen(res.items, res.scores, set(seeds.tolist()))
    print(f"exact: {pct(t_exact, 50):.0f} ms p50 per user ({len(users)} users)")
    for steps, expected in (
        (5_000, True),
        (10_000, True),
        (20_000, True),
        (20_000, False),
        (50_000, False),
    ):
        params = WalkParams(boost=False, steps=steps, expected_arrival=expected)
        overlaps = []
        plain = []
        for u in users:
            seeds, w = seeds_of[u]
            res = pixie_walk(g, seeds, w, params, np.random.default_rng(u))
            top = _top_unseen(res.items, res.scores * penalty[res.items], set(seeds.tolist()))
            overlaps.append(len(set(top) & set(exact_top[u])) / 20)
            top = _top_unseen(res.items, res.scores, set(seeds.tolist()))
            plain.append(len(set(top) & set(exact_plain[u])) / 20)
        print(
            f"steps {steps:>7,} expected_arrival={'on ' if expected else 'off'}: "
            f"top-20 overlap {np.mean(plain):.3f} (PPR ranking), "
            f"{np.mean(overlaps):.3f} (served ranking, score / deg^0.5)"
        )


def bench_store(db: Path | None) -> None:
    print("\n## Projection build rate from a real SQLite store (HetRec imported)")
    from musicgraph.graph.sqlite_store import SqliteGraphStore

    async def go(path: Path) -> None:
        store = SqliteGraphStore(path)
        await store.open()
        try:
            counts = await store.counts()
            if counts.artist_listens == 0:
                from musicgraph.ingest.hetrec import import_hetrec

                t0 = time.perf_counter()
                await import_hetrec(store, HETREC)
                print(f"(imported HetRec into {path} in {time.perf_counter() - t0:.1f} s)")
            t0 = time.perf_counter()
            p = await Projection.load(store)
            dt = time.perf_counter() - t0
            s = p.stats()
            print(
                f"Projection.load: {s.edges:,} edges in {dt:.2f} s = {s.edges / dt:,.0f} edges/s "
                f"({s.users} users, {s.artists} artists, {s.tags} tags)"
            )
        finally:
            await store.close()

    if db is not None:
        asyncio.run(go(db))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(go(Path(tmp) / "hetrec.db"))


def synthetic_arrays(
    n_users: int, n_tracks: int, n_artists: int, n_listens: int, seed: int = 0
) -> dict[str, Any]:
    """Listens with Zipf-like track popularity and log-normal user activity."""
    rng = np.random.default_rng(seed)
    track_pop = 1.0 / np.arange(1, n_tracks + 1) ** 0.8
    track_pop /= track_pop.sum()
    activity = rng.lognormal(0.0, 1.0, n_users)
    activity /= activity.sum()
    users = rng.choice(n_users, size=n_listens, p=activity)
    tracks = rng.choice(n_tracks, size=n_listens, p=track_pop)
    perm = rng.permutation(n_tracks)  # popularity is not track order
    tracks = perm[tracks]
    times = 1_600_000_000 + rng.integers(0, 365 * 86_400, size=n_listens)
    track_artist = rng.integers(0, n_artists, size=n_tracks)
    return {
        "users": users,
        "tracks": tracks,
        "times": times,
        "track_artist": track_artist,
    }


def bench_synthetic(n_users: int, n_tracks: int, n_listens: int, n_requests: int) -> None:
    n_artists = max(1, n_tracks // 10)
    print(
        f"\n## Synthetic: {n_listens:,} listens, {n_users:,} users, {n_tracks:,} tracks, "
        f"{n_artists:,} artists"
    )
    t0 = time.perf_counter()
    a = synthetic_arrays(n_users, n_tracks, n_artists, n_listens)
    print(f"generated in {time.perf_counter() - t0:.1f} s")
    user_ids = [f"u{i}" for i in range(n_users)]
    track_ids = [f"t{i}" for i in range(n_tracks)]
    artist_ids = [f"a{i}" for i in range(n_artists)]
    gc.collect()
    t0 = time.perf_counter()
    p = Projection.from_arrays(
        user_ids=user_ids,
        track_ids=track_ids,
        artist_ids=artist_ids,
        listens=(a["users"], a["tracks"], np.ones(n_listens), a["times"]),
        track_artist=a["track_artist"],
    )
    dt = time.perf_counter() - t0
    s = p.stats()
    print(
        f"build: {n_listens:,} listens -> {s.edges:,} edges in {dt:.1f} s "
        f"= {n_listens / dt:,.0f} listens/s"
    )
    print(
        f"memory: {s.edge_bytes / 1e6:.0f} MB in arrays = {s.bytes_per_edge:.1f} B/edge; "
        f"id maps {s.id_bytes / 1e6:.0f} MB more ({s.id_bytes / s.edges:.1f} B/edge)"
    )
    rng = np.random.default_rng(1)
    users = [user_ids[int(u)] for u in rng.integers(n_users, size=n_requests)]
    for steps in (5_000, 10_000, 20_000):
        engine = RecommendationEngine(p, params=WalkParams(steps=steps))
        for explain in (False, True):
            text, method = latency(engine, users, "track", explain=explain)
            print(
                f"steps={steps:>6,} method={method:14s} explain={'on ' if explain else 'off'} "
                f"{text} ({len(users)} requests)"
            )
    # per-listen update cost: existing users, a mix of known and new tracks
    n_upd = 20_000
    lu = rng.integers(n_users, size=n_upd)
    lt = rng.integers(n_tracks, size=n_upd)
    t0 = time.perf_counter()
    for i in range(n_upd):
        p.apply_listens(user_ids[int(lu[i])], [(track_ids[int(lt[i])], 1_700_000_000 + i, False)])
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    for i in range(2000):
        p.apply_listens(
            f"new-u{i}", [(f"new-t{i}", 1_700_000_000, False)], track_artists={f"new-t{i}": "a1"}
        )
    dt_new = time.perf_counter() - t1
    s2 = p.stats()
    print(
        f"update: {1e6 * dt / n_upd:.1f} µs per listen in place (existing ids), "
        f"{1e6 * dt_new / 2000:.1f} µs with a new user and track; "
        f"{s2.bytes_per_edge:.1f} B/edge after, {s2.compactions} compactions"
    )
    engine = RecommendationEngine(p)
    text, method = latency(engine, users[: n_requests // 2], "track", explain=True)
    print(f"after updates: method={method} explain=on {text}")


def calibrate() -> str:
    """A fixed kernel (float32 sparse matrix-vector product, 1M random nonzeros) as a yardstick of
    how fast the machine is right now; compare runs by it."""
    from scipy.sparse._sparsetools import csr_matvec

    rng = np.random.default_rng(0)
    m = sp.random(2000, 20000, density=0.025, format="csr", dtype=np.float32, random_state=rng)
    x = rng.random(20000).astype(np.float32)
    y = np.zeros(2000, dtype=np.float32)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        csr_matvec(2000, 20000, m.indptr, m.indices, m.data, x, y)
        times.append((time.perf_counter() - t0) * 1e6)
    return f"yardstick (matvec, {m.nnz:,} nnz): {pct(times, 50):.0f} µs p50"


def main() -> None:
    import os

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(calibrate())
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--only",
        nargs="+",
        default=["hetrec", "served", "agreement", "agreement-synthetic", "store", "synthetic"],
    )
    ap.add_argument("--data", type=Path, default=HETREC)
    ap.add_argument("--db", type=Path, default=None, help="a SQLite file with HetRec imported")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--agreement-users", type=int, default=400)
    ap.add_argument("--budgets", type=int, nargs="+", default=[5_000, 10_000, 20_000, 50_000])
    ap.add_argument("--listens", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--tracks", type=int, default=1_000_000)
    args = ap.parse_args()
    # one thread: a request is served by one thread, and BLAS threads fighting over the cores of
    # a shared machine make small products slower, not faster
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - comes with implicit
        pass
    else:
        threadpool_limits(limits=1)
    h = load_hetrec(args.data) if {"hetrec", "agreement", "served"} & set(args.only) else None
    if "hetrec" in args.only and h is not None:
        bench_hetrec(h, args.requests)
    if "served" in args.only and h is not None:
        bench_served(h)
    if "agreement" in args.only and h is not None:
        bench_agreement(h, args.agreement_users, args.budgets)
    if "agreement-synthetic" in args.only:
        bench_agreement_synthetic(20_000, 200_000, 2_000_000, 100)
    if "store" in args.only:
        bench_store(args.db)
    if "synthetic" in args.only:
        bench_synthetic(args.users, args.tracks, args.listens, args.requests)


if __name__ == "__main__":
    main()
