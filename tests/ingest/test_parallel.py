"""Parsing in a second process: the same import as in this process, errors carried back, and
the packing of records into column batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicgraph.errors import ImportFormatError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ListenInput, TrackRef
from musicgraph.ingest.common import ByteMeter, ImportSummary, InvalidListenError
from musicgraph.ingest.lastfm_csv import read_lastfm_csv
from musicgraph.ingest.listenbrainz import read_listenbrainz
from musicgraph.ingest.parallel import ParseJob, _Packer, _Unpacker
from musicgraph.ingest.pipeline import import_records
from musicgraph.ingest.spotify import read_spotify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "real"
BAD = FIXTURES / "bad"


async def run_job(
    store: GraphStore, job: ParseJob, *, parallel: bool, batch_size: int = 7
) -> ImportSummary:
    meter = ByteMeter()
    summary = ImportSummary(format="test", path=str(job.path))
    await import_records(
        store, job, summary, batch_size=batch_size, meter=meter, progress=False, parallel=parallel
    )
    assert meter.read == meter.total > 0
    return summary


@pytest.mark.parametrize(
    ("reader", "path"),
    [
        (read_spotify, REAL / "Streaming_History_Audio_2023_excerpt.json"),
        (read_lastfm_csv, REAL / "lastfm_scrobbles_excerpt.csv"),
        (read_listenbrainz, BAD / "listenbrainz_bad.jsonl"),
    ],
)
async def test_child_process_imports_what_this_process_imports(
    store: GraphStore, reader: object, path: Path
) -> None:
    """A file parsed in a child process gives the summary and the graph of parsing it here,
    bad rows reported by line; importing it again (here) adds nothing."""
    (user,) = await store.ensure_users(["importer"])
    job = ParseJob(reader, path, user.id)  # type: ignore[arg-type]
    first = await run_job(store, job, parallel=True)
    assert first.imported > 0
    counts = await store.counts()
    assert (counts.listens + counts.skips, counts.skips) == (first.imported, first.skipped_listens)
    again = await run_job(store, job, parallel=False)
    assert (again.read, again.imported, again.duplicates) == (first.read, 0, first.imported)
    assert (again.skipped, again.examples) == (first.skipped, first.examples)
    assert await store.counts() == counts


async def test_child_reports_a_file_that_is_not_the_format(
    store: GraphStore, tmp_path: Path
) -> None:
    """A file that is not the format fails with the parser's ImportFormatError, not a crash."""
    (user,) = await store.ensure_users(["importer"])
    path = tmp_path / "notes.jsonl"
    path.write_text("hello, this is not JSON\n")
    with pytest.raises(ImportFormatError, match="expected a ListenBrainz export"):
        await run_job(store, ParseJob(read_listenbrainz, path, user.id), parallel=True)
    assert (await store.counts()).listens == 0


def test_packed_batches_unpack_to_the_records() -> None:
    """Column batches name every listen's ref, time, user and flags as the records did, also
    when the table of refs starts over (bounded memory) in the middle of a batch."""
    refs = [TrackRef("A", f"T{i}") for i in range(5)]
    records: list[ListenInput | InvalidListenError] = []
    for i in range(40):
        if i % 9 == 4:
            records.append(InvalidListenError("missing artist", where=f"f:{i}", field="artist"))
            continue
        records.append(
            ListenInput(
                f"u{i % 2}",
                refs[(i * 7) % 5] if i % 3 else TrackRef("A", f"T{(i * 7) % 5}"),
                1_600_000_000 + i,
                "s",
                ms_played=i * 1000 if i % 4 == 0 else None,
                skipped=i % 5 == 0,
            )
        )
    packer = _Packer(batch_size=6, max_refs=3)
    unpacker = _Unpacker()
    meter = ByteMeter()
    listens: list[ListenInput] = []
    errors: list[str] = []
    read = 0
    for message in packer.messages(records, meter):
        batch = unpacker.unpack(message)
        read += batch.read
        listens.extend(batch.listens.listen(i) for i in range(len(batch.listens)))
        errors.extend(str(e) for e in batch.rejected)
        assert len(set(batch.listens.refs)) == len(batch.listens.refs)
    assert read == len(records)
    assert listens == [r for r in records if isinstance(r, ListenInput)]
    assert errors == [str(r) for r in records if isinstance(r, InvalidListenError)]


async def test_reader_a_child_cannot_import_is_parsed_here(store: GraphStore) -> None:
    """A job whose reader is not importable by name (a closure) still imports, in this process."""
    (user,) = await store.ensure_users(["importer"])

    def reader(path: Path, user_id: str, meter: ByteMeter) -> object:
        return read_lastfm_csv(path, user_id, meter)

    job = ParseJob(reader, REAL / "lastfm_scrobbles_excerpt.csv", user.id)  # type: ignore[arg-type]
    summary = await run_job(store, job, parallel=True)
    assert summary.imported == 22
