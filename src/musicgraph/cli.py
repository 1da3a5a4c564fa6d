"""The ``musicgraph`` command line.

Each command is a function ``cmd_<name>(args) -> int`` registered in :func:`build_parser`. Commands
that touch the graph open the store the settings choose (``--db`` or ``MUSICGRAPH_DB`` for the
SQLite file, ``NEO4J_URI`` for Neo4j) and close it when done. Errors meant for users are printed
as one line on stderr with exit code 1 (2 for bad usage), never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from musicgraph.auth import hash_token, new_token
from musicgraph.errors import MusicgraphError
from musicgraph.graph import GraphStore, create_store
from musicgraph.logging import configure_logging
from musicgraph.settings import Settings

T = TypeVar("T")


def load_settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(db_path=getattr(args, "db", None))


async def with_store(
    args: argparse.Namespace, fn: Callable[[GraphStore, Settings], Awaitable[T]]
) -> T:
    settings = load_settings(args)
    store = create_store(settings)
    await store.open()
    try:
        return await fn(store, settings)
    finally:
        await store.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


# --- stats ----------------------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    async def go(store: GraphStore, settings: Settings) -> int:
        counts = asdict(await store.counts())
        if args.json:
            _print_json(counts)
            return 0
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"musicgraph: {settings.neo4j_uri or settings.db_path}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for key, value in counts.items():
            if key == "enrichment":
                for state, n in sorted(value.items()):
                    table.add_row(f"enrichment {state}", f"{n:,}")
            else:
                table.add_row(key.replace("_", " "), f"{value:,}")
        Console().print(table)
        return 0

    return run(with_store(args, go))


# --- users ----------------------------------------------------------------------------------------


def cmd_users_create(args: argparse.Namespace) -> int:
    async def go(store: GraphStore, _: Settings) -> int:
        token = new_token()
        user = await store.create_user(args.name, public=args.public, token_hash=hash_token(token))
        print(f"created user {user.name} (id {user.id})")
        print(f"token (shown once, keep it safe): {token}")
        return 0

    return run(with_store(args, go))


def cmd_users_list(args: argparse.Namespace) -> int:
    async def go(store: GraphStore, _: Settings) -> int:
        users = await store.list_users(offset=args.offset, limit=args.limit)
        if args.json:
            _print_json([asdict(u) for u in users])
            return 0
        for u in users:
            print(f"{u.id}\t{u.name}\t{'public' if u.public else 'private'}")
        return 0

    return run(with_store(args, go))


def cmd_users_token(args: argparse.Namespace) -> int:
    async def go(store: GraphStore, _: Settings) -> int:
        user = await store.get_user_by_name(args.name)
        if user is None:
            raise MusicgraphError(
                f"no user named {args.name!r} (create one with: musicgraph users create NAME)"
            )
        token = new_token()
        await store.set_user_token_hash(user.id, hash_token(token))
        print(f"new token for {user.name} (shown once; the old one no longer works): {token}")
        return 0

    return run(with_store(args, go))


# --- parser ---------------------------------------------------------------------------------------


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file of the embedded store (default: $MUSICGRAPH_DB or ./musicgraph.db; "
        "ignored when NEO4J_URI is set)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicgraph",
        description="A graph-based music recommender with a GraphQL API. The graph lives in an "
        "embedded SQLite file by default, or in Neo4j when NEO4J_URI is set.",
    )
    parser.add_argument("--log-level", default=None, help="debug, info, warning or error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("stats", help="counts per node and edge type")
    _add_db(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_stats)

    users = sub.add_parser("users", help="create and list users, issue tokens")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = users_sub.add_parser("create", help="create a user and print their token (shown once)")
    _add_db(p)
    p.add_argument("name")
    p.add_argument("--public", action="store_true", help="make the user's profile public")
    p.set_defaults(func=cmd_users_create)
    p = users_sub.add_parser("list", help="list users by name")
    _add_db(p)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_list)
    p = users_sub.add_parser(
        "token", help="issue a new token for a user (the old one stops working)"
    )
    _add_db(p)
    p.add_argument("name")
    p.set_defaults(func=cmd_users_token)

    for register in _REGISTRARS:
        register(sub, _add_db)
    return parser


Registrar = Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]
_REGISTRARS: list[Registrar] = []


def _load_registrars() -> None:
    """Commands of the other areas register themselves here (import, demo, recommend, serve, ...)."""
    import importlib

    _REGISTRARS.clear()
    for module in (
        "musicgraph.ingest.commands",
        "musicgraph.recommender.commands",
        "musicgraph.recommender.evaluate",
        "musicgraph.enrichment.commands",
        "musicgraph.schema.commands",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        _REGISTRARS.append(mod.register)


def main(argv: list[str] | None = None) -> int:
    _load_registrars()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(args.log_level or settings.log_level, settings.log_format)
        result: int = args.func(args)
        return result
    except MusicgraphError as exc:
        print(f"musicgraph: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("musicgraph: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
