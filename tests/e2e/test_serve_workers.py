"""``musicgraph serve --workers 2`` as real processes: a listening socket per worker, connections
spread over both, a clean stop on SIGTERM, a killed worker replaced, a taken port refused."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.bus.test_multiworker import (
    _children,
    connections_per_worker,
    server_env,
    sockets_per_worker,
)
from tests.e2e.live import ALICE_TOKEN, seed_graph
from tests.e2e.test_serve import free_port, wait_until_ready


def listeners_per_worker(server_pid: int, port: int) -> dict[int, set[str]]:
    """The listening sockets on ``port`` (by inode) that each child of ``server_pid`` holds."""
    return sockets_per_worker(server_pid, port, "0A")


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (from /proc/net/tcp, whoever holds them)."""
    table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for cols in (line.split() for line in table)
        if int(cols[1].split(":")[1], 16) == port and cols[3] == "0A"
    )


def gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie counts: it holds no sockets any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@dataclass
class Served:
    url: str
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    async def workers_listening(self, count: int = 2) -> dict[int, set[str]]:
        """Wait until ``count`` workers each listen on their own socket; returns them."""
        async with asyncio.timeout(60):
            while True:
                assert self.proc.returncode is None, self.log.read_text()[-3000:]
                held = listeners_per_worker(self.proc.pid, self.port)
                listening = {pid: s for pid, s in held.items() if s}
                if len(listening) == count:
                    return listening
                await asyncio.sleep(0.1)


@asynccontextmanager
async def serve_two_workers(tmp_path: Path) -> AsyncIterator[Served]:
    db = tmp_path / "graph.db"
    await seed_graph(db)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "musicgraph.cli", "serve", "--db", str(db)),
            *("--port", str(port), "--workers", "2"),
            env=server_env(),
            stdout=out,
            stderr=out,
        )
    served = Served(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        await wait_until_ready(served.url, proc)
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 90)


async def test_connections_spread_over_both_workers(tmp_path: Path) -> None:
    """Each worker listens on a socket of its own, and 64 keep-alive connections opened at once
    land on both workers, each holding at least a quarter of them (SO_REUSEPORT hashing)."""
    async with serve_two_workers(tmp_path) as served:
        listening = await served.workers_listening()
        sockets = [s for held in listening.values() for s in held]
        assert len(sockets) == 2 and len(set(sockets)) == 2, listening
        request = f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{served.port}\r\n\r\n".encode()
        connections = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(64)]
        try:
            for reader, writer in connections:  # answered: accepted by a worker, kept alive
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                at = head.lower().index(b"content-length:") + 15
                await reader.readexactly(int(head[at : head.index(b"\r\n", at)]))
            held = connections_per_worker(served.proc.pid, served.port)
            per_worker = {pid: n for pid, n in held.items() if pid in listening}
        finally:
            for _, writer in connections:
                writer.close()
        assert sorted(per_worker) == sorted(listening), per_worker
        assert sum(per_worker.values()) == 64 and min(per_worker.values()) >= 16, per_worker


async def test_sigterm_stops_every_worker_cleanly(tmp_path: Path) -> None:
    """SIGTERM to ``serve --workers 2`` runs both workers' graceful shutdown (the app's lifespan
    ends: store closed) and the supervisor exits 0 with no worker process left behind."""
    async with serve_two_workers(tmp_path) as served:
        await served.workers_listening()
        children = _children(served.proc.pid)  # the workers and multiprocessing's helper
        async with httpx.AsyncClient(base_url=served.url) as client:
            r = await client.post(
                "/graphql",
                json={"query": "{ me { name } }"},
                headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
            )
            assert r.json() == {"data": {"me": {"name": "alice"}}}
        served.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.proc.wait(), 90) == 0
        text = served.log.read_text()
    for _ in range(100):  # the helper process ends once it sees its parent gone
        if all(gone(pid) for pid in children):
            break
        await asyncio.sleep(0.05)
    assert [pid for pid in children if not gone(pid)] == []
    assert text.count("Application shutdown complete") == 2, text[-3000:]
    assert text.count('"event": "stopped"') == 2
    assert text.count('"how": "gracefully"') == 2
    assert '"event": "supervisor stopped"' in text


async def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    """A worker killed with SIGKILL: new connections keep being answered by the other worker,
    the supervisor logs why the worker died and starts a replacement that listens again."""
    async with serve_two_workers(tmp_path) as served:
        before = await served.workers_listening()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        for _ in range(500):  # the last of its threads has closed its socket
            if gone(victim) and listening_sockets(served.port) == 1:
                break
            await asyncio.sleep(0.02)
        assert listening_sockets(served.port) == 1
        for _ in range(20):  # a new connection each time: none reaches the dead worker's socket
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
                assert (await client.get("/healthz")).status_code == 200
        async with asyncio.timeout(60):
            while True:
                after = await served.workers_listening()
                if victim not in after:
                    break
                await asyncio.sleep(0.1)
        assert len(after) == 2 and set(before) & set(after) == {max(before)}, (before, after)
        await wait_until_ready(served.url, served.proc)
        text = served.log.read_text()
        assert '"event": "worker died; replacing it"' in text
        assert f'"pid": {victim}, "reason": "killed by SIGKILL"' in text
        served.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.proc.wait(), 90) == 0
    assert all(gone(pid) for pid in after)


