"""The Redis bus between two processes on a real ``redis-server``: each event once, both ways,
never echoed, and back after Redis restarts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from musicgraph.bus import RedisEventBus
from musicgraph.errors import ConfigError
from musicgraph.events import Event
from tests.bus.peers import LISTEN, Peer, drain, exchange_both_ways
from tests.support.redis_server import free_port, running_redis


async def wait_for(condition: Any, *, within: float = 15.0) -> None:
    """Poll ``condition`` every 50 ms until it holds (or fail after ``within`` seconds)."""
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still not true after {within} s: {condition}")


async def test_events_cross_once_each_way(redis_url: str) -> None:
    """An event published in one process reaches the other process's subscribers exactly once and
    its own subscribers exactly once (never again from Redis); recommendations.updated stays home."""
    bus = RedisEventBus(redis_url)
    await bus.start()
    try:
        peer = await exchange_both_ways(bus, "redis", redis_url)
        assert peer.heard.count(LISTEN) == 1
    finally:
        await bus.close()


async def test_user_subscriptions_filter_events_from_elsewhere(redis_url: str) -> None:
    """A subscription for one user hears that user's events from another process, not others'."""
    bus = RedisEventBus(redis_url)
    await bus.start()
    try:
        async with Peer("redis", redis_url) as peer:
            mine = bus.subscribe(["listens.recorded"], user_id="u1")
            peer.publish(Event("listens.recorded", {"listens": []}, user_id="u9"))
            peer.publish(LISTEN)
            assert await asyncio.wait_for(mine.get(), 10) == LISTEN
            assert mine.queue.empty()
    finally:
        await bus.close()


async def test_reconnects_after_a_redis_restart() -> None:
    """When Redis restarts, both processes log a warning, report the outage in health, reconnect
    by themselves and carry events both ways again."""
    with running_redis() as redis, capture_logs() as logs:
        bus = RedisEventBus(redis.url, reconnect_max=0.5)
        await bus.start()
        try:
            sub = bus.subscribe(["listens.recorded", "tags.changed"])
            async with Peer("redis", redis.url) as peer:
                await asyncio.to_thread(redis.stop)
                await wait_for(lambda: not bus.health()["ok"])
                down = bus.health()
                assert down["error"] and down["down_since"] is not None
                await asyncio.to_thread(redis.start)
                await wait_for(lambda: bus.health()["ok"])
                # the peer reconnects on its own schedule: wait until it reports it
                for _ in range(150):
                    if (await peer.health())["ok"]:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the peer did not reconnect within 15 s")

                marker = Event("tags.changed", {"marker": "after"})
                bus.publish(LISTEN)
                bus.publish(marker)
                assert await peer.until("tags.changed") == [LISTEN, marker]
                drain(sub)
                theirs = Event("listens.recorded", {"listens": []}, user_id="u3")
                peer.publish(theirs)
                assert await asyncio.wait_for(sub.get(), 10) == theirs
            assert bus.health()["reconnects"] >= 1
        finally:
            await bus.close()
    warnings = [e for e in logs if e["log_level"] == "warning" and "lost Redis" in e["event"]]
    assert warnings and warnings[0]["url"] == redis.url and warnings[0]["error"]
    assert any(e["event"] == "event bus: Redis is back" for e in logs)


async def test_unreachable_redis_at_start_keeps_local_delivery() -> None:
    """With nothing listening at the URL, start returns after its wait, health says why, and local
    subscribers still hear everything."""
    bus = RedisEventBus(f"redis://127.0.0.1:{free_port()}/0", reconnect_max=0.2)
    with capture_logs() as logs:
        await bus.start(wait=0.3)
    try:
        sub = bus.subscribe(["listens.recorded"])
        bus.publish(LISTEN)
        assert sub.queue.get_nowait() == LISTEN
        health = bus.health()
        assert not health["ok"] and "onnect" in health["error"] and health["queued"] == 1
        assert any("not reachable yet" in e["event"] for e in logs)
    finally:
        await bus.close()


async def test_an_unserialisable_payload_stays_local(redis_url: str) -> None:
    """A payload that cannot cross is still delivered locally; sending it is refused with an
    error log naming the topic, and counted."""
    bus = RedisEventBus(redis_url)
    await bus.start()
    try:
        sub = bus.subscribe(["tracks.updated"])
        with capture_logs() as logs:
            bus.publish(Event("tracks.updated", {"ids": {"t1"}}))
        assert sub.queue.get_nowait().payload == {"ids": {"t1"}}
        assert bus.health()["unserialisable"] == 1
        assert any("tracks.updated" in e.get("error", "") for e in logs)
    finally:
        await bus.close()


def test_a_bad_url_names_the_setting_without_the_password() -> None:
    """A URL that is not a Redis URL fails at once naming MUSICGRAPH_REDIS_URL, password hidden."""
    with pytest.raises(ConfigError, match="MUSICGRAPH_REDIS_URL") as info:
        RedisEventBus("http://user:s3cret@example.org:6379")
    assert "s3cret" not in str(info.value)


async def test_deployments_on_different_databases_do_not_hear_each_other(redis_url: str) -> None:
    """Pub/sub ignores database numbers, so the channel carries it: a bus on /1 does not hear a
    bus on /0 of the same server."""
    other_url = redis_url.rsplit("/", 1)[0] + "/1"
    zero, one = RedisEventBus(redis_url), RedisEventBus(other_url)
    assert (zero.channel, one.channel) == ("musicgraph:0:events", "musicgraph:1:events")
    await zero.start()
    await one.start()
    try:
        async with Peer("redis", redis_url) as peer:
            heard_by_one = one.subscribe(["tags.changed"])
            marker = Event("tags.changed", {"marker": 0})
            zero.publish(marker)
            assert await peer.until("tags.changed") == [marker]
            await asyncio.sleep(0.2)
            assert heard_by_one.queue.empty()
    finally:
        await zero.close()
        await one.close()


async def test_events_published_during_an_outage_arrive_after_it() -> None:
    """A listen published while Redis is down is delivered locally at once and reaches the other
    process once Redis is back, exactly once: it is held until the other process, whose retries
    have spaced out during the outage, listens again."""
    with running_redis() as redis:
        bus = RedisEventBus(redis.url)
        await bus.start()
        try:
            async with Peer("redis", redis.url) as peer:
                await asyncio.to_thread(redis.stop)
                await wait_for(lambda: not bus.health()["ok"])
                await asyncio.sleep(3.0)  # the peer now retries every 2 s
                sub = bus.subscribe(["listens.recorded"])
                bus.publish(LISTEN)  # this process's sender starts retrying every 0.1 s
                assert sub.queue.get_nowait() == LISTEN
                await asyncio.to_thread(redis.start)
                marker = Event("tags.changed", {"marker": "after the outage"})
                bus.publish(marker)
                assert await peer.until("tags.changed", within=30) == [LISTEN, marker]
        finally:
            await bus.close()
