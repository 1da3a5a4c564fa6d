"""The one exception tree of musicgraph.

    MusicgraphError
    ├── ConfigError              a setting is missing or has a bad value
    ├── StoreError               the graph store failed or refused a write
    │   ├── NotFoundError        a referenced user, track, artist or playlist does not exist
    │   ├── ConflictError        a unique key (user name, ...) is already taken
    │   └── StoreUnavailableError  the store cannot be reached
    ├── ImportFormatError        an input file is not the format it was said to be
    ├── InvalidRecordError       one record of an input is unusable (carries file, line, field)
    ├── RecommenderError         the recommender cannot answer (unknown user or item, bad control)
    ├── EnrichmentError          an outside API failed
    │   ├── SourceDisabledError  the source has no credentials
    │   ├── RateLimitedError     the source said we are over its limit
    │   └── SourceUnavailableError  the breaker is open or the source keeps failing
    └── AuthError                missing or bad token, or not allowed

Lower-level errors (sqlite3, neo4j, httpx) are translated at the boundary with ``raise ... from exc``.
Messages are written for the people who read them: say what was wrong and where.
"""

from __future__ import annotations


class MusicgraphError(Exception):
    """Root of every error musicgraph raises on purpose."""


class ConfigError(MusicgraphError):
    """A setting is missing or has a value that cannot be used."""


class StoreError(MusicgraphError):
    """The graph store failed or refused a write."""


class NotFoundError(StoreError):
    """A referenced node does not exist."""


class ConflictError(StoreError):
    """A unique key is already taken."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached."""


class ImportFormatError(MusicgraphError):
    """An input file is not the format it was said to be."""


class InvalidRecordError(MusicgraphError):
    """One record of an input is unusable.

    ``where`` names the place (``file:line``) and ``field`` the offending field when known.
    """

    def __init__(self, reason: str, *, where: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.where = where
        self.field = field
        parts = [p for p in (where, f"field {field!r}" if field else None) if p]
        super().__init__(f"{': '.join(parts)}: {reason}" if parts else reason)


class RecommenderError(MusicgraphError):
    """The recommender cannot answer the request as asked."""


class EnrichmentError(MusicgraphError):
    """An outside API failed."""


class SourceDisabledError(EnrichmentError):
    """The source has no credentials configured."""


class RateLimitedError(EnrichmentError):
    """The source answered that we are over its rate limit."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailableError(EnrichmentError):
    """The source's breaker is open or it keeps failing."""


class AuthError(MusicgraphError):
    """Missing or bad credentials, or an action the caller may not take."""
