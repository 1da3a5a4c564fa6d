"""The process supervisor of ``musicgraph serve --workers N``: a listening socket per worker.

uvicorn's own supervisor binds one socket in the parent and hands it to every worker. The kernel
then gives each new connection to whichever worker happens to be waiting in ``accept``, and with
keep-alive clients that is rarely fair: splits of 31/1 connections between two workers were
measured, so one worker queued the requests while the other idled. Here each worker binds its own
socket to the same address with ``SO_REUSEPORT``, and the kernel spreads new connections over the
listening sockets by a hash of their addresses: evenly, whichever worker is busy.

The pieces are uvicorn's: its ``Config`` and ``Server`` run each worker, its ``Process`` starts it
(a spawned interpreter, with a thread answering the parent's pings). The parent:

- checks first that nothing listens on the address (a second server using ``SO_REUSEPORT`` would
  otherwise share the port silently) and names the port when something does;
- starts the workers; a worker binds and listens only once its app has started, so no connection
  waits on a worker that cannot answer yet; if a worker exits (rather than being killed from
  outside) before all have started, it stops the others and :meth:`Supervisor.run` raises
  (``serve`` exits 1): the app, the store or the address is broken, and a restart would fail alike;
- once serving, replaces a worker that dies (or stops answering pings for
  ``timeout_worker_healthcheck`` seconds), logging why, after a delay that doubles while
  replacements keep dying young (:class:`RestartBackoff`);
- on SIGINT, SIGTERM or SIGQUIT, sends each worker SIGTERM (uvicorn's graceful shutdown in the
  worker: connections drained, subscriptions closed, the app's lifespan ends and closes the store),
  waits for them, and returns; a worker still running long after its graceful-shutdown timeout is
  killed. SIGHUP replaces the workers one by one, each once its replacement has started.

Without ``SO_REUSEPORT`` (not Linux or BSD) the workers share one socket, as with uvicorn.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Process

from musicgraph.errors import ConfigError, MusicgraphError
from musicgraph.logging import get_logger

log = get_logger("musicgraph.serving")

#: seconds between two looks at the workers
TICK = 0.1


def reuse_port_supported() -> bool:
    """True when this system lets several sockets listen on one address (``SO_REUSEPORT``)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    with socket.socket() as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:
            return False
    return True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port(host: str, port: int) -> int:
    """Bind ``host:port`` as no other socket may share it, then let go: raise
    :class:`ConfigError` naming the port when something listens there (another server, or
    another ``musicgraph serve`` whose workers use ``SO_REUSEPORT``). Returns the port (the one
    the system picked when ``port`` is 0)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections of an earlier server still in TIME_WAIT are no obstacle
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(_bind_error(host, port, exc)) from exc
        bound: int = probe.getsockname()[1]
        return bound


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {host}:{port}: port {port} is in use (another server is listening "
            "there); stop it or choose another port with --port or MUSICGRAPH_PORT"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT``, not yet listening (uvicorn's server
    listens on it once the app has started)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when the supervisor dies (even by SIGKILL), so no
    worker is left orphaned holding the port."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if parent == 1 or os.getppid() != parent:  # the supervisor is already gone
        sys.exit(0)


def _thread_lock_for_tqdm() -> None:
    """implicit's ALS (the recommender's fit) opens a tqdm bar, even a disabled one, and tqdm's
    first bar creates a multiprocessing lock: a named semaphore that a worker stopped by SIGTERM
    never releases, so Python warned of "leaked semaphore objects" at every shutdown. A worker's
    bars are only ever used from its own threads: a thread lock is enough."""
    with contextlib.suppress(ImportError):
        import threading

        from tqdm import tqdm  # type: ignore[import-untyped]

        tqdm.set_lock(threading.RLock())


class Worker(Process):
    """uvicorn's worker process; with ``address``, it binds its own ``SO_REUSEPORT`` socket there
    instead of using a socket the parent bound."""

    def __init__(
        self, config: Config, sockets: list[socket.socket], address: tuple[str, int] | None
    ) -> None:
        self.address = address
        self.started_at = time.monotonic()
        super().__init__(config, sockets)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        # runs in the worker process (uvicorn's subprocess_started calls it)
        _die_with_parent()
        _thread_lock_for_tqdm()
        if self.address is not None:
            host, port = self.address
            try:
                sockets = [bind_reuse_port(host, port)]
            except OSError as exc:
                print(
                    f"musicgraph: worker {os.getpid()}: {_bind_error(host, port, exc)}",
                    file=sys.stderr,
                    flush=True,
                )
                sys.exit(STARTUP_FAILURE)
        super().target(sockets)


def describe_exit(code: int | None) -> str:
    """Why a worker process ended, for the log."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == STARTUP_FAILURE:
        return f"could not start (exit code {code}; its log above says why)"
    return f"exited with code {code}"


