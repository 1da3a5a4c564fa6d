"""Playlist exports: JSPF (the JSON form of XSPF, as ListenBrainz writes it), XSPF and M3U8.

Tracks are identified by their MusicBrainz recording URL where the MBID is known (what
ListenBrainz and MusicBrainz Picard read), and by their Spotify URL otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from musicgraph.graph.base import GraphStore

XSPF_NS = "http://xspf.org/ns/0/"
MB_RECORDING = "https://musicbrainz.org/recording/"
SPOTIFY_TRACK = "https://open.spotify.com/track/"


@dataclass(frozen=True, slots=True)
class ExportTrack:
    id: str
    title: str
    artists: tuple[str, ...]
    album: str | None = None
    duration_ms: int | None = None
    mbid: str | None = None
    spotify_id: str | None = None

    @property
    def creator(self) -> str:
        return ", ".join(self.artists)

    @property
    def identifiers(self) -> list[str]:
        ids = []
        if self.mbid:
            ids.append(MB_RECORDING + self.mbid)
        if self.spotify_id:
            ids.append(SPOTIFY_TRACK + self.spotify_id)
        return ids


@dataclass(frozen=True, slots=True)
class PlaylistExport:
    id: str
    title: str
    annotation: str
    creator: str
    owner_id: str
    public: bool
    created_at: int
    tracks: tuple[ExportTrack, ...]


async def load_playlist_export(store: GraphStore, playlist_id: str) -> PlaylistExport | None:
    """Everything an export needs, in five batched reads (``None`` for an unknown playlist)."""
    (playlist,) = await store.get_playlists([playlist_id])
    if playlist is None:
        return None
    entries = await store.playlist_entries(playlist_id)
    tracks = await store.get_tracks([e.track_id for e in entries])
    artist_ids = sorted({a for t in tracks if t is not None for a in t.artist_ids})
    artists = {a.id: a.name for a in await store.get_artists(artist_ids) if a is not None}
    (owner,) = await store.get_users([playlist.owner_id])
    return PlaylistExport(
        id=playlist.id,
        title=playlist.name,
        annotation=playlist.description,
        creator=owner.name if owner is not None else "",
        owner_id=playlist.owner_id,
        public=playlist.public,
        created_at=playlist.created_at,
        tracks=tuple(
            ExportTrack(
                id=t.id,
                title=t.title,
                artists=tuple(artists[a] for a in t.artist_ids if a in artists),
                album=t.album,
                duration_ms=t.duration_ms,
                mbid=t.mbid,
                spotify_id=t.spotify_id,
            )
            for t in tracks
            if t is not None
        ),
    )


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def to_jspf(p: PlaylistExport, *, location: str | None = None) -> str:
    """JSPF (https://xspf.org/jspf): ``{"playlist": {..., "track": [...]}}``."""
    tracks = []
    for t in p.tracks:
        item: dict[str, object] = {"title": t.title, "creator": t.creator}
        if t.album:
            item["album"] = t.album
        if t.duration_ms is not None:
            item["duration"] = t.duration_ms
        if t.identifiers:
            item["identifier"] = t.identifiers
        tracks.append(item)
    playlist: dict[str, object] = {
        "title": p.title,
        "creator": p.creator,
        "annotation": p.annotation,
        "date": _date(p.created_at),
        "track": tracks,
    }
    if location:
        playlist["identifier"] = location
    return json.dumps({"playlist": playlist}, ensure_ascii=False, indent=2)


def to_xspf(p: PlaylistExport, *, location: str | None = None) -> str:
    """XSPF version 1 (https://xspf.org/spec)."""
    ET.register_namespace("", XSPF_NS)

    def sub(parent: ET.Element, tag: str, text: str) -> None:
        ET.SubElement(parent, f"{{{XSPF_NS}}}{tag}").text = text

    root = ET.Element(f"{{{XSPF_NS}}}playlist", {"version": "1"})
    sub(root, "title", p.title)
    sub(root, "creator", p.creator)
    if p.annotation:
        sub(root, "annotation", p.annotation)
    if location:
        sub(root, "identifier", location)
    sub(root, "date", _date(p.created_at))
    track_list = ET.SubElement(root, f"{{{XSPF_NS}}}trackList")
    for t in p.tracks:
        track = ET.SubElement(track_list, f"{{{XSPF_NS}}}track")
        for identifier in t.identifiers:
            sub(track, "identifier", identifier)
        sub(track, "title", t.title)
        sub(track, "creator", t.creator)
        if t.album:
            sub(track, "album", t.album)
        if t.duration_ms is not None:
            sub(track, "duration", str(t.duration_ms))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def to_m3u8(p: PlaylistExport, *, location: str | None = None) -> str:
    """Extended M3U in UTF-8; each entry's URI is its MusicBrainz or Spotify URL."""
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(p.title)}"]
    for t in p.tracks:
        seconds = round(t.duration_ms / 1000) if t.duration_ms is not None else -1
        lines.append(f"#EXTINF:{seconds},{_one_line(t.creator)} - {_one_line(t.title)}")
        lines.append(t.identifiers[0] if t.identifiers else f"musicgraph:track:{t.id}")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


Exporter = Callable[..., str]

#: format name -> (exporter, media type)
FORMATS: dict[str, tuple[Exporter, str]] = {
    "jspf": (to_jspf, "application/jspf+json"),
    "xspf": (to_xspf, "application/xspf+xml"),
    "m3u8": (to_m3u8, "application/vnd.apple.mpegurl"),
}
