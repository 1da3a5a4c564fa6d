"""Relay windows and cursors."""

from __future__ import annotations

import pytest

from musicgraph.schema.context import PublicError
from musicgraph.schema.types.connection import (
    Window,
    decode_cursor,
    encode_cursor,
    offset_connection,
    offset_window,
)


def window(total: int = 10, **kwargs: object) -> Window:
    args = {"first": None, "after": None, "last": None, "before": None, **kwargs}
    return offset_window(total=total, max_page=5, **args)  # type: ignore[arg-type]


def test_windows_select_the_relay_slices() -> None:
    """first/after, last/before and their combinations select the slices the Relay spec names."""
    c = lambda i: encode_cursor("o", i)  # noqa: E731
    assert window(first=3) == Window(0, 3)
    assert window(first=3, after=c(2)) == Window(3, 3)
    assert window(last=3) == Window(7, 3)
    assert window(last=3, before=c(5)) == Window(2, 3)
    assert window(first=5, after=c(7)) == Window(8, 2)
    assert window(after=c(1), before=c(4)) == Window(2, 2)
    assert window() == Window(0, 5)  # no size asked: the default, capped at the limit
    assert window(total=0, first=3) == Window(0, 0)


@pytest.mark.parametrize("kwargs", [{"first": 6}, {"last": 6}, {"first": -1}])
def test_page_size_over_the_cap_is_refused(kwargs: dict[str, int]) -> None:
    """A page larger than the cap (or negative) is an error that names the argument and cap."""
    with pytest.raises(PublicError, match="between 0 and 5"):
        window(**kwargs)


@pytest.mark.parametrize("cursor", ["garbage", encode_cursor("t", 5), "b206eA=="])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    """A cursor of another list or kind, or no cursor at all, is refused with its argument named."""
    with pytest.raises(PublicError, match=r"after: .* is not a cursor of this list"):
        decode_cursor("o", cursor, "after")


def test_connection_page_info() -> None:
    """pageInfo reports neighbours on both sides and the edge cursors."""
    conn = offset_connection(["c", "d"], Window(2, 2), total=5)
    assert conn.total == 5 and conn.nodes() == ["c", "d"]
    assert conn.page_info.has_previous_page and conn.page_info.has_next_page
    assert decode_cursor("o", conn.page_info.end_cursor or "", "after") == 3