@dataclass
class RestartBackoff:
    """How long to wait before replacing a worker: ``first`` seconds after a worker that ran
    ``stable_after`` seconds or more, doubling (up to ``longest``) for each replacement that dies
    younger than that, so a worker that crashes at every start does not spin."""

    first: float = 0.5
    longest: float = 30.0
    stable_after: float = 60.0
    delay: float = 0.0

    def after_death(self, ran_for: float) -> float:
        """The delay before the next start, given how long the dead worker ran."""
        if ran_for >= self.stable_after or self.delay == 0.0:
            self.delay = self.first
        else:
            self.delay = min(self.longest, self.delay * 2)
        return self.delay


@dataclass
class _Slot:
    """One of the N workers the supervisor keeps running."""

    worker: Worker | None
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    restart_at: float = 0.0
    started: bool = False  # the current worker's server has finished startup
    ping_sent_at: float | None = None  # a ping waits for its answer since then
    last_answer: float = field(default_factory=time.monotonic)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


class Supervisor:
    """Run ``config.workers`` uvicorn workers of ``config`` and keep them running until a stop
    signal (see the module's docstring). ``reuse_port=False`` (or a system without it) shares
    one socket bound by the parent, as uvicorn's own supervisor does."""

    def __init__(self, config: Config, *, reuse_port: bool = True) -> None:
        self.config = config
        self.reuse_port = reuse_port and reuse_port_supported()
        self.sockets: list[socket.socket] = []
        self.slots: list[_Slot] = []
        self.signals: list[int] = []
        self.stopping = False
        self.restarting = False  # a SIGHUP's replacement of the workers is under way
        self.serving = False  # every first worker has started once
        self.failure: str | None = None
        #: how long a stopped worker may take before it is killed: uvicorn's graceful
        #: shutdown, then the app's lifespan shutdown
        self.stop_timeout = (config.timeout_graceful_shutdown or 30) + 30

    # --- workers ---------------------------------------------------------------------------------

    def _spawn(self) -> Worker:
        address = (self.config.host, self.config.port) if self.reuse_port else None
        worker = Worker(self.config, self.sockets, address)
        worker.start()
        return worker

    def _start_slot(self, slot: _Slot) -> None:
        slot.worker = self._spawn()
        slot.started = False
        slot.ping_sent_at = None
        slot.last_answer = time.monotonic()
        log.info("worker started", pid=slot.worker.pid)

    def _ping(self, slot: _Slot, now: float) -> bool:
        """Non-blocking healthcheck over uvicorn's ping pipe (the worker's thread answers with
        whether its server has started). False when the worker has not answered for
        ``timeout_worker_healthcheck`` seconds."""
        worker = slot.worker
        assert worker is not None
        conn = worker.parent_conn
        try:
            if slot.ping_sent_at is not None and conn.poll():
                slot.started = bool(conn.recv())
                slot.ping_sent_at = None
                slot.last_answer = now
            if slot.ping_sent_at is None:
                conn.send(b"ping")
                slot.ping_sent_at = now
        except (OSError, EOFError):
            return not worker.process.is_alive()  # it died: the caller sees that
        return now - slot.last_answer < self.config.timeout_worker_healthcheck

    def _check(self, slot: _Slot, now: float) -> None:
        worker = slot.worker
        if self.stopping:
            return
        if worker is None:
            if now >= slot.restart_at:
                self._start_slot(slot)
            return
        hung = False
        if worker.process.is_alive():
            if self._ping(slot, now):
                return
            hung = True  # alive, but silent for timeout_worker_healthcheck seconds
            worker.kill()
        worker.process.join()
        code = worker.exitcode
        reason = (
            f"did not answer the supervisor for {self.config.timeout_worker_healthcheck} s; killed"
            if hung
            else describe_exit(code)
        )
        ran_for = now - worker.started_at
        # Before every worker has started, a worker that exits by itself (or hangs) means the
        # app, the store or the address is broken and its replacements would fail alike; one
        # killed from outside (OOM, an operator) is replaced like any other.
        if not self.serving and (hung or code is None or code >= 0):
            self.failure = (
                f"a worker (pid {worker.pid}) {reason} before all "
                f"{len(self.slots)} workers had started; stopping"
            )
            log.error("worker failed to start", pid=worker.pid, reason=reason)
            self.stopping = True
            slot.worker = None
            return
        delay = slot.backoff.after_death(ran_for)
        log.error(
            "worker died; replacing it",
            pid=worker.pid,
            reason=reason,
            ran_seconds=round(ran_for, 1),
            restart_in_seconds=delay,
        )
        slot.worker = None
        slot.restart_at = now + delay

    def _restart_all(self) -> None:
        """SIGHUP: replace each worker by a new one, retiring the old once the new has started."""
        for slot in self.slots:
            new = _Slot(worker=None)
            self._start_slot(new)
            deadline = time.monotonic() + self.config.timeout_worker_healthcheck
            while not new.started:
                time.sleep(TICK)
                self._handle_signals()
                now = time.monotonic()
                if self.stopping or now > deadline or not self._answers(new, now):
                    log.error("replacement worker did not start; keeping the old one")
                    self._stop(new.worker)
                    return
            self._stop(slot.worker)
            slot.worker, slot.started = new.worker, True
            slot.ping_sent_at, slot.last_answer = new.ping_sent_at, new.last_answer

    def _answers(self, slot: _Slot, now: float) -> bool:
        return slot.worker is not None and slot.worker.process.is_alive() and self._ping(slot, now)

    def _stop(self, worker: Worker | None, *, signalled: bool = False) -> None:
        """SIGTERM (unless ``signalled``), then wait; kill a worker that outlasts its shutdown."""
        if worker is None:
            return
        if not signalled:
            worker.terminate()
        worker.process.join(self.stop_timeout)
        if worker.process.is_alive():
            log.warning(
                "worker still running after its shutdown timeout; killed",
                pid=worker.pid,
                seconds=self.stop_timeout,
            )
            worker.kill()
            worker.process.join()
        code = worker.exitcode
        graceful = code in (0, -signal.SIGTERM, -signal.SIGINT)  # uvicorn re-raises the signal
        log.info(
            "worker stopped", pid=worker.pid, how="gracefully" if graceful else describe_exit(code)
        )

    # --- signals ---------------------------------------------------------------------------------

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)  # handled by the loop: a handler must not take locks

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            name = signal.Signals(sig).name
            if sig in _STOP_SIGNALS:
                if not self.stopping:
                    log.info("stopping the workers", signal=name)
                self.stopping = True
            elif sig == signal.SIGHUP and not self.stopping and not self.restarting:
                log.info("replacing the workers", signal=name)
                self.restarting = True
                try:
                    self._restart_all()
                finally:
                    self.restarting = False

    # --- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until a stop signal; raises :class:`MusicgraphError` when the workers could not
        all start."""
        handled = (*_STOP_SIGNALS, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            if not self.reuse_port:
                self.sockets = [self.config.bind_socket()]
            self.slots = [_Slot(worker=None) for _ in range(self.config.workers)]
            log.info(
                "supervisor started",
                pid=os.getpid(),
                workers=len(self.slots),
                url=f"http://{self.config.host}:{self.config.port}",
                sockets="one per worker (SO_REUSEPORT)" if self.reuse_port else "shared",
            )
            for slot in self.slots:
                self._start_slot(slot)
            while True:
                self._handle_signals()
                if self.stopping:
                    break
                now = time.monotonic()
                for slot in self.slots:
                    self._check(slot, now)
                if not self.serving and all(s.started for s in self.slots):
                    self.serving = True
                    log.info(
                        "all workers started", pids=[s.worker.pid for s in self.slots if s.worker]
                    )
                time.sleep(TICK)
            workers = [slot.worker for slot in self.slots if slot.worker is not None]
            for worker in workers:  # all at once: they drain in parallel
                worker.terminate()
            for worker in workers:
                self._stop(worker, signalled=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets:
                sock.close()
        log.info("supervisor stopped", pid=os.getpid())
        if self.failure is not None:
            raise MusicgraphError(self.failure)
