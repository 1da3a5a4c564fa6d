"""The recommendation result cache: hits until an event or the clock says the answer is stale."""

from __future__ import annotations

import asyncio

from musicgraph.events import Event, EventBus
from musicgraph.resolvers.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_events_drop_stale_entries() -> None:
    """recommendations.updated drops its user's entries only; a graph-wide event drops all."""
    bus = EventBus()
    cache = ResultCache()
    follower = asyncio.create_task(cache.follow(bus))
    await asyncio.sleep(0)
    cache.put("u1", "k", "a")
    cache.put("u2", "k", "b")
    bus.publish(Event("recommendations.updated", {"kinds": ["track"]}, user_id="u1"))
    await asyncio.sleep(0.01)
    assert cache.get("u1", "k") is None and cache.get("u2", "k") == "b"
    bus.publish(Event("similarity.added", {"item_ids": []}))
    await asyncio.sleep(0.01)
    assert cache.get("u2", "k") is None
    follower.cancel()


def test_entries_expire_and_size_is_bounded() -> None:
    """An entry expires after the ttl, and the oldest entries go first past maxsize."""
    clock = Clock()
    cache = ResultCache(ttl=10, maxsize=2, clock=clock)
    cache.put(None, 1, "one")
    clock.now = 9.9
    assert cache.get(None, 1) == "one"
    clock.now = 10.1
    assert cache.get(None, 1) is None
    for k in (2, 3, 4):
        cache.put(None, k, k)
    assert cache.get(None, 2) is None and cache.get(None, 4) == 4
