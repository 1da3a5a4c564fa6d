"""Limits: depth, aliases, tokens, page size, batch size, body size, subscriptions per
connection, introspection, and masked errors (the test server runs with small limits)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from structlog.testing import capture_logs

from tests.e2e.conftest import LIMITS
from tests.e2e.live import ALICE_TOKEN, LiveServer, execute, raw_post


def messages(body: dict[str, Any]) -> str:
    return " | ".join(e["message"] for e in body.get("errors", []))


async def test_query_depth_is_bounded(live: LiveServer) -> None:
    """A query nested deeper than the limit is refused before it runs."""
    deep = '{ searchTracks(query: "") { edges { node { artists { tracks { edges { node { artists { tracks { edges { node { title } } } } } } } } } } } }'
    r = await raw_post(live, {"query": deep})
    assert "exceeds maximum operation depth" in messages(r.json())
    assert r.json().get("data") is None


async def test_aliases_are_bounded(live: LiveServer) -> None:
    """More aliases than the limit are refused."""
    n = LIMITS["max_aliases"] + 1
    query = "{ " + " ".join(f'a{i}: track(id: "x") {{ id }}' for i in range(n)) + " }"
    r = await raw_post(live, {"query": query})
    assert "aliases found" in messages(r.json()).lower() or "alias" in messages(r.json()).lower()


async def test_tokens_are_bounded(live: LiveServer) -> None:
    """A document with more tokens than the limit is refused."""
    query = "{ " + " ".join("__typename" for _ in range(int(LIMITS["max_tokens"]))) + " }"
    r = await raw_post(live, {"query": query})
    assert "token" in messages(r.json()).lower()


@pytest.mark.parametrize(
    "query",
    [
        '{ searchTracks(query: "", first: 26) { totalCount } }',
        '{ searchArtists(query: "", last: 1000) { totalCount } }',
        "{ me { listens(first: 500) { totalCount } } }",
        "{ me { topArtists(limit: 10000) { count } } }",
        '{ searchTracks(query: "", first: -1) { totalCount } }',
    ],
)
async def test_page_size_is_capped(live: LiveServer, query: str) -> None:
    """Asking for a page larger than the cap (or a negative one) is an error naming the cap."""
    r = await raw_post(live, {"query": query}, token=ALICE_TOKEN)
    assert "between 0 and 25" in messages(r.json())


async def test_bad_cursor_is_a_clear_error(live: LiveServer) -> None:
    """A cursor that this list never handed out is refused with the argument named."""
    r = await raw_post(
        live, {"query": '{ searchTracks(query: "", after: "garbage") { totalCount } }'}
    )
    assert "after: 'garbage' is not a cursor of this list" in messages(r.json())


async def test_listen_batch_is_capped(live: LiveServer) -> None:
    """recordListens refuses a batch over the limit as a whole, storing nothing."""
    now = int(time.time())
    n = int(LIMITS["max_listen_batch"]) + 1
    listens = [{"artist": "Cap", "title": f"Song {i}", "listenedAt": now - i} for i in range(n)]
    data = await execute(
        live,
        "mutation($l: [ListenInput!]!) { recordListens(listens: $l) { __typename "
        "... on InvalidInput { field message } } }",
        {"l": listens},
        token=ALICE_TOKEN,
    )
    assert data["recordListens"]["__typename"] == "InvalidInput"
    assert data["recordListens"]["field"] == "listens"
    found = await execute(live, '{ searchTracks(query: "Song 1") { totalCount } }')
    assert found["searchTracks"]["totalCount"] == 0


async def test_request_body_is_capped(live: LiveServer) -> None:
    """A request body over the limit is answered 413 before GraphQL sees it."""
    r = await raw_post(live, {"query": "{ me { id } }", "padding": "x" * LIMITS["max_body_bytes"]})  # type: ignore[operator]
    assert r.status_code == 413 and "limit" in r.json()["error"]


async def test_subscriptions_per_connection_are_capped(live: LiveServer) -> None:
    """One connection may hold only so many subscriptions; the next one gets an error."""
    limit = int(LIMITS["max_subscriptions"])
    async with live.ws_client(ALICE_TOKEN) as session:
        first_events: list[asyncio.Task[Any]] = []

        async def hold() -> None:
            async for _ in session.subscribe(
                GraphQLRequest("subscription { enrichmentProgress { source } }")
            ):
                pass

        bus = live.state.bus
        before = bus.subscriber_count
        for _ in range(limit):
            first_events.append(asyncio.create_task(hold()))
        for _ in range(200):
            if bus.subscriber_count >= before + limit:
                break
            await asyncio.sleep(0.01)
        assert bus.subscriber_count == before + limit
        with pytest.raises(TransportQueryError, match="Subscription limit reached"):
            async for _ in session.subscribe(
                GraphQLRequest("subscription { enrichmentProgress { source } }")
            ):
                pass
        for task in first_events:
            task.cancel()
        await asyncio.gather(*first_events, return_exceptions=True)


async def test_introspection_can_be_turned_off(live: LiveServer) -> None:
    """With introspection off by setting, a schema query is refused."""
    r = await raw_post(live, {"query": "{ __schema { types { name } } }"})
    assert "introspection" in messages(r.json()).lower()


async def test_unexpected_errors_are_masked_and_logged(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure nobody planned for reaches the client as "Unexpected error." with the request
    id, and no trace; the log has the exception and its traceback under that request id."""

    async def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(live.state.store, "count_search_tracks", broken)
    with capture_logs() as logs:
        r = await raw_post(live, {"query": '{ searchTracks(query: "x") { totalCount } }'})
    body = r.json()
    request_id = r.headers["x-request-id"]
    assert body["errors"][0]["message"] == "Unexpected error."
    assert body["errors"][0]["extensions"] == {"requestId": request_id}
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    failures = [e for e in logs if e["event"] == "graphql resolver failed"]
    assert failures and failures[0]["request_id"] == request_id
    assert failures[0]["log_level"] == "error" and failures[0]["exc_info"][0] is RuntimeError


async def test_a_body_that_is_not_json_is_a_400(live: LiveServer) -> None:
    """A POST whose body is not JSON (or is cut short) gets 400 saying so, not a server error."""
    async with httpx.AsyncClient(base_url=live.url) as client:
        for body in (b"{not json", b'{"query": "{ health { status } }"', b"\xff\xfe"):
            r = await client.post(
                "/graphql", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 400, body
            assert "JSON" in r.text
