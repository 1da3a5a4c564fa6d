"""Subscriptions over a real WebSocket (graphql-transport-ws) with the gql client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from gql import GraphQLRequest

from tests.e2e.conftest import server_settings
from tests.e2e.live import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    CAROL_TOKEN,
    LiveServer,
    Seed,
    execute,
    seed_graph,
)

LISTEN_SUB = (
    "subscription { listenRecorded { listenedAt source track { title artists { name } } } }"
)
RECS_SUB = """subscription { recommendationsUpdated(limit: 5) {
  userId kind method items { itemId score reasons { evidence } } } }"""


async def wait_for_subscribers(live: LiveServer, count: int) -> None:
    """The server's bus has ``count`` more subscribers (the subscribe messages arrived)."""
    for _ in range(500):
        if live.state.bus.subscriber_count >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(
        f"expected {count} bus subscribers, have {live.state.bus.subscriber_count}"
    )


async def first(session: Any, query: str) -> dict[str, Any]:
    async for result in session.subscribe(GraphQLRequest(query)):
        return dict(result)
    raise AssertionError("the subscription ended without a result")


async def test_listen_recorded_and_recommendations_updated(live: LiveServer, seed: Seed) -> None:
    """A listen recorded over HTTP reaches the user's WebSocket subscribers as listenRecorded,
    followed by recommendationsUpdated with the new list."""
    async with live.ws_client(ALICE_TOKEN) as session:
        before = live.state.bus.subscriber_count
        listen_task = asyncio.create_task(first(session, LISTEN_SUB))
        recs_task = asyncio.create_task(first(session, RECS_SUB))
        await wait_for_subscribers(live, before + 2)
        at = int(time.time()) - 3
        recorded = await execute(
            live,
            'mutation($t: Int!) { recordListens(listens: [{artist: "Yo La Tengo", '
            'title: "Autumn Sweater", listenedAt: $t}]) { __typename } }',
            {"t": at},
            token=ALICE_TOKEN,
        )
        assert recorded["recordListens"]["__typename"] == "RecordListensSuccess"
        listen = (await asyncio.wait_for(listen_task, 60))["listenRecorded"]
        recs = (await asyncio.wait_for(recs_task, 60))["recommendationsUpdated"]
    assert listen == {
        "listenedAt": at,
        "source": "api",
        "track": {"title": "Autumn Sweater", "artists": [{"name": "Yo La Tengo"}]},
    }
    assert recs["userId"] == seed.users["alice"] and recs["kind"] == "TRACK"
    assert recs["items"] and recs["items"][0]["reasons"]


async def test_other_users_listens_are_not_delivered(live: LiveServer) -> None:
    """A subscriber hears only their own listens: another user's listen does not reach them."""
    async with live.ws_client(ALICE_TOKEN) as session:
        before = live.state.bus.subscriber_count
        task = asyncio.create_task(first(session, LISTEN_SUB))
        await wait_for_subscribers(live, before + 1)
        await execute(
            live,
            'mutation($t: Int!) { recordListens(listens: [{artist: "Low", title: "Lazy", '
            "listenedAt: $t}]) { __typename } }",
            {"t": int(time.time()) - 2},
            token=CAROL_TOKEN,
        )
        done, _ = await asyncio.wait({task}, timeout=0.5)
        assert not done
        task.cancel()


async def test_api_health_starts_with_a_snapshot(live: LiveServer) -> None:
    """apiHealth answers at once with every source and the store."""
    async with live.ws_client() as session:
        health = await asyncio.wait_for(
            first(session, "subscription { apiHealth { name kind status } }"), 10
        )
    assert any(h["name"] == "store" and h["kind"] == "store" for h in health["apiHealth"])


async def test_shutdown_completes_subscriptions(tmp_path: Path) -> None:
    """Stopping the server ends open subscriptions (the client's iteration finishes) and the
    server exits cleanly."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    server = LiveServer(server_settings(db)).start()
    ended = asyncio.Event()
    try:
        async with server.ws_client(CAROL_TOKEN) as session:

            async def listen() -> None:
                try:
                    async for _ in session.subscribe(GraphQLRequest(LISTEN_SUB)):
                        pass
                finally:
                    ended.set()

            task = asyncio.create_task(listen())
            await wait_for_subscribers(server, 1)
            await asyncio.to_thread(server.stop)
            await asyncio.wait_for(ended.wait(), 15)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        server.stop()
    assert not server.thread.is_alive()


async def test_enrichment_progress_after_start(tmp_path: Path) -> None:
    """The admin starts enrichment over HTTP and a WebSocket subscriber hears the run's progress."""
    db = tmp_path / "graph.db"
    seed = await seed_graph(db)
    server = LiveServer(server_settings(db)).start()
    try:
        async with server.ws_client(ADMIN_TOKEN) as session:
            before = server.state.bus.subscriber_count
            task = asyncio.create_task(
                first(
                    session,
                    "subscription { enrichmentProgress { source state totals { pending } } }",
                )
            )
            await wait_for_subscribers(server, before + 1)
            started = await execute(
                server,
                'mutation($t: [ID!]!) { startEnrichment(trackIds: $t, sources: ["lastfm"]) { '
                "__typename ... on EnrichmentStarted { started sources progress { source } } } }",
                {"t": [seed.tracks["Words"]]},
                token=ADMIN_TOKEN,
            )
            progress = (await asyncio.wait_for(task, 60))["enrichmentProgress"]
    finally:
        await asyncio.to_thread(server.stop)
    result = started["startEnrichment"]
    assert result["__typename"] == "EnrichmentStarted" and result["started"] is True
    assert result["progress"] == [{"source": "lastfm"}]
    assert progress["source"] == "lastfm" and progress["state"]


async def test_websocket_operations_see_each_others_writes(live: LiveServer, seed: Seed) -> None:
    """Queries and mutations over one WebSocket connection do not share a stale cache: a query
    after a mutation on the same connection sees the change."""
    query = GraphQLRequest(
        "query($id: ID!) { playlist(id: $id) { name tracks { totalCount } } }",
        variable_values={"id": seed.playlists["private"]},
    )
    async with live.ws_client(ALICE_TOKEN) as session:
        before = await session.execute(query)
        await session.execute(
            GraphQLRequest(
                'mutation($id: ID!) { renamePlaylist(id: $id, name: "alice private 2") '
                "{ __typename } }",
                variable_values={"id": seed.playlists["private"]},
            )
        )
        after = await session.execute(query)
        await session.execute(
            GraphQLRequest(
                'mutation($id: ID!) { renamePlaylist(id: $id, name: "alice private") '
                "{ __typename } }",
                variable_values={"id": seed.playlists["private"]},
            )
        )
    assert before["playlist"]["name"] == "alice private"
    assert after["playlist"]["name"] == "alice private 2"
