"""A short-lived cache of the recommender's answers, dropped as soon as they may be stale.

Dashboards and players ask for the same user's recommendations again and again between two
listens; the engine's answer only changes when the graph does. Entries are keyed by (user, kind,
controls). A ``recommendations.updated`` event drops the entries of its user (of everyone when it
names none); events that change the graph for everyone (similarity, tags, track features, a bulk
import) drop everything; every entry also expires
after ``ttl`` seconds. ``generation`` counts the invalidations, so a cache of whole responses built
on these answers (:mod:`musicgraph.schema.response_cache`) can tell when they may have changed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from musicgraph.events import EventBus, Topic

USER_TOPICS: tuple[Topic, ...] = ("recommendations.updated",)
GLOBAL_TOPICS: tuple[Topic, ...] = (
    "similarity.added",
    "tags.changed",
    "tracks.updated",
    "graph.imported",
)


class ResultCache:
    def __init__(
        self,
        *,
        ttl: float = 30.0,
        maxsize: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[tuple[str | None, Hashable], tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.generation = 0

    def get(self, user_id: str | None, key: Hashable) -> Any | None:
        entry = self._entries.get((user_id, key))
        if entry is None or entry[0] < self._clock():
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, user_id: str | None, key: Hashable, value: Any) -> None:
        self._entries[(user_id, key)] = (self._clock() + self.ttl, value)
        self._entries.move_to_end((user_id, key))
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def invalidate_user(self, user_id: str) -> None:
        self.generation += 1
        for k in [k for k in self._entries if k[0] == user_id]:
            del self._entries[k]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def follow(self, bus: EventBus) -> None:
        """Drop stale entries as the bus reports changes (runs until cancelled)."""
        async with bus.subscription([*USER_TOPICS, *GLOBAL_TOPICS]) as sub:
            async for event in sub:
                if event.topic in USER_TOPICS and event.user_id is not None:
                    self.invalidate_user(event.user_id)
                else:
                    self.clear()
