"""The musicgraph web app: Starlette around Strawberry, served by uvicorn.

Routes:

- ``/graphql``: queries and mutations over POST and GET, GraphiQL for a browser, subscriptions over
  WebSocket (``graphql-transport-ws``; the token goes in the ``connection_init`` payload as
  ``{"authorization": "Bearer <token>"}`` or ``{"token": "<token>"}``);
- ``/healthz`` (the process answers), ``/readyz`` (the store answers and the recommender's
  projection is loaded), ``/metrics`` (Prometheus);
- ``/1/submit-listens`` and ``/1/validate-token``: the ListenBrainz-compatible scrobble API;
- ``/playlists/<id>.jspf|.xspf|.m3u8``: playlist exports (a private one needs its owner's token);
- ``/`` (the dashboard) and ``/static/`` (the pages' files, GraphiQL's included: see
  :mod:`musicgraph.web`).

The lifespan opens the store, starts the health monitor, loads the recommender engine in the
background (``/readyz`` says when it is ready) and on shutdown ends every subscription, stops the
engine and closes the store. Each request gets a request id (``X-Request-ID``, taken from the
client when it sends a sane one) bound into the log context.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
import structlog
from cross_web import HTTPException
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from musicgraph.auth import hash_token
from musicgraph.events import EventBus
from musicgraph.graph import GraphStore, create_store
from musicgraph.heap import settle_for_serving
from musicgraph.ingest.exporters import FORMATS, load_playlist_export
from musicgraph.logging import get_logger
from musicgraph.schema.build import build_schema
from musicgraph.schema.context import AppState, Context, Viewer, bearer_token, resolve_viewer
from musicgraph.schema.loaders import Loaders
from musicgraph.schema.response_cache import ResponseCache
from musicgraph.scrobble import routes as scrobble_routes
from musicgraph.settings import Settings
from musicgraph.web import CachedStaticFiles, dashboard, graphiql_page

log = get_logger("musicgraph.app")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Request ids: 16 random hex digits per process, then a counter (as unique as uuid4 across
#: workers, without a urandom system call per request).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker gets its own prefix


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


#: scope keys: the viewer the view resolved before executing; set when execution had no errors
_VIEWER = "musicgraph.viewer"
_CLEAN = "musicgraph.clean"


# --- middleware ------------------------------------------------------------------------------------


_ROUTES = ("/graphql", "/1/", "/playlists/", "/healthz", "/readyz", "/metrics")


class ApiMetrics:
    """The API's own Prometheus series (served after the health monitor's on ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "musicgraph_http_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "musicgraph_http_request_seconds",
            "Time to answer an HTTP request, by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.websockets = Gauge(
            "musicgraph_websocket_connections", "Open WebSocket connections", registry=self.registry
        )
        self.subscribers = Gauge(
            "musicgraph_event_subscribers",
            "Subscribers of the event bus (GraphQL subscriptions and internal consumers)",
            registry=self.registry,
        )
        self.bus_up = Gauge(
            "musicgraph_event_bus_up",
            "1 when events reach the other processes (always, for the one-process bus), else 0",
            ["backend"],
            registry=self.registry,
        )
        self.bus_events = Gauge(
            "musicgraph_event_bus_events",
            "Events sent to and received from other processes since start",
            ["direction"],
            registry=self.registry,
        )

    @staticmethod
    def route(path: str) -> str:
        """A bounded label: the route family of ``path``."""
        return next((r.rstrip("/") for r in _ROUTES if path.startswith(r)), "other")

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestContextMiddleware:
    """Clear the log context, bind a request id, echo it as ``X-Request-ID``, log the request,
    count it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, *, log_requests: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        #: a debug line per request (structlog binds a logger for each call, even filtered out)
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else _new_request_id()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=scope.get("method", "WS"), path=scope.get("path")
        )
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        if scope["type"] == "websocket":
            self.metrics.websockets.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - start
                route = self.metrics.route(scope.get("path", ""))
                self.metrics.requests.labels(route, str(status)).inc()
                self.metrics.latency.labels(route).observe(elapsed)
                if self.log_requests:
                    log.debug("request", status=status, ms=round(elapsed * 1000, 2))
            else:
                self.metrics.websockets.dec()
            structlog.contextvars.clear_contextvars()


class _TooLarge(Exception):
    """A streamed request body went over the limit."""


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by ``Content-Length`` or as they stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {"code": 413, "error": f"request body over the limit of {self.max_bytes} bytes"},
            status_code=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._too_large()(scope, receive, send)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._too_large()(scope, receive, send)


# --- GraphQL view ----------------------------------------------------------------------------------


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with musicgraph's context, token handling and JSON error bodies."""

    def __init__(self, state: AppState, **kwargs: Any) -> None:
        settings = state.settings
        schema = build_schema(settings)
        super().__init__(
            schema,
            max_subscriptions_per_connection=settings.max_subscriptions,
            connection_init_wait_timeout=timedelta(seconds=10),
            **kwargs,
        )
        self.state = state
        self.responses = ResponseCache(schema._schema, engine_ttl=state.recommendations.ttl)
        #: token -> (store data_version it was read at, viewer): a user's token costs a store
        #: read only after a write (a revoked token is a write)
        self._viewers: dict[str, tuple[int, Viewer]] = {}

    def _context(self, viewer: Viewer, request_id: str | None) -> Context:
        return Context(
            state=self.state,
            viewer=viewer,
            loaders=Loaders(self.state.store, page_size=self.state.settings.max_page_size),
            request_id=request_id,
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        request_id = request.scope.get("state", {}).get("request_id")
        viewer = request.scope.get(_VIEWER)  # resolved by _respond already
        if viewer is None:
            viewer = await resolve_viewer(
                self.state, bearer_token(request.headers.get("authorization"))
            )
        if viewer is None:
            if isinstance(request, WebSocket):
                context = self._context(Viewer(), request_id)
                context.rejected = True  # refused once connection_init arrives
                context.long_lived = True
                return context
            raise HTTPException(401, "the bearer token is not valid")
        context = self._context(viewer, request_id)
        context.long_lived = isinstance(request, WebSocket)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if context.rejected:
            raise ConnectionRejectionError({"reason": "the bearer token is not valid"})
        params = context.connection_params or {}
        raw = params.get("authorization") or params.get("Authorization")
        token = bearer_token(raw) if isinstance(raw, str) else None
        if token is None and isinstance(params.get("token"), str):
            token = params["token"]
        if token is None:
            return await super().on_ws_connect(context)
        viewer = await resolve_viewer(self.state, token)
        if viewer is None:
            raise ConnectionRejectionError({"reason": "the token is not valid"})
        context.viewer = viewer
        return {"user": viewer.user.name if viewer.user else None, "admin": viewer.is_admin}

    async def render_graphql_ide(self, request: Request) -> Response:
        # served from /static/, not Strawberry's page (which loads GraphiQL from a CDN)
        return graphiql_page(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._respond(request)
        except HTTPException as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            response = JSONResponse(
                {"errors": [{"message": exc.reason}]},
                status_code=exc.status_code,
                headers=headers,
            )
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        # orjson's JSONDecodeError is json's, so Strawberry's 400 for a bad body still applies
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # orjson: the same JSON as json.dumps, in a fraction of the time (non-ASCII text as
        # UTF-8 rather than \u escapes); json for what orjson refuses (integers over 64 bits)
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if not result.errors:
            request.scope[_CLEAN] = True
        return await super().process_result(request, result)

    async def _viewer(self, token: str | None, version: int) -> Viewer | None:
        """``resolve_viewer``, remembered per token until the store's data changes."""
        if not token:
            return Viewer()
        key = hash_token(token)
        known = self._viewers.get(key)
        if known is not None and known[0] == version:
            return known[1]
        viewer = await resolve_viewer(self.state, token)
        if viewer is not None:
            if len(self._viewers) >= 1024:
                self._viewers.clear()
            self._viewers[key] = (version, viewer)
        return viewer

    async def _respond(self, request: Request) -> Response:
        """Answer from the response cache when it holds this viewer's answer to this very request
        and nothing it read has changed since; otherwise execute (and remember a clean answer).
        See :mod:`musicgraph.schema.response_cache`."""
        version = self.state.store.data_version() if request.method == "POST" else None
        headers = request.headers
        if (
            version is None
            or not isinstance(version, int)
            or not headers.get("content-type", "").startswith("application/json")
        ):
            return await self.run(request)
        body = await request.body()  # Starlette keeps it for Strawberry's own read
        cache = self.responses
        if len(body) > cache.max_key_bytes:
            return await self.run(request)
        viewer = await self._viewer(bearer_token(headers.get("authorization")), version)
        if viewer is None:
            raise HTTPException(401, "the bearer token is not valid")
        request.scope[_VIEWER] = viewer
        scope = (
            "admin"
            if viewer.is_admin
            else f"user:{viewer.user.id}"
            if viewer.user is not None
            else "anonymous"
        )
        engine = self.state.engine
        stamp = (version, self.state.recommendations.generation, id(engine) if engine else 0)
        key = (scope, headers.get("accept"), body)
        directives = headers.get("cache-control", "")
        fresh = "no-cache" in directives or "no-store" in directives
        if not fresh:
            cached = cache.get(key, stamp)
            if cached is not None:
                return Response(cached, media_type="application/json")
        response = await self.run(request)
        if (
            response.status_code == 200
            and request.scope.get(_CLEAN)
            and "no-store" not in directives
            and len(response.headers) == 2  # content-length and content-type, nothing else
            and isinstance(response.body, bytes)
        ):
            plan = cache.plan_for_body(body)
            if plan is not None:
                cache.put(key, stamp, response.body, plan)
        return response


# --- plain routes ----------------------------------------------------------------------------------


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.musicgraph
    return state


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = _state(request)
    if state.monitor is not None:
        ready, details = await state.monitor.readiness(
            state.store, projection_ready=state.projection_loaded
        )
    else:
        try:
            await state.store.ping()
            store_ok, error = True, None
        except Exception as exc:
            store_ok, error = False, str(exc)
        ready = store_ok and state.projection_loaded
        details = {
            "store": {"ok": store_ok, "error": error},
            "projection": {"ok": state.projection_loaded},
        }
    # how events reach the other workers; reported, not required (a worker serves without it)
    details["bus"] = state.bus.health()
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **details},
        status_code=200 if ready else 503,
    )


