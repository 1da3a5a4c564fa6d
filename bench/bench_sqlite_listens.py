"""``SqliteGraphStore.record_listens`` alone: listens per second, wall clock and CPU (prints numbers;
never fails on time). The importer's end-to-end numbers are ``bench/bench_import.py``.

    .venv/bin/python bench/bench_sqlite_listens.py                     # 300k listens, 1 user
    .venv/bin/python bench/bench_sqlite_listens.py --users 1000 --batch 5000

Synthetic listens: ``--tracks`` tracks of ``--tracks / 10`` artists with Zipf popularity, spread
over ``--users`` users, one listen per second, written in batches of ``--batch``. CPU seconds are
the process's (the store works on aiosqlite's thread), so on a busy machine they say more than the
wall clock does. The last line records the first batch again: all duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from musicgraph.graph.models import ListenInput, TrackRef
from musicgraph.graph.sqlite_store import SqliteGraphStore

START = 1_600_000_000


async def run(listens: int, batch: int, tracks: int, users: int, seed: int) -> None:
    rng = random.Random(seed)
    refs = [TrackRef(f"Artist {i % max(1, tracks // 10)}", f"Song {i}") for i in range(tracks)]
    weights = [1 / (rank + 1) for rank in range(tracks)]
    with tempfile.TemporaryDirectory(prefix="musicgraph-bench-") as tmp:
        store = SqliteGraphStore(Path(tmp) / "bench.db")
        await store.open()
        try:
            user_ids = [u.id for u in await store.ensure_users([f"user{i}" for i in range(users)])]
            wall = cpu = 0.0
            first: list[ListenInput] = []
            done = 0
            while done < listens:
                n = min(batch, listens - done)
                picks = rng.choices(refs, weights, k=n)
                items = [
                    ListenInput(user_ids[rng.randrange(users)], ref, START + done + j, "bench")
                    for j, ref in enumerate(picks)
                ]
                first = first or items
                w, c = time.perf_counter(), time.process_time()
                await store.record_listens(items)
                wall += time.perf_counter() - w
                cpu += time.process_time() - c
                done += n
            counts = await store.counts()
            print(
                f"{listens:,} listens in batches of {batch:,} ({users:,} users, "
                f"{counts.tracks:,} tracks): {listens / wall:,.0f} listens/s wall, "
                f"{listens / cpu:,.0f} listens per CPU second"
            )
            w = time.perf_counter()
            result = await store.record_listens(first)
            print(
                f"first batch again: {result.duplicates:,} duplicates, "
                f"{len(first) / (time.perf_counter() - w):,.0f} listens/s"
            )
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listens", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.listens, args.batch, args.tracks, args.users, args.seed))


if __name__ == "__main__":
    main()
