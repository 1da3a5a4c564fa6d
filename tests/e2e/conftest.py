"""One real server per session on a seeded SQLite graph, with deliberately small limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from musicgraph.settings import Settings
from tests.e2e.live import ADMIN_TOKEN, LiveServer, Seed, seed_graph

LIMITS = {
    "max_query_depth": 10,
    "max_aliases": 6,
    "max_tokens": 1500,
    "max_page_size": 25,
    "max_listen_batch": 20,
    "max_body_bytes": 20_000,
    "max_subscriptions": 3,
    "introspection": False,
}


def server_settings(db: Path, **overrides: object) -> Settings:
    # outside APIs point at a closed local port: no test reaches the internet
    nowhere = "http://127.0.0.1:9"
    apis = {f"{name}_url": nowhere for name in ("musicbrainz", "lastfm", "spotify", "cyanite")}
    values = {**LIMITS, **apis, "spotify_auth_url": nowhere, **overrides}
    return Settings.from_env(
        {}, env_file=None, db_path=db, admin_token=ADMIN_TOKEN, health_interval=3600, **values
    )


@pytest.fixture(scope="session")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seed]:
    db = tmp_path_factory.mktemp("e2e") / "graph.db"
    return db, await seed_graph(db)


@pytest.fixture(scope="session")
async def live(seeded: tuple[Path, Seed]) -> AsyncIterator[LiveServer]:
    server = LiveServer(server_settings(seeded[0])).start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seed(seeded: tuple[Path, Seed]) -> Seed:
    return seeded[1]
