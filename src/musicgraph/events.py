"""One event bus: in-process publish/subscribe over asyncio queues.

Everything that changes the graph publishes here (listens recorded, ratings, playlist changes, new
similarity edges, enrichment progress, source health); the recommender's projection, the GraphQL
subscriptions and the health monitor subscribe. Subscribers get their own bounded queue: a slow
subscriber loses its oldest events (and is told how many through ``dropped``) rather than slowing
the publisher down. Across several app instances the same interface is carried by Redis pub/sub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

Topic = Literal[
    "listens.recorded",
    "ratings.changed",
    "playlists.changed",
    "similarity.added",
    "tracks.updated",
    "tags.changed",
    "recommendations.updated",
    "enrichment.progress",
    "health.changed",
]


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
        return event.topic in self.topics and (
            self.user_id is None or event.user_id == self.user_id
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
    """In-process bus. ``publish`` never blocks; each subscriber has a bounded queue."""

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._subscribers: list[Subscription] = []
        self._queue_size = queue_size

    def publish(self, event: Event) -> None:
        for sub in list(self._subscribers):
            if sub.matches(event):
                sub.offer(event)

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
