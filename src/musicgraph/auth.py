"""Bearer tokens: made with ``secrets``, shown once, stored only as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a fast hash is enough (no password stretching needed) and
lookups by hash stay an index probe.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "mg_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
