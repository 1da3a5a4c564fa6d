"""``musicgraph import hetrec`` beside a running server on the same SQLite file: its one
``graph.imported`` event (through the outbox) makes the server build its projection again, so the
imported users get recommendations without a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.bus.test_cli_import_reaches_server import cli_import
from tests.bus.test_multiworker import server_env, serving
from tests.e2e.live import ADMIN_TOKEN, seed_graph
from tests.recommender.test_engine import write_hetrec


async def graphql(client: httpx.AsyncClient, url: str, query: str) -> dict[str, Any]:
    r = await client.post(
        url + "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_hetrec_import_reaches_a_running_server(tmp_path: Path) -> None:
    """Before the import the server does not know hetrec-3; after it, without a restart, it
    recommends hetrec-3 the artist the other listeners of its artist play, with reasons."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    folder = write_hetrec(tmp_path / "hetrec")
    async with (
        serving(db, server_env(MUSICGRAPH_ADMIN_TOKEN=ADMIN_TOKEN)) as (url, _),
        httpx.AsyncClient(timeout=30) as client,
    ):
        summary = await cli_import(folder, db, "hetrec", user=None)
        assert summary["users"] == 3
        user = (await graphql(client, url, '{ user(name: "hetrec-3") { id } }'))["user"]
        query = (
            f'{{ recommendations(user: "{user["id"]}", kind: ARTIST, limit: 3) {{ __typename '
            "... on RecommendationList { items { item { ... on Artist { name } } "
            "reasons { seedId evidence } } } ... on Error { message } } }"
        )
        for _ in range(200):
            recs = (await graphql(client, url, query))["recommendations"]
            if recs["__typename"] == "RecommendationList":
                break
            await asyncio.sleep(0.05)
    assert recs["__typename"] == "RecommendationList", recs
    assert recs["items"][0]["item"]["name"] == "Beta"
    assert "listeners of Alpha also play Beta" in recs["items"][0]["reasons"][0]["evidence"]
