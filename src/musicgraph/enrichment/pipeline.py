"""The durable enrichment pipeline: the queue lives in the store, workers per source drain it.

The work is the enrichment state of every (track, source) pair in the store (DESIGN.md section 2):
pending, done, failed (with attempts, last error and ``not_before``) or skipped. That is the only
record of progress, so killing the process and starting it again resumes where it stopped: a
state becomes ``done`` only after the results it stands for are written, and the writes are
idempotent upserts, so an item interrupted half-way is simply done again (from the HTTP cache).
Claims are leases in the store; a small journal (:mod:`musicgraph.enrichment.journal`) lets a
restarted process release the leases its killed predecessor held instead of waiting them out.

Per enabled source one worker claims due items (``claim_enrichment``), runs up to
``enrich_concurrency`` of them at once through the source (whose client keeps the source's rate),
and writes results in batches: artists (MBIDs), track properties, TAGGED and SIMILAR edges, then
the states. Each batch is published as ``"tracks.updated"``, ``"tags.changed"`` and
``"similarity.added"`` events for the recommender's projection. Outcomes:

- done / skipped (the source does not know the track) are final;
- deferred (a Cyanite analysis still running) goes back to pending with ``not_before``;
- an error of this track -> failed, ``attempts + 1``, retried after an exponential delay, given up
  (``not_before`` far in the future) after ``enrich_max_attempts``;
- the source unavailable (breaker open, rate limit persisting) -> the item stays pending, no attempt
  is spent, and the worker pauses until the breaker may half-open, while other sources go on;
- the source refusing our credentials -> the source is reported disabled and its worker stops.

Progress goes out as ``"enrichment.progress"`` events, one per source, with the payload of
:meth:`SourceProgress.as_dict` (done, failed, skipped, deferred, pending, rate, ETA, state).
Result events: ``"tracks.updated"`` ``{"source", "track_ids", "updates"}``, ``"tags.changed"``
``{"source", "kind": "track", "item_ids", "taggings"}``, ``"similarity.added"``
``{"source", "similarities": [asdict(Similarity), ...]}``.

The GraphQL ``startEnrichment`` mutation calls :func:`start_enrichment`; the CLI calls
:meth:`EnrichmentPipeline.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from musicgraph.enrichment.http import ResponseCache
from musicgraph.enrichment.journal import ClaimJournal
from musicgraph.enrichment.sources.base import (
    EnrichmentResult,
    EnrichmentSource,
    Outcome,
    TrackContext,
)
from musicgraph.errors import (
    ConfigError,
    EnrichmentError,
    RateLimitedError,
    SourceDisabledError,
    SourceUnavailableError,
    StoreError,
)
from musicgraph.events import Event, EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.identity import normalise
from musicgraph.graph.models import (
    ENRICHMENT_SOURCES,
    ArtistRef,
    EnrichmentState,
    EnrichmentStatus,
    Similarity,
    Tagging,
    Track,
    TrackUpdate,
)
from musicgraph.health.monitor import HealthMonitor
from musicgraph.logging import get_logger
from musicgraph.settings import Settings

__all__ = [
    "GAVE_UP",
    "EnrichmentPipeline",
    "SourceProgress",
    "build_sources",
    "default_cache_path",
    "start_enrichment",
]

log = get_logger(__name__)

#: ``not_before`` of an item the pipeline gave up on: never due again (until reset by hand).
GAVE_UP = 2**62
#: How many times a deferred item (an analysis still running) is polled before it is skipped.
MAX_POLLS = 100
#: A run started ``until_idle`` waits for items deferred at most this long; later ones are left
#: for a later run.
WAIT_HORIZON = 300.0


def default_cache_path(settings: Settings) -> Path:
    """The HTTP cache file: ``MUSICGRAPH_HTTP_CACHE``, else next to the SQLite store."""
    if settings.http_cache is not None:
        return settings.http_cache
    if settings.uses_neo4j:
        return Path.home() / ".cache" / "musicgraph" / "http-cache.db"
    db = settings.db_path
    return db.with_name(db.name + ".http-cache")


def build_sources(
    settings: Settings,
    monitor: HealthMonitor,
    *,
    names: Sequence[str] | None = None,
    cache: ResponseCache | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[EnrichmentSource]:
    """The sources named (all of them by default), enabled or not, registered with the monitor."""
    from musicgraph.enrichment.sources.cyanite import CyaniteSource
    from musicgraph.enrichment.sources.lastfm import LastfmSource
    from musicgraph.enrichment.sources.musicbrainz import MusicBrainzSource
    from musicgraph.enrichment.sources.spotify import SpotifySource

    classes: dict[str, Any] = {
        "musicbrainz": MusicBrainzSource,
        "lastfm": LastfmSource,
        "spotify": SpotifySource,
        "cyanite": CyaniteSource,
    }
    wanted = list(names) if names else list(ENRICHMENT_SOURCES)
    unknown = [n for n in wanted if n not in classes]
    if unknown:
        raise ConfigError(
            f"unknown enrichment source(s) {', '.join(unknown)}; choose from {', '.join(classes)}"
        )
    sources: list[EnrichmentSource] = []
    for name in wanted:
        source: EnrichmentSource = classes[name](
            settings, monitor=monitor, cache=cache, transport=transport
        )
        client = source.client
        monitor.register_source(
            name,
            enabled=source.enabled,
            disabled_reason=source.disabled_reason,
            rate_limit=getattr(settings, f"{name}_rate", None),
            budget=client.budget if client is not None else None,
            probe=source.probe if source.enabled else None,
        )
        sources.append(source)
    return sources


@dataclass
class SourceProgress:
    """How one source's work is going in this run (and in the store)."""

    source: str
    # starting, running, paused, waiting, idle, finished, disabled, unavailable, stopped
    state: str = "starting"
    done: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    pending: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=512))

    @property
    def processed(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def rate(self) -> float:
        """Items finished per second over the last 30 seconds."""
        now = time.monotonic()
        window = [t for t in self.recent if now - t <= 30.0]
        span = now - max(now - 30.0, self.started_at)
        return len(window) / span if window and span > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        if self.pending == 0:
            return 0.0
        return self.pending / rate if rate > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "state": self.state,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "deferred": self.deferred,
            "pending": self.pending,
            "totals": dict(self.totals),
            "rate": round(self.rate, 3),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "reason": self.reason,
        }


