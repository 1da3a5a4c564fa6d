"""One event bus: in-process publish/subscribe over asyncio queues.

Everything that changes the graph publishes here (listens recorded, ratings, playlist changes, new
similarity edges, enrichment progress, source health); the recommender's projection, the GraphQL
subscriptions and the health monitor subscribe. Subscribers get their own bounded queue: a slow
subscriber loses its oldest events (and is told how many through ``dropped``) rather than slowing
the publisher down.

Across processes (``musicgraph serve --workers N``, or several instances behind a load balancer) the
same interface is carried by a backend in :mod:`musicgraph.bus`: Redis pub/sub, or an outbox table in
a SQLite file next to the store's. A backend delivers an event to the local subscribers at once, as this bus does, and
forwards it to the other processes, which deliver it to theirs (each process applies it to its own
projection). ``recommendations.updated`` is not forwarded: every process derives it from its own
projection after applying the graph event, so forwarding it would announce each change twice.
Payloads must be JSON values (dicts with string keys, lists, strings, numbers, booleans, None):
:func:`musicgraph.bus.codec.encode_event` sends them with orjson; a tuple arrives as a list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Topic = Literal[
    "listens.recorded",
    "ratings.changed",
    "playlists.changed",
    "similarity.added",
    "tracks.updated",
    "tags.changed",
    "graph.imported",
    "recommendations.updated",
    "enrichment.progress",
    "health.changed",
]

TOPICS: frozenset[str] = frozenset(get_args(Topic))
# Derived by each process from its own projection: never sent to the other processes.
LOCAL_ONLY_TOPICS: frozenset[str] = frozenset({"recommendations.updated"})


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened. ``user_id`` is set when the event concerns one user."""

    topic: Topic
    payload: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None


class Subscription:
    """A subscriber's queue; iterate it with ``async for``."""

    def __init__(
        self, bus: EventBus, topics: frozenset[str], user_id: str | None, maxsize: int
    ) -> None:
        self._bus = bus
        self.topics = topics
        self.user_id = user_id
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def matches(self, event: Event) -> bool:
        """The event is of one of its topics and concerns its user: an event for no user in
        particular (``user_id`` None, e.g. a bulk import's) concerns everyone."""
        return event.topic in self.topics and (
            self.user_id is None or event.user_id is None or event.user_id == self.user_id
        )

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self._bus._remove(self)


class EventBus:
    """In-process bus. ``publish`` never blocks; each subscriber has a bounded queue.

    The cross-process backends (:mod:`musicgraph.bus`) subclass it: they override :meth:`forward`
    (send to the other processes), :meth:`start`, :meth:`close` and :meth:`health`, and hand what
    arrives from elsewhere to :meth:`deliver`. Here those are no-ops: one process, nothing to send.
    """

    backend = "local"

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._subscribers: list[Subscription] = []
        self._queue_size = queue_size

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to this process's subscribers now, then forward it (never blocks)."""
        self.deliver(event)
        if event.topic not in LOCAL_ONLY_TOPICS:
            self.forward(event)

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to the matching subscribers of this process only."""
        for sub in list(self._subscribers):
            if sub.matches(event):
                sub.offer(event)

    def forward(self, event: Event) -> None:
        """Send ``event`` to the other processes (the local bus has none)."""

    async def start(self) -> None:
        """Connect to whatever carries events between processes (nothing here)."""

    async def close(self) -> None:
        """Stop forwarding and receiving; local publish and subscribe keep working."""

    def health(self) -> dict[str, Any]:
        """Whether events reach the other processes: ``{"backend", "ok", ...}``."""
        return {"backend": self.backend, "ok": True}

    def subscribe(self, topics: Iterable[Topic], *, user_id: str | None = None) -> Subscription:
        sub = Subscription(self, frozenset(topics), user_id, self._queue_size)
        self._subscribers.append(sub)
        return sub

    @asynccontextmanager
    async def subscription(
        self, topics: Iterable[Topic], *, user_id: str | None = None
    ) -> AsyncIterator[Subscription]:
        sub = self.subscribe(topics, user_id=user_id)
        try:
            yield sub
        finally:
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
