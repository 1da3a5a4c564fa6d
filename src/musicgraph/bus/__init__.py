"""How events reach the other processes serving the same graph.

:func:`create_bus` picks the backend from the settings (``MUSICGRAPH_EVENT_BUS``, default ``auto``):

- ``redis`` (:class:`RedisEventBus`): Redis pub/sub at ``MUSICGRAPH_REDIS_URL``; any number of
  processes on any number of machines, either store;
- ``outbox`` (:class:`OutboxEventBus`): a table the processes poll, in a SQLite file next to the
  store's (``<db>-events``); several workers on one machine, no extra service;
- ``local`` (:class:`musicgraph.events.EventBus`): one process.

``auto`` means redis when ``MUSICGRAPH_REDIS_URL`` is set, else the outbox on the SQLite store (so
every worker of ``serve --workers``, and a running server, hear what another process does on the
same file: ``musicgraph enrich`` run from a terminal shows its progress and results in the server),
else local. Several Neo4j-backed processes without Redis are refused: they would not hear each
other.
"""

from __future__ import annotations

from musicgraph.bus.codec import EventDecodeError, decode_event, encode_event
from musicgraph.bus.outbox import OutboxEventBus, outbox_path
from musicgraph.bus.redis_bus import RedisEventBus
from musicgraph.errors import ConfigError
from musicgraph.events import EventBus
from musicgraph.settings import Settings

__all__ = [
    "EventDecodeError",
    "OutboxEventBus",
    "RedisEventBus",
    "choose_backend",
    "create_bus",
    "decode_event",
    "encode_event",
    "outbox_path",
]


def choose_backend(settings: Settings, *, workers: int | None = None) -> str:
    """``"redis"``, ``"outbox"`` or ``"local"`` for these settings; :class:`ConfigError` when the
    combination cannot carry events between the processes."""
    n = settings.workers if workers is None else workers
    chosen = settings.event_bus
    if chosen == "auto":
        if settings.redis_url:
            chosen = "redis"
        elif not settings.uses_neo4j or n > 1:
            chosen = "outbox"  # several processes on Neo4j are refused below
        else:
            chosen = "local"
    if chosen == "redis" and not settings.redis_url:
        raise ConfigError(
            "MUSICGRAPH_EVENT_BUS=redis needs MUSICGRAPH_REDIS_URL (redis://host:6379/0)"
        )
    if chosen == "outbox" and settings.uses_neo4j:
        if settings.event_bus == "outbox":
            raise ConfigError(
                "MUSICGRAPH_EVENT_BUS=outbox works on the SQLite store only; with NEO4J_URI set, "
                "set MUSICGRAPH_REDIS_URL to carry events between processes"
            )
        raise ConfigError(
            f"{n} workers on Neo4j need Redis to hear each other's events: set "
            "MUSICGRAPH_REDIS_URL=redis://host:6379/0, or serve with one worker"
        )
    return chosen


def create_bus(settings: Settings, *, workers: int | None = None) -> EventBus:
    """The bus :func:`choose_backend` picks, not started yet (``await bus.start()``)."""
    backend = choose_backend(settings, workers=workers)
    if backend == "redis":
        assert settings.redis_url is not None
        return RedisEventBus(settings.redis_url)
    if backend == "outbox":
        return OutboxEventBus(outbox_path(settings.db_path))
    return EventBus()
