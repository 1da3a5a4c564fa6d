"""``musicgraph recommend`` and ``musicgraph similar``: the engine from the command line.

Both load the projection from the store (as the server does at start), answer one request and
print it: a table by default, one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from musicgraph.errors import RecommenderError
from musicgraph.graph.base import GraphStore
from musicgraph.settings import Settings

_RECOMMEND_HELP = """\
Recommend tracks or artists for a user (by id or name) from the listening graph.

Small graphs are scored exactly (personalised PageRank by power iteration), large ones with the
sampled Pixie walk; the output says which. A user without listens gets the most popular items;
--seed turns the request into seed radio (track or artist ids, or tag:<name>).
"""


async def _resolve_user(store: GraphStore, user: str) -> str:
    """A user id for an id or a name."""
    found = (await store.get_users([user]))[0]
    if found is not None:
        return found.id
    by_name = await store.get_user_by_name(user)
    if by_name is None:
        raise RecommenderError(
            f"no user {user!r} (neither an id nor a name; list them with: musicgraph users list)"
        )
    return by_name.id


def _print_result(
    result: Any, names: dict[str, str], *, explain: bool, as_json: bool, title: str
) -> None:
    if as_json:
        doc = asdict(result)
        # items and their reasons are named tuples: objects, not arrays
        doc["items"] = [
            {**item._asdict(), "reasons": [r._asdict() for r in item.reasons]}
            for item in result.items
        ]
        print(json.dumps(doc, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} ({result.method}, {result.elapsed_ms:.1f} ms)")
    table.add_column("#", justify="right")
    table.add_column(result.items[0].kind if result.items else "item")
    table.add_column("score", justify="right")
    if explain:
        table.add_column("why")
    for rank, rec in enumerate(result.items, 1):
        row = [str(rank), names.get(rec.item_id, rec.item_id), f"{rec.score:.4g}"]
        if explain:
            row.append("\n".join(f"{r.share:.0%} {r.evidence}" for r in rec.reasons) or "-")
        table.add_row(*row)
    Console().print(table)
    if not result.items:
        print("no recommendations (the graph may be empty, or the filters removed everything)")


def cmd_recommend(args: argparse.Namespace) -> int:
    from musicgraph.cli import run, with_store
    from musicgraph.recommender.engine import Controls, RecommendationEngine

    async def go(store: GraphStore, settings: Settings) -> int:
        user_id = await _resolve_user(store, args.user)
        engine = await RecommendationEngine.load(
            store, hybrid_rerank=settings.hybrid_rerank, hybrid_rerank_path=settings.rerank_path
        )
        if engine.projection.users.get(user_id) is None:
            engine.add_user(user_id)
        if args.kind == "artist" and engine.hybrid_eligible():
            # Serve what the server serves (and the evaluation measures): the fitted Hybrid.
            # one user's answer: no need to compute every user's vectors first
            await asyncio.to_thread(engine.fit_hybrid, warm=False)
        controls = Controls(
            limit=args.limit,
            seeds=tuple(args.seed or ()),
            explain=args.explain,
            max_per_artist=args.max_per_artist,
            novelty=args.novelty,
        )
        result = engine.recommend(user_id, kind=args.kind, controls=controls)
        p = engine.projection
        names = {
            rec.item_id: p.item_name(args.kind, p.items(args.kind).index[rec.item_id])
            for rec in result.items
        }
        _print_result(
            result,
            names,
            explain=args.explain,
            as_json=args.json,
            title=f"{args.kind}s for {args.user}",
        )
        return 0

    result: int = run(with_store(args, go))
    return result


def cmd_similar(args: argparse.Namespace) -> int:
    from musicgraph.cli import run, with_store
    from musicgraph.recommender.engine import RecommendationEngine

    async def go(store: GraphStore, _: Settings) -> int:
        engine = await RecommendationEngine.load(store)
        result = engine.similar(args.item, kind=args.kind, limit=args.limit)
        p = engine.projection
        names = {
            rec.item_id: p.item_name(args.kind, p.items(args.kind).index[rec.item_id])
            for rec in result.items
        }
        i = p.items(args.kind).index[args.item]
        _print_result(
            result,
            names,
            explain=True,
            as_json=args.json,
            title=f"{args.kind}s like {p.item_name(args.kind, i)}",
        )
        return 0

    result: int = run(with_store(args, go))
    return result


def register(subparsers: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``recommend`` and ``similar`` to the ``musicgraph`` command line."""
    p = subparsers.add_parser(
        "recommend",
        help="recommend tracks or artists for a user",
        description=_RECOMMEND_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(p)
    p.add_argument("user", help="user id or name")
    p.add_argument("--kind", choices=["track", "artist"], default="track")
    p.add_argument("--limit", type=int, default=20, help="how many items (default 20)")
    p.add_argument("--explain", action="store_true", help="show why each item was chosen")
    p.add_argument(
        "--seed", action="append", help="seed radio from a track/artist id or tag:<name> (repeat)"
    )
    p.add_argument("--max-per-artist", type=int, default=None, help="at most N tracks per artist")
    p.add_argument("--novelty", type=float, default=0.0, help="popularity penalty, 0..1")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_recommend)

    p = subparsers.add_parser(
        "similar", help="tracks or artists similar to one item (a walk from that item)"
    )
    add_db(p)
    p.add_argument("item", help="track or artist id")
    p.add_argument("--kind", choices=["track", "artist"], default="track")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_similar)
