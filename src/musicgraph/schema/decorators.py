"""Typed spellings of ``strawberry.field(description=...)`` and friends.

Called with keyword arguments, strawberry's decorators are typed as returning ``Any``, which mypy
--strict rejects as an untyped decorator; these keep the decorated resolver's own type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry

F = TypeVar("F", bound=Callable[..., Any])


def field(*, description: str, graphql_type: Any = None) -> Callable[[F], F]:
    """``graphql_type`` gives the field's type when the resolver's annotation cannot: a resolver
    that returns attached data when its parent prefetched it, and an awaitable otherwise."""
    return cast(
        Callable[[F], F], strawberry.field(description=description, graphql_type=graphql_type)
    )


def mutation(*, description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.mutation(description=description))


def subscription(*, description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.subscription(description=description))
