"""Expected failures, as schema types: mutations answer ``Success | NotFound | AccessDenied | ...``."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="Something the request asked for could not be done.")
class Error:
    message: str


@strawberry.type(description="A referenced user, track, artist or playlist does not exist.")
class NotFound(Error):
    id: str


@strawberry.type(description="The viewer may not do this (no token, or not their data).")
class AccessDenied(Error):
    pass


@strawberry.type(description="An argument is not usable; `field` names it.")
class InvalidInput(Error):
    field: str | None = None


@strawberry.type(description="A part of the service (the recommender, enrichment) is not running.")
class Unavailable(Error):
    pass


ERROR_TYPES = (NotFound, AccessDenied, InvalidInput, Unavailable)
