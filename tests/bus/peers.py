"""The test's side of ``tests/support/bus_peer.py``: another process on the bus."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from musicgraph.events import TOPICS, Event, EventBus, Subscription

REPO_ROOT = Path(__file__).resolve().parents[2]


class Peer:
    """``async with Peer("redis", url) as peer``: a bus in a process of its own."""

    def __init__(self, kind: str, where: str | Path) -> None:
        self.kind = kind
        self.where = str(where)
        self.proc: asyncio.subprocess.Process | None = None
        self.heard: list[Event] = []

    async def __aenter__(self) -> Peer:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.bus_peer",
            self.kind,
            self.where,
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(self._readline(), 30)
        assert line == "READY", f"the peer said {line!r}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def _readline(self) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            assert self.proc.stderr is not None
            err = (await self.proc.stderr.read()).decode(errors="replace")
            raise AssertionError(f"the peer process ended:\n{err[-3000:]}")
        return orjson.loads(raw)

    def publish(self, event: Event) -> None:
        """Have the peer publish ``event`` on its bus."""
        assert self.proc is not None and self.proc.stdin is not None
        body = {"topic": event.topic, "payload": event.payload, "user_id": event.user_id}
        self.proc.stdin.write(orjson.dumps(body) + b"\n")

    async def until(self, topic: str, *, within: float = 10.0) -> list[Event]:
        """Every event the peer hears up to and including the first of ``topic``."""
        out: list[Event] = []
        async with asyncio.timeout(within):
            while True:
                body = await self._readline()
                if "health" in body:
                    continue
                event = Event(body["topic"], body["payload"], user_id=body["user_id"])
                self.heard.append(event)
                out.append(event)
                if event.topic == topic:
                    return out

    async def health(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"HEALTH\n")
        async with asyncio.timeout(10):
            while True:
                body = await self._readline()
                if isinstance(body, dict) and "health" in body:
                    health: dict[str, Any] = body["health"]
                    return health
                self.heard.append(Event(body["topic"], body["payload"], user_id=body["user_id"]))


LISTEN = Event(
    "listens.recorded",
    {"listens": [{"track_id": "t1", "listened_at": 1_700_000_000, "skipped": False}]},
    user_id="u1",
)


def drain(sub: Subscription) -> list[Event]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


async def heard_until(sub: Subscription, marker: Event, *, within: float = 10.0) -> list[Event]:
    """What ``sub`` hears up to and including ``marker``."""
    out: list[Event] = []
    async with asyncio.timeout(within):
        while not out or out[-1] != marker:
            out.append(await sub.get())
    return out


async def exchange_both_ways(bus: EventBus, kind: str, where: str | Path) -> Peer:
    """With ``bus`` started here and a peer process on the same ``kind`` of bus at ``where``:
    events published here reach the peer once (recommendations.updated stays home), the peer's
    reach this process's subscribers once, nothing is echoed, and the bus counts two sent and two
    received. Returns the peer (closed) for further checks of what it heard."""
    sub = bus.subscribe(TOPICS)  # type: ignore[arg-type]
    async with Peer(kind, where) as peer:
        marker = Event("tags.changed", {"marker": "from-here"})
        bus.publish(LISTEN)
        bus.publish(Event("recommendations.updated", {"kinds": ["track"]}, user_id="u1"))
        bus.publish(marker)
        assert await peer.until("tags.changed") == [LISTEN, marker]

        theirs = Event("ratings.changed", {"track_id": "t1", "score": 1}, user_id="u2")
        their_marker = Event("tags.changed", {"marker": "from-there"})
        peer.publish(theirs)
        peer.publish(their_marker)
        heard = await heard_until(sub, their_marker)
        await asyncio.sleep(0.3)  # several polls: room for a duplicate or an echo to show up
        heard += drain(sub)
        assert heard == [
            LISTEN,
            Event("recommendations.updated", {"kinds": ["track"]}, user_id="u1"),
            marker,
            theirs,
            their_marker,
        ]
        health = bus.health()
        assert health["ok"] and health["sent"] == 2 and health["received"] == 2
    return peer
