"""The in-process event bus delivers by topic and user, and never blocks the publisher."""

from __future__ import annotations

import asyncio

from musicgraph.events import Event, EventBus


async def test_subscribers_get_matching_topics_only() -> None:
    """A subscriber hears the topics it asked for and nothing else."""
    bus = EventBus()
    async with bus.subscription(["listens.recorded"]) as sub:
        bus.publish(Event("ratings.changed", user_id="u1"))
        bus.publish(Event("listens.recorded", {"n": 1}, user_id="u1"))
        event = await asyncio.wait_for(sub.get(), 1)
    assert event.topic == "listens.recorded" and event.payload == {"n": 1}
    assert bus.subscriber_count == 0


async def test_user_filter() -> None:
    """A subscription for one user ignores other users' events."""
    bus = EventBus()
    sub = bus.subscribe(["listens.recorded"], user_id="u2")
    bus.publish(Event("listens.recorded", user_id="u1"))
    bus.publish(Event("listens.recorded", user_id="u2"))
    event = await asyncio.wait_for(sub.get(), 1)
    assert event.user_id == "u2"
    assert sub.queue.empty()
    sub.close()


async def test_slow_subscriber_drops_oldest() -> None:
    """A full queue drops its oldest events and counts them, so publishing never blocks."""
    bus = EventBus(queue_size=2)
    sub = bus.subscribe(["tracks.updated"])
    for i in range(5):
        bus.publish(Event("tracks.updated", {"i": i}))
    assert sub.dropped == 3
    assert [(await sub.get()).payload["i"] for _ in range(2)] == [3, 4]
