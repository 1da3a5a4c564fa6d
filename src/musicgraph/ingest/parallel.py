"""Parsing an import in a second process, so it overlaps the store's writes.

A history import spends about as much CPU parsing and validating the file as the store spends
writing it, and Python threads share one interpreter lock: in one process the two take turns.
:func:`parsed_batches` runs the importer's parser (a :class:`ParseJob`) in a child process
(``python -m musicgraph.ingest.parallel``) that packs what it parses into column batches
(:class:`~musicgraph.graph.models.ListenColumns`) and sends them through a pipe; this process
only unpacks them and writes. Small files, one-core machines and plain iterables of records are
packed the same way in this process.

What crosses the pipe, per batch: the track refs the child has not sent before (each distinct
ref once per import: the parsers hand out one ``TrackRef`` object per distinct track), the
batch's refs as indexes into those, and one compact array per column. The child never holds
more than one batch and a bounded table of refs (past :data:`MAX_REFS` both sides start the
table over); the pipe's buffer bounds what is in flight, so memory stays flat with file size.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pickle
import sys
import traceback
from array import array
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

from musicgraph.errors import ImportFormatError, MusicgraphError
from musicgraph.graph.models import ListenColumns, TrackRef
from musicgraph.ingest.common import ByteMeter, InvalidListenError, ParsedRecord

#: Distinct track refs remembered per import before both sides start over (memory stays flat).
MAX_REFS = 200_000
#: Inputs smaller than this are parsed in this process (a child costs ~0.2 s to start).
PARALLEL_MIN_BYTES = 8 << 20
_HEADER = 8

Reader = Callable[..., Iterator[ParsedRecord]]


@dataclass(frozen=True, slots=True)
class ParseJob:
    """An importer's parser as another process can run it:
    ``reader(path, user_id, meter, **options)``; ``reader`` is a module-level function."""

    reader: Reader
    path: Path
    user_id: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def records(self, meter: ByteMeter) -> Iterator[ParsedRecord]:
        return self.reader(self.path, self.user_id, meter, **self.options)

    def size(self) -> int:
        """Bytes of input (0 when it cannot be told)."""
        try:
            if self.path.is_dir():
                return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
            return self.path.stat().st_size
        except OSError:
            return 0


@dataclass(slots=True)
class ParsedBatch:
    """What the parser produced since the last batch: ``listens`` (possibly empty), the records
    it rejected, how many records it read and how many bytes of input so far."""

    listens: ListenColumns
    rejected: list[InvalidListenError]
    read: int
    bytes_read: int


# --- packing (in the child, or in this process) ---------------------------------------------------


class _Packer:
    """Packs parsed records into column batches that name refs by a per-import index."""

    def __init__(self, batch_size: int, max_refs: int = MAX_REFS) -> None:
        self.batch_size = batch_size
        self.max_refs = max_refs
        self.by_object: dict[int, tuple[TrackRef, int]] = {}
        self.by_value: dict[TrackRef, int] = {}
        self.new_refs: list[TrackRef] = []
        self.reset = False
        self._start()

    def _start(self) -> None:
        self.slot_of: dict[int, int] = {}  # ref index -> position in this batch's refs
        self.batch_refs = array("q")
        self.batch_ref_objects: list[TrackRef] = []
        self.tracks = array("q")
        self.ats = array("q")
        self.users: list[str] = []
        self.sources: list[str] = []
        self.ms_played: list[int | None] = []
        self.skipped: list[bool] = []
        self.rejected: list[tuple[str, str | None, str | None, str | None]] = []
        self.read = 0

    def _ref_index(self, ref: TrackRef) -> int:
        hit = self.by_object.get(id(ref))
        if hit is not None and hit[0] is ref:
            return hit[1]
        index = self.by_value.get(ref)
        if index is None:
            if len(self.by_value) >= self.max_refs:
                self._restart_refs()
            index = len(self.by_value)
            self.by_value[ref] = index
            self.new_refs.append(ref)
        if len(self.by_object) >= 2 * self.max_refs:  # a parser that makes a ref per listen
            self.by_object.clear()
        self.by_object[id(ref)] = (ref, index)  # keeps ref alive: its id is not reused
        return index

    def _restart_refs(self) -> None:
        """Forget every ref but this batch's, which are sent again (the other side starts its
        table over too)."""
        self.by_object.clear()
        self.by_value.clear()
        self.new_refs = list(self.batch_ref_objects)
        self.reset = True
        self.slot_of = {}
        self.batch_refs = array("q")
        for i, ref in enumerate(self.batch_ref_objects):
            self.by_value[ref] = i
            self.by_object[id(ref)] = (ref, i)
            self.slot_of[i] = i
            self.batch_refs.append(i)

    def add(self, record: ParsedRecord) -> bool:
        """Add one record; ``True`` when a batch is full (take it with :meth:`take`)."""
        self.read += 1
        if isinstance(record, InvalidListenError):
            self.rejected.append((record.reason, record.where, record.field, record.value))
            return len(self.rejected) >= self.batch_size
        ref = record.track
        index = self._ref_index(ref)
        slot = self.slot_of.get(index)
        if slot is None:
            slot = self.slot_of[index] = len(self.batch_refs)
            self.batch_refs.append(index)
            self.batch_ref_objects.append(ref)
        self.tracks.append(slot)
        self.ats.append(record.listened_at)
        self.users.append(record.user_id)
        self.sources.append(record.source)
        self.ms_played.append(record.ms_played)
        self.skipped.append(record.skipped)
        return len(self.tracks) >= self.batch_size

    def take(self, bytes_read: int) -> tuple[Any, ...]:
        """The batch so far as a message (plain values that pickle fast), and start the next."""
        users: str | list[str] = self.users
        if self.users and self.users.count(self.users[0]) == len(self.users):
            users = self.users[0]
        sources: str | list[str] = self.sources
        if self.sources and self.sources.count(self.sources[0]) == len(self.sources):
            sources = self.sources[0]
        ms_played = self.ms_played if self.ms_played.count(None) != len(self.ms_played) else None
        skipped = self.skipped if any(self.skipped) else None
        message = (
            self.reset,
            [astuple(ref) for ref in self.new_refs],  # tuples unpickle faster than dataclasses
            self.batch_refs,
            self.tracks,
            self.ats,
            users,
            sources,
            ms_played,
            skipped,
            self.rejected,
            self.read,
            bytes_read,
        )
        self.new_refs = []
        self.reset = False
        self._start()
        return message

    def pending(self) -> bool:
        return bool(self.read)

    def messages(
        self, records: Iterable[ParsedRecord], meter: ByteMeter
    ) -> Iterator[tuple[Any, ...]]:
        for record in records:
            if self.add(record):
                yield self.take(meter.read)
        if self.pending():
            yield self.take(meter.read)


class _Unpacker:
    """Turns the packer's messages back into :class:`ParsedBatch` es."""

    def __init__(self) -> None:
        self.refs: list[TrackRef] = []

    def unpack(self, message: tuple[Any, ...]) -> ParsedBatch:
        (
            reset,
            new_refs,
            batch_refs,
            tracks,
            ats,
            users,
            sources,
            ms_played,
            skipped,
            rejected,
            read,
            bytes_read,
        ) = message
        if reset:
            self.refs = []
        self.refs.extend(TrackRef(*fields) for fields in new_refs)
        refs = self.refs
        n = len(tracks)
        columns = ListenColumns(
            refs=[refs[i] for i in batch_refs],
            tracks=tracks.tolist(),
            listened_at=ats.tolist(),
            user_ids=[users] * n if isinstance(users, str) else users,
            sources=[sources] * n if isinstance(sources, str) else sources,
            ms_played=[None] * n if ms_played is None else ms_played,
            skipped=[False] * n if skipped is None else skipped,
        )
        errors = [
            InvalidListenError(reason, where=where, field=fld, value=value)
            for reason, where, fld, value in rejected
        ]
        return ParsedBatch(columns, errors, read, bytes_read)


