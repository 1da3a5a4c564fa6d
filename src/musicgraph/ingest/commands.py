"""``musicgraph import`` and ``musicgraph demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from musicgraph.errors import MusicgraphError
from musicgraph.graph.base import GraphStore
from musicgraph.ingest.common import ByteMeter, ImportSummary, ParsedRecord
from musicgraph.settings import Settings

Reader = Callable[[Path, str, ByteMeter], Iterator[ParsedRecord]]


def _readers() -> dict[str, Reader]:
    from musicgraph.ingest.lastfm_csv import read_lastfm_csv
    from musicgraph.ingest.listenbrainz import read_listenbrainz
    from musicgraph.ingest.scrobbler_log import read_scrobbler_log
    from musicgraph.ingest.spotify import read_spotify

    return {
        "listenbrainz": read_listenbrainz,
        "spotify": read_spotify,
        "lastfm-csv": read_lastfm_csv,
        "scrobbler-log": read_scrobbler_log,
    }


FORMATS = ("listenbrainz", "spotify", "lastfm-csv", "scrobbler-log", "hetrec")

_IMPORT_HELP = """\
Import listening history from a file into the graph.

formats:
  listenbrainz   a ListenBrainz export: JSON array or JSON Lines of listens, or the export zip
                 (or folder). Its feedback.jsonl (loves and hates) becomes likes and dislikes
                 of the tracks it names, after the listens; a feedback.jsonl alone works too.
  spotify        Spotify streaming history: Streaming_History_Audio_*.json / endsong_*.json
                 (extended) or StreamingHistory*.json (account data); a file, a folder or the
                 zip Spotify sends. Plays under 30 s (and those Spotify marks skipped) are kept
                 as skips; podcasts and audiobooks are left out.
  lastfm-csv     a Last.fm or Libre.fm CSV export, with a header (Artist, Track, Album, uts or
                 Date) or without one (artist,album,track,date as lastfm-to-csv writes it)
  scrobbler-log  a Rockbox .scrobbler.log (AUDIOSCROBBLER/1.1; L = listened, S = skipped)
  hetrec         the HetRec 2011 Last.fm-2K folder: users (hetrec-<id>), artist play counts,
                 artist tags and friendships; needs no --user. A server running on the same
                 graph builds its recommender's projection again once the import is done.

The file is read as a stream (any size, constant memory) and written in batches of one
transaction each. Importing the same file again adds nothing: a listen is identified by user,
track and time. Bad rows are skipped and counted by reason, with their file:line, in the
summary printed at the end; a file that is not the format at all stops the import at once.
"""


def register(subparsers: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``import`` and ``demo`` to the ``musicgraph`` command line."""
    p = subparsers.add_parser(
        "import",
        help="import listening history (ListenBrainz, Spotify, Last.fm CSV, .scrobbler.log, HetRec)",
        description=_IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(p)
    p.add_argument("format", choices=FORMATS, help="what kind of file PATH is (see above)")
    p.add_argument("path", type=Path, help="the file, folder or zip archive to import")
    p.add_argument(
        "--user",
        metavar="NAME",
        help="whose listens these are (created if missing); required except for hetrec",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="rows per transaction (default: 20,000 listens; 5,000 rows for hetrec)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.set_defaults(func=cmd_import)

    d = subparsers.add_parser(
        "demo",
        help="load a synthetic listening graph (no download needed)",
        description="Load a deterministic synthetic listening graph: users in taste "
        "communities, artists with genre and mood tags, tracks with Zipf popularity, listening "
        "sessions with timestamps and skips, friendships (mostly within a community), public "
        "and private playlists and a few ratings. The same --seed and --size give the same "
        "graph; loading it twice adds nothing.",
    )
    add_db(d)
    d.add_argument(
        "--size",
        default="default",
        metavar="SIZE",
        help="small (~30k listens), default (~300k listens, 3,000 users, 30,000 tracks), large "
        "(~3M listens), or a number of listens such as 1000000 (users and tracks scale with it)",
    )
    d.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    d.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the store already has users (what `make run` uses)",
    )
    d.add_argument("--json", action="store_true", help="print what was loaded as JSON")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)


