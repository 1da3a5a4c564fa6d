"""The request fast paths: parents prefetch what the query selects below them, and plain scalar
attributes skip graphql-core's resolver machinery, without changing any answer or error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry

from musicgraph.schema.context import Info
from musicgraph.schema.execution import FastLeafExecutionContext
from musicgraph.schema.selection import selects
from tests.schema.test_round_trips import graph, run

seen: dict[str, bool] = {}


@strawberry.type
class Leaf:
    name: str
    size: int
    maybe: str | None = None


@strawberry.type
class Box:
    leaf: Leaf


@strawberry.type
class Root:
    @strawberry.field
    def box(self, info: Info) -> Box:
        seen["leaf.name"] = selects(info, "leaf", "name")
        seen["leaf.size"] = selects(info, "leaf", "size")
        return Box(leaf=Leaf(name="x", size=1))

    @strawberry.field
    def broken(self) -> Leaf:
        return Leaf(name=None, size="big")  # type: ignore[arg-type]


def execute(query: str, *, fast: bool) -> Any:
    schema = strawberry.Schema(
        query=Root, execution_context_class=FastLeafExecutionContext if fast else None
    )
    return schema.execute_sync(query)


def test_selects_looks_through_fragments_and_aliases() -> None:
    """A field selected under an alias, an inline fragment or a named fragment counts as
    selected; one the query does not name does not."""
    execute("{ box { l: leaf { ... on Leaf { ...F } } } } fragment F on Leaf { name }", fast=True)
    assert seen == {"leaf.name": True, "leaf.size": False}


def test_fast_leaves_answer_and_fail_as_graphql_core_does() -> None:
    """Plain scalar fields give the same data, and the same errors for a null in a non-null
    field or a value the scalar refuses, with and without the fast path."""
    for query in (
        "{ box { leaf { name size maybe } } }",
        "{ broken { name } }",
        "{ broken { size } }",
    ):
        fast, plain = execute(query, fast=True), execute(query, fast=False)
        assert fast.data == plain.data
        assert [e.formatted for e in fast.errors or []] == [e.formatted for e in plain.errors or []]
    assert execute("{ broken { size } }", fast=True).errors


async def test_listen_tracks_are_loaded_only_when_selected(tmp_path: Path) -> None:
    """A page of listens loads its tracks (one call) only when the query selects them, also
    through a fragment, and the answer is the one the per-listen resolvers give."""
    store = await graph(tmp_path / "g.db", 5)
    try:
        _bare, bare_calls = await run(
            store, "{ me { listens(first: 5) { edges { node { listenedAt } } } } }", user=True
        )
        assert bare_calls.calls["get_tracks"] == 0
        query = """{ me { listens(first: 5) { edges { node { ...L } } } } }
            fragment L on Listen { track { title artists { name } } }"""
        data, calls = await run(store, query, user=True)
        assert calls.calls["get_tracks"] == 1 and calls.calls["get_artists"] == 1
        titles = [e["node"]["track"]["title"] for e in data["me"]["listens"]["edges"]]
        assert sorted(titles) == [f"Song {i:03}" for i in range(5)]
        assert all(e["node"]["track"]["artists"] for e in data["me"]["listens"]["edges"])
    finally:
        await store.close()
