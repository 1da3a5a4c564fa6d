"""The response cache: repeated queries are answered from it, per viewer, and any write (through
this process or another worker on the same database) makes the next answer fresh."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from musicgraph.app import GraphQLView
from musicgraph.schema.response_cache import ResponseCache
from tests.e2e.live import ALICE_TOKEN, BOB_TOKEN, LiveServer, Seed, seed_graph
from tests.e2e.test_serve import free_port, wait_until_ready

USER_PAGE = """query UserPage($id: ID!) { user(id: $id) { id name listenCount
  listens(first: 20) { edges { node { listenedAt source track { title artists { name } } } } }
  topArtists(limit: 10) { count artist { name } } } }"""

RECORD = """mutation($listens: [ListenInput!]!) { recordListens(listens: $listens) {
  __typename ... on RecordListensSuccess { inserted } } }"""


def response_cache(live: LiveServer) -> ResponseCache:
    endpoints = [getattr(r, "endpoint", None) for r in live.app.routes]
    (view,) = {id(e): e for e in endpoints if isinstance(e, GraphQLView)}.values()
    cache: ResponseCache = view.responses
    return cache


async def ask(
    url: str, query: str, variables: dict[str, Any], token: str | None, **headers: str
) -> dict[str, Any]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_repeated_query_is_served_from_the_cache_until_a_write(
    live: LiveServer, seed: Seed
) -> None:
    """The second identical request is a cache hit with the same answer; no-cache executes; a
    listen recorded through the API makes the next answer include it."""
    cache = response_cache(live)
    alice = {"id": seed.users["alice"]}
    first = await ask(live.url, USER_PAGE, alice, ALICE_TOKEN)
    hits = cache.hits
    assert await ask(live.url, USER_PAGE, alice, ALICE_TOKEN) == first
    assert cache.hits == hits + 1
    assert await ask(live.url, USER_PAGE, alice, ALICE_TOKEN, **{"Cache-Control": "no-cache"}) == (
        first
    )
    assert cache.hits == hits + 1
    listened_at = int(time.time()) - 1
    listen = {"artist": "Low", "title": "Words", "listenedAt": listened_at}
    recorded = await ask(live.url, RECORD, {"listens": [listen]}, ALICE_TOKEN)
    assert recorded["data"]["recordListens"]["inserted"] == 1
    after = (await ask(live.url, USER_PAGE, alice, ALICE_TOKEN))["data"]["user"]
    assert after["listenCount"] == first["data"]["user"]["listenCount"] + 1
    newest = after["listens"]["edges"][0]["node"]
    assert newest["listenedAt"] == listened_at and newest["track"]["title"] == "Words"


async def test_cached_answers_never_cross_viewers(live: LiveServer, seed: Seed) -> None:
    """alice's cached page is not what bob or an anonymous client get for the same request:
    her listens stay private."""
    alice = {"id": seed.users["alice"]}
    mine = (await ask(live.url, USER_PAGE, alice, ALICE_TOKEN))["data"]["user"]
    await ask(live.url, USER_PAGE, alice, ALICE_TOKEN)
    assert mine["listens"] is not None and mine["listenCount"] > 0
    for token in (BOB_TOKEN, None):
        theirs = (await ask(live.url, USER_PAGE, alice, token))["data"]["user"]
        assert theirs is None or (theirs["listens"] is None and theirs["listenCount"] is None)


async def test_answers_with_errors_or_clock_dependent_fields_are_not_cached(
    live: LiveServer, seed: Seed
) -> None:
    """A request that failed (here: a page over the limit) and a query reading the clock
    (listeningStats) are executed every time."""
    cache = response_cache(live)
    too_big = "query($id: ID!) { user(id: $id) { listens(first: 1000) { edges { cursor } } } }"
    stats = "{ listeningStats { __typename ... on ListeningStats { listenCount end } } }"
    for query, variables in ((too_big, {"id": seed.users["alice"]}), (stats, {})):
        hits = cache.hits
        for _ in range(2):
            await ask(live.url, query, variables, ALICE_TOKEN)
        assert cache.hits == hits


async def test_a_listen_through_one_worker_changes_the_next_answer_of_every_worker(
    tmp_path: Path,
) -> None:
    """Two server processes on one SQLite file (as ``serve --workers 2`` runs them) both cache
    alice's page; a listen recorded through the first changes the next page from both."""
    db = tmp_path / "graph.db"
    seed = await seed_graph(db)
    env = {**os.environ, "MUSICGRAPH_LOG_LEVEL": "warning", "MUSICGRAPH_LOG_FORMAT": "json"}
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"serve-{port}.log" for port in ports]
    procs = []
    for port, log in zip(ports, logs, strict=True):
        with log.open("wb") as err:
            procs.append(
                await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "musicgraph.cli", "serve", "--db", str(db)),
                    *("--port", str(port)),
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=err,
                )
            )
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    alice = {"id": seed.users["alice"]}
    try:
        for url, proc, log in zip(urls, procs, logs, strict=True):
            await wait_until_ready(url, proc, log)
        before = [await ask(url, USER_PAGE, alice, ALICE_TOKEN) for url in urls]
        assert before[0] == before[1]
        assert [await ask(url, USER_PAGE, alice, ALICE_TOKEN) for url in urls] == before
        listened_at = int(time.time()) - 1
        listen = {"artist": "Galaxie 500", "title": "Tugboat", "listenedAt": listened_at}
        recorded = await ask(urls[0], RECORD, {"listens": [listen]}, ALICE_TOKEN)
        assert recorded["data"]["recordListens"]["inserted"] == 1
        for url in urls:
            page = (await ask(url, USER_PAGE, alice, ALICE_TOKEN))["data"]["user"]
            assert page["listenCount"] == before[0]["data"]["user"]["listenCount"] + 1, url
            newest = page["listens"]["edges"][0]["node"]
            assert newest["listenedAt"] == listened_at, url
            assert newest["track"]["title"] == "Tugboat", url
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            await proc.wait()
