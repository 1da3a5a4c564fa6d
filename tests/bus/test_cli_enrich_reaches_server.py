"""``musicgraph enrich`` run from a terminal beside a running server on the same SQLite file: the
server's ``enrichmentProgress`` subscribers watch the command's run (through the outbox)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from gql import GraphQLRequest

from musicgraph.graph.sqlite_store import SqliteGraphStore
from tests.bus.test_multiworker import server_env, serving, ws_client
from tests.e2e.live import ADMIN_TOKEN, CATALOGUE, seed_graph
from tests.support.fake_apis import FakeApis, FakeWorld

PROGRESS = "subscription { enrichmentProgress { source state done pending } }"


async def _queue_lastfm(db: Path, track_ids: list[str]) -> None:
    store = SqliteGraphStore(db)
    await store.open()
    try:
        await store.enqueue_enrichment(track_ids, ["lastfm"])
    finally:
        await store.close()


async def _until_finished(session: Any, seen: list[dict[str, Any]]) -> None:
    async for result in session.subscribe(GraphQLRequest(PROGRESS)):
        seen.append(result["enrichmentProgress"])
        if seen[-1]["source"] == "lastfm" and seen[-1]["state"] == "finished":
            return


async def test_cli_enrich_progress_reaches_a_running_server(tmp_path: Path) -> None:
    """A subscriber of a one-worker server hears the lastfm progress of a separate
    ``musicgraph enrich`` process, up to its finished state with every track done."""
    db = tmp_path / "graph.db"
    seed = await seed_graph(db)
    await _queue_lastfm(db, sorted(seed.tracks.values()))
    world = FakeWorld()
    world.add_tracks([(artist, title) for artist, title, _, _ in CATALOGUE])
    with FakeApis(world) as fake:
        env = server_env(MUSICGRAPH_ADMIN_TOKEN=ADMIN_TOKEN)
        async with serving(db, env) as (url, _):
            seen: list[dict[str, Any]] = []
            async with ws_client(url, ADMIN_TOKEN) as session:
                watcher = asyncio.create_task(_until_finished(session, seen))
                await asyncio.sleep(0.5)  # the subscription is in place before the run starts
                cli_env = {**server_env(), **fake.env(), "MUSICGRAPH_LOG_LEVEL": "warning"}
                proc = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "musicgraph.cli", "enrich", "--db", str(db)),
                    *("--sources", "lastfm", "--no-progress"),
                    env=cli_env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await asyncio.wait_for(proc.communicate(), 120)
                assert proc.returncode == 0, err.decode()
                await asyncio.wait_for(watcher, 30)
    final = seen[-1]
    assert final["done"] == len(seed.tracks) and final["pending"] == 0
    assert all(p["source"] == "lastfm" for p in seen)
