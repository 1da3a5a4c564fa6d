"""Throughput and latency of the GraphQL API at 32 concurrent clients, and Strawberry's overhead.

Two operations, on the demo graph:

(a) a user page: the user, 20 recent listens with their tracks and artists, and top artists;
(b) 20 recommended tracks with their reasons.

Over HTTP against ``musicgraph serve`` (``--workers`` uvicorn worker processes, default one),
driven by a load generator in its own process (keep-alive HTTP/1.1 over raw asyncio streams,
request bytes built up front, responses read by Content-Length: what wrk does, so the client does
not eat the server's CPU; its own CPU share is printed), each operation is measured as a client
sees it normally (the response cache answers repeated requests until a write changes something)
and executed every time (``Cache-Control: no-cache``); for (b) also with the engine running on
every call (a control value no request asked before, so the recommendation result cache never
answers either). The bench waits until the freshly started server is idle (the recommender fits
its Hybrid in the background after startup) before measuring.

In-process, each operation is executed by Strawberry (``schema.execute``) and by graphql-core
directly (``graphql.execute`` on the schema Strawberry built, with the same resolvers and the same
context; the document parsed and validated once, as Strawberry's parser and validation caches
do), twice: with the executor the API runs (``FastLeafExecutionContext``, musicgraph's plans on
top of Strawberry's execution context), so the two differ only by what Strawberry adds around
graphql-core, and with graphql-core's own executor. Prints numbers; never fails on time.

    musicgraph demo --db /tmp/mg-bench/demo.db          # once
    python bench/bench_api.py --db /tmp/mg-bench/demo.db
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import graphql
import httpx
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental

from musicgraph.auth import hash_token
from musicgraph.events import EventBus
from musicgraph.graph.sqlite_store import SqliteGraphStore
from musicgraph.recommender.engine import RecommendationEngine
from musicgraph.schema.build import build_schema
from musicgraph.schema.context import AppState, Context, Viewer
from musicgraph.schema.execution import FastLeafExecutionContext, weak_async_helpers
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


HTTP_SCENARIOS = (
    # (name, query, cache-control header, vary the novelty per request)
    ("(a) user page: response cache", "a", None, False),
    ("(a) user page: executed (no-cache)", "a", "no-cache", False),
    ("(b) recommendations: response cache", "b", None, False),
    ("(b) recommendations: executed, result cache", "b", "no-cache", False),
    ("(b) recommendations: executed, engine runs", "b", "no-cache", True),
)


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """The load generator (its own process, like wrk): ``clients`` keep-alive HTTP/1.1
    connections over raw asyncio streams, request bytes built up front (only the novelty varies
    when asked), responses read by Content-Length and checked for status 200 and no
    ``"errors"``. Returns latencies' percentiles and its own CPU time."""
    host, port = "127.0.0.1", spec["port"]
    head = (
        f"POST /graphql HTTP/1.1\r\nhost: {host}:{port}\r\n"
        f"authorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\n"
        + (f"cache-control: {spec['cache_control']}\r\n" if spec["cache_control"] else "")
    )

    def request(body: bytes) -> bytes:
        return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body

    fixed = request(json.dumps({"query": spec["query"], "variables": spec["variables"]}).encode())
    counter = itertools.count(1)

    def next_request() -> bytes:
        if not spec["vary"]:
            return fixed
        variables = {**spec["variables"], "novelty": next(counter) * 1e-9}
        return request(json.dumps({"query": spec["query"], "variables": variables}).encode())

    latencies: list[float] = []
    failures: list[str] = []
    remaining = spec["warmup"]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            writer.write(next_request())
            header = await reader.readuntil(b"\r\n\r\n")
            at = header.lower().index(b"content-length:") + 15
            body = await reader.readexactly(int(header[at : header.index(b"\r\n", at)]))
            latencies.append(time.perf_counter() - t)
            if not header.startswith(b"HTTP/1.1 200") or b'"errors"' in body:
                failures.append(header.split(b"\r\n", 1)[0].decode() + " " + body[:300].decode())

    connections = [await asyncio.open_connection(host, port) for _ in range(spec["clients"])]
    await asyncio.gather(*(client(r, w) for r, w in connections))  # warm-up
    latencies.clear()
    remaining = spec["requests"]
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(r, w) for r, w in connections))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    for _, writer in connections:
        writer.close()
    return {"latencies": latencies, "elapsed": elapsed, "cpu": cpu, "failures": failures[:3]}


def loadgen_main() -> None:
    """``bench_api.py --loadgen``: read the spec as JSON from stdin, print the result as JSON."""
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        run = asyncio.run
    Path(spec["output"]).write_text(json.dumps(run(_loadgen(spec))))


def listeners(port: int) -> int:
    """How many sockets listen on ``port`` (from /proc/net/tcp): one per worker of serve."""
    table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for c in map(str.split, table) if int(c[1][-4:], 16) == port and c[3] == "0A")


