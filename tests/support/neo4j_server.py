"""A real Neo4j 5.26 server for the test session, without Docker.

With ``NEO4J_URI`` set (and ``NEO4J_USER`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE`` when needed) the
tests use that server. Otherwise the session builds the Java launcher in ``neo4j-test-server/`` with
Maven when its jar is missing or older than its sources, starts one server on a free port with a
fresh temporary home, waits until Bolt answers and stops it when the session ends.

Under ``CI=true`` a server that cannot be built or started fails the Neo4j tests; elsewhere, a
machine without Java or Maven skips them with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from musicgraph.graph.neo4j_store import Neo4jGraphStore

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_DIR = REPO_ROOT / "neo4j-test-server"
LAUNCHER_JAR = LAUNCHER_DIR / "target" / "neo4j-test-server.jar"
LAUNCHER_LIB = LAUNCHER_DIR / "target" / "lib"
MAIN_CLASS = "musicgraph.testserver.Neo4jTestServer"
IN_CI = os.environ.get("CI", "").lower() == "true"

# The module openings Neo4j's own launcher passes on Java 17 (see ../shared/NEO4J.md). A 2g heap
# (fixed, so it never resizes) keeps a 10,000-row write transaction's state out of GC pressure;
# the parallel collector spends less CPU than G1 on a 2-core machine.
JVM_FLAGS = (
    "-Xms2g",
    "-Xmx2g",
    "-XX:+UseParallelGC",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
)
BUILD_TIMEOUT_S = float(os.environ.get("MUSICGRAPH_NEO4J_BUILD_TIMEOUT", "1200"))
START_TIMEOUT_S = float(os.environ.get("MUSICGRAPH_NEO4J_START_TIMEOUT", "240"))
STOP_TIMEOUT_S = 30.0
CLEAR_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Neo4jServer:
    """Where the session's Neo4j answers."""

    uri: str
    user: str | None = None
    password: str | None = None
    database: str = "neo4j"

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.user or "neo4j", self.password) if self.password else None


class Neo4jServerError(RuntimeError):
    """The test server could not be built or started; the message carries the log."""


