"""Import throughput and peak memory of the ListenBrainz importer (prints numbers; never fails
on time).

    .venv/bin/python bench/bench_import.py                 # 1M listens into SQLite + memory
    .venv/bin/python bench/bench_import.py --neo4j         # also into the test launcher's Neo4j
    NEO4J_URI=bolt://... .venv/bin/python bench/bench_import.py   # also into that Neo4j

A synthetic ListenBrainz JSON Lines export (1,000 users, 50,000 tracks of 5,000 artists with Zipf
popularity, half of the tracks with a MusicBrainz recording id) is
written to a temporary folder and imported through the same code as ``musicgraph import
listenbrainz``: streaming parse and validation (in a second process on a multi-core machine),
batches of 20,000 in one transaction each. The Neo4j run follows a warm-up import (cleared
again) so the server has compiled its write path, as a running server has.

Memory: each size is imported in a fresh process that reports its peak resident set
(``ru_maxrss``; the parser's process separately) and the peak of Python allocations
(``tracemalloc``, this process); flat numbers as the file grows mean the importer streams.
The machine may be shared: the throughput lines also give the CPU spent per listen, which does
not depend on what else runs, by process: this one (the event loop and the store's writer
thread), the parser's and, for the local launcher, the Neo4j server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support.neo4j_server

from musicgraph.bus.outbox import OutboxEventBus, outbox_path  # noqa: E402
from musicgraph.events import EventBus  # noqa: E402
from musicgraph.graph.base import GraphStore  # noqa: E402
from musicgraph.ingest.common import ByteMeter, ImportSummary  # noqa: E402
from musicgraph.ingest.listenbrainz import read_listenbrainz  # noqa: E402
from musicgraph.ingest.pipeline import ParseJob, import_records  # noqa: E402

USERS = 1_000
ARTISTS = 5_000
TRACKS = 50_000
START = 1_600_000_000


def write_export(path: Path, listens: int, *, seed: int = 1) -> None:
    """A ListenBrainz JSON Lines export of ``listens`` listens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ranks = rng.permutation(TRACKS) + 1
    pop = ranks.astype(float) ** -0.9
    pop /= pop.sum()
    mbids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, size=TRACKS)]
    artist_mbids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, size=ARTISTS)]
    dumps = json.dumps
    with path.open("w", encoding="utf-8") as f:
        chunk = 100_000
        for start in range(0, listens, chunk):
            n = min(chunk, listens - start)
            users = rng.integers(USERS, size=n)
            tracks = rng.choice(TRACKS, size=n, p=pop)
            lines = []
            for i in range(n):
                t = int(tracks[i])
                a = t % ARTISTS
                info: dict[str, Any] = {
                    "duration_ms": 30_000 + (t * 7919) % 300_000,
                    "submission_client": "bench",
                }
                meta: dict[str, Any] = {
                    "artist_name": f"Artist {a}",
                    "track_name": f"Track {t} of {a}",
                    "release_name": f"Album {a % 997}",
                    "additional_info": info,
                }
                if t % 2 == 0:
                    meta["mbid_mapping"] = {
                        "recording_mbid": mbids[t],
                        "artist_mbids": [artist_mbids[a]],
                    }
                lines.append(
                    dumps(
                        {
                            "listened_at": START + (start + i) * 3,
                            "user_name": f"user{int(users[i])}",
                            "track_metadata": meta,
                        }
                    )
                )
            f.write("\n".join(lines))
            f.write("\n")


async def import_file(store: GraphStore, path: Path, bus: EventBus) -> ImportSummary:
    (user,) = await store.ensure_users(["bench"])
    meter = ByteMeter()
    summary = ImportSummary(format="listenbrainz", path=str(path))
    # All threads of this process (the store's writer thread too) and of the parser's child.
    cpu = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # What `musicgraph import listenbrainz` runs: the parser as a job (in a second process on
    # a multi-core machine), batches of the CLI's default size, each batch's new listens
    # announced on the bus the CLI uses (the outbox beside a SQLite file; on Neo4j without
    # Redis, this process's own bus).
    await bus.start()
    try:
        await import_records(
            store,
            ParseJob(read_listenbrainz, path, user.id),
            summary,
            bus=bus,
            meter=meter,
            progress=False,
        )
    finally:
        await bus.close()
    summary.extra["cpu_ms"] = round((time.process_time() - cpu) * 1000)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary.extra["parser_cpu_ms"] = round(
        (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) * 1000
    )
    return summary


