"""The HetRec 2011 Last.fm-2K data set (GroupLens): users, artists, play counts, tags, friends.

A directory of tab-separated files, each with a header row:

- ``artists.dat``: id, name, url, pictureURL (UTF-8);
- ``user_artists.dat``: userID, artistID, weight (the user's total plays of the artist);
- ``tags.dat``: tagID, tagValue (Latin-1, not UTF-8);
- ``user_taggedartists.dat``: userID, artistID, tagID, day, month, year;
- ``user_friends.dat``: userID, friendID (both directions are listed).

Users become ``hetrec-<id>``; play counts become LISTENED_ARTIST edges; an artist's TAGGED count
for a tag is the number of users who applied it; friendships are stored as listed. Artists whose
names are the same under the identity rules (``"Rihanna"`` and ``"Rihanna feat. Jay-Z"``) are one
artist in the graph: their play counts and taggers are added up. Re-importing replaces the counts,
so a second import changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicgraph.errors import ImportFormatError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.identity import normalise
from musicgraph.graph.models import ArtistListen, ArtistRef, Friendship, Tagging
from musicgraph.ingest.common import SkipTally

BATCH_SIZE = 5_000
FILES = (
    "artists.dat",
    "user_artists.dat",
    "tags.dat",
    "user_taggedartists.dat",
    "user_friends.dat",
)


def hetrec_user_name(user_id: str | int) -> str:
    return f"hetrec-{user_id}"


@dataclass
class HetrecSummary(SkipTally):
    """Rows read per file, what was written, and rows skipped with their reasons."""

    path: str
    rows: dict[str, int] = field(default_factory=dict)
    users: int = 0
    artists: int = 0
    artist_listens: int = 0
    taggings: int = 0
    friendships: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": "hetrec",
            "path": self.path,
            "rows": dict(self.rows),
            "users": self.users,
            "artists": self.artists,
            "artist_listens": self.artist_listens,
            "taggings": self.taggings,
            "friendships": self.friendships,
            "skipped": dict(self.skipped),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        out = [f"hetrec import of {self.path} in {self.seconds:.1f}s"]
        for name, n in self.rows.items():
            out.append(f"  {name}: {n:,} rows read")
        out += [
            f"  users: {self.users:,}",
            f"  artists: {self.artists:,} (distinct under the identity rules)",
            f"  artist listen edges: {self.artist_listens:,}",
            f"  artist tag edges: {self.taggings:,}",
            f"  friendships (directed): {self.friendships:,}",
            f"  skipped: {self.skipped_total:,}",
        ]
        for reason, n in self.skipped.items():
            out.append(f"    {reason}: {n:,} (e.g. {', '.join(self.examples.get(reason, []))})")
        return out


def _rows(path: Path, *, encoding: str, columns: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a tab-separated file, after its header."""
    with path.open(encoding=encoding, newline="") as f:
        header = f.readline()
        if header.count("\t") < columns - 1:
            raise ImportFormatError(
                f"{path.name} line 1: expected a HetRec Last.fm-2K file: a tab-separated header "
                f"with {columns} columns"
            )
        for line_no, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if line:
                yield line_no, line.split("\t")


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class _Parsed:
    artists: list[tuple[str, ArtistRef]] = field(default_factory=list)
    weights: list[tuple[str, str, int, str]] = field(default_factory=list)
    friends: list[tuple[str, str]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    tagged: list[tuple[str, str, str, str]] = field(default_factory=list)


def _read(directory: Path, summary: HetrecSummary) -> _Parsed:
    """Read every file (blocking: run in a thread). Rows that cannot be used are counted."""
    missing = [name for name in FILES if not (directory / name).is_file()]
    if not directory.is_dir() or missing:
        raise ImportFormatError(
            f"{directory}: expected the HetRec 2011 Last.fm-2K directory "
            f"(missing {', '.join(missing) if directory.is_dir() else 'the directory'})"
        )
    parsed = _Parsed()
    n = 0
    for line_no, fields in _rows(directory / "artists.dat", encoding="utf-8", columns=4):
        n += 1
        if len(fields) < 2 or not fields[1].strip():
            summary.count_skip("artist without a name", f"artists.dat:{line_no}")
            continue
        url = fields[2].strip() if len(fields) > 2 and fields[2].strip() else None
        parsed.artists.append((fields[0].strip(), ArtistRef(name=fields[1].strip(), url=url)))
    summary.rows["artists.dat"] = n
    n = 0
    for line_no, fields in _rows(directory / "user_artists.dat", encoding="utf-8", columns=3):
        n += 1
        if len(fields) < 3:
            summary.count_skip("malformed row", f"user_artists.dat:{line_no}")
            continue
        user, artist, weight = (x.strip() for x in fields[:3])
        try:
            count = int(weight)
        except ValueError:
            summary.count_skip("weight is not a number", f"user_artists.dat:{line_no}")
            continue
        parsed.weights.append((user, artist, count, f"user_artists.dat:{line_no}"))
    summary.rows["user_artists.dat"] = n
    n = 0
    for line_no, fields in _rows(directory / "user_friends.dat", encoding="utf-8", columns=2):
        n += 1
        if len(fields) < 2:
            summary.count_skip("malformed row", f"user_friends.dat:{line_no}")
            continue
        parsed.friends.append((fields[0].strip(), fields[1].strip()))
    summary.rows["user_friends.dat"] = n
    n = 0
    for line_no, fields in _rows(directory / "tags.dat", encoding="latin-1", columns=2):
        n += 1
        if len(fields) < 2 or not fields[1].strip():
            summary.count_skip("tag without a value", f"tags.dat:{line_no}")
            continue
        parsed.tags[fields[0].strip()] = fields[1].strip()
    summary.rows["tags.dat"] = n
    n = 0
    for line_no, fields in _rows(directory / "user_taggedartists.dat", encoding="utf-8", columns=3):
        n += 1
        if len(fields) < 3:
            summary.count_skip("malformed row", f"user_taggedartists.dat:{line_no}")
            continue
        user, artist, tag_id = (x.strip() for x in fields[:3])
        parsed.tagged.append((user, artist, tag_id, f"user_taggedartists.dat:{line_no}"))
    summary.rows["user_taggedartists.dat"] = n
    return parsed


async def import_hetrec(
    store: GraphStore, directory: Path, *, batch_size: int = BATCH_SIZE
) -> HetrecSummary:
    """Load the data set in ``directory`` into the store; see the module docstring."""
    started = time.perf_counter()
    summary = HetrecSummary(path=str(directory))
    parsed = await asyncio.to_thread(_read, directory, summary)

    # artists: hetrec id -> graph artist id
    artist_of: dict[str, str] = {}
    for chunk in _batches(parsed.artists, batch_size):
        stored = await store.upsert_artists([ref for _, ref in chunk])
        for (hetrec_id, _), stored_artist in zip(chunk, stored, strict=True):
            artist_of[hetrec_id] = stored_artist.id
    summary.artists = len(set(artist_of.values()))

    # play counts, summed over artists that are one in the graph
    weights: dict[tuple[str, str], int] = defaultdict(int)
    user_ids: set[str] = set()
    for user, artist, count, where in parsed.weights:
        graph_artist = artist_of.get(artist)
        if graph_artist is None:
            summary.count_skip("unknown artist id", where)
            continue
        user_ids.add(user)
        weights[(user, graph_artist)] += count
    for a, b in parsed.friends:
        user_ids.update((a, b))

    graph_user: dict[str, str] = {}
    for chunk in _batches(sorted(user_ids, key=lambda x: (len(x), x)), batch_size):
        users = await store.ensure_users([hetrec_user_name(u) for u in chunk])
        for hetrec_id, stored_user in zip(chunk, users, strict=True):
            graph_user[hetrec_id] = stored_user.id
    summary.users = len(graph_user)

    listens = [
        ArtistListen(user_id=graph_user[u], artist_id=a, count=c) for (u, a), c in weights.items()
    ]
    for chunk in _batches(listens, batch_size):
        await store.set_artist_listens(chunk)
    summary.artist_listens = len(listens)

    friendships = [
        Friendship(user_id=graph_user[a], friend_id=graph_user[b]) for a, b in parsed.friends
    ]
    for chunk in _batches(friendships, batch_size):
        await store.add_friendships(chunk)
    summary.friendships = len(set(friendships))

    # tags: how many users applied each tag to each artist
    taggers: dict[tuple[str, str], set[str]] = defaultdict(set)
    display: dict[str, str] = {}
    for user, artist, tag_id, where in parsed.tagged:
        graph_artist = artist_of.get(artist)
        if graph_artist is None:
            summary.count_skip("tag on an artist not in artists.dat", where)
            continue
        tag = parsed.tags.get(tag_id)
        if tag is None:
            summary.count_skip("unknown tag id", where)
            continue
        key = normalise(tag)
        display.setdefault(key, tag)
        taggers[(graph_artist, key)].add(user)
    taggings = [
        Tagging(item_kind="artist", item_id=artist, tag=display[key], count=len(users))
        for (artist, key), users in taggers.items()
    ]
    for chunk in _batches(taggings, batch_size):
        await store.set_tags(chunk)
    summary.taggings = len(taggings)

    summary.seconds = time.perf_counter() - started
    return summary
