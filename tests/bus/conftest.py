"""The cross-process bus tests use a real ``redis-server`` (tests/support/redis_server.py)."""

from tests.support.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)
