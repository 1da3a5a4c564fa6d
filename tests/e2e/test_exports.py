"""Playlist exports over HTTP and from ``musicgraph export``: valid JSPF, XSPF and M3U8."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from tests.e2e.live import LiveServer, Seed, get

XSPF = "{http://xspf.org/ns/0/}"
MB = "https://musicbrainz.org/recording/3bd4a4ad-a3c5-41d3-9c1b-e7a9f9f1a6a1"


async def test_jspf(live: LiveServer, seed: Seed) -> None:
    """JSPF has the playlist's title, creator and tracks in order, with the MusicBrainz recording
    URL as identifier where the MBID is known."""
    r = await get(live, f"/playlists/{seed.playlists['public']}.jspf")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jspf+json")
    playlist = r.json()["playlist"]
    assert playlist["title"] == "alice public" and playlist["creator"] == "alice"
    assert playlist["identifier"].endswith(f"/playlists/{seed.playlists['public']}.jspf")
    tracks = playlist["track"]
    assert [t["title"] for t in tracks] == ["Alison", "Only Shallow", "Vapour Trail"]
    assert tracks[0]["creator"] == "Slowdive" and tracks[0]["identifier"] == [MB]
    assert "identifier" not in tracks[1]


async def test_xspf(live: LiveServer, seed: Seed) -> None:
    """XSPF is namespaced XSPF version 1 with a trackList in playlist order."""
    r = await get(live, f"/playlists/{seed.playlists['public']}.xspf")
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    assert root.tag == f"{XSPF}playlist" and root.get("version") == "1"
    assert root.findtext(f"{XSPF}title") == "alice public"
    tracks = root.findall(f"{XSPF}trackList/{XSPF}track")
    assert [t.findtext(f"{XSPF}title") for t in tracks] == [
        "Alison",
        "Only Shallow",
        "Vapour Trail",
    ]
    assert tracks[0].findtext(f"{XSPF}identifier") == MB
    assert tracks[2].findtext(f"{XSPF}creator") == "Ride"


async def test_m3u8(live: LiveServer, seed: Seed) -> None:
    """M3U8 is extended M3U: a header, then an EXTINF line and a URI per track."""
    r = await get(live, f"/playlists/{seed.playlists['public']}.m3u8")
    lines = r.text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[1] == "#PLAYLIST:alice public"
    assert lines[2] == "#EXTINF:-1,Slowdive - Alison" and lines[3] == MB
    assert len(lines) == 2 + 2 * 3


async def test_unknown_playlist_or_format_is_404(live: LiveServer, seed: Seed) -> None:
    """An unknown playlist or format is a 404 that says so."""
    assert (await get(live, "/playlists/pl_nope.jspf")).status_code == 404
    r = await get(live, f"/playlists/{seed.playlists['public']}.pls")
    assert r.status_code == 404 and "unknown format" in r.json()["error"]


async def test_export_command(seeded: tuple[Path, Seed], tmp_path: Path) -> None:
    """``musicgraph export`` writes the same JSPF the server serves, and names a missing playlist."""
    db, seed = seeded
    out = tmp_path / "p.jspf"
    cmd = [
        sys.executable,
        "-m",
        "musicgraph.cli",
        "export",
        seed.playlists["public"],
        "--format",
        "jspf",
        "--db",
        str(db),
        "-o",
        str(out),
    ]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    playlist = json.loads(out.read_text())["playlist"]
    assert [t["title"] for t in playlist["track"]] == ["Alison", "Only Shallow", "Vapour Trail"]
    cmd = [sys.executable, "-m", "musicgraph.cli", "export", "pl_missing", "--db", str(db)]
    missing = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "no playlist with id 'pl_missing'" in missing.stderr
