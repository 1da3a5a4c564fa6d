"""Crash test: ``musicgraph enrich`` killed with SIGKILL mid-run and started again ends in the
same state as a run that was never interrupted."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from musicgraph.graph.models import ENRICHMENT_SOURCES, TrackRef
from musicgraph.graph.sqlite_store import SqliteGraphStore
from tests.enrichment.conftest import catalogue
from tests.support.fake_apis import FakeApis, FakeWorld

N_TRACKS = 150
RATES = {"musicbrainz": 100.0, "lastfm": 150.0, "spotify": 100.0, "cyanite": 100.0}


async def _seed(db: Path, pairs: list[tuple[str, str]]) -> None:
    store = SqliteGraphStore(db)
    await store.open()
    try:
        tracks = await store.resolve_tracks([TrackRef(artist=a, title=t) for a, t in pairs])
        await store.enqueue_enrichment([t.id for t in tracks], ENRICHMENT_SOURCES)
    finally:
        await store.close()


async def _final_state(db: Path) -> dict[str, Any]:
    """Everything enrichment writes, without timestamps."""
    store = SqliteGraphStore(db)
    await store.open()
    try:
        tracks = [t for chunk in [c async for c in store.iter_tracks()] for t in chunk]
        ids = sorted(t.id for t in tracks)
        states = {
            (s.track_id, s.source): (s.status, s.last_error)
            for i in ids
            for s in await store.get_enrichment_states(i)
        }
        tags = dict(zip(ids, await store.get_tags("track", ids), strict=True))
        similar = {i: await store.get_similar("track", i) for i in ids}
        artists = [a for chunk in [c async for c in store.iter_artists()] for a in chunk]
        return {
            "tracks": sorted(tracks, key=lambda t: t.id),
            "states": states,
            "tags": {k: sorted((t.tag, t.count) for t in v) for k, v in tags.items()},
            "similar": {
                k: sorted((s.target_id, s.score, s.source) for s in v) for k, v in similar.items()
            },
            "artists": sorted(artists, key=lambda a: a.id),
            "artist_similar": {
                a.id: sorted(
                    (s.target_id, s.score) for s in await store.get_similar("artist", a.id)
                )
                for a in artists
            },
        }
    finally:
        await store.close()


def _env(fake: FakeApis, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICGRAPH_", "NEO4J_"))}
    env.update(fake.env())
    env.update(
        {
            "MUSICGRAPH_DB": str(db),
            "MUSICGRAPH_HTTP_CACHE": str(db.with_suffix(".cache")),
            "MUSICGRAPH_HTTP_BACKOFF": "0.05",
            "MUSICGRAPH_BREAKER_RESET": "0.5",
            "MUSICGRAPH_CYANITE_POLL": "1",
            "MUSICGRAPH_ENRICH_RETRY_DELAY": "1",
            "MUSICGRAPH_LOG_LEVEL": "warning",
        }
    )
    env.update({f"MUSICGRAPH_{k.upper()}_RATE": str(v) for k, v in RATES.items()})
    return env


def _enrich(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "musicgraph.cli", "enrich", "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _done(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM enrichment WHERE status = 'done'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
async def test_sigkill_mid_run_then_restart_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """Kill -9 in the middle of enrichment, start again: nothing lost, nothing finished twice
    differently, and the final graph and queue equal those of an uninterrupted run."""
    pairs = catalogue(N_TRACKS, artists=12, obscure=3)
    world = FakeWorld(rates=dict(RATES))
    world.add_tracks([p for p in pairs if "obscure" not in p[1]])
    crashed, reference = tmp_path / "crashed.db", tmp_path / "reference.db"
    await _seed(crashed, pairs)
    await _seed(reference, pairs)
    total = len(pairs) * len(ENRICHMENT_SOURCES)
    with FakeApis(world) as fake:
        proc = _enrich(_env(fake, crashed))
        deadline = time.monotonic() + 60
        while _done(crashed) < total // 5:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the first run made no progress"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        interrupted_at = _done(crashed)
        assert 0 < interrupted_at < total, "the kill did not land mid-run"

        restarted = _enrich(_env(fake, crashed))
        _, err = await asyncio.to_thread(restarted.communicate, timeout=120)
        assert restarted.returncode == 0, err.decode()

        uninterrupted = _enrich(_env(fake, reference))
        _, err = await asyncio.to_thread(uninterrupted.communicate, timeout=120)
        assert uninterrupted.returncode == 0, err.decode()

    after_crash = await _final_state(crashed)
    clean = await _final_state(reference)
    statuses = {v[0] for v in after_crash["states"].values()}
    assert statuses == {"done", "skipped"}
    assert after_crash["states"] == clean["states"]
    assert after_crash["tracks"] == clean["tracks"]
    assert after_crash["tags"] == clean["tags"]
    assert after_crash["similar"] == clean["similar"]
    assert after_crash["artists"] == clean["artists"]
    assert after_crash["artist_similar"] == clean["artist_similar"]
