"""Logs never carry secrets, and tokens are stored only as hashes."""

from __future__ import annotations

from structlog.testing import capture_logs

from musicgraph.auth import hash_token, new_token, tokens_equal
from musicgraph.logging import _redact, get_logger


def test_secret_keys_are_redacted() -> None:
    """Values under keys that look secret are replaced before rendering."""
    out = _redact(
        None, "info", {"event": "x", "api_key": "abc", "Authorization": "Bearer t", "user": "u"}
    )
    assert out["api_key"] == "<redacted>" and out["Authorization"] == "<redacted>"
    assert out["user"] == "u"


def test_logger_captures_events() -> None:
    """The structlog logger emits events that capture_logs sees."""
    with capture_logs() as logs:
        get_logger("t").info("hello", n=1)
    assert logs == [{"event": "hello", "n": 1, "log_level": "info"}]


def test_tokens_are_random_and_hashed() -> None:
    """Each token is new, and its hash is stable and not the token itself."""
    a, b = new_token(), new_token()
    assert a != b and len(a) > 40
    assert hash_token(a) == hash_token(a) != a
    assert tokens_equal(hash_token(a), hash_token(a)) and not tokens_equal(
        hash_token(a), hash_token(b)
    )
