"""Relay cursor connections: ``edges { cursor node }``, ``pageInfo`` and ``totalCount``.

Most lists page by position: a cursor is the opaque, base64-encoded offset of its node. A user's
listens page by time instead (the cursor holds ``listened_at``), so new listens arriving while a
client pages do not shift what it sees. ``first`` and ``last`` are capped at the page size limit.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import strawberry

from musicgraph.schema.context import PublicError
from musicgraph.schema.decorators import field

NodeT = TypeVar("NodeT")
DEFAULT_PAGE = 20


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="One page of a list, with cursors to the neighbouring pages.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total: strawberry.Private[int | None] = None
    #: counts on demand, for lists that page without knowing their length
    count: strawberry.Private[Callable[[], Awaitable[int]] | None] = None

    @field(description="How many nodes the whole list has.")
    async def total_count(self) -> int:
        if self.total is None:
            self.total = await self.count() if self.count is not None else len(self.edges)
        return self.total

    @field(description="The nodes of the edges, for clients that need no cursors.")
    def nodes(self) -> list[NodeT]:
        return [e.node for e in self.edges]


def encode_cursor(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(kind: str, cursor: str, argument: str) -> int:
    try:
        prefix, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise PublicError(f"{argument}: {cursor!r} is not a cursor of this list") from exc


@dataclass(frozen=True, slots=True)
class Window:
    """The ``offset`` and ``limit`` a page asks for."""

    offset: int
    limit: int


def check_page_size(value: int | None, argument: str, max_page: int) -> None:
    if value is not None and not 0 <= value <= max_page:
        raise PublicError(f"{argument} must be between 0 and {max_page}, got {value}")


def offset_window(
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    total: int,
    max_page: int,
) -> Window:
    """The slice of a list of ``total`` nodes that Relay's arguments select."""
    check_page_size(first, "first", max_page)
    check_page_size(last, "last", max_page)
    start = decode_cursor("o", after, "after") + 1 if after is not None else 0
    end = decode_cursor("o", before, "before") if before is not None else total
    start, end = max(start, 0), min(end, total)
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    if first is None and last is None:
        end = min(end, start + min(DEFAULT_PAGE, max_page))
    return Window(offset=start, limit=max(end - start, 0))


async def offset_page(
    fetch: Callable[[Window], Awaitable[Sequence[NodeT]]],
    *,
    total: int,
    max_page: int,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[NodeT]:
    """Select the window Relay's arguments ask for, fetch exactly that window, wrap it."""
    window = offset_window(
        first=first, after=after, last=last, before=before, total=total, max_page=max_page
    )
    return offset_connection(list(await fetch(window)), window, total)


def offset_connection(nodes: list[NodeT], window: Window, total: int) -> Connection[NodeT]:
    edges = [
        Edge(cursor=encode_cursor("o", window.offset + i), node=n) for i, n in enumerate(nodes)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=window.offset + len(nodes) < total,
            has_previous_page=window.offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total=total,
    )
