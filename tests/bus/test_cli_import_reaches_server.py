"""``musicgraph import`` run from a terminal beside a running server on the same SQLite file: the
server hears the new listens (through the outbox), as if they had been recorded through it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from gql import GraphQLRequest

from tests.bus.test_multiworker import server_env, serving, ws_client
from tests.e2e.live import ALICE_TOKEN, seed_graph

EXPORT = (
    Path(__file__).resolve().parents[1] / "fixtures" / "real" / "listenbrainz_export_excerpt.jsonl"
)
LISTENS = "subscription { listenRecorded { listenedAt source track { title } } }"
RECS = "subscription { recommendationsUpdated(limit: 5) { kind items { itemId } } }"


async def cli_import(
    path: Path, db: Path, fmt: str = "listenbrainz", user: str | None = "alice"
) -> dict[str, Any]:
    """Run ``musicgraph import FMT PATH [--user USER]`` as a separate process against ``db`` and
    return its JSON summary."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "musicgraph.cli", "import", fmt, str(path)),
        *(("--user", user) if user is not None else ()),
        *("--db", str(db), "--json"),
        env={**server_env(), "MUSICGRAPH_LOG_LEVEL": "warning"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    summary: dict[str, Any] = json.loads(out)
    return summary


async def _collect(session: Any, query: str, n: int, into: list[dict[str, Any]]) -> None:
    async for result in session.subscribe(GraphQLRequest(query)):
        into.append(dict(result))
        if len(into) >= n:
            return


async def test_cli_import_reaches_a_running_server(tmp_path: Path) -> None:
    """The user's listenRecorded subscribers on a running server get every listen a separate
    ``musicgraph import`` process stores, with its track, and their recommendations are
    refreshed; importing the same file again stores and announces nothing new."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    async with serving(db, server_env()) as (url, _):
        heard: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        async with ws_client(url, ALICE_TOKEN) as listens, ws_client(url, ALICE_TOKEN) as recs:
            watch = asyncio.create_task(_collect(listens, LISTENS, 4, heard))
            watch_recs = asyncio.create_task(_collect(recs, RECS, 1, updated))
            await asyncio.sleep(0.5)  # the subscriptions are in place before the import
            for _ in range(2):
                again = await cli_import(EXPORT, db)
            await asyncio.wait_for(watch_recs, 30)
            for _ in range(300):
                if len(heard) >= 3:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # a second announcement would have arrived by now
            watch.cancel()
    titles = sorted(h["listenRecorded"]["track"]["title"] for h in heard)
    assert len(heard) == 3 and "Etched Headplate" in titles
    assert all(h["listenRecorded"]["source"] == "listenbrainz" for h in heard)
    assert updated[0]["recommendationsUpdated"]["kind"] in ("TRACK", "ARTIST")
    assert (again["imported"], again["duplicates"]) == (0, 3)