@dataclass
class _Finished:
    state: EnrichmentState
    ctx: TrackContext
    result: EnrichmentResult | None = None
    error: str | None = None
    release: bool = False  # give the item back untouched (source paused or disabled)
    pause: bool = False
    disable: bool = False


class EnrichmentPipeline:
    """Drains the enrichment queue of the store through the enabled sources.

    ``run(until_idle=True)`` returns when no source has due work left (items deferred during
    the run are waited for); ``until_idle=False`` keeps polling for new work until :meth:`stop`.
    :meth:`start` runs it as a background task (the server's way).
    """

    def __init__(
        self,
        store: GraphStore,
        settings: Settings,
        bus: EventBus | None = None,
        monitor: HealthMonitor | None = None,
        *,
        sources: Sequence[str] | None = None,
        cache_path: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        batch_size: int = 64,
        progress_interval: float = 1.0,
        idle_poll: float = 2.0,
        give_up_after: float = 120.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.bus = bus or EventBus()
        self.monitor = monitor or HealthMonitor(self.bus, interval=settings.health_interval)
        self.source_names = list(sources) if sources else list(ENRICHMENT_SOURCES)
        self.cache_path = cache_path or default_cache_path(settings)
        self.transport = transport
        self.batch_size = batch_size
        self.progress_interval = progress_interval
        self.idle_poll = idle_poll
        self.give_up_after = give_up_after
        self.progress: dict[str, SourceProgress] = {n: SourceProgress(n) for n in self.source_names}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[dict[str, SourceProgress]] | None = None
        self._write_lock = asyncio.Lock()
        self._journal = ClaimJournal(_journal_path(self.cache_path))
        self._active: frozenset[str] = frozenset()

    # --- control -------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(
        self, *, until_idle: bool = False, limit: int | None = None
    ) -> asyncio.Task[dict[str, SourceProgress]]:
        """Run in the background (idempotent: a running pipeline is returned as it is)."""
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self.run(until_idle=until_idle, limit=limit), name="enrichment-pipeline"
            )
        return self._task

    async def stop(self) -> None:
        """Ask the workers to finish what they hold, write it, and return."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """New work was queued (e.g. tracks imported): stop idling now."""
        self._wake.set()

    def snapshot(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.progress.values()]

    # --- the run ---------------------------------------------------------------------------------------
    async def run(
        self, *, until_idle: bool = True, limit: int | None = None
    ) -> dict[str, SourceProgress]:
        cache = await ResponseCache(self.cache_path).open()
        self._journal = await ClaimJournal(_journal_path(self.cache_path)).open()
        sources = build_sources(
            self.settings,
            self.monitor,
            names=self.source_names,
            cache=cache,
            transport=self.transport,
        )
        self.monitor.attach_store(self.store)
        for p in self.progress.values():
            p.started_at = time.monotonic()
        reporter = asyncio.get_running_loop().create_task(self._report_loop())
        listener = asyncio.get_running_loop().create_task(self._listen_for_new_tracks())
        try:
            released = await self._journal.release_stale(self.store, self.source_names)
            if released:
                log.info("released claims of an interrupted run", count=released)
            await self._refresh_totals()
            self._active = frozenset(s.name for s in sources if s.enabled)
            workers = []
            for source in sources:
                prog = self.progress[source.name]
                if not source.enabled:
                    prog.state = "disabled"
                    prog.reason = source.disabled_reason
                    continue
                workers.append(
                    asyncio.get_running_loop().create_task(
                        self._worker(source, until_idle=until_idle, limit=limit)
                    )
                )
            try:
                await asyncio.gather(*workers)
            except BaseException:
                # One worker failed (the store, say): stop the others before their clients close.
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
        finally:
            reporter.cancel()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            for source in sources:
                self.monitor.detach_source(source.name)
                with contextlib.suppress(Exception):
                    await source.aclose()
            await cache.close()
            await self._journal.close()
        with contextlib.suppress(StoreError):
            await self._refresh_totals()
        self._publish_progress()
        return self.progress

    async def _listen_for_new_tracks(self) -> None:
        async with self.bus.subscription(["listens.recorded"]) as sub:
            async for _ in sub:
                self._wake.set()

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            with contextlib.suppress(StoreError):
                await self._refresh_totals()
            self._publish_progress()

    async def _refresh_totals(self) -> None:
        counts = await self.store.enrichment_counts()
        self.monitor.set_enrichment_counts(counts)
        for name, prog in self.progress.items():
            totals = dict(counts.get(name, {}))
            prog.totals = totals
            prog.pending = totals.get("pending", 0)

    def _publish_progress(self) -> None:
        for prog in self.progress.values():
            self.bus.publish(Event("enrichment.progress", prog.as_dict()))

    # --- one source ------------------------------------------------------------------------------------
    async def _worker(
        self, source: EnrichmentSource, *, until_idle: bool, limit: int | None
    ) -> None:
        name = source.name
        prog = self.progress[name]
        prog.state = "running"
        concurrency = self.settings.enrich_concurrency
        sem = asyncio.Semaphore(concurrency)
        inflight: dict[str, asyncio.Task[_Finished]] = {}
        buffered: list[_Finished] = []
        claims = 0
        deferred_due: list[float] = []  # epoch seconds at which items deferred in this run are due
        last_flush = time.monotonic()
        pause_until = 0.0
        last_progress = time.monotonic()
        stopping_reason: str | None = None
        unavailable = False

        async def process(state: EnrichmentState, ctx: TrackContext) -> _Finished:
            async with sem:
                if stopping_reason is not None or time.monotonic() < pause_until:
                    return _Finished(state, ctx, release=True)
                try:
                    return _Finished(state, ctx, result=await source.enrich(ctx))
                except (SourceUnavailableError, RateLimitedError) as exc:
                    return _Finished(state, ctx, error=str(exc), release=True, pause=True)
                except SourceDisabledError as exc:
                    return _Finished(state, ctx, error=str(exc), release=True, disable=True)
                except EnrichmentError as exc:
                    return _Finished(state, ctx, error=str(exc))
                except Exception as exc:  # a bad answer must not stop the whole source
                    log.exception("enrichment failed unexpectedly", source=name, track=ctx.track.id)
                    return _Finished(state, ctx, error=f"{type(exc).__name__}: {exc}")

        while True:
            now = time.monotonic()
            stop = self._stop.is_set() or stopping_reason is not None
            paused = now < pause_until
            room = 2 * concurrency - len(inflight) - len(buffered)
            if limit is not None:
                room = min(room, limit - claims)
            if not stop and not paused and room > 0:
                fresh = await self._claim(name, room)
                claims += len(fresh)
                for state, ctx in fresh:
                    inflight[state.track_id] = asyncio.create_task(process(state, ctx))
            if not inflight:
                if buffered:
                    await self._flush(name, buffered, deferred_due)
                    buffered = []
                    last_flush = time.monotonic()
                    continue
                if stop:
                    break
                if paused and until_idle and now - last_progress > self.give_up_after:
                    # Down for good as far as this run can tell: leave the rest for a later run.
                    stopping_reason = (
                        f"unavailable for {now - last_progress:.0f}s, left for a later run: "
                        f"{prog.reason}"
                    )
                    unavailable = True
                    continue
                if paused:
                    prog.state = "paused"
                    self._publish_progress()
                    await self._sleep(pause_until - now)
                    prog.state = "running"
                    continue
                while deferred_due and deferred_due[0] <= time.time() - 5:
                    heapq.heappop(deferred_due)  # came due and was not claimed: taken elsewhere
                due = deferred_due[0] if deferred_due else None
                if limit is not None and claims >= limit:
                    break
                if until_idle and due is None:
                    break
                prog.state = "idle" if due is None else "waiting"
                wait = self.idle_poll if due is None else max(0.05, due - time.time() + 0.05)
                await self._sleep(wait if until_idle else min(wait, self.idle_poll))
                if deferred_due and deferred_due[0] <= time.time():
                    heapq.heappop(deferred_due)
                prog.state = "running"
                continue
            done, _ = await asyncio.wait(
                inflight.values(), timeout=0.25, return_when=asyncio.FIRST_COMPLETED
            )
            released: list[_Finished] = []
            for task in done:
                fin = task.result()
                del inflight[fin.state.track_id]
                if fin.release:
                    released.append(fin)
                    claims -= 1
                    if fin.pause:
                        client = source.client
                        retry_at = client.retry_at() if client is not None else 0.0
                        pause_until = max(
                            pause_until, retry_at, time.monotonic() + self.settings.http_backoff
                        )
                        prog.reason = fin.error
                    if fin.disable and stopping_reason is None:
                        stopping_reason = fin.error or "disabled"
                        self.monitor.set_disabled(name, stopping_reason)
                    continue
                buffered.append(fin)
            if released:
                wait = max(0.0, pause_until - time.monotonic())
                await self._release(name, [f.state for f in released], delay=wait)
            if buffered:
                last_progress = time.monotonic()
            if buffered and (
                len(buffered) >= self.batch_size or time.monotonic() - last_flush > 0.5
            ):
                await self._flush(name, buffered, deferred_due)
                buffered = []
                last_flush = time.monotonic()
        if stopping_reason is not None:
            # Sources waiting for this one's results must not wait for this run any more.
            self._active = self._active - {name}
        if unavailable:
            prog.state = "unavailable"
            prog.reason = stopping_reason
            log.warning("source left for a later run", source=name, reason=stopping_reason)
        elif stopping_reason is not None:
            prog.state = "disabled"
            prog.reason = stopping_reason
            log.warning("source stopped for this run", source=name, reason=stopping_reason)
        else:
            prog.state = "stopped" if self._stop.is_set() else "finished"

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))

    async def _claim(self, name: str, room: int) -> list[tuple[EnrichmentState, TrackContext]]:
        """Lease up to ``room`` due items of ``name`` (journalled, so a restart can release
        the leases of a process that died) and load their tracks and artists."""
        now = int(time.time())
        await self._journal.intend(name, now)
        fresh = await self.store.claim_enrichment(name, limit=room, now=now)
        await self._journal.add(name, [s.track_id for s in fresh])
        await self._journal.settle(name, now)
        if not fresh:
            return []
        tracks = await self.store.get_tracks([s.track_id for s in fresh])
        artist_ids = sorted({a for t in tracks if t is not None for a in t.artist_ids})
        artists = dict(zip(artist_ids, await self.store.get_artists(artist_ids), strict=True))
        out: list[tuple[EnrichmentState, TrackContext]] = []
        missing: list[EnrichmentState] = []
        for state, track in zip(fresh, tracks, strict=True):
            if track is None:
                missing.append(
                    replace(
                        state,
                        status=EnrichmentStatus.SKIPPED,
                        last_error="the track no longer exists",
                        updated_at=int(time.time()),
                        not_before=0,
                    )
                )
                continue
            ctx = TrackContext(
                track=track,
                artists=tuple(a for a in (artists.get(i) for i in track.artist_ids) if a),
                states=self._states_reader(track.id),
                active_sources=self._active,
                attempts=state.attempts,
                last_reason=state.last_error,
            )
            out.append((state, ctx))
        if missing:
            await self.store.set_enrichment_states(missing)
            await self._journal.remove(name, [s.track_id for s in missing])
        return out

    async def _release(self, name: str, states: list[EnrichmentState], *, delay: float) -> None:
        """Give claimed items back untouched (no attempt spent), due again after ``delay``."""
        due = int(time.time() + delay)
        async with self._write_lock:
            await self.store.set_enrichment_states([replace(s, not_before=due) for s in states])
        await self._journal.remove(name, [s.track_id for s in states])

    def _states_reader(self, track_id: str) -> Callable[[], Any]:
        async def read() -> list[EnrichmentState]:
            return await self.store.get_enrichment_states(track_id)

        return read

    # --- writing results ----------------------------------------------------------------------------
    async def _flush(self, name: str, finished: list[_Finished], deferred_due: list[float]) -> None:
        prog = self.progress[name]
        now = int(time.time())
        states: list[EnrichmentState] = []
        done: list[tuple[TrackContext, EnrichmentResult]] = []
        for fin in finished:
            st = fin.state
            if fin.error is not None:
                attempts = st.attempts + 1
                gave_up = attempts >= self.settings.enrich_max_attempts
                delay = self.settings.enrich_retry_delay * (2 ** (attempts - 1))
                delay = random.uniform(delay / 2, delay)
                states.append(
                    replace(
                        st,
                        status=EnrichmentStatus.FAILED,
                        attempts=attempts,
                        last_error=(f"gave up after {attempts} attempts: " if gave_up else "")
                        + fin.error[:500],
                        updated_at=now,
                        not_before=GAVE_UP if gave_up else now + math.ceil(delay),
                    )
                )
                if not gave_up:
                    heapq.heappush(deferred_due, float(now + math.ceil(delay)))
                prog.failed += 1
                prog.recent.append(time.monotonic())
                continue
            result = fin.result
            assert result is not None
            if result.outcome is Outcome.DONE:
                done.append((fin.ctx, result))
                states.append(
                    replace(
                        st,
                        status=EnrichmentStatus.DONE,
                        attempts=st.attempts + 1,
                        last_error=None,
                        updated_at=now,
                        not_before=0,
                    )
                )
                prog.done += 1
                prog.recent.append(time.monotonic())
            elif result.outcome is Outcome.SKIPPED or st.attempts + 1 >= MAX_POLLS:
                states.append(
                    replace(
                        st,
                        status=EnrichmentStatus.SKIPPED,
                        attempts=st.attempts + 1,
                        last_error=result.reason,
                        updated_at=now,
                        not_before=0,
                    )
                )
                prog.skipped += 1
                prog.recent.append(time.monotonic())
            else:
                due = now + max(1, math.ceil(result.retry_in or 1.0))
                states.append(
                    replace(
                        st,
                        status=EnrichmentStatus.PENDING,
                        attempts=st.attempts + 1,
                        last_error=result.reason,
                        updated_at=now,
                        not_before=due,
                    )
                )
                if (result.retry_in or 0.0) <= WAIT_HORIZON:
                    heapq.heappush(deferred_due, float(due))
                prog.deferred += 1
        async with self._write_lock:
            if done:
                await self._write_results(name, done)
            await self.store.set_enrichment_states(states)
        await self._journal.remove(name, [s.track_id for s in states])

    async def _write_results(
        self, name: str, done: list[tuple[TrackContext, EnrichmentResult]]
    ) -> None:
        store = self.store
        # Artists first: an MBID learned for an artist lands on the artist the track points at.
        artist_refs = [a for _, r in done for a in r.artists]
        if artist_refs:
            await store.upsert_artists(_unique_artists(artist_refs))
        updates = await self._safe_updates([r.update for _, r in done if r.update is not None])
        if updates:
            await store.update_tracks(updates)
        # Several sources tag the same track (MusicBrainz, Last.fm): keep the highest count, so
        # the result does not depend on which source wrote last.
        counts: dict[tuple[str, str], int] = {}
        for ctx, r in done:
            for tag, count in r.tags:
                if key := normalise(tag):
                    k = (ctx.track.id, key)
                    counts[k] = max(counts.get(k, 0), count)
        if counts:
            ids = sorted({tid for tid, _ in counts})
            for tid, existing in zip(ids, await store.get_tags("track", ids), strict=True):
                for t in existing:
                    k = (tid, normalise(t.tag))
                    if k in counts:
                        counts[k] = max(counts[k], t.count)
        taggings = [Tagging("track", tid, tag, n) for (tid, tag), n in counts.items()]
        if taggings:
            await store.set_tags(taggings)
        similar: list[Similarity] = []
        track_sims = [(ctx, s) for ctx, r in done for s in r.similar_tracks]
        if track_sims:
            resolved = await store.resolve_tracks([s.ref for _, s in track_sims])
            for (ctx, sim), target in zip(track_sims, resolved, strict=True):
                if target.id != ctx.track.id:
                    similar.append(
                        Similarity("track", ctx.track.id, target.id, float(sim.score), name)
                    )
        artist_sims = [s for _, r in done for s in r.similar_artists]
        if artist_sims:
            targets = await store.upsert_artists([s.ref for s in artist_sims])
            for asim, artist in zip(artist_sims, targets, strict=True):
                if artist.id != asim.artist_id:
                    similar.append(
                        Similarity("artist", asim.artist_id, artist.id, float(asim.score), name)
                    )
        similar = list(
            {(s.item_kind, s.source_id, s.target_id, s.source): s for s in similar}.values()
        )
        if similar:
            await store.set_similar(similar)
        # Events after the writes: whoever hears them can read the store and see the change.
        if updates:
            self.bus.publish(
                Event(
                    "tracks.updated",
                    {
                        "source": name,
                        "track_ids": [u.track_id for u in updates],
                        "updates": [_non_null(u) for u in updates],
                    },
                )
            )
        if taggings:
            self.bus.publish(
                Event(
                    "tags.changed",
                    {
                        "source": name,
                        "kind": "track",
                        "item_ids": sorted({t.item_id for t in taggings}),
                        "taggings": [asdict(t) for t in taggings],
                    },
                )
            )
        if similar:
            self.bus.publish(
                Event(
                    "similarity.added",
                    {"source": name, "similarities": [asdict(s) for s in similar]},
                )
            )

    async def _safe_updates(self, updates: list[TrackUpdate]) -> list[TrackUpdate]:
        """Drop identifiers another track already carries (two spellings of one recording must
        not make an identifier ambiguous; the store's identity rules keep them apart)."""
        out: list[TrackUpdate] = []
        for u in updates:
            changes: dict[str, Any] = {}
            for fld in ("mbid", "isrc", "spotify_id"):
                value = getattr(u, fld)
                if value is None:
                    continue
                holders: list[Track] = await self.store.find_tracks(**{fld: value})
                if any(t.id != u.track_id for t in holders):
                    changes[fld] = None
            out.append(replace(u, **changes) if changes else u)
        return out


def _journal_path(cache_path: Path) -> Path:
    """The claim journal lives next to the HTTP cache, in its own file (no lock shared)."""
    return cache_path.with_name(cache_path.name + ".claims")


def _unique_artists(refs: list[ArtistRef]) -> list[ArtistRef]:
    seen: dict[tuple[str, str | None], ArtistRef] = {}
    for ref in refs:
        seen.setdefault((ref.name.casefold(), ref.mbid), ref)
    return list(seen.values())


def _non_null(update: TrackUpdate) -> dict[str, Any]:
    return {k: v for k, v in asdict(update).items() if v is not None}


_RUNNING: dict[int, EnrichmentPipeline] = {}


async def start_enrichment(
    store: GraphStore,
    settings: Settings,
    bus: EventBus,
    monitor: HealthMonitor,
    *,
    sources: Sequence[str] | None = None,
    limit: int | None = None,
    until_idle: bool = True,
) -> tuple[EnrichmentPipeline, bool]:
    """Start enrichment in the background for the ``startEnrichment`` mutation.

    Returns ``(pipeline, started)``: ``started`` is False when a pipeline for this store was
    already running (it is returned as it is). Progress arrives as ``"enrichment.progress"``
    events on ``bus``; ``pipeline.snapshot()`` gives the latest numbers; ``await
    pipeline.stop()`` ends it.
    """
    key = id(store)
    current = _RUNNING.get(key)
    if current is not None and current.running:
        return current, False
    pipeline = EnrichmentPipeline(store, settings, bus, monitor, sources=sources)
    pipeline.start(until_idle=until_idle, limit=limit)
    _RUNNING[key] = pipeline
    return pipeline, True
