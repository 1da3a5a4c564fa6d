"""Store-agnostic identity resolution: which stored artist or track an input names.

Both stores use this module, so they mint the same ids and make the same matches for the same
inputs. A store collects the :class:`LookupKeys` of a batch, loads the artists and tracks carrying
those keys into a :class:`Catalogue`, and asks :func:`plan_tracks` (or :func:`plan_artists`) for a
:class:`Plan`: one id per input, plus the rows to create and the rows whose identifiers to fill in.

The rules (the result is what processing the inputs one by one, in order, would give):

- A track ref is matched by MBID, then ISRC, then Spotify id, then the normalised (artist, title)
  pair; a match through ISRC, Spotify id or name is refused when both sides carry different MBIDs.
- The name pair is looked up through its id, :func:`~musicgraph.graph.identity.track_id_for_key`.
  A new track gets that id, unless it is taken (by a recording with another MBID): then it gets
  :func:`~musicgraph.graph.identity.track_id_for_strong` of its strongest identifier.
- When several stored tracks carry the same identifier, the one with the smallest id wins.
- A matched track gets the MBID, ISRC, Spotify id, duration and album it lacks from the ref.
- Artists follow the same rules with MBID, then normalised name (``artist_id_for`` /
  ``artist_id_for_mbid``); their names are stored with "feat." credits folded away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from musicgraph.graph import identity
from musicgraph.graph.models import ArtistRef, TrackRef


@dataclass(slots=True)
class KnownArtist:
    """An artist as the store holds it (only the fields identity needs)."""

    id: str
    name: str
    mbid: str | None = None
    spotify_id: str | None = None
    url: str | None = None


@dataclass(slots=True)
class KnownTrack:
    """A track as the store holds it (only the fields identity needs)."""

    id: str
    title: str
    mbid: str | None = None
    isrc: str | None = None
    spotify_id: str | None = None
    duration_ms: int | None = None
    album: str | None = None
    artist_id: str | None = None


@dataclass(slots=True)
class LookupKeys:
    """Every key a batch may match on; the store loads the rows carrying any of them."""

    artist_ids: set[str] = field(default_factory=set)
    artist_mbids: set[str] = field(default_factory=set)
    track_ids: set[str] = field(default_factory=set)
    track_mbids: set[str] = field(default_factory=set)
    isrcs: set[str] = field(default_factory=set)
    spotify_ids: set[str] = field(default_factory=set)


class CleanArtist(NamedTuple):
    name: str
    key_id: str
    mbid: str | None
    spotify_id: str | None
    url: str | None


class CleanTrack(NamedTuple):
    artist: CleanArtist
    title: str
    key_id: str
    album: str | None
    mbid: str | None
    isrc: str | None
    spotify_id: str | None
    duration_ms: int | None


@dataclass(slots=True)
class Plan:
    """What a batch resolves to: one id per input, and the writes that make it true."""

    ids: list[str] = field(default_factory=list)
    new_artists: list[KnownArtist] = field(default_factory=list)
    updated_artists: list[KnownArtist] = field(default_factory=list)
    new_tracks: list[KnownTrack] = field(default_factory=list)
    updated_tracks: list[KnownTrack] = field(default_factory=list)


@lru_cache(maxsize=1 << 17)
def _artist_name_and_id(name: str) -> tuple[str, str]:
    folded = identity.fold_featuring(name).strip()
    return folded, identity.artist_id_for(name)


@lru_cache(maxsize=1 << 17)
def _track_key_id(artist: str, title: str) -> str:
    return identity.track_id_for_key(identity.track_key(artist, title))


def _clean(fn: Callable[[str | None], str | None], value: str | None, where: str) -> str | None:
    try:
        return fn(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def clean_artist(ref: ArtistRef, where: str) -> CleanArtist:
    """Validate and normalise one artist ref; ``ValueError`` naming ``where`` when unusable."""
    if not ref.name or not ref.name.strip():
        raise ValueError(f"{where}: artist name is blank")
    name, key_id = _artist_name_and_id(ref.name)
    return CleanArtist(
        name=name,
        key_id=key_id,
        mbid=_clean(identity.clean_mbid, ref.mbid, where),
        spotify_id=(ref.spotify_id or "").strip() or None,
        url=(ref.url or "").strip() or None,
    )


def clean_track(ref: TrackRef, where: str) -> CleanTrack:
    """Validate and normalise one track ref; ``ValueError`` naming ``where`` when unusable."""
    cleaned = _clean_track_cached(ref)
    if isinstance(cleaned, str):
        raise ValueError(f"{where}: {cleaned}")
    return cleaned


def clean_track_or_reason(ref: TrackRef) -> CleanTrack | str:
    """Like :func:`clean_track`, but returns why a ref is unusable instead of raising."""
    return _clean_track_cached(ref)


@lru_cache(maxsize=1 << 17)
def _clean_track_cached(ref: TrackRef) -> CleanTrack | str:
    # Imports repeat the same refs across batches; the cache skips normalising them again.
    # An unusable ref is cached as its reason (without the position, which differs per call).
    if not ref.title or not ref.title.strip():
        return "track title is blank"
    try:
        artist = clean_artist(ArtistRef(ref.artist, mbid=ref.artist_mbid), "artist")
        mbid = identity.clean_mbid(ref.mbid)
        isrc = identity.clean_isrc(ref.isrc)
        spotify_id = identity.spotify_track_id(ref.spotify_id)
    except ValueError as exc:
        return str(exc)
    duration = ref.duration_ms
    if duration is not None and duration <= 0:
        duration = None
    return CleanTrack(
        artist=artist,
        title=ref.title.strip(),
        key_id=_track_key_id(ref.artist, ref.title),
        album=(ref.album or "").strip() or None,
        mbid=mbid,
        isrc=isrc,
        spotify_id=spotify_id,
        duration_ms=duration,
    )


def artist_keys(artists: Iterable[CleanArtist], keys: LookupKeys | None = None) -> LookupKeys:
    keys = keys or LookupKeys()
    for a in artists:
        keys.artist_ids.add(a.key_id)
        if a.mbid:
            keys.artist_mbids.add(a.mbid)
            keys.artist_ids.add(identity.artist_id_for_mbid(a.mbid))
    return keys


def track_keys(tracks: Iterable[CleanTrack]) -> LookupKeys:
    keys = LookupKeys()
    tracks = list(tracks)
    artist_keys((t.artist for t in tracks), keys)
    for t in tracks:
        keys.track_ids.add(t.key_id)
        if t.mbid:
            keys.track_mbids.add(t.mbid)
            keys.track_ids.add(identity.track_id_for_strong("mbid", t.mbid))
        if t.isrc:
            keys.isrcs.add(t.isrc)
            keys.track_ids.add(identity.track_id_for_strong("isrc", t.isrc))
        if t.spotify_id:
            keys.spotify_ids.add(t.spotify_id)
            keys.track_ids.add(identity.track_id_for_strong("spotify", t.spotify_id))
    return keys


class Catalogue:
    """The stored artists and tracks a batch can match, indexed by every key, kept up to date as
    the plan creates rows and fills in identifiers."""

    def __init__(self, artists: Iterable[KnownArtist], tracks: Iterable[KnownTrack]) -> None:
        self.artists: dict[str, KnownArtist] = {}
        self.artist_by_mbid: dict[str, KnownArtist] = {}
        self.tracks: dict[str, KnownTrack] = {}
        self.track_by_mbid: dict[str, KnownTrack] = {}
        self.track_by_isrc: dict[str, KnownTrack] = {}
        self.track_by_spotify: dict[str, KnownTrack] = {}
        for a in sorted(artists, key=lambda a: a.id):
            self._index_artist(a)
        for t in sorted(tracks, key=lambda t: t.id):
            self._index_track(t)

    def _index_artist(self, a: KnownArtist) -> None:
        self.artists[a.id] = a
        if a.mbid:
            self.artist_by_mbid.setdefault(a.mbid, a)

    def _index_track(self, t: KnownTrack) -> None:
        self.tracks[t.id] = t
        if t.mbid:
            self.track_by_mbid.setdefault(t.mbid, t)
        if t.isrc:
            self.track_by_isrc.setdefault(t.isrc, t)
        if t.spotify_id:
            self.track_by_spotify.setdefault(t.spotify_id, t)


def _compatible(mbid: str | None, other: str | None) -> bool:
    return not (mbid and other and mbid != other)


class _Planner:
    def __init__(self, catalogue: Catalogue) -> None:
        self.cat = catalogue
        self.plan = Plan()
        self._new_artist_ids: set[str] = set()
        self._new_track_ids: set[str] = set()
        self._dirty_artists: dict[str, KnownArtist] = {}
        self._dirty_tracks: dict[str, KnownTrack] = {}

    def artist(self, ref: CleanArtist) -> str:
        cat = self.cat
        found: KnownArtist | None = None
        if ref.mbid:
            found = cat.artist_by_mbid.get(ref.mbid)
        if found is None:
            candidate = cat.artists.get(ref.key_id)
            if candidate is not None and _compatible(ref.mbid, candidate.mbid):
                found = candidate
        if found is None:
            new_id = ref.key_id
            if new_id in cat.artists and ref.mbid:
                new_id = identity.artist_id_for_mbid(ref.mbid)
            existing = cat.artists.get(new_id)
            if existing is not None:  # only when an id was re-pointed by hand; keep it
                found = existing
            else:
                created = KnownArtist(new_id, ref.name, ref.mbid, ref.spotify_id, ref.url)
                cat._index_artist(created)
                self._new_artist_ids.add(new_id)
                self.plan.new_artists.append(created)
                return new_id
        changed = False
        if ref.mbid and not found.mbid:
            found.mbid = ref.mbid
            cat.artist_by_mbid.setdefault(ref.mbid, found)
            changed = True
        if ref.spotify_id and not found.spotify_id:
            found.spotify_id = ref.spotify_id
            changed = True
        if ref.url and not found.url:
            found.url = ref.url
            changed = True
        if changed and found.id not in self._new_artist_ids:
            self._dirty_artists[found.id] = found
        return found.id

    def track(self, ref: CleanTrack) -> str:
        cat = self.cat
        found: KnownTrack | None = None
        if ref.mbid:
            found = cat.track_by_mbid.get(ref.mbid)
        if found is None and ref.isrc:
            c = cat.track_by_isrc.get(ref.isrc)
            if c is not None and _compatible(ref.mbid, c.mbid):
                found = c
        if found is None and ref.spotify_id:
            c = cat.track_by_spotify.get(ref.spotify_id)
            if c is not None and _compatible(ref.mbid, c.mbid):
                found = c
        if found is None:
            c = cat.tracks.get(ref.key_id)
            if c is not None and _compatible(ref.mbid, c.mbid):
                found = c
        if found is None:
            new_id = ref.key_id
            if new_id in cat.tracks:
                for kind, value in (
                    ("mbid", ref.mbid),
                    ("isrc", ref.isrc),
                    ("spotify", ref.spotify_id),
                ):
                    if value:
                        new_id = identity.track_id_for_strong(kind, value)
                        break
            existing = cat.tracks.get(new_id)
            if existing is not None:  # an identifier was changed after creation; keep the row
                found = existing
            else:
                artist_id = self.artist(ref.artist)
                created = KnownTrack(
                    new_id,
                    ref.title,
                    ref.mbid,
                    ref.isrc,
                    ref.spotify_id,
                    ref.duration_ms,
                    ref.album,
                    artist_id,
                )
                cat._index_track(created)
                self._new_track_ids.add(new_id)
                self.plan.new_tracks.append(created)
                return new_id
        changed = False
        if ref.mbid and not found.mbid:
            found.mbid = ref.mbid
            cat.track_by_mbid.setdefault(ref.mbid, found)
            changed = True
        if ref.isrc and not found.isrc:
            found.isrc = ref.isrc
            cat.track_by_isrc.setdefault(ref.isrc, found)
            changed = True
        if ref.spotify_id and not found.spotify_id:
            found.spotify_id = ref.spotify_id
            cat.track_by_spotify.setdefault(ref.spotify_id, found)
            changed = True
        if ref.duration_ms and not found.duration_ms:
            found.duration_ms = ref.duration_ms
            changed = True
        if ref.album and not found.album:
            found.album = ref.album
            changed = True
        if changed and found.id not in self._new_track_ids:
            self._dirty_tracks[found.id] = found
        return found.id

    def finish(self) -> Plan:
        self.plan.updated_artists = list(self._dirty_artists.values())
        self.plan.updated_tracks = list(self._dirty_tracks.values())
        return self.plan


def plan_artists(refs: Sequence[CleanArtist], catalogue: Catalogue) -> Plan:
    """Resolve artist refs in order against ``catalogue`` (which the plan updates)."""
    planner = _Planner(catalogue)
    planner.plan.ids = [planner.artist(r) for r in refs]
    return planner.finish()


def plan_tracks(refs: Sequence[CleanTrack], catalogue: Catalogue) -> Plan:
    """Resolve track refs in order against ``catalogue`` (which the plan updates)."""
    planner = _Planner(catalogue)
    planner.plan.ids = [planner.track(r) for r in refs]
    return planner.finish()
