"""Shared fixtures. ``store`` runs a test once on the SQLite file and once on the real Neo4j server.

The Neo4j server is the one from ``tests/support/neo4j_server.py`` (built with Maven and started
once per session), or the server at ``NEO4J_URI`` when that is set. Under ``CI=true`` a Neo4j test
never skips: an unavailable server is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from musicgraph.graph.base import GraphStore
from tests.support.neo4j_server import neo4j_server  # noqa: F401  (the session's Neo4j fixture)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HETREC_DIR = Path(os.environ.get("MUSICGRAPH_HETREC_DIR", SHARED_DATA / "hetrec2011-lastfm-2k"))
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def hetrec_dir() -> Path:
    """The HetRec 2011 Last.fm-2K folder from ../shared/data (skip with a clear message without it)."""
    if not (HETREC_DIR / "user_artists.dat").is_file():
        if IN_CI:
            pytest.fail(f"HetRec data missing at {HETREC_DIR}")
        pytest.skip(f"HetRec data not found at {HETREC_DIR} (set MUSICGRAPH_HETREC_DIR)")
    return HETREC_DIR


async def _sqlite_store(tmp_path: Path) -> AsyncIterator[GraphStore]:
    from musicgraph.graph.sqlite_store import SqliteGraphStore

    store = SqliteGraphStore(tmp_path / "graph.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[GraphStore]:
    async for s in _sqlite_store(tmp_path):
        yield s


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GraphStore]:
    """A fresh, empty, open store of each kind."""
    if request.param == "sqlite":
        async for s in _sqlite_store(tmp_path):
            yield s
        return
    # Not getfixturevalue("neo4j_store"): an async fixture cannot be set up from inside another
    # one's running loop (pytest-asyncio 1.x); the session server is a plain fixture.
    async for s in _neo4j_store(request):
        yield s


async def _neo4j_store(request: pytest.FixtureRequest) -> AsyncIterator[GraphStore]:
    try:
        from tests.support.neo4j_server import open_clean_store
    except ImportError as exc:  # until the launcher lands
        if IN_CI:
            pytest.fail(f"Neo4j test support missing: {exc}")
        pytest.skip(f"Neo4j test support missing: {exc}")
    server = request.getfixturevalue("neo4j_server")
    async for s in open_clean_store(server):
        yield s


@pytest.fixture
async def neo4j_store(request: pytest.FixtureRequest) -> AsyncIterator[GraphStore]:
    """A fresh (cleared) Neo4jGraphStore on the session's Neo4j server."""
    try:
        from tests.support.neo4j_server import open_clean_store
    except ImportError as exc:  # until the launcher lands
        if IN_CI:
            pytest.fail(f"Neo4j test support missing: {exc}")
        pytest.skip(f"Neo4j test support missing: {exc}")
    server = request.getfixturevalue("neo4j_server")
    async for s in open_clean_store(server):
        yield s


_NEO4J_OUTCOMES: dict[str, int] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the outcomes of the tests that ran on the real Neo4j server."""
    if "neo4j" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _NEO4J_OUTCOMES[report.outcome] = _NEO4J_OUTCOMES.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say in the log how many tests ran against Neo4j (CI must show they really ran)."""
    if _NEO4J_OUTCOMES:
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(_NEO4J_OUTCOMES.items()))
        terminalreporter.write_line(f"Neo4j tests (real server): {parts}")