# --- the two ways to run a parser -------------------------------------------------------------------


async def parsed_batches(
    source: Iterable[ParsedRecord] | ParseJob,
    *,
    batch_size: int,
    meter: ByteMeter | None = None,
    parallel: bool | None = None,
) -> AsyncGenerator[ParsedBatch, None]:
    """The batches of ``source``: a :class:`ParseJob` runs in a child process when ``parallel``
    (default: with two or more cores and an input of at least :data:`PARALLEL_MIN_BYTES`);
    records given as an iterable are packed here. ``meter`` follows the bytes read."""
    meter = meter if meter is not None else ByteMeter()
    if isinstance(source, ParseJob):
        if parallel is None:
            parallel = (os.cpu_count() or 1) > 1 and source.size() >= PARALLEL_MIN_BYTES
        if parallel and _importable(source.reader):
            async for batch in _from_child(source, batch_size, meter):
                yield batch
            return
        records: Iterable[ParsedRecord] = source.records(meter)
    else:
        records = source
    unpacker = _Unpacker()
    for message in _Packer(batch_size).messages(records, meter):
        yield unpacker.unpack(message)


def _importable(reader: Reader) -> bool:
    """Whether a child process can import ``reader`` by its name (a closure or a lambda it
    cannot: those are parsed in this process)."""
    try:
        found = getattr(importlib.import_module(reader.__module__), reader.__qualname__, None)
    except ImportError:
        return False
    return found is reader


