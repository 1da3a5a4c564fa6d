"""Benchmark: enrich N tracks (10,000 by default) against the local fake APIs with their rate
limits enforced by the servers. Prints numbers; never passes or fails on time.

Reported per source: requests the server accepted, the span between its first and last one, the
achieved rate as a fraction of the limit (target >= 0.95), rate-limit answers provoked (target 0);
for the run: wall time, peak RSS sampled through the run (flat means memory does not grow with the
queue); and for a second run on a fresh store with the same HTTP cache: how many requests the
cache saved (target: all of them).

The fake APIs run in their own process (``python -m tests.support.fake_apis``) so that serving
does not compete with the pipeline for one interpreter. Limits are scaled up from the real APIs'
(MusicBrainz allows 1 request per second) so that the run takes a minute or two.

    .venv/bin/python bench/bench_enrich.py [--tracks 10000] [--rate musicbrainz=200 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fake_apis import env_for  # noqa: E402

from musicgraph.enrichment.pipeline import EnrichmentPipeline  # noqa: E402
from musicgraph.events import EventBus  # noqa: E402
from musicgraph.graph.models import ENRICHMENT_SOURCES, TrackRef  # noqa: E402
from musicgraph.graph.sqlite_store import SqliteGraphStore  # noqa: E402
from musicgraph.settings import Settings  # noqa: E402

DEFAULT_RATES = {"musicbrainz": 200.0, "lastfm": 300.0, "spotify": 150.0, "cyanite": 100.0}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def catalogue(n: int) -> list[tuple[str, str]]:
    return [(f"Bench Artist {i % 1000}", f"Bench Song {i}") for i in range(n)]


async def seed(db: Path, pairs: list[tuple[str, str]]) -> None:
    store = SqliteGraphStore(db)
    await store.open()
    try:
        for start in range(0, len(pairs), 2000):
            chunk = pairs[start : start + 2000]
            tracks = await store.resolve_tracks([TrackRef(artist=a, title=t) for a, t in chunk])
            await store.enqueue_enrichment([t.id for t in tracks], ENRICHMENT_SOURCES)
    finally:
        await store.close()


async def run_once(db: Path, settings: Settings) -> dict[str, Any]:
    store = SqliteGraphStore(db)
    await store.open()
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()

    async def sample() -> None:
        while True:
            samples.append((time.perf_counter() - started, rss_mb()))
            await asyncio.sleep(1.0)

    sampler = asyncio.get_running_loop().create_task(sample())
    try:
        pipeline = EnrichmentPipeline(store, settings, EventBus())
        progress = await pipeline.run()
        counts = await store.enrichment_counts()
    finally:
        sampler.cancel()
        await store.close()
    wall = time.perf_counter() - started
    return {
        "wall_seconds": round(wall, 1),
        "counts": counts,
        "progress": {n: p.as_dict() for n, p in progress.items()},
        "rss_samples": samples,
    }


def admin(url: str, action: str, body: Any = None) -> Any:
    if body is None:
        return httpx.get(f"{url}/_admin/{action}", timeout=60).json()
    return httpx.post(f"{url}/_admin/{action}", json=body, timeout=60).json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--rate", action="append", default=[], help="source=requests_per_second")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    rates = dict(DEFAULT_RATES)
    rates.update({k: float(v) for k, v in (r.split("=", 1) for r in args.rate)})

    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_apis"]
        + [f"--rate={k}={v}" for k, v in rates.items()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        url = f"http://127.0.0.1:{port}"
        pairs = catalogue(args.tracks)
        admin(url, "tracks", {"tracks": pairs})
        work = Path(tempfile.mkdtemp(prefix="bench-enrich-"))
        cache = work / "http-cache.db"
        settings = Settings.from_env(
            env_for(url),
            env_file=None,
            http_cache=cache,
            enrich_concurrency=args.concurrency,
            cyanite_poll=1.0,
            health_interval=3600.0,
            **{f"{k}_rate": v for k, v in rates.items()},
        )
        print(f"# {args.tracks:,} tracks, limits (req/s): {rates}, concurrency {args.concurrency}")

        first_db = work / "first.db"
        asyncio.run(seed(first_db, pairs))
        admin(url, "reset_stats", {})
        first = asyncio.run(run_once(first_db, settings))
        stats = admin(url, "stats")
        print(f"\nfirst run: {first['wall_seconds']} s wall")
        print(
            f"{'source':<12}{'accepted':>9}{'span s':>8}{'rate/s':>9}{'limit':>7}"
            f"{'fraction':>9}{'429/503/29':>11}{'done':>7}{'skipped':>8}{'failed':>7}"
        )
        for name in ENRICHMENT_SOURCES:
            st = stats[name]
            span = st["span_seconds"] or 0.0
            achieved = (st["accepted"] - 1) / span if span > 0 else 0.0
            c = first["counts"].get(name, {})
            print(
                f"{name:<12}{st['accepted']:>9,}{span:>8.1f}{achieved:>9.1f}{rates[name]:>7.0f}"
                f"{achieved / rates[name]:>9.3f}{st['rate_limited']:>11}"
                f"{c.get('done', 0):>7,}{c.get('skipped', 0):>8,}{c.get('failed', 0):>7,}"
            )
        samples = first["rss_samples"]
        if samples:
            quarter = [
                samples[min(len(samples) - 1, int(len(samples) * q))]
                for q in (0.25, 0.5, 0.75, 1.0)
            ]
            print(
                "peak RSS (MB): "
                + f"{max(m for _, m in samples):.0f}; at 25/50/75/100% of the run: "
                + ", ".join(f"{m:.0f}" for _, m in quarter)
            )

        second_db = work / "second.db"
        asyncio.run(seed(second_db, pairs))
        admin(url, "reset_stats", {})
        second = asyncio.run(run_once(second_db, settings))
        stats2 = admin(url, "stats")
        sent = (
            sum(stats2[n]["requests"] for n in ENRICHMENT_SOURCES)
            + stats2["spotify_token_requests"]
        )
        first_total = (
            sum(stats[n]["requests"] for n in ENRICHMENT_SOURCES) + stats["spotify_token_requests"]
        )
        done2 = sum(c.get("done", 0) for c in second["counts"].values())
        print(
            f"\nsecond run (fresh store, same cache): {second['wall_seconds']} s wall, "
            f"{done2:,} (track, source) pairs done, requests sent {sent:,} of {first_total:,} "
            f"-> the cache saved {first_total - sent:,} ({(first_total - sent) / max(first_total, 1):.1%})"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