async def sqlite_run(path: Path, db: Path) -> ImportSummary:
    from musicgraph.graph.sqlite_store import SqliteGraphStore

    store = SqliteGraphStore(db)
    await store.open()
    try:
        return await import_file(store, path, OutboxEventBus(outbox_path(db)))
    finally:
        await store.close()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def neo4j_run(path: Path, server: Any, server_pid: int | None = None) -> ImportSummary:
    """Import into an emptied database; with ``server_pid`` (the local launcher), also the
    server's CPU for the import alone."""
    from tests.support.neo4j_server import open_clean_store

    async for store in open_clean_store(server):
        before = process_cpu(server_pid) if server_pid else 0.0
        summary = await import_file(store, path, EventBus())  # type: ignore[arg-type]
        if server_pid:
            summary.extra["server_cpu_ms"] = round((process_cpu(server_pid) - before) * 1000)
        return summary
    raise RuntimeError("no Neo4j store")


def parse_only(path: Path) -> tuple[float, float]:
    """Listens per wall second and per CPU second."""
    started, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in read_listenbrainz(path, "u"))
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


def peak_rss_mb() -> float:
    """This process's peak resident set since it started this program. Linux's ``ru_maxrss``
    also counts what the process held before ``exec`` (a fork of this benchmark's parent, which
    holds the 1M-listen generator's arrays), so ``VmHWM`` is read where there is one."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_memory(path: Path, db: Path, traced: bool) -> None:
    """Run in a fresh process: import ``path`` and print peak memory as JSON."""
    if traced:
        tracemalloc.start()
        # The parser alone first: what the importer itself holds, without the store.
        n = sum(1 for _ in read_listenbrainz(path, "u"))
        parser_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
    else:
        n, parser_peak = 0, None
    summary = asyncio.run(sqlite_run(path, db))
    peak_traced = tracemalloc.get_traced_memory()[1] if traced else None
    print(
        json.dumps(
            {
                "imported": summary.imported,
                "seconds": summary.seconds,
                "maxrss_mb": peak_rss_mb(),
                # The parser's process (the largest child waited for).
                "parser_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "tracemalloc_peak_mb": peak_traced / 2**20 if peak_traced is not None else None,
                "parser_peak_mb": parser_peak / 2**20 if parser_peak is not None else None,
                "parsed": n,
            }
        )
    )


def head(src: Path, dst: Path, lines: int) -> None:
    with src.open("rb") as f, dst.open("wb") as out:
        for i, line in enumerate(f):
            if i >= lines:
                break
            out.write(line)


def report(label: str, s: ImportSummary) -> None:
    rate = s.read / s.seconds if s.seconds else 0.0
    cpu_s = s.extra.get("cpu_ms", 0) / 1000
    parser_s = s.extra.get("parser_cpu_ms", 0) / 1000
    per_cpu = ""
    if cpu_s and s.read:
        per_cpu = (
            f"; CPU per listen: {cpu_s / s.read * 1e6:.1f} us in this process"
            f" + {parser_s / s.read * 1e6:.1f} us in the parser process"
        )
        if "server_cpu_ms" in s.extra:
            per_cpu += f" + {s.extra['server_cpu_ms'] / s.read * 1e3:.1f} us in the Neo4j server"
    print(
        f"{label}: {s.read:,} listens read, {s.imported:,} imported, {s.duplicates:,} duplicates, "
        f"{s.new_tracks:,} new tracks in {s.seconds:.1f} s = {rate:,.0f} listens/s "
        f"({s.bytes_read / 2**20 / s.seconds:.1f} MB/s{per_cpu})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listens", type=int, default=1_000_000)
    parser.add_argument(
        "--memory-sizes",
        default="100000,300000,1000000",
        help="listens per file for the memory runs (comma-separated; empty to skip)",
    )
    parser.add_argument("--neo4j", action="store_true", help="start the test launcher's Neo4j")
    parser.add_argument("--neo4j-listens", type=int, default=None, help="default: --listens")
    parser.add_argument(
        "--neo4j-warmup",
        type=int,
        default=300_000,
        help="listens imported (then cleared) before the measured Neo4j run, so the server's "
        "JIT has compiled the write path as on a running server (0: none)",
    )
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument(
        "--memory-only", action="store_true", help="skip the throughput runs (SQLite and Neo4j)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite throughput runs")
    parser.add_argument(
        "--child", nargs=3, metavar=("FILE", "DB", "TRACED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child_memory(Path(args.child[0]), Path(args.child[1]), args.child[2] == "1")
        return

    tmp = Path(tempfile.mkdtemp(prefix="musicgraph-bench-"))
    try:
        export = tmp / "listens.jsonl"
        started = time.perf_counter()
        write_export(export, args.listens)
        size_mb = export.stat().st_size / 2**20
        print(
            f"wrote {args.listens:,} synthetic ListenBrainz listens ({size_mb:.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s to {export}"
        )
        if not args.memory_only:
            wall, cpu = parse_only(export)
            print(f"parse + validate only: {wall:,.0f} listens/s ({cpu:,.0f} per CPU second)")
        if not args.memory_only and not args.no_sqlite:
            report("SQLite", asyncio.run(sqlite_run(export, tmp / "bench.db")))
            again = asyncio.run(sqlite_run(export, tmp / "bench.db"))
            report("SQLite, same file again (all duplicates)", again)

        server = None
        local = None
        if os.environ.get("NEO4J_URI"):
            from tests.support.neo4j_server import server_from_env

            server = server_from_env()
        elif args.neo4j and not args.memory_only:
            from tests.support import neo4j_server as ns

            java, mvn = shutil.which("java"), shutil.which("mvn")
            if java is None or mvn is None:
                print("Neo4j: skipped (java or mvn not on PATH)")
            else:
                if ns.launcher_is_stale():
                    ns.build_launcher(mvn)
                local = ns.start_local_server(java)
                server = local.server
        if server is not None and not args.memory_only:
            pid = local.process.pid if local is not None else None
            try:
                if args.neo4j_warmup:
                    warm = tmp / "neo4j-warmup.jsonl"
                    head(export, warm, args.neo4j_warmup)
                    report(
                        "Neo4j warm-up (not the result)",
                        asyncio.run(neo4j_run(warm, server, pid)),
                    )
                n = args.neo4j_listens or args.listens
                path = export
                if n != args.listens:
                    path = tmp / f"neo4j-{n}.jsonl"
                    head(export, path, n)
                report(f"Neo4j ({server.uri})", asyncio.run(neo4j_run(path, server, pid)))
            finally:
                if local is not None:
                    local.stop()
        else:
            print("Neo4j: not run (set NEO4J_URI or pass --neo4j)")

        sizes = [int(x) for x in args.memory_sizes.split(",") if x.strip()]
        if sizes:
            print("peak memory per file size (fresh process each; SQLite):")
            print(
                f"  {'listens':>10}  {'file MB':>8}  {'max RSS MB':>10}  {'parser RSS MB':>13}  "
                f"{'Python peak MB (import)':>24}  {'Python peak MB (parser only)':>29}"
            )
        for n in sizes:
            path = tmp / f"mem-{n}.jsonl"
            head(export, path, n)
            row = {}
            for traced in (False, True) if not args.no_tracemalloc else (False,):
                db = tmp / f"mem-{n}-{int(traced)}.db"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), str(db), str(int(traced))],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row[traced] = json.loads(out.stdout.strip().splitlines()[-1])
            traced_mb = row.get(True, {}).get("tracemalloc_peak_mb")
            parser_mb = row.get(True, {}).get("parser_peak_mb")
            print(
                f"  {n:>10,}  {path.stat().st_size / 2**20:>8.0f}  "
                f"{row[False]['maxrss_mb']:>10.0f}  {row[False]['parser_maxrss_mb']:>13.0f}  "
                f"{(f'{traced_mb:.1f}' if traced_mb is not None else '-'):>24}  "
                f"{(f'{parser_mb:.1f}' if parser_mb is not None else '-'):>29}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
