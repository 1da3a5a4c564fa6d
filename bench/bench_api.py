"""Throughput and latency of the GraphQL API at 32 concurrent clients, and Strawberry's overhead.

Two operations, on the demo graph:

(a) a user page: the user, 20 recent listens with their tracks and artists, and top artists;
(b) 20 recommended tracks with their reasons.

Each is measured three ways: over HTTP against ``musicgraph serve`` (``--workers`` uvicorn
workers, default one, in separate processes), executed in-process by Strawberry
(``schema.execute``), and executed in-process by graphql-core directly (``graphql.graphql`` on
the schema Strawberry built, with the same resolvers and the same context; the document parsed
and validated once, as Strawberry's parser and validation caches do), so the last two differ
only by what Strawberry adds around graphql-core.
The "uncached" recommendations ask for a control value no request asked before, so the result
cache never answers and every call runs the engine. Prints numbers; never fails on time.

    musicgraph demo --db /tmp/mg-bench/demo.db          # once
    python bench/bench_api.py --db /tmp/mg-bench/demo.db
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import os
import signal
import socket
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

RECOMMENDATIONS = """query Recs($novelty: Float! = 0) {
  recommendations(limit: 20, controls: {novelty: $novelty}) { __typename
  ... on RecommendationList { method items { itemId score
    item { ... on Track { id title artists { id name } } }
    reasons { seedId seedKind share evidence } } }
  ... on Error { message } } }"""


def SCENARIOS(user_id: str) -> list[tuple[str, str, Callable[[], dict[str, Any]]]]:
    """(name, query, variables per call). The uncached variant asks for a novelty no request
    asked before, so the result cache never answers and every call runs the engine."""
    novelty = itertools.count(1)
    return [
        ("(a) user page", USER_PAGE, lambda: {"id": user_id}),
        ("(b) recommendations (cached)", RECOMMENDATIONS, lambda: {}),
        (
            "(b) recommendations (uncached)",
            RECOMMENDATIONS,
            lambda: {"novelty": next(novelty) * 1e-9},
        ),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summary(name: str, latencies: list[float], elapsed: float, cpu: float) -> str:
    ms = [v * 1000 for v in latencies]
    return (
        f"  {name:<40} {len(ms) / elapsed:7.1f} req/s   p50 {percentile(ms, 0.50):7.2f} ms"
        f"   p99 {percentile(ms, 0.99):7.2f} ms   CPU {cpu * 1000 / len(ms):5.2f} ms/req"
    )


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its child processes (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def load(
    call: Callable[[], Awaitable[None]],
    *,
    clients: int,
    requests: int,
    warmup: int,
    cpu: Callable[[], float] = time.process_time,
) -> tuple[list[float], float, float]:
    """``clients`` concurrent loops sharing ``requests`` calls: latencies, wall time, and the CPU
    time ``cpu`` counted meanwhile (the server's, so numbers mean something on a busy machine)."""
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

    start, cpu_start = time.perf_counter(), cpu()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - start, cpu() - cpu_start


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
        "--workers",
        str(args.workers),
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
                ready = 0  # every worker must be ready: ask until many answers in a row say so
                while ready < 20:
                    try:
                        ok = (await client.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        ok = False
                    ready = ready + 1 if ok else 0
                    await asyncio.sleep(0.02 if ok else 0.2)
            print(
                f"HTTP: musicgraph serve ({args.workers} worker(s)) on {url}, "
                f"{args.clients} concurrent clients (httpx, same machine)"
            )
            for name, query, variables in SCENARIOS(user_id):

                async def call(q: str = query, v: Callable[[], dict[str, Any]] = variables) -> None:
                    r = await client.post("/graphql", json={"query": q, "variables": v()})
                    data = r.json()
                    if r.status_code != 200 or data.get("errors"):
                        raise RuntimeError(f"bench request failed: {r.status_code} {data}")

                lat, elapsed, used = await load(
                    call,
                    clients=args.clients,
                    requests=args.requests,
                    warmup=args.warmup,
                    cpu=lambda: process_tree_cpu(proc.pid),
                )
                print(summary(name, lat, elapsed, used))
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
        for name, query, variables in SCENARIOS(user_id):
            document = graphql.parse(query)
            assert not graphql.validate(core_schema, document)

            async def strawberry_call(
                q: str = query, v: Callable[[], dict[str, Any]] = variables
            ) -> None:
                result = await schema.execute(q, variable_values=v(), context_value=context())
                if result.errors:
                    raise RuntimeError(result.errors)

            async def core_call(
                d: graphql.DocumentNode = document, v: Callable[[], dict[str, Any]] = variables
            ) -> None:
                # graphql-core as a server would use it: the document parsed and validated once
                result = graphql.execute(
                    core_schema, d, variable_values=v(), context_value=context()
                )
                if inspect.isawaitable(result):
                    result = await result
                if result.errors:
                    raise RuntimeError(result.errors)

            cpu_per_request: dict[str, float] = {}
            for label, call in (("strawberry", strawberry_call), ("graphql-core", core_call)):
                lat, elapsed, used = await load(
                    call, clients=args.clients, requests=args.requests, warmup=args.warmup
                )
                cpu_per_request[label] = used / len(lat)
                print(summary(f"{name}: {label}", lat, elapsed, used))
            ratio = cpu_per_request["strawberry"] / cpu_per_request["graphql-core"]
            print(f"  {name}: Strawberry uses {ratio:.2f}x graphql-core's CPU per request")
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
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args()
    if not args.db.is_file():
        sys.exit(f"no database at {args.db}: run `musicgraph demo --db {args.db}` first")
    user_id = await pick_user(args.db)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"demo graph {args.db}, user {user_id}, {os.cpu_count()} CPUs, load average {load}\n")
    if not args.skip_http:
        await bench_http(args.db, user_id, args)
    if not args.skip_in_process:
        await bench_in_process(args.db, user_id, args)
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
