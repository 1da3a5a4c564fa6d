"""Real ``musicgraph serve`` processes on one SQLite file: a listen recorded through one process
reaches the subscriptions and the recommender of another, through Redis or through the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.live import ALICE_TOKEN, Seed, seed_graph
from tests.e2e.test_serve import free_port, wait_until_ready

LISTEN_SUB = "subscription { listenRecorded { listenedAt track { title } } }"
RECS_SUB = "subscription { recommendationsUpdated(limit: 5) { userId kind items { itemId } } }"
RECORD = """mutation($listens: [ListenInput!]!) { recordListens(listens: $listens) {
  __typename ... on RecordListensSuccess { inserted } } }"""
NOWHERE = "http://127.0.0.1:9"  # the outside APIs: nothing leaves the machine


def server_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MUSICGRAPH_", "NEO4J_"))  # only what the test sets
    }
    apis = ("MUSICBRAINZ", "LASTFM", "SPOTIFY", "CYANITE")
    env.update({f"MUSICGRAPH_{api}_URL": NOWHERE for api in apis})
    env.update(
        MUSICGRAPH_SPOTIFY_AUTH_URL=NOWHERE,
        MUSICGRAPH_HEALTH_INTERVAL="3600",
        MUSICGRAPH_LOG_LEVEL="info",
        MUSICGRAPH_LOG_FORMAT="json",
        **extra,
    )
    return env


@asynccontextmanager
async def serving(
    db: Path, env: dict[str, str], *, workers: int | None = None, port: int | None = None
) -> AsyncIterator[tuple[str, int]]:
    """``musicgraph serve --db db [--workers N]`` on a free port; yields its URL and process id
    once /readyz says ready."""
    port = port or free_port()
    log = db.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "musicgraph.cli", "serve", "--db", str(db)),
            *("--port", str(port)),
            *(("--workers", str(workers)) if workers is not None else ()),
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            await wait_until_ready(url, proc)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"serve did not get ready:\n{log.read_text()[-4000:]}") from exc
        yield url, proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


def ws_client(url: str, token: str) -> Client:
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://") + "/graphql",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    return Client(transport=transport, fetch_schema_from_transport=False)


async def first(session: Any, query: str) -> dict[str, Any]:
    async for result in session.subscribe(GraphQLRequest(query)):
        return dict(result)
    raise AssertionError("the subscription ended without a result")


async def subscribers(url: str) -> int:
    """The server's ``musicgraph_event_subscribers`` gauge."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(url + "/metrics")).text
    found = re.search(r"^musicgraph_event_subscribers ([0-9.]+)$", text, re.M)
    assert found, "no musicgraph_event_subscribers in /metrics"
    return int(float(found.group(1)))


async def wait_for_subscribers(url: str, count: int) -> None:
    for _ in range(300):
        if await subscribers(url) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never had {count} bus subscribers")


async def record(url: str, title: str, at: int, client: httpx.AsyncClient | None = None) -> None:
    """Record one listen of alice through ``url`` (on ``client``'s connection when given)."""
    listens = [{"artist": "Yo La Tengo", "title": title, "listenedAt": at}]
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        r = await client.post(
            url + "/graphql",
            json={"query": RECORD, "variables": {"listens": listens}},
            headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        )
    assert r.json()["data"]["recordListens"] == {
        "__typename": "RecordListensSuccess",
        "inserted": 1,
    }, r.text


async def bus_backend(url: str) -> str:
    async with httpx.AsyncClient() as client:
        bus: dict[str, Any] = (await client.get(url + "/readyz")).json()["bus"]
    assert bus["ok"], bus
    return str(bus["backend"])


async def listen_crosses(db: Path, seed: Seed, env: dict[str, str], backend: str) -> float:
    """Serve twice on ``db``; subscribe on the second; record through the first. Returns the
    seconds from the mutation's answer to the second server's listenRecorded."""
    async with serving(db, env) as (a, _), serving(db, env) as (b, _):
        assert await bus_backend(a) == backend and await bus_backend(b) == backend
        base = await subscribers(b)
        async with ws_client(b, ALICE_TOKEN) as session:
            heard = asyncio.create_task(first(session, LISTEN_SUB))
            recs = asyncio.create_task(first(session, RECS_SUB))
            await wait_for_subscribers(b, base + 2)
            at = int(time.time()) - 5
            await record(a, "Autumn Sweater", at)
            answered = time.perf_counter()
            listen = (await asyncio.wait_for(heard, 15))["listenRecorded"]
            latency = time.perf_counter() - answered
            updated = (await asyncio.wait_for(recs, 15))["recommendationsUpdated"]
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(b + "/metrics")).text
    assert listen == {"listenedAt": at, "track": {"title": "Autumn Sweater"}}
    # published by the second server's engine after it applied the listen to its projection
    assert updated["userId"] == seed.users["alice"] and updated["kind"] == "TRACK"
    assert updated["items"]
    assert f'musicgraph_event_bus_up{{backend="{backend}"}} 1.0' in metrics
    received = re.search(
        r'^musicgraph_event_bus_events\{direction="received"\} ([0-9.]+)$', metrics, re.M
    )
    assert received and float(received.group(1)) >= 1
    print(f"\n{backend}: listen heard by the other server {latency * 1000:.0f} ms after the answer")
    return latency


