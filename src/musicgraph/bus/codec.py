"""The wire form of an event between processes: one orjson document per event.

``{"origin": <sending process>, "topic": ..., "user_id": ..., "payload": {...}}``. The origin lets a
process recognise (and skip) its own events when they come back. Payloads are JSON values; a tuple
is sent as a list, and anything else (a dataclass, a set, a non-string key) is refused at encoding
rather than arriving changed.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from musicgraph.errors import MusicgraphError
from musicgraph.events import TOPICS, Event, Topic

__all__ = ["EventDecodeError", "decode_event", "encode_event"]


class EventDecodeError(MusicgraphError):
    """Bytes from another process are not an event this version understands."""


_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode_event(event: Event, origin: str) -> bytes:
    """``event`` as bytes, marked as sent by ``origin``; ``TypeError`` if the payload is not JSON."""
    body = {
        "origin": origin,
        "topic": event.topic,
        "user_id": event.user_id,
        "payload": event.payload,
    }
    try:
        # A dataclass or a datetime would arrive as a dict or a string its consumer does not expect.
        return orjson.dumps(body, default=_refuse, option=_PASSTHROUGH)
    except orjson.JSONEncodeError as exc:
        raise TypeError(
            f"the payload of a {event.topic!r} event does not serialise: {exc}"
        ) from exc


def decode_event(data: bytes | str) -> tuple[str, Event]:
    """``(origin, event)`` from :func:`encode_event`'s bytes; :class:`EventDecodeError` otherwise."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"an event from another process is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EventDecodeError(f"an event from another process is a {type(body).__name__}")
    origin, topic, user_id = body.get("origin"), body.get("topic"), body.get("user_id")
    payload = body.get("payload", {})
    if not isinstance(origin, str) or topic not in TOPICS:
        raise EventDecodeError(
            f"an event from another process has origin {origin!r} and topic {topic!r} "
            f"(topics known here: {', '.join(sorted(TOPICS))})"
        )
    if user_id is not None and not isinstance(user_id, str):
        raise EventDecodeError(f"an event from another process has user_id {user_id!r}")
    if not isinstance(payload, dict):
        raise EventDecodeError(
            f"an event from another process has a {type(payload).__name__} payload"
        )
    return origin, Event(cast(Topic, topic), payload, user_id=user_id)
