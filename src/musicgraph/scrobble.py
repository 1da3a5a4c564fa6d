"""A ListenBrainz-compatible scrobble endpoint, so existing scrobblers and the ListenBrainz client
libraries can send listens to musicgraph by changing only the server address.

- ``POST /1/submit-listens`` with ``{"listen_type": "single" | "playing_now" | "import",
  "payload": [listen, ...]}`` and ``Authorization: Token <token>`` (the user's musicgraph token);
- ``GET /1/validate-token`` (the token in the header, or ``?token=``).

Answers are shaped as ListenBrainz shapes them: ``{"status": "ok"}``; ``400`` and ``401`` as
``{"code": ..., "error": "..."}``. As on ListenBrainz, one invalid listen refuses the whole request
(nothing is stored) and ``playing_now`` is checked but not stored. Listens are validated by the
importers' ListenBrainz parser and written through the one path every listen takes
(:func:`musicgraph.ingest.service.record_listens`), so re-sending a listen adds nothing.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from musicgraph.errors import ImportFormatError
from musicgraph.graph.models import ListenInput
from musicgraph.ingest.common import InvalidListenError
from musicgraph.ingest.listenbrainz import parse_listenbrainz
from musicgraph.logging import get_logger
from musicgraph.schema.context import AppState, Viewer, resolve_viewer

log = get_logger("musicgraph.scrobble")

LISTEN_TYPES = ("single", "playing_now", "import")
SOURCE = "listenbrainz-api"


def lb_error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "error": message}, status_code=code)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


async def _viewer(state: AppState, token: str | None) -> Viewer | None:
    viewer = await resolve_viewer(state, token)
    if viewer is None or viewer.user is None:
        return None  # the admin token names no user to scrobble for
    return viewer


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.musicgraph
    return state


async def validate_token(request: Request) -> JSONResponse:
    token = _token(request) or request.query_params.get("token")
    if not token:
        return lb_error(400, "You need to provide an Authorization token.")
    viewer = await _viewer(_state(request), token)
    if viewer is None or viewer.user is None:
        return JSONResponse({"code": 200, "message": "Token invalid.", "valid": False})
    return JSONResponse(
        {"code": 200, "message": "Token valid.", "valid": True, "user_name": viewer.user.name}
    )


def parse_submission(
    body: Any, user_id: str, *, max_listens: int, now: int | None = None
) -> tuple[str, list[ListenInput]]:
    """``(listen_type, listens)`` of a submission, or ``ValueError`` with the message to answer."""
    if not isinstance(body, dict):
        raise ValueError("Invalid JSON document submitted.")
    listen_type = body.get("listen_type")
    if listen_type not in LISTEN_TYPES:
        raise ValueError("JSON document does not contain a valid listen_type.")
    payload = body.get("payload")
    if not isinstance(payload, list):
        raise ValueError("JSON document does not contain a valid payload.")
    if not payload:
        raise ValueError("JSON document does not contain any listens.")
    if listen_type in ("single", "playing_now") and len(payload) != 1:
        raise ValueError(f"JSON document should contain exactly one listen for {listen_type}.")
    if len(payload) > max_listens:
        raise ValueError(f"Too many listens: at most {max_listens} per request.")
    now = int(time.time()) if now is None else now
    listens = []
    for i, item in enumerate(payload):
        if not isinstance(item, dict):
            raise ValueError(f"payload[{i}]: a listen must be a JSON object.")
        if listen_type == "playing_now":
            if "listened_at" in item:
                raise ValueError("JSON document must not contain listened_at for playing_now.")
            item = {**item, "listened_at": now}
        elif "listened_at" not in item:
            raise ValueError(f"payload[{i}]: JSON document must contain listened_at.")
        stream = io.StringIO(json.dumps(item))
        try:
            (record,) = list(parse_listenbrainz(stream, user_id, name="payload", now=now))
        except ImportFormatError as exc:
            raise ValueError(f"payload[{i}]: {exc}") from exc
        if isinstance(record, InvalidListenError):
            field = f" {record.field}" if record.field else ""
            value = f" ({record.value})" if record.value else ""
            raise ValueError(f"payload[{i}]{field}: {record.reason}{value}.")
        listens.append(record)
    return listen_type, listens


async def submit_listens(request: Request) -> JSONResponse:
    from musicgraph.ingest.service import record_listens

    state = _state(request)
    token = _token(request)
    if token is None:
        return lb_error(401, "You need to provide an Authorization header.")
    viewer = await _viewer(state, token)
    if viewer is None or viewer.user is None:
        return lb_error(401, "Invalid authorization token.")
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return lb_error(400, f"Cannot parse JSON document: {exc}")
    try:
        listen_type, listens = parse_submission(
            body, viewer.user.id, max_listens=state.settings.max_listen_batch
        )
    except ValueError as exc:
        return lb_error(400, str(exc))
    if listen_type == "playing_now":
        return JSONResponse({"status": "ok"})
    listens = [
        ListenInput(
            user_id=x.user_id,
            track=x.track,
            listened_at=x.listened_at,
            source=SOURCE,
            ms_played=x.ms_played,
            skipped=x.skipped,
        )
        for x in listens
    ]
    result = await record_listens(state.store, listens, bus=state.bus)
    log.info(
        "listens submitted",
        user=viewer.user.name,
        listen_type=listen_type,
        inserted=result.inserted,
        duplicates=result.duplicates,
    )
    return JSONResponse({"status": "ok"})


routes = [
    Route("/1/submit-listens", submit_listens, methods=["POST"]),
    Route("/1/validate-token", validate_token, methods=["GET"]),
]
