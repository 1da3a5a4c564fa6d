"""Throughput and latency of the GraphQL API at 32 concurrent clients, and Strawberry's overhead.

Two operations, on the demo graph:

(a) a user page: the user, 20 recent listens with their tracks and artists, and top artists;
(b) 20 recommended tracks with their reasons.

Each is measured three ways: over HTTP against ``musicgraph serve`` (one uvicorn worker, a separate
process), executed in-process by Strawberry (``schema.execute``), and executed in-process by
graphql-core directly (``graphql.graphql`` on the schema Strawberry built, with the same
resolvers and the same context), so the last two differ only by what Strawberry adds around
graphql-core. Prints numbers; never fails on time.

    musicgraph demo --db /tmp/mg-bench/demo.db          # once
    python bench/bench_api.py --db /tmp/mg-bench/demo.db
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import graphql
import httpx

from musicgraph.auth import hash_token
from musicgraph.events import EventBus
from musicgraph.graph.sqlite_store import SqliteGraphStore
from musicgraph.recommender.engine import RecommendationEngine
from musicgraph.schema.build import build_schema
from musicgraph.schema.context import AppState, Context, Viewer
from musicgraph.schema.loaders import Loaders
from musicgraph.settings import Settings

TOKEN = "mg_bench_token_do_not_use_elsewhere"

USER_PAGE = """query UserPage($id: ID!) { user(id: $id) { id name listenCount
  listens(first: 20) { edges { node { listenedAt source
    track { id title album artists { id name } } } } }
  topArtists(limit: 10) { count artist { id name } } } }"""

RECOMMENDATIONS = """query Recs { recommendations(limit: 20) { __typename
  ... on RecommendationList { method items { itemId score
    item { ... on Track { id title artists { id name } } }
    reasons { seedId seedKind share evidence } } }
  ... on Error { message } } }"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summary(name: str, latencies: list[float], elapsed: float) -> str:
    ms = [v * 1000 for v in latencies]
    return (
        f"  {name:<34} {len(ms) / elapsed:8.1f} req/s   p50 {percentile(ms, 0.50):7.2f} ms"
        f"   p99 {percentile(ms, 0.99):7.2f} ms   mean {statistics.fmean(ms):7.2f} ms"
    )


async def load(
    call: Callable[[], Awaitable[None]], *, clients: int, requests: int, warmup: int
) -> tuple[list[float], float]:
    """``clients`` concurrent loops sharing ``requests`` calls; latencies and wall time."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - start


async def pick_user(db: Path) -> str:
    """A user with a typical amount of history; give them the bench token."""
    store = SqliteGraphStore(db)
    await store.open()
    try:
        users = await store.list_users(limit=200)
        counts = [await store.count_listens(u.id) for u in users]
        ranked = sorted(zip(counts, (u.id for u in users), strict=True))
        user_id = ranked[len(ranked) // 2][1]
        await store.set_user_token_hash(user_id, hash_token(TOKEN))
        return user_id
    finally:
        await store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def bench_http(db: Path, user_id: str, args: argparse.Namespace) -> None:
    port = free_port()
    env = {**os.environ, "MUSICGRAPH_LOG_LEVEL": "warning", "MUSICGRAPH_LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "musicgraph.cli",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(
            base_url=url, limits=limits, headers=headers, timeout=60
        ) as client:
            async with asyncio.timeout(300):
                while True:
                    try:
                        if (await client.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
            print(f"HTTP: musicgraph serve (1 worker) on {url}, {args.clients} concurrent clients")
            for name, query, variables in (
                ("(a) user page", USER_PAGE, {"id": user_id}),
                ("(b) recommendations, 20 + reasons", RECOMMENDATIONS, {}),
            ):
                body = {"query": query, "variables": variables}

                async def call(body: dict[str, Any] = body) -> None:
                    r = await client.post("/graphql", json=body)
                    data = r.json()
                    if r.status_code != 200 or data.get("errors"):
                        raise RuntimeError(f"bench request failed: {r.status_code} {data}")

                lat, elapsed = await load(
                    call, clients=args.clients, requests=args.requests, warmup=args.warmup
                )
                print(summary(name, lat, elapsed))
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


async def bench_in_process(db: Path, user_id: str, args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, env_file=None, db_path=db)
    store = SqliteGraphStore(db)
    await store.open()
    bus = EventBus()
    engine = await RecommendationEngine.load(store, bus)
    state = AppState(settings=settings, store=store, bus=bus, engine=engine, projection_loaded=True)
    schema = build_schema(settings)
    core_schema = schema._schema
    (user,) = await store.get_users([user_id])

    def context() -> Context:
        return Context(
            state=state,
            viewer=Viewer(user=user),
            loaders=Loaders(store, page_size=settings.max_page_size),
        )

    print(f"\nIn-process, {args.clients} concurrent executions (same schema, resolvers, context)")
    try:
        for name, query, variables in (
            ("(a) user page", USER_PAGE, {"id": user_id}),
            ("(b) recommendations", RECOMMENDATIONS, {}),
        ):

            async def strawberry_call(q: str = query, v: dict[str, Any] = variables) -> None:
                result = await schema.execute(q, variable_values=v, context_value=context())
                if result.errors:
                    raise RuntimeError(result.errors)

            async def core_call(q: str = query, v: dict[str, Any] = variables) -> None:
                result = await graphql.graphql(
                    core_schema, q, variable_values=v, context_value=context()
                )
                if result.errors:
                    raise RuntimeError(result.errors)

            rates = {}
            for label, call in (("strawberry", strawberry_call), ("graphql-core", core_call)):
                lat, elapsed = await load(
                    call, clients=args.clients, requests=args.requests, warmup=args.warmup
                )
                rates[label] = len(lat) / elapsed
                print(summary(f"{name}: {label}", lat, elapsed))
            print(
                f"  {name}: Strawberry takes {rates['graphql-core'] / rates['strawberry']:.2f}x "
                "graphql-core's time per request"
            )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, default=Path("/tmp/mg-bench/demo.db"))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="per measurement")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    if not args.db.is_file():
        sys.exit(f"no database at {args.db}: run `musicgraph demo --db {args.db}` first")
    user_id = await pick_user(args.db)
    print(f"demo graph {args.db}, user {user_id}, {os.cpu_count()} CPUs\n")
    if not args.skip_http:
        await bench_http(args.db, user_id, args)
    await bench_in_process(args.db, user_id, args)


if __name__ == "__main__":
    asyncio.run(main())