def connections_per_worker(port: int) -> list[int]:
    """How many established connections to ``port`` each server process holds (from ``ss``;
    empty when it is missing). With one listening socket shared by the workers (plain
    uvicorn), the kernel did not spread keep-alive connections evenly (31/1 was seen); serve's
    workers now listen on a socket each with SO_REUSEPORT, and the kernel hashes connections
    over them."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(Counter(re.findall(r"pid=(\d+)", out)).values(), reverse=True)


async def run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "result.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--loadgen", stdin=asyncio.subprocess.PIPE
        )
        await proc.communicate(json.dumps({**spec, "output": str(output)}).encode())
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({proc.returncode})")
        result: dict[str, Any] = json.loads(output.read_text())
        return result


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
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async with asyncio.timeout(300):
                ready = 0  # every worker must be ready: ask until many answers in a row say so
                while ready < 20:
                    try:
                        ok = (await client.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        ok = False
                    ready = ready + 1 if ok else 0
                    await asyncio.sleep(0.02 if ok else 0.2)
            # each worker listens once its app has started: wait for all (Linux: a socket each)
            for _ in range(1500):
                if args.workers == 1 or listeners(port) >= args.workers:
                    break
                await asyncio.sleep(0.2)
        # Ready means the projection is loaded; the recommender then still fits its Hybrid in
        # the background (seconds of CPU per worker). Measure a server at rest.
        quiet, waited = 0, time.perf_counter()
        while quiet < 4 and time.perf_counter() - waited < 180:
            before = process_tree_cpu(proc.pid)
            await asyncio.sleep(0.5)
            quiet = quiet + 1 if process_tree_cpu(proc.pid) - before < 0.05 else 0
        print(
            f"HTTP: musicgraph serve ({args.workers} worker(s)) on {url}; load generator: one "
            f"separate process, {args.clients} keep-alive HTTP/1.1 connections over raw asyncio "
            "streams (uvloop), request bytes built up front, responses read by Content-Length "
            "(as wrk does); CPU = server processes' CPU per request, and the load generator's"
        )
        for name, which, cache_control, vary in HTTP_SCENARIOS:
            if args.only and args.only not in name:
                continue
            query, variables = (
                (USER_PAGE, {"id": user_id}) if which == "a" else (RECOMMENDATIONS, {})
            )
            spec = {
                "port": port,
                "clients": args.clients,
                "requests": args.requests,
                "warmup": args.warmup,
                "query": query,
                "variables": variables,
                "cache_control": cache_control,
                "vary": vary,
            }
            server_cpu = process_tree_cpu(proc.pid)
            running = asyncio.create_task(run_loadgen(spec))
            await asyncio.sleep(1.0)  # connected and past the warm-up by then
            spread = connections_per_worker(port) if not running.done() else []
            result = await running
            server_cpu = process_tree_cpu(proc.pid) - server_cpu
            if result["failures"]:
                raise RuntimeError(f"{name}: requests failed: {result['failures']}")
            n = len(result["latencies"])
            print(
                summary(name, result["latencies"], result["elapsed"], server_cpu)
                + f"   load generator {result['cpu'] * 1000 / n:4.2f} ms/req"
                f" ({100 * result['cpu'] / result['elapsed']:.0f}% of a core)"
                + (f"   connections per worker {'/'.join(map(str, spread))}" if spread else "")
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


class CoreExecutor(ExecutorThrowingOnIncremental):
    """graphql-core's default executor, without the reference cycle the API's executor also
    breaks (see ``weak_async_helpers``): so the comparison shows what Strawberry adds, not
    garbage collections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        weak_async_helpers(self)


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
                d: graphql.DocumentNode = document,
                v: Callable[[], dict[str, Any]] = variables,
                executor: type[Any] = CoreExecutor,
            ) -> None:
                # graphql-core as a server would use it: the document parsed and validated once
                result = graphql.execute(
                    core_schema,
                    d,
                    variable_values=v(),
                    context_value=context(),
                    executor_class=executor,
                )
                if inspect.isawaitable(result):
                    result = await result
                if result.errors:
                    raise RuntimeError(result.errors)

            async def core_fast_call() -> None:
                await core_call(executor=FastLeafExecutionContext)

            cpu_per_request: dict[str, float] = {}
            for label, call in (
                ("strawberry", strawberry_call),
                ("graphql-core, same executor", core_fast_call),
                ("graphql-core, its own executor", core_call),
            ):
                lat, elapsed, used = await load(
                    call, clients=args.clients, requests=args.requests, warmup=args.warmup
                )
                cpu_per_request[label] = used / len(lat)
                print(summary(f"{name}: {label}", lat, elapsed, used))
            same = cpu_per_request["strawberry"] / cpu_per_request["graphql-core, same executor"]
            own = cpu_per_request["strawberry"] / cpu_per_request["graphql-core, its own executor"]
            print(
                f"  {name}: Strawberry uses {same:.2f}x the CPU per request of graphql-core with "
                f"the same executor (what Strawberry adds), {own:.2f}x that of graphql-core's own"
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
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--only", help="only the HTTP measurements whose name contains this")
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
    if sys.argv[1:] == ["--loadgen"]:
        loadgen_main()
    else:
        asyncio.run(main())
