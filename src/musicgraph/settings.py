"""Settings, read once from the environment (and an optional ``.env`` file), cast and validated.

Environment variables win over the ``.env`` file. A bad value fails at once with a
:class:`~musicgraph.errors.ConfigError` that names the variable, the value and what was expected.
Secrets (passwords, tokens, API keys) are kept out of ``repr`` so they never reach a log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from dotenv import dotenv_values

from musicgraph.errors import ConfigError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("expected true or false")


def _positive_float(value: str) -> float:
    f = float(value)
    if f <= 0:
        raise ValueError("expected a number above 0")
    return f


def _port(value: str) -> int:
    p = int(value)
    if not 0 <= p <= 65535:
        raise ValueError("expected a port number between 0 and 65535")
    return p


def _positive_int(value: str) -> int:
    i = int(value)
    if i <= 0:
        raise ValueError("expected a whole number above 0")
    return i


def _choice(*options: str) -> Callable[[str], str]:
    def cast(value: str) -> str:
        v = value.strip().lower()
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return v

    return cast


def _optional_str(value: str) -> str | None:
    return value or None


def _optional_path(value: str) -> Path | None:
    return Path(value) if value else None


def setting(
    env: str, default: Any, cast: Callable[[str], Any] = str, *, secret: bool = False
) -> Any:
    """Declare a setting read from the variable ``env``."""
    return field(
        default=default, repr=not secret, metadata={"env": env, "cast": cast, "secret": secret}
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting of musicgraph. Build with :meth:`Settings.from_env`."""

    # store
    db_path: Path = setting("MUSICGRAPH_DB", Path("musicgraph.db"), Path)
    neo4j_uri: str | None = setting("NEO4J_URI", None, _optional_str)
    neo4j_user: str = setting("NEO4J_USER", "neo4j")
    neo4j_password: str | None = setting("NEO4J_PASSWORD", None, _optional_str, secret=True)
    neo4j_database: str = setting("NEO4J_DATABASE", "neo4j")
    # logging
    log_level: str = setting(
        "MUSICGRAPH_LOG_LEVEL", "info", _choice("debug", "info", "warning", "error")
    )
    log_format: str = setting("MUSICGRAPH_LOG_FORMAT", "auto", _choice("auto", "console", "json"))
    # server
    host: str = setting("MUSICGRAPH_HOST", "127.0.0.1")
    port: int = setting("MUSICGRAPH_PORT", 8000, _port)
    admin_token: str | None = setting("MUSICGRAPH_ADMIN_TOKEN", None, _optional_str, secret=True)
    introspection: bool = setting("MUSICGRAPH_INTROSPECTION", True, _bool)
    max_query_depth: int = setting("MUSICGRAPH_MAX_QUERY_DEPTH", 12, _positive_int)
    max_aliases: int = setting("MUSICGRAPH_MAX_ALIASES", 30, _positive_int)
    max_tokens: int = setting("MUSICGRAPH_MAX_TOKENS", 2000, _positive_int)
    max_page_size: int = setting("MUSICGRAPH_MAX_PAGE_SIZE", 100, _positive_int)
    max_listen_batch: int = setting("MUSICGRAPH_MAX_LISTEN_BATCH", 1000, _positive_int)
    max_body_bytes: int = setting("MUSICGRAPH_MAX_BODY_BYTES", 1_000_000, _positive_int)
    max_subscriptions: int = setting("MUSICGRAPH_MAX_SUBSCRIPTIONS", 10, _positive_int)
    # events across instances (optional)
    redis_url: str | None = setting("MUSICGRAPH_REDIS_URL", None, _optional_str, secret=True)
    # how events reach the other processes: auto = redis when MUSICGRAPH_REDIS_URL is set, else the
    # outbox in the SQLite file when several processes serve it (workers > 1), else local
    event_bus: str = setting(
        "MUSICGRAPH_EVENT_BUS", "auto", _choice("auto", "local", "redis", "outbox")
    )
    # processes serving the same store (``serve --workers`` sets it for its workers)
    workers: int = setting("MUSICGRAPH_WORKERS", 1, _positive_int)
    # enrichment: base URLs, credentials and rates (requests per second)
    contact: str = setting("MUSICGRAPH_CONTACT", "https://github.com/musicgraph/musicgraph")
    musicbrainz_url: str = setting("MUSICGRAPH_MUSICBRAINZ_URL", "https://musicbrainz.org")
    musicbrainz_rate: float = setting("MUSICGRAPH_MUSICBRAINZ_RATE", 1.0, _positive_float)
    lastfm_url: str = setting("MUSICGRAPH_LASTFM_URL", "https://ws.audioscrobbler.com")
    lastfm_api_key: str | None = setting(
        "MUSICGRAPH_LASTFM_API_KEY", None, _optional_str, secret=True
    )
    lastfm_rate: float = setting("MUSICGRAPH_LASTFM_RATE", 5.0, _positive_float)
    spotify_url: str = setting("MUSICGRAPH_SPOTIFY_URL", "https://api.spotify.com")
    spotify_auth_url: str = setting("MUSICGRAPH_SPOTIFY_AUTH_URL", "https://accounts.spotify.com")
    spotify_client_id: str | None = setting(
        "MUSICGRAPH_SPOTIFY_CLIENT_ID", None, _optional_str, secret=True
    )
    spotify_client_secret: str | None = setting(
        "MUSICGRAPH_SPOTIFY_CLIENT_SECRET", None, _optional_str, secret=True
    )
    spotify_rate: float = setting("MUSICGRAPH_SPOTIFY_RATE", 3.0, _positive_float)
    cyanite_url: str = setting("MUSICGRAPH_CYANITE_URL", "https://api.cyanite.ai")
    cyanite_token: str | None = setting(
        "MUSICGRAPH_CYANITE_TOKEN", None, _optional_str, secret=True
    )
    cyanite_rate: float = setting("MUSICGRAPH_CYANITE_RATE", 1.0, _positive_float)
    # enrichment pipeline: HTTP behaviour, breakers, the durable queue, health probes
    http_cache: Path | None = setting("MUSICGRAPH_HTTP_CACHE", None, _optional_path)
    http_timeout: float = setting("MUSICGRAPH_HTTP_TIMEOUT", 10.0, _positive_float)
    http_max_retries: int = setting("MUSICGRAPH_HTTP_MAX_RETRIES", 4, int)
    http_backoff: float = setting("MUSICGRAPH_HTTP_BACKOFF", 0.5, _positive_float)
    breaker_fail_max: int = setting("MUSICGRAPH_BREAKER_FAIL_MAX", 5, _positive_int)
    breaker_reset: float = setting("MUSICGRAPH_BREAKER_RESET", 30.0, _positive_float)
    enrich_concurrency: int = setting("MUSICGRAPH_ENRICH_CONCURRENCY", 8, _positive_int)
    enrich_max_attempts: int = setting("MUSICGRAPH_ENRICH_MAX_ATTEMPTS", 5, _positive_int)
    enrich_retry_delay: float = setting("MUSICGRAPH_ENRICH_RETRY_DELAY", 60.0, _positive_float)
    cyanite_poll: float = setting("MUSICGRAPH_CYANITE_POLL", 30.0, _positive_float)
    health_interval: float = setting("MUSICGRAPH_HEALTH_INTERVAL", 15.0, _positive_float)
    # whether the server runs the enrichment pipeline in the background (it calls outside APIs)
    enrich_autostart: bool = setting("MUSICGRAPH_ENRICH_AUTOSTART", False, _bool)
    # the Hybrid's learned re-ranker (recommender/rerank.py): auto (trained once on this graph
    # in the background, again when its listens grow by half), off, stored (the one trained on
    # HetRec, for a HetRec graph) or fit (trained at every Hybrid fit)
    hybrid_rerank: str = setting(
        "MUSICGRAPH_HYBRID_RERANK", "auto", _choice("auto", "off", "stored", "fit")
    )
    # where a trained re-ranker is kept for the other workers and restarts (default: beside the
    # SQLite file; on Neo4j none unless set, and then each process trains its own)
    rerank_file: Path | None = setting("MUSICGRAPH_RERANK_PATH", None, _optional_path)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | Path | None = ".env",
        **overrides: Any,
    ) -> Settings:
        """Read every setting once: ``overrides`` > ``environ`` (default ``os.environ``) > ``.env``."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if overrides.get(f.name) is not None:  # None means "not given": fall through to env
                kwargs[f.name] = overrides[f.name]
                continue
            env = f.metadata["env"]
            if env not in values:
                continue
            raw = values[env]
            try:
                kwargs[f.name] = f.metadata["cast"](raw)
            except ValueError as exc:
                shown = "<hidden>" if f.metadata["secret"] else repr(raw)
                raise ConfigError(f"{env}={shown} is not valid: {exc}") from exc
        return cls(**kwargs)

    @property
    def uses_neo4j(self) -> bool:
        return self.neo4j_uri is not None

    @property
    def rerank_path(self) -> Path | None:
        """Where the server keeps the re-ranker it trained on its graph, for its other workers
        and its restarts: ``MUSICGRAPH_RERANK_PATH`` when set, else ``<db>-rerank.json`` beside
        the SQLite file (None on Neo4j without it: each process trains its own)."""
        if self.rerank_file is not None:
            return self.rerank_file
        if self.uses_neo4j:
            return None
        return self.db_path.with_name(self.db_path.name + "-rerank.json")
