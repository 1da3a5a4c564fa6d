"""``musicgraph import`` and ``musicgraph demo`` end to end: the installed command on a temp --db."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MUSICGRAPH = Path(sys.executable).parent / "musicgraph"
FIXTURES = REPO / "tests" / "fixtures"


def musicgraph(*args: str | Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "MUSICGRAPH_"))}
    return subprocess.run(
        [str(MUSICGRAPH), *map(str, args), "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def stats(db: Path) -> dict[str, object]:
    out = musicgraph("stats", "--json", db=db)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_import_twice_adds_nothing(tmp_path: Path) -> None:
    """Importing a real Spotify file prints a summary; the second run adds nothing."""
    db = tmp_path / "g.db"
    path = FIXTURES / "real" / "Streaming_History_Audio_2023_excerpt.json"
    first = musicgraph("import", "spotify", path, "--user", "alice", db=db)
    assert first.returncode == 0, first.stderr
    assert "imported:   20 new listens (17 of them skipped plays)" in first.stdout
    counts = stats(db)
    assert (counts["users"], counts["listens"], counts["skips"], counts["tracks"]) == (1, 3, 17, 16)

    again = musicgraph("import", "spotify", path, "--user", "alice", "--json", db=db)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["imported"], summary["duplicates"], summary["user"]) == (0, 20, "alice")
    assert stats(db) == counts


def test_import_reports_bad_rows_by_line(tmp_path: Path) -> None:
    """Bad rows are counted by reason with file:line examples; the exit code is still 0."""
    db = tmp_path / "g.db"
    out = musicgraph(
        "import",
        "lastfm-csv",
        FIXTURES / "bad" / "lastfm_bad.csv",
        "--user",
        "bob",
        "--json",
        db=db,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["imported"] == 3 and summary["skipped_total"] == 5
    assert summary["examples"]["missing artist"] == [
        "lastfm_bad.csv:4: field 'artist': missing artist"
    ]


def test_wrong_format_fails_with_one_line_and_creates_nothing(tmp_path: Path) -> None:
    """A file of the wrong format exits 1 with one line saying what was expected."""
    db = tmp_path / "g.db"
    out = musicgraph(
        "import",
        "scrobbler-log",
        FIXTURES / "real" / "endsong_0_excerpt.json",
        "--user",
        "c",
        db=db,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("musicgraph: error: endsong_0_excerpt.json line 1: expected a ")
    assert "Traceback" not in out.stderr
    assert stats(db)["users"] == 0


def test_user_is_required_except_for_hetrec(tmp_path: Path) -> None:
    """Listen formats need --user and say so."""
    out = musicgraph("import", "listenbrainz", FIXTURES / "real", db=tmp_path / "g.db")
    assert out.returncode == 1
    assert "needs --user NAME" in out.stderr


def test_import_a_directory_of_scrobbler_logs(tmp_path: Path) -> None:
    """A folder path imports every matching file in it."""
    db = tmp_path / "g.db"
    out = musicgraph(
        "import", "scrobbler-log", FIXTURES / "real", "--user", "dana", "--json", db=db
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["imported"] == 34 + 19 + 10


@pytest.mark.slow
def test_import_hetrec(tmp_path: Path, hetrec_dir: Path) -> None:
    """The HetRec folder imports without --user: 1,892 users and 25,434 friendship rows."""
    db = tmp_path / "g.db"
    out = musicgraph("import", "hetrec", hetrec_dir, "--json", db=db)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["users"] == 1_892 and summary["rows"]["user_artists.dat"] == 92_834
    counts = stats(db)
    assert counts["users"] == 1_892 and counts["friendships"] == 25_434


def test_demo_if_empty_and_idempotent(tmp_path: Path) -> None:
    """demo loads once; --if-empty leaves a loaded store alone; the same seed adds nothing."""
    db = tmp_path / "g.db"
    out = musicgraph("demo", "--size", "small", "--json", db=db)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert loaded["loaded"] is True and loaded["users"] == 300
    counts = stats(db)
    assert counts["listens"] + counts["skips"] == loaded["listens"] > 25_000  # type: ignore[operator]

    skipped = musicgraph("demo", "--if-empty", db=db)
    assert skipped.returncode == 0 and "left as it is" in skipped.stdout
    again = musicgraph("demo", "--size", "small", "--json", db=db)
    assert json.loads(again.stdout)["listens"] == 0
    assert stats(db) == counts


def test_help_explains_formats(tmp_path: Path) -> None:
    """import --help lists every format and what it expects."""
    out = subprocess.run(
        [str(MUSICGRAPH), "import", "--help"], capture_output=True, text=True, check=True
    )
    for name in ("listenbrainz", "spotify", "lastfm-csv", "scrobbler-log", "hetrec", "--user"):
        assert name in out.stdout
    demo = subprocess.run(
        [str(MUSICGRAPH), "demo", "--help"], capture_output=True, text=True, check=True
    )
    assert "--if-empty" in demo.stdout and "--size" in demo.stdout
