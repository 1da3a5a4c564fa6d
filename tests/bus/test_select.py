"""The bus is picked from the settings: Redis when configured, the outbox on SQLite, local
otherwise; several workers on Neo4j without Redis are refused before serving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicgraph.bus import OutboxEventBus, RedisEventBus, choose_backend, create_bus
from musicgraph.errors import ConfigError
from musicgraph.events import EventBus
from musicgraph.settings import Settings


def settings(**env: str) -> Settings:
    return Settings.from_env(env, env_file=None)


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({}, "outbox"),
        ({"MUSICGRAPH_WORKERS": "2"}, "outbox"),
        ({"MUSICGRAPH_REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis"),
        ({"MUSICGRAPH_REDIS_URL": "redis://r:6379/0", "MUSICGRAPH_WORKERS": "4"}, "redis"),
        ({"NEO4J_URI": "bolt://n:7687", "MUSICGRAPH_REDIS_URL": "redis://r/0"}, "redis"),
        ({"NEO4J_URI": "bolt://n:7687"}, "local"),
        ({"MUSICGRAPH_EVENT_BUS": "outbox"}, "outbox"),
        ({"MUSICGRAPH_EVENT_BUS": "local", "MUSICGRAPH_WORKERS": "2"}, "local"),
    ],
)
def test_auto_picks_by_configuration(env: dict[str, str], backend: str) -> None:
    """``auto`` picks redis when a URL is set, the outbox on SQLite, else local; an explicit
    choice wins."""
    assert choose_backend(settings(**env)) == backend


def test_create_bus_builds_the_chosen_backend(tmp_path: Path) -> None:
    """create_bus returns the class of the chosen backend, on the store's file for the outbox."""
    db = str(tmp_path / "g.db")
    assert type(create_bus(settings(NEO4J_URI="bolt://n:7687"))) is EventBus
    outbox = create_bus(settings(MUSICGRAPH_DB=db), workers=2)
    assert isinstance(outbox, OutboxEventBus) and str(outbox.path) == db + "-events"
    assert isinstance(create_bus(settings(MUSICGRAPH_REDIS_URL="redis://h/0")), RedisEventBus)


def test_neo4j_with_workers_and_no_redis_is_refused() -> None:
    """Several workers on Neo4j without Redis fail with a message that says what to set."""
    with pytest.raises(ConfigError, match="MUSICGRAPH_REDIS_URL") as info:
        choose_backend(settings(NEO4J_URI="bolt://n:7687"), workers=2)
    assert "one worker" in str(info.value)
    with pytest.raises(ConfigError, match="SQLite store only"):
        choose_backend(settings(NEO4J_URI="bolt://n:7687", MUSICGRAPH_EVENT_BUS="outbox"))
    with pytest.raises(ConfigError, match="needs MUSICGRAPH_REDIS_URL"):
        choose_backend(settings(MUSICGRAPH_EVENT_BUS="redis"))


def test_serve_refuses_before_starting(tmp_path: Path) -> None:
    """``musicgraph serve --workers 2`` on Neo4j without Redis exits 1 with the message, before
    uvicorn starts or anything connects (nothing listens at the NEO4J_URI given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICGRAPH_", "NEO4J_"))}
    env["NEO4J_URI"] = "bolt://127.0.0.1:9"
    done = subprocess.run(
        [sys.executable, "-m", "musicgraph.cli", "serve", "--workers", "2", "--port", "9"],
        cwd=tmp_path,  # no .env from the working tree
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "2 workers on Neo4j need Redis" in done.stderr
    assert "MUSICGRAPH_REDIS_URL" in done.stderr and "Uvicorn" not in done.stderr


def test_public_names_exist() -> None:
    """Everything ``musicgraph.bus.__all__`` names is importable from it."""
    import musicgraph.bus as bus

    assert all(hasattr(bus, name) for name in bus.__all__)
    assert sorted(bus.__all__) == bus.__all__
