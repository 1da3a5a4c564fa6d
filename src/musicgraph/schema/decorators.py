"""Typed spellings of ``strawberry.field(description=...)`` and friends.

Called with keyword arguments, strawberry's decorators are typed as returning ``Any``, which mypy
--strict rejects as an untyped decorator; these keep the decorated resolver's own type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry

F = TypeVar("F", bound=Callable[..., Any])


#: strawberry field metadata key: (flag attribute, value attribute) of a prefetched field
PREFETCHED = "musicgraph.prefetched"


def field(
    *, description: str, graphql_type: Any = None, prefetched: tuple[str, str] | None = None
) -> Callable[[F], F]:
    """``graphql_type`` gives the field's type when the resolver's annotation cannot: a resolver
    that returns attached data when its parent prefetched it, and an awaitable otherwise.

    ``prefetched=(flag, value)`` says that the resolver returns ``self.<value>`` whenever
    ``self.<flag>`` is true: the executor then answers with that attribute without calling the
    resolver through Strawberry (see :func:`musicgraph.schema.execution.install_prefetched`)."""
    metadata = {PREFETCHED: prefetched} if prefetched is not None else None
    return cast(
        Callable[[F], F],
        strawberry.field(description=description, graphql_type=graphql_type, metadata=metadata),
    )


def mutation(*, description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.mutation(description=description))


def subscription(*, description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.subscription(description=description))
