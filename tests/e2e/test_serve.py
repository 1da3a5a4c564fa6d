"""``musicgraph serve`` as a real process: it serves, answers probes and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from tests.e2e.live import ALICE_TOKEN, seed_graph


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until_ready(
    url: str, proc: asyncio.subprocess.Process, log: Path | None = None
) -> None:
    """Wait for /readyz; a process that exits first fails the test with the end of ``log`` (the
    file its stderr goes to), if given."""
    async with httpx.AsyncClient() as client, asyncio.timeout(60):
        while True:
            if proc.returncode is not None:
                said = await asyncio.to_thread(log.read_text, errors="replace") if log else ""
                said = said[-2000:]
                raise AssertionError(f"serve exited early ({proc.returncode}): {said}")
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def test_serve_runs_and_stops_gracefully(tmp_path: Path) -> None:
    """``musicgraph serve --db --port`` answers /healthz, /readyz and GraphQL with the user's
    token, and on SIGTERM shuts the app down (lifespan shutdown: store closed) before exiting."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    port = free_port()
    env = {**os.environ, "MUSICGRAPH_LOG_FORMAT": "json", "MUSICGRAPH_LOG_LEVEL": "info"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "musicgraph.cli",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_ready(url, proc)
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            r = await client.post(
                "/graphql",
                json={"query": "{ me { name } }"},
                headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
            )
            assert r.json() == {"data": {"me": {"name": "alice"}}}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, raw = await asyncio.wait_for(proc.communicate(), 30)
    stderr = raw.decode()
    # uvicorn finishes its graceful shutdown, then re-raises the signal it caught
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert '"event": "serving"' in stderr
    assert "Application shutdown complete" in stderr and '"event": "stopped"' in stderr