async def _from_child(
    job: ParseJob, batch_size: int, meter: ByteMeter
) -> AsyncGenerator[ParsedBatch, None]:
    reader = job.reader
    spec = (
        reader.__module__,
        reader.__qualname__,
        str(job.path),
        job.user_id,
        dict(job.options),
        batch_size,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(pickle.dumps(spec))
        await process.stdin.drain()
        process.stdin.close()
        unpacker = _Unpacker()
        stdout = process.stdout
        while True:
            try:
                header = await stdout.readexactly(_HEADER)
            except asyncio.IncompleteReadError:
                code = await process.wait()
                raise MusicgraphError(
                    f"the parser of {job.path} stopped without a word (exit code {code})"
                ) from None
            message = pickle.loads(await stdout.readexactly(int.from_bytes(header, "little")))
            kind = message[0]
            if kind == "batch":
                batch = unpacker.unpack(message[1])
                meter.total = message[2]
                meter.read = batch.bytes_read
                yield batch
            elif kind == "done":
                await process.wait()
                return
            else:  # ("error", class name, message)
                _, name, text = message
                if name == "ImportFormatError":
                    raise ImportFormatError(text)
                raise MusicgraphError(f"parsing {job.path} failed: {name}: {text}")
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _child() -> None:
    """The child: read the job from stdin, write length-prefixed pickled messages to stdout."""
    out = sys.stdout.buffer

    def send(message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(len(data).to_bytes(_HEADER, "little"))
        out.write(data)
        out.flush()

    module, name, path, user_id, options, batch_size = pickle.loads(sys.stdin.buffer.read())
    try:
        reader: Reader = getattr(importlib.import_module(module), name)
        meter = ByteMeter()
        records = reader(Path(path), user_id, meter, **options)
        for message in _Packer(batch_size).messages(records, meter):
            send(("batch", message, meter.total))
        send(("done",))
    except BrokenPipeError:  # the parent stopped reading (it failed or was cancelled)
        return
    except Exception as exc:  # the parent raises it; the traceback goes to stderr
        if not isinstance(exc, MusicgraphError):
            traceback.print_exc()
        with contextlib.suppress(BrokenPipeError):
            send(("error", type(exc).__name__, str(exc)))


if __name__ == "__main__":
    _child()
