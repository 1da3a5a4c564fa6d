"""The event bus between processes on one machine: an outbox table in SQLite that they all poll.

For ``musicgraph serve --workers N`` on the embedded store without Redis: nothing to run besides
the processes themselves. ``publish`` delivers to the local subscribers at once (as the in-process
bus does) and queues the event; a task appends what is queued to the ``event_outbox`` table (one
transaction per batch) and, every ``interval`` seconds, asks SQLite whether another connection
changed the file (``PRAGMA data_version`` on a connection of its own, about 3 µs in the event loop,
never waiting for a lock) and only then reads the rows it has not seen (``id > last``, in
aiosqlite's thread), delivering those of other processes. SQLite has one writer at a time, so ids
grow in commit order and no row is skipped. Rows older than ``retention`` seconds are deleted now
and then.

The table lives in a small SQLite file next to the store's (:func:`outbox_path`: ``<db>-events``),
not in it: its writes never wait behind the store's write transactions (an import batch holds the
store's lock for a while), and never count as changes to the graph (the response cache and the
store's readers watch the store file's ``PRAGMA data_version``). The row is written after the
store's transaction, not in it: a process killed between the two loses that one event for the
other processes (their projections miss the change until they restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import aiosqlite

from musicgraph.bus.codec import EventDecodeError, decode_event, encode_event
from musicgraph.errors import StoreError
from musicgraph.events import Event, EventBus
from musicgraph.logging import get_logger
from musicgraph.sqlite_wal import enable_wal_file

__all__ = ["OUTBOX_TABLE", "OutboxEventBus", "outbox_path"]

log = get_logger("musicgraph.bus.outbox")

OUTBOX_TABLE = "event_outbox"
_CREATE = f"""
CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after pruning the newest rows
    origin TEXT NOT NULL,
    created_at REAL NOT NULL,
    body BLOB NOT NULL
)
"""
_CREATED_AT_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {OUTBOX_TABLE}_created_at ON {OUTBOX_TABLE} (created_at)"
)
_INSERT = f"INSERT INTO {OUTBOX_TABLE} (origin, created_at, body) VALUES (?, ?, ?)"
_NEWER = f"SELECT id, origin, body FROM {OUTBOX_TABLE} WHERE id > ? ORDER BY id"
_LAST = f"SELECT COALESCE(MAX(id), 0) FROM {OUTBOX_TABLE}"
_PRUNE = f"DELETE FROM {OUTBOX_TABLE} WHERE created_at < ?"


def outbox_path(db_path: str | Path) -> Path:
    """The outbox file of the store at ``db_path``: ``graph.db`` -> ``graph.db-events``."""
    path = Path(db_path)
    return path.with_name(path.name + "-events")


class OutboxEventBus(EventBus):
    """Local delivery plus an outbox table in the SQLite file; see the module docstring."""

    backend = "outbox"

    def __init__(
        self,
        path: str | Path,
        *,
        queue_size: int = 1000,
        interval: float = 0.1,
        retention: float = 60.0,
        prune_every: float = 10.0,
        busy_timeout: float = 5.0,
        pending_limit: int = 10_000,
    ) -> None:
        super().__init__(queue_size=queue_size)
        self.path = Path(path)
        self.origin = uuid.uuid4().hex
        self.interval = interval
        self.retention = retention
        self.prune_every = prune_every
        self.busy_timeout = busy_timeout
        self.pending_limit = pending_limit
        self._db: aiosqlite.Connection | None = None
        self._probe: sqlite3.Connection | None = None
        self._pending: list[bytes] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_id = 0
        self._data_version: int | None = None
        self._pruned_at = 0.0
        self._error: str | None = None
        self._closing = False
        self.sent = 0
        self.received = 0
        self.unserialisable = 0
        self.dropped_outgoing = 0

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the file, create the table if needed and start after its newest row (what came
        before is already in the store this process loads)."""
        if self._task is not None:
            return
        try:
            # before the connection that stays: the other workers may be creating the file too
            await asyncio.to_thread(enable_wal_file, self.path, timeout=self.busy_timeout)
            db = await aiosqlite.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise StoreError(f"the event outbox in {self.path} could not be opened: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute(_CREATE)
            await db.execute(_CREATED_AT_INDEX)
            self._last_id = await self._scalar(db, _LAST)
            # the probe never waits: a busy file is simply looked at through ``db``
            self._probe = sqlite3.connect(self.path, isolation_level=None)
            self._probe.execute("PRAGMA busy_timeout = 0")
            self._data_version = self._changes()
        except sqlite3.Error as exc:
            await db.close()
            if self._probe is not None:
                self._probe.close()
                self._probe = None
            raise StoreError(f"the event outbox in {self.path} could not be set up: {exc}") from exc
        self._db = db
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="event-bus-outbox")

    async def close(self) -> None:
        """Write what is queued, stop polling and close the connection. The task is asked to
        stop rather than cancelled: cancelled between its BEGIN and its COMMIT, it would leave
        the transaction open and the last events (a CLI command publishes and closes at once)
        unwritten."""
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            try:
                await task
            except Exception as exc:  # pragma: no cover - the loop catches sqlite errors itself
                log.warning("event bus: the outbox task failed", error=str(exc))
        if self._db is not None:
            try:
                await self._flush(self._db)
            except sqlite3.Error as exc:
                log.warning(
                    "event bus: events not written to the outbox at close",
                    path=str(self.path),
                    events=len(self._pending),
                    error=str(exc),
                )
            await self._db.close()
            self._db = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    @staticmethod
    async def _scalar(db: aiosqlite.Connection, sql: str) -> int:
        async with db.execute(sql) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    # --- publishing -------------------------------------------------------------------------------
    def forward(self, event: Event) -> None:
        try:
            self._pending.append(encode_event(event, self.origin))
        except TypeError as exc:
            self.unserialisable += 1
            log.error("event bus: event not sent to other processes", error=str(exc))
            return
        if len(self._pending) > self.pending_limit:  # the file has been failing for a while
            del self._pending[0]
            self.dropped_outgoing += 1
        self._wake.set()

    async def _flush(self, db: aiosqlite.Connection) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        now = time.time()
        try:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(_INSERT, [(self.origin, now, body) for body in batch])
                if now - self._pruned_at >= self.prune_every:
                    await db.execute(_PRUNE, (now - self.retention,))
                    self._pruned_at = now
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise
        except BaseException:
            self._pending[:0] = batch  # first in line again, in order
            raise
        self.sent += len(batch)

    # --- receiving --------------------------------------------------------------------------------
    def _changes(self) -> int | None:
        """The probe's ``PRAGMA data_version`` (None when the file is busy: look anyway)."""
        assert self._probe is not None
        try:
            row = self._probe.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0])

    async def _poll(self, db: aiosqlite.Connection) -> None:
        version = self._changes()
        if version is not None and version == self._data_version:
            return  # no other connection committed anything since the last look
        self._data_version = version
        async with db.execute(_NEWER, (self._last_id,)) as cur:
            rows = await cur.fetchall()
        for row_id, origin, body in rows:
            self._last_id = int(row_id)
            if origin == self.origin:
                continue
            try:
                _, event = decode_event(body)
            except EventDecodeError as exc:
                log.warning("event bus: outbox row ignored", id=row_id, error=str(exc))
                continue
            self.received += 1
            self.deliver(event)

    async def _run(self) -> None:
        db = self._db
        assert db is not None
        loop = asyncio.get_running_loop()
        while True:
            # a timer instead of wait_for: no task per round (this runs ten times a second)
            timer = loop.call_later(self.interval, self._wake.set)
            await self._wake.wait()
            timer.cancel()
            self._wake.clear()
            try:
                await self._flush(db)
                if self._closing:
                    return
                await self._poll(db)
            except sqlite3.Error as exc:
                if self._error is None:
                    log.warning(
                        "event bus: the outbox in the SQLite file failed; retrying",
                        path=str(self.path),
                        error=str(exc),
                    )
                self._error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self.interval)
                continue
            if self._error is not None:
                log.info("event bus: the outbox works again", path=str(self.path))
                self._error = None

    # --- state -------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        running = self._task is not None and not self._task.done()
        return {
            "backend": self.backend,
            "ok": running and self._error is None,
            "path": str(self.path),
            "error": self._error if running else "not running",
            "sent": self.sent,
            "received": self.received,
            "queued": len(self._pending),
            "dropped": self.dropped_outgoing,
            "unserialisable": self.unserialisable,
        }