def _unavailable(reason: str) -> None:
    """Fail under CI (a skip there is a failure), skip elsewhere."""
    if IN_CI:
        pytest.fail(f"Neo4j test server unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"Neo4j test server unavailable: {reason}")


# --- build ------------------------------------------------------------------------------------


def _newest_source_mtime() -> float:
    sources = [LAUNCHER_DIR / "pom.xml", *(LAUNCHER_DIR / "src").rglob("*")]
    return max(p.stat().st_mtime for p in sources if p.is_file())


def launcher_is_stale() -> bool:
    """True when the jar or its dependencies are missing, or a source is newer than the jar."""
    if not LAUNCHER_JAR.is_file() or not LAUNCHER_LIB.is_dir():
        return True
    if not any(LAUNCHER_LIB.glob("neo4j-*.jar")):
        return True
    return LAUNCHER_JAR.stat().st_mtime < _newest_source_mtime()


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds of the same tree by concurrent test sessions."""
    lock_path = Path(tempfile.gettempdir()) / f"musicgraph-neo4j-build-{os.getuid()}.lock"
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_launcher(mvn: str) -> None:
    """``mvn -q -B package`` in neo4j-test-server/ (the jars are cached in ~/.m2 after the first run)."""
    with _build_lock():
        if not launcher_is_stale():
            return
        try:
            done = subprocess.run(
                [mvn, "-q", "-B", "package"],
                cwd=LAUNCHER_DIR,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Neo4jServerError(
                f"`mvn -q -B package` in {LAUNCHER_DIR} took more than {BUILD_TIMEOUT_S:.0f} s"
            ) from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            raise Neo4jServerError(
                f"`mvn -q -B package` in {LAUNCHER_DIR} failed (exit {done.returncode}):\n{output}"
            )
        # The jar plugin keeps an unchanged jar's old mtime; touch it so it is not stale next time.
        LAUNCHER_JAR.touch()


# --- start and stop ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bolt_answers(uri: str, auth: tuple[str, str] | None) -> bool:
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

    try:
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=2.0) as driver:
            driver.execute_query("RETURN 1", database_="neo4j")
        return True
    except (ServiceUnavailable, SessionExpired, Neo4jError, OSError):
        return False


@dataclass
class LocalNeo4j:
    """A launcher process and its home directory."""

    process: subprocess.Popen[bytes]
    home: Path
    log_path: Path
    server: Neo4jServer

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"

    def stop(self) -> None:
        """SIGTERM (the launcher's shutdown hook closes the database), then kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(self.home, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, so a killed session leaves no JVM."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the session's teardown still stops it
        pass


def start_local_server(java: str) -> LocalNeo4j:
    """Start the launcher on a free port with a fresh home; return once Bolt answers."""
    home = Path(tempfile.mkdtemp(prefix="musicgraph-neo4j-"))
    log_path = home / "launcher.log"
    port = free_port()
    classpath = f"{LAUNCHER_JAR}{os.pathsep}{LAUNCHER_LIB}/*"
    command = [java, *JVM_FLAGS, "-cp", classpath, MAIN_CLASS, str(home / "data"), str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    local = LocalNeo4j(process, home, log_path, Neo4jServer(uri=f"bolt://127.0.0.1:{port}"))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = local.log_tail()
            local.stop()
            raise Neo4jServerError(
                f"Neo4j launcher exited with code {process.returncode} before it was ready.\n"
                f"command: {' '.join(command)}\nlog ({log_path}):\n{tail}"
            )
        if "READY" in local.log_tail(2000) and _bolt_answers(local.server.uri, None):
            return local
        time.sleep(0.25)
    tail = local.log_tail()
    local.stop()
    raise Neo4jServerError(
        f"Neo4j did not answer on {local.server.uri} within {START_TIMEOUT_S:.0f} s.\n"
        f"log ({log_path}):\n{tail}"
    )


def server_from_env() -> Neo4jServer | None:
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        return None
    return Neo4jServer(
        uri=uri,
        user=os.environ.get("NEO4J_USER") or "neo4j",
        password=os.environ.get("NEO4J_PASSWORD") or None,
        database=os.environ.get("NEO4J_DATABASE") or "neo4j",
    )


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[Neo4jServer]:
    """The session's Neo4j: ``NEO4J_URI`` when set, else one launched here (built if needed)."""
    external = server_from_env()
    if external is not None:
        if not _bolt_answers(external.uri, external.auth):
            _unavailable(f"nothing answers at NEO4J_URI={external.uri}")
        yield external
        return
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None or mvn is None:
        missing = " and ".join(n for n, p in (("java", java), ("mvn", mvn)) if p is None)
        _unavailable(f"{missing} not found on PATH (install a JDK 17+ and Maven, or set NEO4J_URI)")
        return
    try:
        if launcher_is_stale():
            build_launcher(mvn)
    except Neo4jServerError as exc:
        _unavailable(str(exc))
        return
    try:
        local = start_local_server(java)
    except Neo4jServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield local.server
    finally:
        local.stop()


async def open_clean_store(server: Neo4jServer) -> AsyncIterator[Neo4jGraphStore]:
    """An opened ``Neo4jGraphStore`` on an emptied database, closed afterwards."""
    from neo4j import AsyncGraphDatabase

    from musicgraph.graph.cypher import DELETE_ALL_IN_BATCHES
    from musicgraph.graph.neo4j_store import Neo4jGraphStore

    driver = AsyncGraphDatabase.driver(server.uri, auth=server.auth)
    store = Neo4jGraphStore(driver, database=server.database, owns_driver=True)
    try:
        async with driver.session(database=server.database) as session:
            # CALL ... IN TRANSACTIONS needs an auto-commit transaction (session.run).
            result = await session.run(DELETE_ALL_IN_BATCHES, batch=CLEAR_BATCH)
            await result.consume()
        await store.open()
        yield store
    finally:
        await store.close()


def main() -> int:
    """``python -m tests.support.neo4j_server build``: build the launcher now (make test does, so
    the Maven download is not charged to the first Neo4j test's timeout)."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if server_from_env() is not None:
        print("NEO4J_URI is set: the tests use that server; nothing to build")
        return 0
    if java is None or mvn is None:
        print("java or mvn not found: the Neo4j tests will skip (and fail under CI=true)")
        return 1 if IN_CI else 0
    started = time.monotonic()
    if launcher_is_stale():
        try:
            build_launcher(mvn)
        except Neo4jServerError as exc:
            print(exc)
            return 1
        print(f"built {LAUNCHER_JAR} in {time.monotonic() - started:.0f} s")
    else:
        print(f"{LAUNCHER_JAR} is up to date")
    return 0


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["build"]:
        print("usage: python -m tests.support.neo4j_server build")
        raise SystemExit(2)
    raise SystemExit(main())