async def serve_until_exit(db: Path, port: int, *, within: float) -> tuple[int | None, str]:
    """``musicgraph serve --workers 2`` on ``db`` and ``port``, expected to end by itself:
    its exit code and what it wrote to stderr."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "musicgraph.cli", "serve", "--db", str(db)),
        *("--port", str(port), "--workers", "2"),
        env=server_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, raw = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode, raw.decode()


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "so_reuseport"])
async def test_a_taken_port_is_refused_with_its_number(tmp_path: Path, reuse_port: bool) -> None:
    """``serve --workers 2`` on a port another server listens on (also one whose socket allows
    SO_REUSEPORT, as a second musicgraph serve's would) exits 1 naming the port, before any
    worker starts."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    with socket.socket() as taken:
        if reuse_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        returncode, stderr = await serve_until_exit(db, port, within=60)
    assert returncode == 1, stderr
    assert f"cannot listen on 127.0.0.1:{port}: port {port} is in use" in stderr
    assert "worker started" not in stderr and "Started server process" not in stderr


async def test_workers_that_cannot_start_stop_the_server(tmp_path: Path) -> None:
    """When the workers' app cannot start (here the database path is a directory), the supervisor
    stops the other worker and ``serve --workers 2`` exits 1 saying so, instead of restarting
    them forever."""
    db = tmp_path / "not-a-file.db"
    db.mkdir()
    returncode, stderr = await serve_until_exit(db, free_port(), within=90)
    assert returncode == 1, stderr
    assert "could not start (exit code 3" in stderr
    assert "before all 2 workers had started; stopping" in stderr
    assert "worker died; replacing it" not in stderr


async def test_sighup_replaces_every_worker(tmp_path: Path) -> None:
    """SIGHUP replaces the workers one at a time (each retired once its replacement has started):
    afterwards two new workers listen and the server answers."""
    async with serve_two_workers(tmp_path) as served:
        before = await served.workers_listening()
        await asyncio.sleep(0.5)  # past the supervisor's first look at both
        served.proc.send_signal(signal.SIGHUP)
        after: dict[int, set[str]] = {}
        for _ in range(600):
            after = listeners_per_worker(served.proc.pid, served.port)
            after = {pid: held for pid, held in after.items() if held}
            if len(after) == 2 and not set(after) & set(before):
                break
            await asyncio.sleep(0.1)
        assert len(after) == 2 and not set(after) & set(before), (before, after)
        async with httpx.AsyncClient(base_url=served.url) as client:
            assert (await client.get("/healthz")).status_code == 200
        assert '"event": "replacing the workers"' in served.log.read_text()


FALLBACK = """
import uvicorn
from musicgraph.logging import configure_logging
from musicgraph.serving import Supervisor
configure_logging("info", "json")
config = uvicorn.Config("musicgraph.app:app_from_env", factory=True, port={port}, workers=2,
                        log_config=None, timeout_worker_healthcheck={healthcheck})
Supervisor(config, reuse_port={reuse_port}).run()
"""


@asynccontextmanager
async def supervise(tmp_path: Path, *, healthcheck: int, reuse_port: bool) -> AsyncIterator[Served]:
    """The supervisor run by :data:`FALLBACK` with these settings, two workers on the seed graph,
    ready; stopped with SIGTERM afterwards, which must end it cleanly."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FALLBACK.format(port=port, healthcheck=healthcheck, reuse_port=reuse_port),
            env=server_env(MUSICGRAPH_DB=str(db), MUSICGRAPH_WORKERS="2"),
            stdout=out,
            stderr=out,
        )
    served = Served(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        await wait_until_ready(served.url, proc)
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 90) == 0, log.read_text()[-3000:]


async def test_without_reuse_port_the_workers_share_one_socket(tmp_path: Path) -> None:
    """The fallback for systems without SO_REUSEPORT: the supervisor binds one socket that both
    workers listen on, serves, and stops both cleanly on SIGTERM."""
    async with supervise(tmp_path, healthcheck=60, reuse_port=False) as served:
        held = await served.workers_listening()
        assert len({s for sockets in held.values() for s in sockets}) == 1, held
        assert '"sockets": "shared"' in served.log.read_text()


async def test_workers_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """Even when the supervisor itself is killed (SIGKILL: nothing of it runs), its workers get
    SIGTERM from the kernel, shut down and exit instead of holding the port as orphans."""
    async with serve_two_workers(tmp_path) as served:
        workers = list(await served.workers_listening())
        served.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(served.proc.wait(), 30)
        for _ in range(600):
            if all(gone(pid) for pid in workers):
                break
            await asyncio.sleep(0.05)
        assert [pid for pid in workers if not gone(pid)] == []
        assert listening_sockets(served.port) == 0


async def test_a_worker_that_stops_answering_is_killed_and_replaced(tmp_path: Path) -> None:
    """A worker that stops answering the supervisor's pings (here: SIGSTOP) for
    ``timeout_worker_healthcheck`` seconds (2 here) is killed, logged as such, and replaced."""
    async with supervise(tmp_path, healthcheck=2, reuse_port=True) as served:
        proc, port, log = served.proc, served.port, served.log
        before = await served.workers_listening()
        for _ in range(300):  # the supervisor has seen both start
            if '"event": "all workers started"' in log.read_text():
                break
            await asyncio.sleep(0.1)
        victim = min(before)
        os.kill(victim, signal.SIGSTOP)
        after: dict[int, set[str]] = {}
        for _ in range(600):
            after = {p: s for p, s in listeners_per_worker(proc.pid, port).items() if s}
            if len(after) == 2 and victim not in after and gone(victim):
                break
            await asyncio.sleep(0.1)
        assert len(after) == 2 and victim not in after, (before, after)
        text = log.read_text()
        assert f'"pid": {victim}, "reason": "did not answer the supervisor for 2 s; killed"' in text
