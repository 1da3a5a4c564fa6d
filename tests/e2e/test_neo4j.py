"""The same API served from the Neo4j store (the real server of the test session)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from musicgraph.graph.base import GraphStore
from tests.e2e.conftest import server_settings
from tests.e2e.live import ALICE_TOKEN, LiveServer, execute, seed_store

pytestmark = pytest.mark.neo4j


async def test_api_on_neo4j(neo4j_store: GraphStore, neo4j_server: Any, tmp_path: Any) -> None:
    """On Neo4j the API reads a user's history, records listens, pages a search and recommends,
    exactly as on SQLite."""
    seed = await seed_store(neo4j_store)
    settings = server_settings(
        tmp_path / "unused.db",
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user or "neo4j",
        neo4j_password=neo4j_server.password,
        neo4j_database=neo4j_server.database,
    )
    server = LiveServer(settings).start()
    try:
        await asyncio.to_thread(server.wait_ready)
        me = await execute(
            server,
            "{ me { name listens(first: 5) { totalCount nodes { track { title artists { name } } } } "
            "topArtists(limit: 2) { artist { name } } } }",
            token=ALICE_TOKEN,
        )
        assert me["me"]["listens"]["totalCount"] == 15
        assert len(me["me"]["listens"]["nodes"]) == 5
        recorded = await execute(
            server,
            'mutation($t: Int!) { recordListens(listens: [{artist: "Low", title: "Words", '
            "listenedAt: $t}]) { ... on RecordListensSuccess { inserted } } }",
            {"t": int(time.time()) - 10},
            token=ALICE_TOKEN,
        )
        assert recorded["recordListens"]["inserted"] == 1
        search = await execute(
            server, '{ searchTracks(query: "s", first: 2) { totalCount edges { cursor } } }'
        )
        assert search["searchTracks"]["totalCount"] >= 2
        recs = await execute(
            server,
            "{ recommendations(limit: 3) { __typename ... on RecommendationList { items { itemId } } } }",
            token=ALICE_TOKEN,
        )
        assert recs["recommendations"]["__typename"] == "RecommendationList"
        assert seed.playlists["public"]
    finally:
        await asyncio.to_thread(server.stop)
