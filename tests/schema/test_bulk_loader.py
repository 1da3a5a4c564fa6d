"""The request's DataLoaders read a list of keys in one call of their batch function, share
what is in flight or known with single loads, and report failures per key as DataLoader does."""

from __future__ import annotations

import asyncio

import pytest
from strawberry.exceptions import WrongNumberOfResultsReturned

from musicgraph.schema.loaders import BulkLoader


class Source:
    """A batch function that records every call and fails where told."""

    def __init__(self, *, missing: frozenset[str] = frozenset(), broken: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.missing = missing
        self.broken = broken
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, keys: list[str]) -> list[str | BaseException]:
        self.calls.append(list(keys))
        await self.gate.wait()
        if self.broken:
            raise RuntimeError("the store is down")
        return [KeyError(k) if k in self.missing else k.upper() for k in keys]


async def test_many_keys_are_one_call_and_known_keys_are_not_read_again() -> None:
    """A list of keys (with repeats) is one call for the distinct keys; asking again, or for a
    mix of known and new keys, reads only what is new."""
    source = Source()
    loader = BulkLoader(load_fn=source)
    assert await loader.load_many(["a", "b", "a", "c"]) == ["A", "B", "A", "C"]
    assert await loader.load_many(["c", "a"]) == ["C", "A"]
    assert await loader.load_many(["a", "d", "e"]) == ["A", "D", "E"]
    assert await loader.load("b") == "B"
    assert source.calls == [["a", "b", "c"], ["d", "e"]]


async def test_loads_during_a_read_in_flight_wait_for_it() -> None:
    """A single load, or another list, of keys being read waits for that read instead of
    starting its own."""
    source = Source()
    loader = BulkLoader(load_fn=source)
    source.gate.clear()
    many = asyncio.ensure_future(loader.load_many(["a", "b", "c"]))
    await asyncio.sleep(0)
    one, again = loader.load("b"), asyncio.ensure_future(loader.load_many(["c", "a"]))
    source.gate.set()
    assert await many == ["A", "B", "C"]
    assert await one == "B"
    assert await again == ["C", "A"]
    assert source.calls == [["a", "b", "c"]]


async def test_failures_are_per_key_and_kept() -> None:
    """A key the batch answers with an error fails that list and every later load of the key,
    without another call; a batch function that fails, or answers with the wrong number of
    values, fails the list."""
    source = Source(missing=frozenset({"b"}))
    loader = BulkLoader(load_fn=source)
    with pytest.raises(KeyError):
        await loader.load_many(["a", "b"])
    assert await loader.load("a") == "A"
    with pytest.raises(KeyError):
        await loader.load("b")
    assert source.calls == [["a", "b"]]

    down = BulkLoader(load_fn=Source(broken=True))
    with pytest.raises(RuntimeError, match="the store is down"):
        await down.load_many(["x", "y"])
    with pytest.raises(RuntimeError, match="the store is down"):
        await down.load("y")

    async def short(keys: list[str]) -> list[str]:
        return keys[:1]

    with pytest.raises(WrongNumberOfResultsReturned):
        await BulkLoader(load_fn=short).load_many(["x", "y"])


async def test_a_cancelled_read_is_read_again() -> None:
    """When the request reading a list is cancelled, a later load of those keys reads them."""
    source = Source()
    loader = BulkLoader(load_fn=source)
    source.gate.clear()
    many = asyncio.ensure_future(loader.load_many(["a", "b"]))
    await asyncio.sleep(0)
    many.cancel()
    with pytest.raises(asyncio.CancelledError):
        await many
    source.gate.set()
    assert await loader.load_many(["a", "b"]) == ["A", "B"]
    assert source.calls == [["a", "b"], ["a", "b"]]


async def test_a_list_cancelled_before_it_starts_leaves_nothing_pending() -> None:
    """A list load whose task is cancelled before it ever runs leaves no key waiting: the next
    load of those keys reads them."""
    source = Source()
    loader = BulkLoader(load_fn=source)
    never = asyncio.ensure_future(loader.load_many(["a", "b"]))
    never.cancel()
    with pytest.raises(asyncio.CancelledError):
        await never
    assert await asyncio.wait_for(loader.load_many(["a", "b"]), 5) == ["A", "B"]
    assert await asyncio.wait_for(loader.load("a"), 5) == "A"