async def test_a_listen_crosses_servers_through_redis(tmp_path: Path, redis_url: str) -> None:
    """With MUSICGRAPH_REDIS_URL, a listen recorded through one server reaches the other server's
    listenRecorded and recommendationsUpdated subscriptions."""
    db = tmp_path / "graph.db"
    seed = await seed_graph(db)
    await listen_crosses(db, seed, server_env(MUSICGRAPH_REDIS_URL=redis_url), "redis")


async def test_a_listen_crosses_servers_through_the_outbox(tmp_path: Path) -> None:
    """Without Redis, two processes serving one SQLite file (MUSICGRAPH_WORKERS=2, as
    ``serve --workers 2`` sets for its workers) hear each other through the outbox table."""
    db = tmp_path / "graph.db"
    seed = await seed_graph(db)
    await listen_crosses(db, seed, server_env(MUSICGRAPH_WORKERS="2"), "outbox")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def sockets_per_worker(server_pid: int, port: int, state: str) -> dict[int, set[str]]:
    """The TCP sockets on ``port`` in ``state`` (/proc/net/tcp's hex code: "01" established,
    "0A" listening), by inode, that each child of ``server_pid`` holds (the sockets among a
    process's descriptors, looked up in its /proc/<pid>/net/tcp)."""
    held: dict[int, set[str]] = {}
    for child in _children(server_pid):
        try:
            fds = list(Path(f"/proc/{child}/fd").iterdir())
            table = Path(f"/proc/{child}/net/tcp").read_text().splitlines()[1:]
        except OSError:  # the process is gone
            continue
        links = []
        for fd in fds:
            try:
                links.append(os.readlink(fd))
            except OSError:  # closed since the listing (a busy worker opens and closes files)
                continue
        inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
        held[child] = {
            cols[9]
            for cols in (line.split() for line in table)
            if int(cols[1].split(":")[1], 16) == port and cols[3] == state and cols[9] in inodes
        }
    return held


def connections_per_worker(server_pid: int, port: int) -> dict[int, int]:
    """Established TCP connections to ``port`` held by each child of ``server_pid``."""
    return {pid: len(s) for pid, s in sockets_per_worker(server_pid, port, "01").items()}


async def test_serve_with_two_workers_reaches_every_subscriber(tmp_path: Path) -> None:
    """``serve --workers 2`` with WebSocket subscribers on both workers (seen in /proc): listens
    recorded over one kept-alive connection (so through one worker) reach every subscriber of
    both."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    port = free_port()
    async with serving(db, server_env(), workers=2, port=port) as (url, pid):
        assert await bus_backend(url) == "outbox"
        # a worker listens (on a socket of its own) once its app has started: wait for both
        from tests.e2e.test_serve_workers import listeners_per_worker

        for _ in range(600):
            if sum(1 for held in listeners_per_worker(pid, port).values() if held) == 2:
                break
            await asyncio.sleep(0.1)
        clients: list[Client] = []
        sessions = []
        try:
            # open WebSockets until both workers hold at least one (the kernel picks the worker)
            for _ in range(24):
                clients.append(ws_client(url, ALICE_TOKEN))
                sessions.append(await clients[-1].connect_async())
                per_worker = connections_per_worker(pid, port)
                if len(clients) >= 2 and sum(1 for n in per_worker.values() if n) >= 2:
                    break
            assert sum(1 for n in per_worker.values() if n) >= 2, per_worker
            tasks = [asyncio.create_task(first(s, LISTEN_SUB)) for s in sessions]
            # a subscription registers when its worker handles the subscribe message: record
            # listens until every subscriber has heard one (each listen is new)
            at = int(time.time()) - 100
            async with httpx.AsyncClient(timeout=30) as one_connection:
                for n in range(30):
                    await record(url, f"Sugarcube {n}", at + n, one_connection)
                    done, _ = await asyncio.wait(tasks, timeout=0.5)
                    if len(done) == len(tasks):
                        break
            heard = [t for t in tasks if t.done()]
            assert len(heard) == len(tasks), f"{len(heard)} of {len(tasks)} subscribers heard"
        finally:
            for c in clients:
                await c.close_async()
