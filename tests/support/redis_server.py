"""A real ``redis-server`` for the test session, on a free port of 127.0.0.1, without persistence.

``make redis-server`` (.ci/install-redis-server) installs the Debian package when it is
missing. Under ``CI=true`` a missing ``redis-server`` fails the tests that need it; elsewhere they
skip with the reason. :meth:`LocalRedis.restart` stops the server and starts it again on the same
port (the reconnect tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    """A PING over a plain socket gets ``+PONG``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, so a killed session leaves no server."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class LocalRedis:
    """A ``redis-server`` process on 127.0.0.1:``port``."""

    binary: str
    port: int
    home: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.home / "redis.log"

    def start(self) -> LocalRedis:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.home),
            "--logfile",
            str(self.log_path),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with code {self.process.returncode} on port {self.port}:"
                    f"\n{self._log_tail()}"
                )
            if _answers(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}:\n{self._log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop the server, wait ``down_for`` seconds, start it again on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError as exc:
            return f"(no log: {exc})"


def _unavailable(reason: str) -> None:
    """Fail under CI (a skip there is a failure), skip elsewhere."""
    if IN_CI:
        pytest.fail(f"redis-server unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"redis-server unavailable: {reason}")


@contextlib.contextmanager
def running_redis() -> Iterator[LocalRedis]:
    """A ``redis-server`` of its own, stopped (and its directory removed) on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server not found on PATH (`make redis-server` installs it)")
        raise AssertionError("unreachable")  # _unavailable skips or fails
    home = Path(tempfile.mkdtemp(prefix="musicgraph-redis-"))
    local = LocalRedis(binary, free_port(), home)
    try:
        local.start()
    except RuntimeError as exc:
        shutil.rmtree(home, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield local
    finally:
        local.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    """The session's own ``redis-server`` (started on first use, stopped at the end)."""
    with running_redis() as local:
        yield local


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> str:
    """The URL of the session's server (started again if a failed test left it stopped)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test that stopped it and failed before starting it again
    return redis_server.url
