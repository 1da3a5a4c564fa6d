"""What carrying events between processes costs: latency and CPU per event of each backend
(prints numbers; never fails on time).

    .venv/bin/python bench/bench_bus.py                  # local, outbox, and redis if redis-server is on PATH
    .venv/bin/python bench/bench_bus.py --redis-url redis://127.0.0.1:6379/0

Two buses of the same backend run in this one process (separate connections, as two workers
would have): ``ping`` publishes one ``listens.recorded`` event on the first and waits until the
second's subscriber has it, ``n`` times in a row (the latency a listen takes to reach another
worker); ``burst`` publishes ``n`` events at once and waits for the last (throughput). CPU is this
process's ``time.process_time`` (both sides, and the SQLite and Redis client threads), so it does
not depend on what else the machine runs; the outbox's polling cost while idle is reported too.
The outbox's ping is close to its poll interval (100 ms): each publish follows the receiver's last
poll, so it waits nearly a whole interval; events at random times wait half of it on average.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgraph.bus import OutboxEventBus, RedisEventBus, outbox_path
from musicgraph.events import Event, EventBus
from musicgraph.graph.sqlite_store import SqliteGraphStore


def listen(i: int) -> Event:
    rows = [{"track_id": f"tr_{i:016x}", "listened_at": 1_700_000_000 + i, "skipped": False}]
    return Event("listens.recorded", {"listens": rows}, user_id=f"u_{i % 100}")


async def measure(name: str, make: Callable[[int], EventBus], ping: int, burst: int) -> None:
    a, b = make(burst + 10), make(burst + 10)  # queues that hold a whole burst
    await a.start()
    await b.start()
    # one bus stands for both processes when it is local
    receiver = a if type(a) is EventBus else b
    sub = receiver.subscribe(["listens.recorded"])
    try:
        latencies = []
        cpu = time.process_time()
        for i in range(ping):
            start = time.perf_counter()
            a.publish(listen(i))
            await sub.get()
            latencies.append(time.perf_counter() - start)
        ping_cpu = (time.process_time() - cpu) / ping
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(burst):
            a.publish(listen(i))
        for _ in range(burst):
            await sub.get()
        wall = time.perf_counter() - wall
        burst_cpu = (time.process_time() - cpu) / burst
        idle = ""
        if isinstance(a, OutboxEventBus):
            cpu = time.process_time()
            await asyncio.sleep(2.0)
            idle = (
                f", idle polling {(time.process_time() - cpu) / 2 / 2 * 1000:.2f} ms CPU/s per bus"
            )
        latencies.sort()
        print(
            f"{name:7} ping: median {statistics.median(latencies) * 1000:7.2f} ms, "
            f"p95 {latencies[int(0.95 * len(latencies))] * 1000:7.2f} ms, "
            f"{ping_cpu * 1e6:6.0f} µs CPU/event | burst of {burst}: "
            f"{burst / wall:8.0f} events/s, {burst_cpu * 1e6:5.0f} µs CPU/event{idle}"
        )
    finally:
        await a.close()
        await b.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ping", type=int, default=200)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "graph.db"
        store = SqliteGraphStore(db)
        await store.open()
        await store.close()
        await measure("local", lambda q: EventBus(queue_size=q), args.ping, args.burst)
        events = outbox_path(db)
        await measure(
            "outbox", lambda q: OutboxEventBus(events, queue_size=q), args.ping, args.burst
        )
        url = args.redis_url
        if url is None:
            from tests.support.redis_server import running_redis

            try:
                with running_redis() as redis:
                    await measure(
                        "redis",
                        lambda q: RedisEventBus(redis.url, queue_size=q),
                        args.ping,
                        args.burst,
                    )
            except BaseException as exc:  # pytest's skip outside pytest: no redis-server
                if type(exc).__name__ not in ("Skipped", "Failed"):
                    raise
                print(f"redis   skipped: {exc}")
        else:
            await measure(
                "redis", lambda q: RedisEventBus(url, queue_size=q), args.ping, args.burst
            )


if __name__ == "__main__":
    asyncio.run(main())
