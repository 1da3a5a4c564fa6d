"""A real musicgraph server on 127.0.0.1 (uvicorn in a thread, its own event loop) and a seeded
SQLite graph for it, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from musicgraph.app import create_app
from musicgraph.auth import hash_token
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, Tagging, TrackRef
from musicgraph.graph.sqlite_store import SqliteGraphStore
from musicgraph.ingest.service import record_listens
from musicgraph.settings import Settings

ADMIN_TOKEN = "admin-secret-token-for-tests"
ALICE_TOKEN = "mg_alice_token"
BOB_TOKEN = "mg_bob_token"
CAROL_TOKEN = "mg_carol_token"
DAY = 86400
NOW = int(time.time())

#: (artist, title, mbid or None, tags)
CATALOGUE: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    ("Slowdive", "Alison", "3bd4a4ad-a3c5-41d3-9c1b-e7a9f9f1a6a1", ("shoegaze", "dream pop")),
    ("Slowdive", "When the Sun Hits", None, ("shoegaze",)),
    ("My Bloody Valentine", "Only Shallow", None, ("shoegaze", "noise pop")),
    ("My Bloody Valentine", "Sometimes", None, ("shoegaze",)),
    ("Ride", "Vapour Trail", None, ("shoegaze", "britpop")),
    ("Cocteau Twins", "Heaven or Las Vegas", None, ("dream pop",)),
    ("Beach House", "Space Song", None, ("dream pop",)),
    ("Mazzy Star", "Fade Into You", None, ("dream pop", "slowcore")),
    ("Low", "Words", None, ("slowcore",)),
    ("Galaxie 500", "Tugboat", None, ("slowcore", "dream pop")),
]


@dataclass
class Seed:
    users: dict[str, str] = field(default_factory=dict)  # name -> id
    tracks: dict[str, str] = field(default_factory=dict)  # title -> id
    playlists: dict[str, str] = field(default_factory=dict)  # name -> id


async def seed_graph(path: Path) -> Seed:
    """The seed graph in a new SQLite file at ``path``."""
    store = SqliteGraphStore(path)
    await store.open()
    try:
        return await seed_store(store)
    finally:
        await store.close()


async def seed_store(store: GraphStore) -> Seed:
    """Three users with tokens (alice private, bob public, carol private and listening to
    everything), ten tagged tracks, listens over the last weeks, and a public and a private
    playlist of alice."""
    seed = Seed()
    for name, token, public in (
        ("alice", ALICE_TOKEN, False),
        ("bob", BOB_TOKEN, True),
        ("carol", CAROL_TOKEN, False),
    ):
        user = await store.create_user(name, public=public, token_hash=hash_token(token))
        seed.users[name] = user.id
    refs = [TrackRef(artist=a, title=t, mbid=m) for a, t, m, _ in CATALOGUE]
    tracks = await store.resolve_tracks(refs)
    seed.tracks = {t.title: t.id for t in tracks}
    await store.set_tags(
        [
            Tagging("track", tr.id, tag, 10 - i)
            for tr, (_, _, _, tags) in zip(tracks, CATALOGUE, strict=True)
            for i, tag in enumerate(tags)
        ]
    )
    listens = []
    plan = {"alice": range(0, 5), "bob": range(3, 8), "carol": range(0, 10)}
    for name, indices in plan.items():
        for n, i in enumerate(indices):
            for k in range(3):
                listens.append(
                    ListenInput(
                        user_id=seed.users[name],
                        track=refs[i],
                        listened_at=NOW - (n * 3 + k + 1) * DAY // 2,
                        source="seed",
                    )
                )
    await record_listens(store, listens)
    public = await store.create_playlist(
        seed.users["alice"],
        "alice public",
        public=True,
        track_ids=[tracks[0].id, tracks[2].id, tracks[4].id],
    )
    private = await store.create_playlist(
        seed.users["alice"], "alice private", track_ids=[tracks[1].id]
    )
    seed.playlists = {"public": public.id, "private": private.id}
    return seed


class LiveServer:
    """uvicorn serving ``create_app(settings)`` on 127.0.0.1 on a free port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=0,
                log_config=None,
                access_log=False,
                ws="websockets-sansio",
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until /readyz says the projection is loaded (when the engine exists)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/readyz").status_code == 200:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def port(self) -> int:
        (server,) = self.server.servers
        port: int = server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state.musicgraph

    def client(self, token: str | None = None, **kwargs: Any) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = HTTPXAsyncTransport(url=self.url + "/graphql", headers=headers, **kwargs)
        return Client(transport=transport, fetch_schema_from_transport=False)

    def ws_client(self, token: str | None = None) -> Client:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{self.port}/graphql",
            init_payload={"authorization": f"Bearer {token}"} if token else {},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        return Client(transport=transport, fetch_schema_from_transport=False)


async def execute(
    live: LiveServer, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """Run one operation with the gql client over HTTP and return ``data``."""
    async with live.client(token) as session:
        result: dict[str, Any] = await session.execute(
            GraphQLRequest(query, variable_values=variables)
        )
        return result


async def get(live: LiveServer, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        return await client.get(path, **kwargs)


async def post(live: LiveServer, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        return await client.post(path, **kwargs)


async def raw_post(live: LiveServer, body: Any, token: str | None = None) -> httpx.Response:
    """POST a GraphQL body as it is (to see the HTTP status and the raw error objects)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await post(live, "/graphql", json=body, headers=headers)


def run_in_thread(fn: Any, *args: Any) -> Any:
    """Blocking client libraries (liblistenbrainz uses requests) run off the test's loop."""
    return asyncio.to_thread(fn, *args)
