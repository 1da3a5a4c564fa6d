"""Settings are read once from the environment and a .env file, cast, and validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicgraph.errors import ConfigError
from musicgraph.settings import Settings


def test_defaults_without_environment() -> None:
    """With nothing set, the embedded store at ./musicgraph.db is chosen."""
    s = Settings.from_env({}, env_file=None)
    assert s.db_path == Path("musicgraph.db")
    assert not s.uses_neo4j
    assert s.port == 8000


def test_environment_values_are_cast() -> None:
    """Numbers, booleans and paths are converted from their text form."""
    s = Settings.from_env(
        {
            "MUSICGRAPH_PORT": "9001",
            "MUSICGRAPH_INTROSPECTION": "off",
            "MUSICGRAPH_DB": "/tmp/x.db",
        },
        env_file=None,
    )
    assert s.port == 9001
    assert s.introspection is False
    assert s.db_path == Path("/tmp/x.db")


def test_bad_value_names_the_variable() -> None:
    """A value that cannot be cast fails with the variable, the value and what was expected."""
    with pytest.raises(ConfigError, match=r"MUSICGRAPH_PORT='eighty' is not valid"):
        Settings.from_env({"MUSICGRAPH_PORT": "eighty"}, env_file=None)
    with pytest.raises(ConfigError, match="expected one of debug, info, warning, error"):
        Settings.from_env({"MUSICGRAPH_LOG_LEVEL": "loud"}, env_file=None)


def test_hybrid_rerank_is_one_of_three_modes() -> None:
    """The re-ranker setting is auto unless set, and anything but auto, off, stored or fit is
    refused."""
    assert Settings.from_env({}, env_file=None).hybrid_rerank == "auto"
    s = Settings.from_env({"MUSICGRAPH_HYBRID_RERANK": "fit"}, env_file=None)
    assert s.hybrid_rerank == "fit"
    with pytest.raises(ConfigError, match=r"MUSICGRAPH_HYBRID_RERANK='always' is not valid"):
        Settings.from_env({"MUSICGRAPH_HYBRID_RERANK": "always"}, env_file=None)


def test_rerank_file_sits_beside_the_sqlite_store() -> None:
    """The trained re-ranker is kept as <db>-rerank.json next to a SQLite store, nowhere on
    Neo4j, and where MUSICGRAPH_RERANK_PATH says on either."""
    s = Settings.from_env({"MUSICGRAPH_DB": "/data/graph.db"}, env_file=None)
    assert s.rerank_path == Path("/data/graph.db-rerank.json")
    assert Settings.from_env({"NEO4J_URI": "bolt://x:7687"}, env_file=None).rerank_path is None
    shared = {"MUSICGRAPH_RERANK_PATH": "/var/lib/musicgraph/rerank.json"}
    for env in (shared, {**shared, "NEO4J_URI": "bolt://x:7687"}):
        got = Settings.from_env(env, env_file=None).rerank_path
        assert got == Path("/var/lib/musicgraph/rerank.json")


def test_bad_secret_is_not_echoed() -> None:
    """A bad secret value is reported without showing it."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MUSICGRAPH_MUSICBRAINZ_RATE": "-1"}, env_file=None)
    assert "MUSICGRAPH_MUSICBRAINZ_RATE='-1'" in str(info.value)


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """A .env file supplies values; the environment overrides them."""
    env = tmp_path / ".env"
    env.write_text("MUSICGRAPH_PORT=7000\nNEO4J_URI=bolt://localhost:7687\n")
    s = Settings.from_env({"MUSICGRAPH_PORT": "7100"}, env_file=env)
    assert s.port == 7100
    assert s.neo4j_uri == "bolt://localhost:7687"
    assert s.uses_neo4j


def test_secrets_stay_out_of_repr() -> None:
    """Passwords, tokens and API keys never appear in the settings' repr (and so in logs)."""
    s = Settings.from_env(
        {
            "NEO4J_PASSWORD": "hunter2",
            "MUSICGRAPH_ADMIN_TOKEN": "tok-123",
            "MUSICGRAPH_LASTFM_API_KEY": "k-9",
        },
        env_file=None,
    )
    text = repr(s)
    assert "hunter2" not in text and "tok-123" not in text and "k-9" not in text


def test_overrides_beat_environment() -> None:
    """Command-line overrides (like --db) win over the environment."""
    s = Settings.from_env({"MUSICGRAPH_DB": "a.db"}, env_file=None, db_path=Path("b.db"))
    assert s.db_path == Path("b.db")
