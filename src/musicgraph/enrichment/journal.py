"""A small journal of the queue entries this machine has claimed and not yet written back.

The store leases claimed entries (``ENRICHMENT_CLAIM_LEASE`` seconds) so that two workers never
take the same one. A worker killed mid-run leaves its leases behind; without help they would stay
invisible until the lease runs out. The pipeline writes every claim here (a SQLite file next to
the HTTP cache, ``<cache>.claims``) and removes it when the result is written; when it starts it
releases what a previous process left, so a restart resumes at once. It is only an accelerator: losing the journal
costs at most one lease period, never work.

A kill can also land between the store's claim and the journal entry for it. So before each claim
the pipeline notes its intent (source and claim time, which fixes the lease's end); a restart
that finds an intent left over releases every state still leased until exactly that moment.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import aiosqlite

from musicgraph.errors import EnrichmentError
from musicgraph.graph.base import ENRICHMENT_CLAIM_LEASE, GraphStore
from musicgraph.graph.models import EnrichmentStatus
from musicgraph.logging import get_logger
from musicgraph.sqlite_wal import enable_wal_file

__all__ = ["ClaimJournal"]

log = get_logger(__name__)


class ClaimJournal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> ClaimJournal:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # other workers may be creating the file too (musicgraph.sqlite_wal)
            await asyncio.to_thread(enable_wal_file, self.path, timeout=30.0)
            self._db = await aiosqlite.connect(self.path, timeout=30.0)
            await (await self._db.execute("PRAGMA synchronous=NORMAL")).close()
            cursor = await self._db.execute(
                "CREATE TABLE IF NOT EXISTS claims ("
                " source TEXT NOT NULL, track_id TEXT NOT NULL, claimed_at REAL NOT NULL,"
                " PRIMARY KEY (source, track_id))"
            )
            await cursor.close()
            cursor = await self._db.execute(
                "CREATE TABLE IF NOT EXISTS intents ("
                " source TEXT NOT NULL, claimed_at INTEGER NOT NULL,"
                " PRIMARY KEY (source, claimed_at))"
            )
            await cursor.close()
            await self._db.commit()
        except Exception as exc:
            raise EnrichmentError(f"cannot open the claim journal at {self.path}: {exc}") from exc
        return self

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def add(self, source: str, track_ids: Sequence[str]) -> None:
        if self._db is None or not track_ids:
            return
        now = time.time()
        await self._write(
            "INSERT OR REPLACE INTO claims (source, track_id, claimed_at) VALUES (?, ?, ?)",
            [(source, t, now) for t in track_ids],
        )

    async def intend(self, source: str, claimed_at: int) -> None:
        """Note a claim about to be made at ``claimed_at`` (before the store leases anything)."""
        if self._db is not None:
            await self._write(
                "INSERT OR IGNORE INTO intents (source, claimed_at) VALUES (?, ?)",
                [(source, claimed_at)],
            )

    async def settle(self, source: str, claimed_at: int) -> None:
        """The claim made at ``claimed_at`` is in the journal (or took nothing)."""
        if self._db is not None:
            await self._write(
                "DELETE FROM intents WHERE source = ? AND claimed_at = ?", [(source, claimed_at)]
            )

    async def remove(self, source: str, track_ids: Sequence[str]) -> None:
        if self._db is None or not track_ids:
            return
        await self._write(
            "DELETE FROM claims WHERE source = ? AND track_id = ?",
            [(source, t) for t in track_ids],
        )

    async def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        assert self._db is not None
        try:
            async with self._db.executemany(sql, rows):
                pass
            await self._db.commit()
        except sqlite3.Error as exc:
            # Only an accelerator (see the module docstring): a lost entry costs one lease period.
            log.warning("claim journal write failed", path=str(self.path), error=str(exc))

    async def pending(self, source: str) -> list[str]:
        if self._db is None:
            return []
        async with self._db.execute(
            "SELECT track_id FROM claims WHERE source = ? ORDER BY claimed_at", (source,)
        ) as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def _intents(self, source: str) -> list[int]:
        if self._db is None:
            return []
        async with self._db.execute(
            "SELECT claimed_at FROM intents WHERE source = ? ORDER BY claimed_at", (source,)
        ) as cur:
            return [int(r[0]) for r in await cur.fetchall()]

    async def release_stale(self, store: GraphStore, sources: Sequence[str]) -> int:
        """Make the entries a previous process claimed (and never finished) due now."""
        released = 0
        now = int(time.time())
        for source in sources:
            for claimed_at in await self._intents(source):
                released += await store.release_enrichment_leases(
                    source, lease=claimed_at + ENRICHMENT_CLAIM_LEASE, now=now
                )
                await self.settle(source, claimed_at)
            ids = await self.pending(source)
            if not ids:
                continue
            back = []
            for track_id in ids:
                for st in await store.get_enrichment_states(track_id):
                    if (
                        st.source == source
                        and st.status in (EnrichmentStatus.PENDING, EnrichmentStatus.FAILED)
                        and now < st.not_before < 2**61
                    ):
                        back.append(replace(st, not_before=now))
            if back:
                await store.set_enrichment_states(back)
                released += len(back)
            await self.remove(source, ids)
        return released
