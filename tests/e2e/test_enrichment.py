"""The server with the enrichment pipeline running in the background (MUSICGRAPH_ENRICH_AUTOSTART)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.conftest import server_settings
from tests.e2e.live import LiveServer, execute, seed_graph


async def test_autostarted_pipeline_reports_its_sources(tmp_path: Path) -> None:
    """With autostart on, the pipeline runs from startup: health lists every source (those
    without credentials as disabled), and the server still stops cleanly."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    server = LiveServer(server_settings(db, enrich_autostart=True)).start()
    try:
        await asyncio.to_thread(server.wait_ready)
        health = {}
        for _ in range(100):
            data = await execute(server, "{ health { name status enabled } }")
            health = {h["name"]: h for h in data["health"]}
            if {"musicbrainz", "lastfm", "spotify", "cyanite"} <= set(health):
                break
            await asyncio.sleep(0.05)
        assert {"musicbrainz", "lastfm", "spotify", "cyanite", "store"} <= set(health)
        assert health["lastfm"]["status"] == "disabled" and not health["lastfm"]["enabled"]
        assert server.state.pipeline is not None and server.state.pipeline.running
    finally:
        await asyncio.to_thread(server.stop)
    assert not server.thread.is_alive()
