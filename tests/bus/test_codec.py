"""Every topic's payload, as the code that publishes it builds it, survives the trip to another
process (orjson) and means the same to the code that consumes it there."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict
from typing import Any

import orjson
import pytest

from musicgraph.bus.codec import EventDecodeError, decode_event, encode_event
from musicgraph.enrichment.pipeline import SourceProgress, _non_null
from musicgraph.events import TOPICS, Event, EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, Similarity, Tagging, TrackRef, TrackUpdate
from musicgraph.health.monitor import HealthMonitor
from musicgraph.ingest.service import record_listens
from musicgraph.schema.subscription import listens_of
from musicgraph.schema.types.enrichment import EnrichmentProgress
from musicgraph.schema.types.health import SourceHealth


def _json(value: Any) -> Any:
    """What a JSON round trip makes of ``value`` (tuples become lists)."""
    return orjson.loads(orjson.dumps(value))


async def published_events(store: GraphStore) -> dict[str, Event]:
    """One event per topic, built by the code that publishes it (or, for the resolvers' one-line
    payloads, by the same expression)."""
    bus = EventBus()
    sub = bus.subscribe(TOPICS)  # type: ignore[arg-type]
    now = int(time.time())
    user = (await store.create_user("u1")).id
    refs = [TrackRef(artist="Low", title="Words"), TrackRef(artist="Low", title="Lazy")]
    await record_listens(
        store,
        [
            ListenInput(user, refs[0], now - 60, "api", ms_played=180_000),
            ListenInput(user, refs[1], now - 30, "api", skipped=True),
        ],
        bus=bus,
        enrich=False,
    )
    monitor = HealthMonitor(bus)
    monitor.register_source("lastfm", rate_limit=5.0)
    monitor.record_failure("lastfm", "timeout", "lastfm timed out after 10 s", latency=10.0)
    progress = SourceProgress("lastfm", state="running", done=3, pending=7, totals={"done": 3})
    progress.recent.append(time.monotonic())
    bus.publish(Event("enrichment.progress", progress.as_dict()))
    update = TrackUpdate("t1", bpm=120.5, moods=("calm", "dreamy"), genres=("slowcore",))
    bus.publish(
        Event(
            "tracks.updated",
            {"source": "cyanite", "track_ids": ["t1"], "updates": [_non_null(update)]},
        )
    )
    tagging = Tagging("track", "t1", "slowcore", 12)
    bus.publish(
        Event(
            "tags.changed",
            {
                "source": "lastfm",
                "kind": "track",
                "item_ids": ["t1"],
                "taggings": [asdict(tagging)],
            },
        )
    )
    similar = Similarity("artist", "a1", "a2", 0.75, "lastfm")
    bus.publish(Event("similarity.added", {"source": "lastfm", "similarities": [asdict(similar)]}))
    # the resolvers', the engine's and the hetrec import's payloads (resolvers/listens.py,
    # playlists.py, engine.py, ingest/commands.py)
    bus.publish(Event("graph.imported", {"source": "hetrec"}))
    bus.publish(Event("ratings.changed", {"track_id": "t1", "score": None}, user_id="u1"))
    bus.publish(
        Event("playlists.changed", {"playlist_id": "p1", "action": "generated"}, user_id="u1")
    )
    bus.publish(Event("recommendations.updated", {"kinds": ["track", "artist"]}, user_id="u1"))
    events: dict[str, Event] = {}
    while not sub.queue.empty():
        event = sub.queue.get_nowait()
        events.setdefault(event.topic, event)
    return events


async def test_every_topic_round_trips(sqlite_store: GraphStore) -> None:
    """Each topic's event decodes to the same topic, user and (JSON-equal) payload, from the
    origin that sent it."""
    events = await published_events(sqlite_store)
    assert set(events) == TOPICS
    for event in events.values():
        origin, back = decode_event(encode_event(event, "process-a"))
        assert origin == "process-a"
        assert back.topic == event.topic and back.user_id == event.user_id
        assert back.payload == _json(event.payload), event.topic


async def test_consumers_read_decoded_payloads_as_local_ones(sqlite_store: GraphStore) -> None:
    """The subscription resolvers and the engine's payload readers get the same values from an
    event that crossed processes as from the local one."""
    events = await published_events(sqlite_store)

    def crossed(topic: str) -> Event:
        return decode_event(encode_event(events[topic], "elsewhere"))[1]

    assert listens_of(crossed("listens.recorded")) == listens_of(events["listens.recorded"])
    assert [SourceHealth.from_monitor(h) for h in crossed("health.changed").payload["sources"]] == [
        SourceHealth.from_monitor(h) for h in events["health.changed"].payload["sources"]
    ]
    assert EnrichmentProgress.from_payload(
        crossed("enrichment.progress").payload
    ) == EnrichmentProgress.from_payload(events["enrichment.progress"].payload)
    rows = crossed("similarity.added").payload["similarities"]
    assert [Similarity(**row) for row in rows] == [
        Similarity(**row) for row in events["similarity.added"].payload["similarities"]
    ]
    assert [TrackUpdate(**u) for u in crossed("tracks.updated").payload["updates"]] != []


def test_payloads_that_would_change_are_refused() -> None:
    """A dataclass, a set, a datetime or a non-string key in a payload is refused at encoding
    (it would arrive as something else), with the topic in the message."""

    @dataclasses.dataclass
    class Thing:
        x: int

    from datetime import UTC, datetime

    for payload in ({"a": Thing(1)}, {"a": {1, 2}}, {"at": datetime.now(UTC)}, {1: "x"}):
        with pytest.raises(TypeError, match=r"tracks\.updated"):
            encode_event(Event("tracks.updated", payload), "a")


def test_foreign_bytes_are_rejected_with_a_reason() -> None:
    """Bytes that are not an event of a known topic raise EventDecodeError naming what is wrong."""
    with pytest.raises(EventDecodeError, match="not JSON"):
        decode_event(b"\x00garbage")
    with pytest.raises(EventDecodeError, match=r"topic 'no\.such'"):
        decode_event(orjson.dumps({"origin": "x", "topic": "no.such", "payload": {}}))
    with pytest.raises(EventDecodeError, match="payload"):
        decode_event(orjson.dumps({"origin": "x", "topic": "tags.changed", "payload": [1]}))
