"""``musicgraph serve`` and ``musicgraph export``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musicgraph.errors import MusicgraphError
from musicgraph.settings import Settings


def register(subparsers: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the GraphQL API, the scrobble endpoint and playlist exports",
        description="Serve /graphql (GraphiQL in a browser, WebSocket subscriptions), /healthz, "
        "/readyz, /metrics, the ListenBrainz-compatible /1/submit-listens and playlist exports. "
        "With no configuration at all and an empty database, the demo graph is loaded first.",
    )
    add_db(p)
    p.add_argument("--host", default=None, help="address to bind (default: $MUSICGRAPH_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default: $MUSICGRAPH_PORT)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: $MUSICGRAPH_WORKERS or 1), supervised by this one "
        "(replaced when they die; on Linux each listens on its own SO_REUSEPORT socket, so "
        "connections spread evenly); each holds its own projection and hears the others' "
        "events through Redis (MUSICGRAPH_REDIS_URL) or, on the SQLite store without Redis, "
        "through an outbox in a SQLite file beside the database",
    )
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("export", help="write a playlist as JSPF, XSPF or M3U8")
    add_db(p)
    p.add_argument("playlist_id")
    p.add_argument("--format", choices=("jspf", "xspf", "m3u8"), default="jspf")
    p.add_argument("--output", "-o", type=Path, default=None, help="file (default: stdout)")
    p.set_defaults(func=cmd_export)


def _no_configuration(args: argparse.Namespace, settings: Settings) -> bool:
    """True when nothing chose a store: no --db, no MUSICGRAPH_DB, no NEO4J_URI."""
    return args.db is None and settings.db_path == Path("musicgraph.db") and not settings.uses_neo4j


async def _load_demo_if_empty(settings: Settings) -> None:
    from musicgraph.graph import create_store
    from musicgraph.ingest.demo import load_demo

    store = create_store(settings)
    await store.open()
    try:
        counts = await store.counts()
        if counts.users or counts.tracks or counts.artists:
            return
        print("musicgraph: empty database, loading the demo graph first", file=sys.stderr)
        result = await load_demo(store, progress=sys.stderr.isatty())
        print("\n".join(result.lines()), file=sys.stderr)
    finally:
        await store.close()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from musicgraph.bus import choose_backend

    settings = Settings.from_env(
        db_path=args.db, host=args.host, port=args.port, workers=args.workers
    )
    if settings.workers < 1:
        raise MusicgraphError(f"--workers must be at least 1, got {settings.workers}")
    backend = choose_backend(settings)  # refuses what cannot carry events between workers
    if settings.workers > 1:
        print(
            f"musicgraph: {settings.workers} workers, events between them via {backend}",
            file=sys.stderr,
        )
    from musicgraph.serving import Supervisor, check_port

    # before the demo loads or anything starts: a clear error naming the port when it is taken
    port = check_port(settings.host, settings.port)
    if _no_configuration(args, settings):
        asyncio.run(_load_demo_if_empty(settings))
    # Workers (and the single-process server alike) read their settings from the environment.
    if args.db is not None:
        os.environ["MUSICGRAPH_DB"] = str(args.db)
    os.environ["MUSICGRAPH_WORKERS"] = str(settings.workers)  # each worker picks the same bus
    options: dict[str, Any] = dict(
        factory=True,
        host=settings.host,
        port=port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        ws="websockets-sansio",
        # the supervisor kills a worker that does not answer its ping within this time; the
        # recommender's background Hybrid fit can hold the GIL for seconds (scipy's inverse on
        # the demo graph: ~9 s), and a killed worker reloads and refits from scratch.
        timeout_worker_healthcheck=60,
    )
    if settings.workers == 1:
        uvicorn.run("musicgraph.app:app_from_env", **options)
    else:
        # each worker listens on its own SO_REUSEPORT socket: the kernel spreads connections
        # evenly (see musicgraph.serving)
        Supervisor(uvicorn.Config("musicgraph.app:app_from_env", **options)).run()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from musicgraph.cli import run, with_store
    from musicgraph.graph import GraphStore
    from musicgraph.ingest.exporters import FORMATS, load_playlist_export

    async def go(store: GraphStore, _: Settings) -> int:
        export = await load_playlist_export(store, args.playlist_id)
        if export is None:
            raise MusicgraphError(f"no playlist with id {args.playlist_id!r}")
        exporter, _media = FORMATS[args.format]
        text = exporter(export)
        if args.output is None:
            sys.stdout.write(text)
        else:
            args.output.write_text(text, encoding="utf-8")
            print(f"wrote {len(export.tracks)} tracks to {args.output}", file=sys.stderr)
        return 0

    return run(with_store(args, go))