def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def cmd_import(args: argparse.Namespace) -> int:
    from musicgraph.cli import run, with_store

    if args.batch_size is not None and args.batch_size <= 0:
        raise MusicgraphError(f"--batch-size must be above 0, got {args.batch_size}")
    if args.format == "hetrec" and args.user:
        raise MusicgraphError(
            "musicgraph import hetrec takes no --user: the data set names its own users "
            "(hetrec-<id>)"
        )
    if args.format != "hetrec" and not args.user:
        raise MusicgraphError(
            f"musicgraph import {args.format} needs --user NAME (whose listens these are)"
        )

    async def go(store: GraphStore, settings: Settings) -> int:
        from musicgraph.bus import create_bus
        from musicgraph.events import Event

        if args.format == "hetrec":
            from musicgraph.ingest.hetrec import BATCH_SIZE as HETREC_BATCH
            from musicgraph.ingest.hetrec import import_hetrec

            hetrec = await import_hetrec(
                store, args.path, batch_size=args.batch_size or HETREC_BATCH
            )
            # Its rows send no event each (artist-level counts, tags, friends): one event says
            # the graph changed in bulk, and a server on it builds its projection again.
            bus = create_bus(settings, workers=1)
            await bus.start()
            try:
                bus.publish(Event("graph.imported", payload={"source": "hetrec"}))
            finally:
                await bus.close()
            _emit(args, hetrec.as_dict(), hetrec.lines())
            return 0
        from musicgraph.ingest.pipeline import BATCH_SIZE, ParseJob, import_records

        reader = _readers()[args.format]
        feedback = None
        if args.format == "listenbrainz":
            from musicgraph.ingest.listenbrainz_feedback import read_export_feedback

            # All of it read (and checked) before anything is written.
            feedback = read_export_feedback(args.path)
        listens = feedback is None or not feedback.only
        if listens:
            # A file that is not the format fails on its first record: find out before
            # creating the user.
            probe = reader(args.path, "", ByteMeter())
            next(probe, None)
            probe.close()  # type: ignore[attr-defined]
        (user,) = await store.ensure_users([args.user])
        meter = ByteMeter()
        summary = ImportSummary(format=args.format, path=str(args.path))
        # The bus the settings choose (the outbox next to a SQLite file, or Redis): a server on
        # the same graph applies each batch's new listens to its recommendations as they land.
        bus = create_bus(settings, workers=1)
        await bus.start()
        try:
            if listens:
                summary = await import_records(
                    store,
                    ParseJob(reader, args.path, user.id),
                    summary,
                    batch_size=args.batch_size or BATCH_SIZE,
                    bus=bus,
                    meter=meter,
                    progress=_progress(args),
                )
            if feedback is not None:
                # After the listens, so that the tracks they name exist.
                from musicgraph.ingest.listenbrainz import listen_inputs
                from musicgraph.ingest.listenbrainz_feedback import apply_feedback

                await apply_feedback(
                    store,
                    user.id,
                    feedback.entries,
                    feedback.summary,
                    listen_files=listen_inputs(args.path) if listens else None,
                    bus=bus,
                )
        finally:
            await bus.close()
        data = {**summary.as_dict(), "user": user.name}
        lines = summary.lines() if listens else [f"{args.format} import of {args.path}:"]
        if feedback is not None:
            data["feedback"] = feedback.summary.as_dict()
            lines += feedback.summary.lines()
        _emit(args, data, lines)
        return 0

    return run(with_store(args, go))


def cmd_demo(args: argparse.Namespace) -> int:
    from musicgraph.cli import run, with_store
    from musicgraph.ingest.demo import DemoConfig, load_demo

    config = DemoConfig.for_size(args.size, seed=args.seed)

    async def go(store: GraphStore, settings: Settings) -> int:
        if args.if_empty and await store.count_users() > 0:
            where = settings.neo4j_uri or settings.db_path
            message = f"{where} already has users: left as it is (--if-empty)"
            _emit(args, {"loaded": False, "reason": "store not empty"}, [message])
            return 0
        result = await load_demo(store, config, progress=_progress(args))
        _emit(args, {"loaded": True, **result.as_dict()}, result.lines())
        return 0

    return run(with_store(args, go))


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print("\n".join(lines))
