"""The one resilient HTTP layer every enrichment source goes through.

Per source, a :class:`SourceClient` holds:

- an ``httpx.AsyncClient`` (base URL, timeouts, connection limits, default headers);
- an ``aiolimiter.AsyncLimiter`` pacing requests at the source's rate (requests per second), with
  a small burst so that a late timer does not cost throughput;
- a ``pybreaker.CircuitBreaker``: every request runs inside ``breaker.calling()``; timeouts,
  transport errors, 5xx, 429 and 503 count as failures; a listener reports each transition to the
  :class:`~musicgraph.health.monitor.HealthMonitor`, which publishes ``"health.changed"``;
- retries with jittered exponential backoff for timeouts, transport errors, 5xx, 429 and 503; a
  ``Retry-After`` header wins over the backoff and pauses the whole source, not just one request;
- the shared :class:`ResponseCache`, a SQLite file with a TTL per endpoint: a hit costs no request
  and no rate budget.

Errors leave this module as the :mod:`musicgraph.errors` tree (``raise ... from exc``):
:class:`~musicgraph.errors.SourceUnavailableError` when the breaker is open or retries ran out,
:class:`~musicgraph.errors.RateLimitedError` when the source kept saying we are over its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import pybreaker
from aiolimiter import AsyncLimiter

from musicgraph.errors import (
    EnrichmentError,
    RateLimitedError,
    SourceUnavailableError,
)
from musicgraph.health.monitor import HealthMonitor
from musicgraph.logging import get_logger
from musicgraph.sqlite_wal import enable_wal_file

__all__ = [
    "ApiResponse",
    "ClientConfig",
    "ResponseCache",
    "RetryableError",
    "SourceClient",
    "cache_key",
    "parse_retry_after",
]

log = get_logger(__name__)
# httpx logs every request URL at INFO, query string included: that would put Last.fm's api_key
# in the logs. Its warnings still come through.
logging.getLogger("httpx").setLevel(logging.WARNING)

#: Query parameters that are credentials: never part of a cache key, never logged.
SECRET_PARAMS = frozenset({"api_key", "api_sig", "sk", "client_secret", "token"})


class RetryableError(EnrichmentError):
    """A response (or a response check) says: try again later. Counts against the breaker."""

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A response as the sources see it, whether it came from the network or the cache."""

    status: int
    body: bytes
    from_cache: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError as exc:
            raise EnrichmentError(
                f"expected JSON, got {self.body[:80]!r} (HTTP {self.status})"
            ) from exc

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def cache_key(
    source: str,
    method: str,
    path: str,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
) -> str:
    """A stable key for a request, without its credentials."""
    clean = sorted((k, str(v)) for k, v in (params or {}).items() if k not in SECRET_PARAMS)
    raw = json.dumps([source, method.upper(), path, clean, body], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shared future's exception as seen (its waiters, if any, re-raise it themselves)."""
    if not future.cancelled():
        future.exception()


# --- the persistent response cache ------------------------------------------------------------------


class ResponseCache:
    """Responses kept in a SQLite file, each with its own expiry.

    Writes are buffered and flushed in batches (every ``flush_every`` entries, and on ``flush`` or
    ``close``): the cache saves requests, it is not a record of truth, so losing the last few
    entries in a crash only costs a few repeated requests.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        flush_every: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._flush_every = flush_every
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._pending: dict[str, tuple[str, int, bytes, float, float]] = {}
        self._lock = asyncio.Lock()
        self.hits = 0
        self.misses = 0

    async def open(self) -> ResponseCache:
        if self._db is not None:
            return self
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # other workers may be creating the file too (musicgraph.sqlite_wal)
                await asyncio.to_thread(enable_wal_file, self.path, timeout=30.0)
            self._db = await aiosqlite.connect(self.path, timeout=30.0)
            await (await self._db.execute("PRAGMA synchronous=NORMAL")).close()
            cursor = await self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, source TEXT NOT NULL, status INTEGER NOT NULL,"
                " body BLOB NOT NULL, stored_at REAL NOT NULL, expires_at REAL NOT NULL)"
            )
            await cursor.close()
            await self._db.commit()
        except Exception as exc:
            raise EnrichmentError(f"cannot open the HTTP cache at {self.path}: {exc}") from exc
        return self

    async def close(self) -> None:
        if self._db is None:
            return
        with contextlib.suppress(Exception):
            await self.flush()
        db, self._db = self._db, None
        await db.close()

    async def get(self, key: str) -> tuple[int, bytes] | None:
        now = self._clock()
        pending = self._pending.get(key)
        if pending is not None and pending[4] > now:
            self.hits += 1
            return pending[1], pending[2]
        if self._db is None:
            self.misses += 1
            return None
        async with self._db.execute(
            "SELECT status, body FROM responses WHERE key = ? AND expires_at > ?", (key, now)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return int(row[0]), bytes(row[1])

    async def put(self, key: str, source: str, status: int, body: bytes, ttl: float) -> None:
        now = self._clock()
        self._pending[key] = (source, status, body, now, now + ttl)
        if len(self._pending) >= self._flush_every:
            await self.flush()

    async def flush(self) -> None:
        if self._db is None or not self._pending:
            return
        async with self._lock:
            rows, self._pending = self._pending, {}
            try:
                async with self._db.executemany(
                    "INSERT OR REPLACE INTO responses (key, source, status, body, stored_at,"
                    " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(k, *v) for k, v in rows.items()],
                ):
                    pass
                await self._db.commit()
            except sqlite3.Error as exc:
                # The cache only saves requests: a write it cannot make now is kept for the
                # next flush, never turned into a failed enrichment.
                with contextlib.suppress(sqlite3.Error):
                    await self._db.rollback()
                self._pending = {**rows, **self._pending}
                log.warning("HTTP cache write deferred", path=str(self.path), error=str(exc))

    async def count(self) -> int:
        await self.flush()
        if self._db is None:
            return 0
        async with self._db.execute("SELECT count(*) FROM responses") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0


# --- one source's client ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """How one source is called. ``rate`` is in requests per second."""

    name: str
    base_url: str
    rate: float
    timeout: float = 10.0
    max_connections: int = 32
    max_retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 60.0
    breaker_fail_max: int = 5
    breaker_reset: float = 30.0
    headers: Mapping[str, str] = field(default_factory=dict)
    #: extra statuses that mean "over the rate limit" (MusicBrainz answers 503)
    rate_limit_statuses: frozenset[int] = frozenset({429})


TtlRule = float | Callable[[ApiResponse], float | None] | None
#: Request headers, or a coroutine function making them when a request is really sent (a
#: bearer token is fetched only when the cache cannot answer).
HeaderSource = Mapping[str, str] | Callable[[], Awaitable[Mapping[str, str]]] | None


class _BreakerListener(pybreaker.CircuitBreakerListener):
    def __init__(self, client: SourceClient) -> None:
        self._client = client

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        name = str(new_state.name)
        if name == pybreaker.STATE_OPEN:
            self._client.opened_at = time.monotonic()
        self._client.monitor.set_breaker_state(self._client.name, name)


class SourceClient:
    """Rate-limited, breaker-guarded, retrying, caching HTTP access to one outside API."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        monitor: HealthMonitor,
        cache: ResponseCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.monitor = monitor
        self.cache = cache
        # A small burst lets the limiter catch up after a late timer; the average stays at `rate`.
        burst = max(1.0, min(config.rate / 10.0, 20.0))
        self.limiter = AsyncLimiter(burst, burst / config.rate)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=config.breaker_fail_max,
            reset_timeout=config.breaker_reset,
            name=config.name,
            throw_new_error_on_trip=False,
            exclude=[asyncio.CancelledError],
            listeners=[_BreakerListener(self)],
        )
        self.opened_at: float | None = None
        self._inflight: dict[str, asyncio.Future[ApiResponse]] = {}
        self._resume_at = 0.0
        self.requests_sent = 0
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            headers=dict(config.headers),
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- state the pipeline and the monitor read -------------------------------------------------------
    def budget(self) -> float:
        """Requests that may start now without waiting for the limiter."""
        self.limiter._leak()
        return max(0.0, float(self.limiter.max_rate - self.limiter._level))

    @property
    def breaker_state(self) -> str:
        return str(self.breaker.current_state)

    def retry_at(self) -> float:
        """Monotonic time at which a paused source may try again (breaker reset, Retry-After)."""
        when = self._resume_at
        if self.breaker.current_state == pybreaker.STATE_OPEN and self.opened_at is not None:
            when = max(when, self.opened_at + self.config.breaker_reset)
        return when

    def trip(self, reason: str) -> None:
        """Open the breaker now (e.g. Last.fm said the key is suspended) and say why."""
        self.monitor.record_failure(self.name, "tripped", reason)
        self.breaker.open()

    def pause(self, seconds: float) -> None:
        """Hold every request of this source for ``seconds`` (a ``Retry-After``)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.config.backoff_max, self.config.backoff * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    # --- requests ----------------------------------------------------------------------------------------
    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: HeaderSource = None,
        ttl: TtlRule = None,
        check: Callable[[ApiResponse], None] | None = None,
    ) -> ApiResponse:
        return await self.request("GET", path, params=params, headers=headers, ttl=ttl, check=check)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: HeaderSource = None,
        ttl: TtlRule = None,
        check: Callable[[ApiResponse], None] | None = None,
        limited: bool = True,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> ApiResponse:
        """Send one logical request: from the cache when fresh, else through limiter, breaker
        and retries. ``ttl`` (seconds, or a function of the response returning seconds or
        ``None``) decides whether and how long the answer is cached. ``check`` may raise
        :class:`RetryableError` for errors a source reports inside a 200 response."""
        if ttl is not None and self.cache is not None:
            key = cache_key(self.name, method, path, params, json_body)
            # Single flight: the same cacheable request already on its way (or being looked up
            # in the cache) is awaited, not sent again.
            running = self._inflight.get(key)
            if running is not None:
                response = await asyncio.shield(running)
                self.monitor.record_cache_hit(self.name)
                return replace(response, from_cache=True)
            future: asyncio.Future[ApiResponse] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            self._inflight[key] = future
            try:
                hit = await self.cache.get(key)
                if hit is not None:
                    self.monitor.record_cache_hit(self.name)
                    response = ApiResponse(status=hit[0], body=hit[1], from_cache=True)
                else:
                    response = await self._fetch(
                        method, path, params, json_body, data, headers, check, limited, auth
                    )
                    seconds = ttl(response) if callable(ttl) else ttl
                    # Only JSON is worth keeping: a proxy's HTML error page must not be served
                    # for a week.
                    if seconds is not None and seconds > 0 and response.body[:1] in (b"{", b"["):
                        await self.cache.put(
                            key, self.name, response.status, response.body, seconds
                        )
            except BaseException as exc:
                future.set_exception(exc)
                raise
            finally:
                del self._inflight[key]
            future.set_result(response)
            return response
        return await self._fetch(
            method, path, params, json_body, data, headers, check, limited, auth
        )

    async def _fetch(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, str] | None,
        headers: HeaderSource,
        check: Callable[[ApiResponse], None] | None,
        limited: bool,
        auth: httpx.Auth | tuple[str, str] | None,
    ) -> ApiResponse:
        """Limiter, breaker and retries around :meth:`_send`."""
        last: RetryableError | None = None
        for attempt in range(self.config.max_retries + 1):
            await self._wait_until_resumed()
            if self.breaker.current_state == pybreaker.STATE_OPEN and not self._reset_elapsed():
                raise SourceUnavailableError(
                    f"{self.name}: circuit breaker is open after repeated failures"
                    + (f" (last: {last})" if last else "")
                )
            if limited:
                await self.limiter.acquire()
            started = time.perf_counter()
            try:
                with self.breaker.calling():
                    response = await self._send(
                        method, path, params, json_body, data, headers, auth
                    )
                    if check is not None:
                        check(response)
            except RetryableError as exc:
                latency = time.perf_counter() - started
                self.monitor.record_failure(self.name, exc.kind, str(exc), latency=latency)
                last = exc
                if self.breaker.current_state == pybreaker.STATE_OPEN:
                    raise SourceUnavailableError(
                        f"{self.name}: circuit breaker opened after repeated failures (last: {exc})"
                    ) from exc
                delay = exc.retry_after if exc.retry_after is not None else self._backoff(attempt)
                if exc.kind == "rate_limited":
                    self.pause(delay)
                if attempt < self.config.max_retries:
                    log.debug("retrying", source=self.name, kind=exc.kind, delay=round(delay, 3))
                    await asyncio.sleep(delay)
                continue
            except pybreaker.CircuitBreakerError as exc:
                raise SourceUnavailableError(
                    f"{self.name}: circuit breaker is open after repeated failures"
                ) from exc
            except EnrichmentError as exc:
                self.monitor.record_failure(
                    self.name, "api_error", str(exc), latency=time.perf_counter() - started
                )
                raise
            self.monitor.record_success(self.name, time.perf_counter() - started)
            return response

        assert last is not None
        if last.kind == "rate_limited":
            raise RateLimitedError(
                f"{self.name}: still over the rate limit after {self.config.max_retries + 1} "
                f"attempts: {last}",
                retry_after=last.retry_after,
            ) from last
        raise SourceUnavailableError(
            f"{self.name}: gave up after {self.config.max_retries + 1} attempts: {last}"
        ) from last

    def _reset_elapsed(self) -> bool:
        return (
            self.opened_at is None or time.monotonic() >= self.opened_at + self.config.breaker_reset
        )

    async def _wait_until_resumed(self) -> None:
        # A loop, not an Event: another Retry-After may push the resume time while we sleep.
        while (wait := self._resume_at - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, str] | None,
        headers: HeaderSource,
        auth: httpx.Auth | tuple[str, str] | None,
    ) -> ApiResponse:
        """One HTTP exchange; failures worth retrying become :class:`RetryableError`."""
        self.requests_sent += 1
        if callable(headers):
            headers = await headers()
        try:
            resp = await self._http.request(
                method,
                path,
                params=dict(params) if params else None,
                json=json_body,
                data=dict(data) if data else None,
                headers=dict(headers) if headers else None,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise RetryableError(
                f"{self.name}: {method} {path} timed out after {self.config.timeout:g}s",
                kind="timeout",
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableError(
                f"{self.name}: {method} {path} failed: {type(exc).__name__}: {exc}",
                kind="connect",
            ) from exc
        status = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        if status in self.config.rate_limit_statuses or status == 429:
            raise RetryableError(
                f"{self.name}: HTTP {status} over the rate limit on {path}",
                kind="rate_limited",
                retry_after=retry_after,
            )
        if status >= 500:
            raise RetryableError(
                f"{self.name}: HTTP {status} from {path}: {resp.text[:120]}",
                kind="http_5xx",
                retry_after=retry_after,
            )
        return ApiResponse(status=status, body=resp.content, headers=dict(resp.headers))