async def metrics(request: Request) -> Response:
    state = _state(request)
    api: ApiMetrics = request.app.state.api_metrics
    api.subscribers.set(state.bus.subscriber_count)
    bus = state.bus.health()
    api.bus_up.labels(bus["backend"]).set(1 if bus["ok"] else 0)
    for direction in ("sent", "received"):
        api.bus_events.labels(direction).set(bus.get(direction, 0))
    monitor = state.monitor.prometheus_text() if state.monitor is not None else b""
    return Response(monitor + api.render(), media_type=CONTENT_TYPE_LATEST)


async def export_playlist(request: Request) -> Response:
    state = _state(request)
    playlist_id = request.path_params["playlist_id"]
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        return JSONResponse(
            {"error": f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"}, status_code=404
        )
    viewer = await resolve_viewer(state, bearer_token(request.headers.get("authorization")))
    if viewer is None:
        return JSONResponse(
            {"error": "the bearer token is not valid"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    export = await load_playlist_export(state.store, playlist_id)
    allowed = export is not None and (
        export.public or viewer.is_admin or viewer.user_id == export.owner_id
    )
    if export is None or not allowed:
        # a private playlist of someone else is "not found": its existence does not leak
        return JSONResponse({"error": f"no playlist with id {playlist_id!r}"}, status_code=404)
    exporter, media_type = FORMATS[fmt]
    body = exporter(export, location=str(request.url))
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{playlist_id}.{fmt}"'},
    )


# --- lifespan ----------------------------------------------------------------------------------------


async def _start_engine(state: AppState) -> None:
    """Build the recommender's projection (streamed from the store) and apply events from then on."""
    try:
        from musicgraph.recommender.engine import RecommendationEngine
    except ModuleNotFoundError as exc:
        log.warning("recommender engine not available", error=str(exc))
        return
    start = time.perf_counter()
    try:
        engine = await RecommendationEngine.load(
            state.store,
            state.bus,
            hybrid_rerank=state.settings.hybrid_rerank,
            hybrid_rerank_path=state.settings.rerank_path,
        )
        await engine.start()
    except Exception:
        log.exception("recommender engine failed to load")
        return
    state.engine = engine
    state.projection_loaded = True
    settle_for_serving()  # the startup heap out of the collector's reach (musicgraph.heap)
    log.info(
        "recommender ready",
        seconds=round(time.perf_counter() - start, 2),
        stats=getattr(engine, "stats", None),
    )


async def _start_enrichment(state: AppState) -> None:
    """Run the enrichment pipeline in the background for as long as the server runs
    (``MUSICGRAPH_ENRICH_AUTOSTART``): it drains the queue and waits for new tracks."""
    from musicgraph.enrichment.pipeline import start_enrichment

    if state.monitor is None:
        return
    state.pipeline, _ = await start_enrichment(
        state.store, state.settings, state.bus, state.monitor, until_idle=False
    )
    log.info("enrichment pipeline started", sources=state.pipeline.source_names)


def _start_monitor(state: AppState) -> None:
    try:
        from musicgraph.health import HealthMonitor
    except ModuleNotFoundError:  # pragma: no cover - the monitor ships with the package
        return
    monitor = HealthMonitor(state.bus, interval=state.settings.health_interval)
    monitor.attach_store(state.store)
    monitor.start(probes=True)
    state.monitor = monitor


async def _maybe_load_demo(state: AppState) -> None:
    counts = await state.store.counts()
    if counts.users or counts.tracks or counts.artists:
        return
    from musicgraph.ingest.demo import load_demo

    log.info("empty store: loading the demo graph")
    result = await load_demo(state.store)
    log.info("demo graph loaded", **result.as_dict())


def create_app(
    settings: Settings,
    *,
    store: GraphStore | None = None,
    bus: EventBus | None = None,
    load_demo_if_empty: bool = False,
    start_engine: bool = True,
) -> Starlette:
    """The ASGI app. A ``store`` (or ``bus``) passed in is opened and closed by the caller;
    otherwise the app opens the store and starts the event bus the settings choose."""
    owns_store = store is None
    the_store = store if store is not None else create_store(settings)
    owns_bus = bus is None
    if bus is None:
        from musicgraph.bus import create_bus

        bus = create_bus(settings)
    state = AppState(settings=settings, store=the_store, bus=bus)
    graphql = GraphQLView(state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        state.shutdown = asyncio.Event()
        if owns_store:
            await the_store.open()
        engine_task: asyncio.Task[None] | None = None
        cache_task: asyncio.Task[None] | None = None
        try:
            if owns_bus:
                await state.bus.start()  # after the store: the outbox lives in its file
            if load_demo_if_empty:
                await _maybe_load_demo(state)
            _start_monitor(state)
            cache_task = asyncio.create_task(state.recommendations.follow(state.bus))
            if settings.enrich_autostart:
                await _start_enrichment(state)
            if start_engine:
                engine_task = asyncio.create_task(_start_engine(state))
            counts = await the_store.counts()
            log.info(
                "serving",
                store=settings.neo4j_uri or str(settings.db_path),
                users=counts.users,
                tracks=counts.tracks,
                listens=counts.listens,
                graphql="/graphql",
                scrobble="/1/submit-listens",
                exports="/playlists/<id>.jspf|xspf|m3u8",
            )
            yield {}
        finally:
            state.shutdown.set()  # every subscription ends (the client gets "complete")
            if cache_task is not None:
                cache_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cache_task
            if engine_task is not None and not engine_task.done():
                engine_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await engine_task
            if state.pipeline is not None:
                await state.pipeline.stop()
            if state.engine is not None:
                await state.engine.stop()
            if state.monitor is not None:
                await state.monitor.stop()
            if owns_bus:
                await state.bus.close()
            if owns_store:
                await the_store.close()
            log.info("stopped")

    app = Starlette(
        routes=[
            Route("/", dashboard),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/playlists/{playlist_id}.{fmt}", export_playlist),
            *scrobble_routes,
            Mount("/static", CachedStaticFiles(), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.musicgraph = state
    app.state.api_metrics = ApiMetrics()
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.api_metrics,
        log_requests=settings.log_level.lower() == "debug",
    )
    return app


def app_from_env() -> Starlette:
    """The app uvicorn builds in each worker (``musicgraph serve``): settings from the environment."""
    from musicgraph.logging import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
