"""The in-process event bus delivers by topic and user, and never blocks the publisher."""

from __future__ import annotations

import asyncio

from musicgraph.events import LOCAL_ONLY_TOPICS, TOPICS, Event, EventBus


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


class RecordingBus(EventBus):
    """A bus whose ``forward`` (the hook the cross-process backends implement) records events."""

    def __init__(self) -> None:
        super().__init__()
        self.forwarded: list[Event] = []

    def forward(self, event: Event) -> None:
        self.forwarded.append(event)


async def test_publish_delivers_locally_then_forwards_all_but_recommendations() -> None:
    """publish delivers to local subscribers and forwards every topic except
    recommendations.updated, which each process derives from its own projection."""
    bus = RecordingBus()
    sub = bus.subscribe(TOPICS)  # type: ignore[arg-type]
    for topic in sorted(TOPICS):
        bus.publish(Event(topic, {"t": topic}))  # type: ignore[arg-type]
    assert sub.queue.qsize() == len(TOPICS)
    assert {e.topic for e in bus.forwarded} == TOPICS - LOCAL_ONLY_TOPICS
    assert set(LOCAL_ONLY_TOPICS) == {"recommendations.updated"}


async def test_deliver_reaches_local_subscribers_only() -> None:
    """deliver (what a backend calls for an event from elsewhere) never forwards it again."""
    bus = RecordingBus()
    sub = bus.subscribe(["listens.recorded"])
    bus.deliver(Event("listens.recorded", user_id="u1"))
    assert sub.queue.get_nowait().user_id == "u1"
    assert bus.forwarded == []


async def test_local_bus_lifecycle_and_health() -> None:
    """The in-process bus starts and closes as a no-op and reports itself healthy and local."""
    bus = EventBus()
    await bus.start()
    assert bus.health() == {"backend": "local", "ok": True}
    await bus.close()
    sub = bus.subscribe(["tags.changed"])
    bus.publish(Event("tags.changed"))
    assert sub.queue.qsize() == 1
