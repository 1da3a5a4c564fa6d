"""``musicgraph import listenbrainz`` of loves and hates beside a running server on the same SQLite
file: the server applies the ratings (through the outbox) without a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.bus.test_cli_import_reaches_server import cli_import
from tests.bus.test_multiworker import server_env, serving
from tests.e2e.live import ALICE_TOKEN, seed_graph

RECS = (
    "{ recommendations(limit: 5) { ... on RecommendationList { items { itemId "
    "item { ... on Track { title artists { name } } } } } } }"
)


async def recommended(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    r = await client.post(
        url + "/graphql",
        json={"query": RECS},
        headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
    )
    items: list[dict[str, Any]] = r.json()["data"]["recommendations"]["items"]
    return items


async def test_hated_track_leaves_a_running_servers_recommendations(tmp_path: Path) -> None:
    """A hate imported by a separate process removes that track from the user's
    recommendations on a running server; the same import again changes nothing."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    async with serving(db, server_env()) as (url, _), httpx.AsyncClient(timeout=30) as client:
        before = await recommended(client, url)
        top = before[0]
        feedback = tmp_path / "feedback.jsonl"
        feedback.write_text(
            json.dumps(
                {
                    "recording_msid": "d23f4719-9212-49f0-ad08-ddbfbfc50d6f",
                    "recording_mbid": None,
                    "score": -1,
                    "created": 1_760_000_000,
                    "track_metadata": {
                        "artist_name": top["item"]["artists"][0]["name"],
                        "track_name": top["item"]["title"],
                    },
                }
            )
            + "\n"
        )
        outs = [(await cli_import(feedback, db))["feedback"] for _ in range(2)]
        for _ in range(200):
            after = await recommended(client, url)
            if top["itemId"] not in {i["itemId"] for i in after}:
                break
            await asyncio.sleep(0.05)
    assert top["itemId"] not in {i["itemId"] for i in after}
    assert (outs[0]["hated"], outs[1]["hated"], outs[1]["unchanged"]) == (1, 0, 1)
