"""The event bus across processes and machines: Redis pub/sub (``MUSICGRAPH_REDIS_URL``).

Every process publishes to one channel and subscribes to it: ``musicgraph:<db>:events``, where
``<db>`` is the database number of the URL (pub/sub ignores database numbers, so two deployments
sharing one Redis server on different databases would otherwise hear each other). ``publish`` delivers to the local
subscribers at once (as the in-process bus does) and queues the event for a sender task, which
publishes it to Redis; a listener task hands each event from another process to the local
subscribers, once. A process's own events come back on the channel too; it recognises them by its
``origin`` (a random id per bus) and skips them.

When Redis goes away (a restart, a network cut), both tasks log a warning, report it in
:meth:`RedisEventBus.health` and retry with a growing delay (up to ``reconnect_max`` seconds); local
delivery goes on meanwhile. Events published during the outage wait in a bounded queue and are sent
once Redis is back: once this process listens again, plus ``reconnect_max`` seconds, so that the
other processes (retrying on the same schedule) listen again too, since pub/sub keeps nothing for a
process that is not listening. A process that stays away longer misses those events: its projection
lacks those changes until it restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from musicgraph.bus.codec import EventDecodeError, decode_event, encode_event
from musicgraph.errors import ConfigError
from musicgraph.events import Event, EventBus
from musicgraph.logging import get_logger

__all__ = ["CHANNEL", "RedisEventBus"]

log = get_logger("musicgraph.bus.redis")

CHANNEL = "musicgraph:{db}:events"
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
_BATCH = 500  # events per pipelined round trip


def _redact(url: str) -> str:
    """The URL without its password (it goes into logs and errors)."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user + ':' if user else ''}***@{host}"


class RedisEventBus(EventBus):
    """Local delivery plus Redis pub/sub between processes; see the module docstring."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        channel: str | None = None,
        queue_size: int = 1000,
        outgoing_limit: int = 10_000,
        reconnect_min: float = 0.1,
        reconnect_max: float = 2.0,
        connect_timeout: float = 2.0,
    ) -> None:
        super().__init__(queue_size=queue_size)
        self.url = _redact(url)
        self.origin = uuid.uuid4().hex
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        try:
            self._client: aioredis.Redis = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=connect_timeout,
                socket_keepalive=True,
                health_check_interval=10,
                # this bus retries itself (and reports it); no silent retries inside a call
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ConfigError(f"MUSICGRAPH_REDIS_URL={self.url} is not a Redis URL: {exc}") from exc
        db = self._client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = channel or CHANNEL.format(db=db)
        self._outgoing: deque[bytes] = deque(maxlen=outgoing_limit)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing waits to be sent
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._resubscribed_at: float | None = None
        self._listening = False
        self._sending = True
        self._error: str | None = None
        self._since: float | None = None
        self.sent = 0
        self.received = 0
        self.dropped_outgoing = 0
        self.unserialisable = 0
        self.reconnects = 0

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self, *, wait: float = 2.0) -> None:
        """Start the listener and the sender; wait up to ``wait`` seconds for the subscription
        (if Redis does not answer by then, the bus keeps trying in the background)."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._listen(), name="event-bus-redis-listen"),
            asyncio.create_task(self._send(), name="event-bus-redis-send"),
        ]
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait)
        except TimeoutError:
            log.warning(
                "event bus: Redis not reachable yet; events stay in this process until it is",
                url=self.url,
                error=self._error,
            )

    async def close(self) -> None:
        """Send what is queued (briefly), then stop both tasks and close the connections."""
        if self._outgoing and self._sending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._listening = False
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    # --- publishing -------------------------------------------------------------------------------
    def forward(self, event: Event) -> None:
        try:
            data = encode_event(event, self.origin)
        except TypeError as exc:
            self.unserialisable += 1
            log.error("event bus: event not sent to other processes", error=str(exc))
            return
        if len(self._outgoing) == self._outgoing.maxlen:
            self.dropped_outgoing += 1  # the deque drops its oldest entry
        self._outgoing.append(data)
        self._idle.clear()
        self._wake.set()

    async def _send(self) -> None:
        delay = self.reconnect_min
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outgoing:
                await self._hold_after_outage()
                batch = [self._outgoing.popleft() for _ in range(min(_BATCH, len(self._outgoing)))]
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for data in batch:
                            pipe.publish(self.channel, data)
                        await pipe.execute()
                except _DOWN as exc:
                    self._outgoing.extendleft(reversed(batch))  # first in line again, in order
                    self._down("send", exc)
                    self._sending = False
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                self.sent += len(batch)
                delay = self.reconnect_min
                if not self._sending:
                    self._sending = True
                    self._up()
            self._idle.set()

    async def _hold_after_outage(self) -> None:
        """Pub/sub keeps nothing for a process that is not listening: after an outage, hold what
        is queued until this process listens again, and then as long again as any process waits
        between two attempts (``reconnect_max``), so that the others are listening too."""
        if not self._subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), 10 * self.reconnect_max)
        if self._resubscribed_at is not None:
            wait = self._resubscribed_at + self.reconnect_max - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    # --- receiving --------------------------------------------------------------------------------
    async def _listen(self) -> None:
        delay = self.reconnect_min
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._listening = True
                if self._since is not None:  # back after an outage (not the first subscribe)
                    self._resubscribed_at = time.monotonic()
                self._subscribed.set()
                delay = self.reconnect_min
                self._up()
                while True:
                    # a timeout, so that the health check (a PING every 10 s) runs while idle
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._receive(message["data"])
            except _DOWN as exc:
                self._listening = False
                self._subscribed.clear()
                self._down("listen", exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    def _receive(self, data: bytes) -> None:
        try:
            origin, event = decode_event(data)
        except EventDecodeError as exc:
            log.warning("event bus: message on the Redis channel ignored", error=str(exc))
            return
        if origin == self.origin:
            return
        self.received += 1
        self.deliver(event)

    # --- state -------------------------------------------------------------------------------------
    def _down(self, what: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if self._since is None:
            self._since = time.time()
            log.warning(
                "event bus: lost Redis; events from other processes stop until it is back",
                url=self.url,
                task=what,
                error=error,
            )
        self._error = error

    def _up(self) -> None:
        if self._since is not None and self._listening and self._sending:
            self.reconnects += 1
            log.info(
                "event bus: Redis is back",
                url=self.url,
                down_seconds=round(time.time() - self._since, 1),
            )
            self._since = None
            self._error = None

    @property
    def connected(self) -> bool:
        return self._listening and self._sending

    def health(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "ok": self.connected,
            "url": self.url,
            "channel": self.channel,
            "error": None if self.connected else (self._error or "not connected yet"),
            "down_since": self._since,
            "sent": self.sent,
            "received": self.received,
            "queued": len(self._outgoing),
            "dropped": self.dropped_outgoing,
            "unserialisable": self.unserialisable,
            "reconnects": self.reconnects,
        }
