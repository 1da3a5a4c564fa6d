"""Another process on the event bus, driven over stdin and stdout (the cross-process bus tests).

``python -m tests.support.bus_peer redis <url>`` or ``... outbox <sqlite file>``: starts that bus,
subscribes to every topic and prints ``READY``. Then each stdin line ``{"topic", "payload",
"user_id"}`` is published, and each event its subscription hears is printed as one JSON line
``{"topic", "payload", "user_id"}``. The line ``HEALTH`` prints ``{"health": bus.health()}``. At the
end of stdin the bus closes and the process exits.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from musicgraph.bus import OutboxEventBus, RedisEventBus
from musicgraph.events import TOPICS, Event, EventBus


def _print(obj: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")
    sys.stdout.flush()


async def main(kind: str, where: str) -> None:
    bus: EventBus = (
        RedisEventBus(where) if kind == "redis" else OutboxEventBus(where, interval=0.05)
    )
    await bus.start()
    sub = bus.subscribe(TOPICS)  # type: ignore[arg-type]

    async def echo() -> None:
        async for event in sub:
            _print({"topic": event.topic, "payload": event.payload, "user_id": event.user_id})

    echoing = asyncio.create_task(echo())
    _print("READY")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"HEALTH":
            _print({"health": bus.health()})
            continue
        body = orjson.loads(line)
        bus.publish(Event(body["topic"], body.get("payload", {}), user_id=body.get("user_id")))
    await asyncio.sleep(0.3)  # let the last events out before closing
    echoing.cancel()
    await bus.close()


if __name__ == "__main__":
    from musicgraph.logging import configure_logging

    configure_logging("info", "json")  # to stderr: stdout carries the events
    asyncio.run(main(sys.argv[1], sys.argv[2]))
