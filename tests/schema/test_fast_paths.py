"""The request fast paths: parents prefetch what the query selects below them, and plain scalar
attributes skip graphql-core's resolver machinery, without changing any answer or error."""

from __future__ import annotations

import asyncio
import typing
from pathlib import Path
from typing import Annotated, Any

import strawberry
from strawberry.extensions import ParserCache

from musicgraph.errors import StoreUnavailableError
from musicgraph.events import EventBus
from musicgraph.schema.build import MASKED_MESSAGE, build_schema
from musicgraph.schema.context import AppState, Context, Info, Viewer
from musicgraph.schema.execution import FastLeafExecutionContext, install_direct_resolvers
from musicgraph.schema.loaders import Loaders
from musicgraph.schema.selection import selects
from musicgraph.settings import Settings
from tests.schema.test_round_trips import CountingStore, graph, run

seen: dict[str, bool] = {}


@strawberry.type
class Leaf:
    name: str
    size: int
    maybe: str | None = None


@strawberry.type
class Box:
    leaf: Leaf


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag(Named):
    uses: int


@strawberry.type
class Other:
    note: str


@strawberry.type
class Shelf:
    boxes: list[Box]
    maybe_boxes: list[Box | None] | None = None
    first: Box | None = None
    strict: Box = strawberry.field(default_factory=lambda: Box(leaf=Leaf(name="s", size=2)))
    named: list[Named] = strawberry.field(default_factory=list)
    either: list[Annotated[Tag | Other, strawberry.union("Either")]] = strawberry.field(
        default_factory=list
    )

    @strawberry.field
    def counted(self) -> int:
        return len(self.boxes)

    @strawberry.field
    async def later(self) -> Leaf:
        return self.boxes[0].leaf

    @strawberry.field
    async def failing(self) -> Leaf:
        raise ValueError("this resolver fails")


def _shelf(boxes: list[Any], **kwargs: Any) -> Shelf:
    return Shelf(boxes=boxes, **kwargs)


@strawberry.type
class Root:
    @strawberry.field
    def shelf(self) -> Shelf:
        return _shelf(
            [Box(leaf=Leaf(name="a", size=1)), Box(leaf=Leaf(name="b", size=2, maybe="m"))],
            maybe_boxes=[None, Box(leaf=Leaf(name="c", size=3))],
            named=[Tag(name="t", uses=4)],
            either=[Tag(name="u", uses=5), Other(note="o")],
        )

    @strawberry.field
    def bad_shelf(self) -> Shelf | None:
        return _shelf(
            [Box(leaf=None), Box(leaf=Leaf(name="b", size=2))],  # type: ignore[arg-type]
            maybe_boxes=[Box(leaf=Leaf(name=None, size=1))],  # type: ignore[arg-type]
            first=Box(leaf=Leaf(name="f", size="x")),  # type: ignore[arg-type]
            strict=None,
            named=[Other(note="not named")],  # type: ignore[list-item]
            either=["a string"],  # type: ignore[list-item]
        )

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
        query=Root,
        types=[Tag],
        execution_context_class=FastLeafExecutionContext if fast else None,
    )
    return asyncio.run(schema.execute(query))


def test_selects_looks_through_fragments_and_aliases() -> None:
    """A field selected under an alias, an inline fragment or a named fragment counts as
    selected; one the query does not name does not."""
    execute("{ box { l: leaf { ... on Leaf { ...F } } } } fragment F on Leaf { name }", fast=True)
    assert seen == {"leaf.name": True, "leaf.size": False}


def test_fast_paths_answer_and_fail_as_graphql_core_does() -> None:
    """Plain scalar and object fields (lists, nulls, interfaces, unions, fields with resolvers
    below them) give the same data, and the same errors at the same paths for a null in a
    non-null field, a value the scalar refuses, an object of the wrong type or a failing
    resolver, with and without the fast paths."""
    for query in (
        "{ box { leaf { name size maybe } } }",
        "{ box { leaf { a: name b: name size ... on Leaf { maybe } } } }",
        "{ box { leaf { name __typename } } }",
        "{ broken { name } }",
        "{ broken { size } }",
        "{ broken { size maybe } }",
        "{ shelf { boxes { leaf { name size maybe } } maybeBoxes { leaf { name } } first { "
        "leaf { name } } strict { leaf { size } } named { name ... on Tag { uses } } "
        "either { __typename ... on Tag { name uses } ... on Other { note } } } }",
        "{ shelf { boxes { leaf { n: name n2: name ...on Leaf { size } } } later { name } } }",
        "{ shelf { boxes { leaf @skip(if: true) { name } } } }",
        "{ shelf { strict { leaf { name } } failing { name } } }",
        "{ badShelf { boxes { leaf { name } } } }",
        "{ badShelf { maybeBoxes { leaf { name } } } }",
        "{ badShelf { first { leaf { size } } } }",
        "{ badShelf { strict { leaf { size } } } }",
        "{ badShelf { named { name } } }",
        "{ badShelf { either { __typename } } }",
        "{ badShelf { counted } shelf { first { leaf { name } } } }",
    ):
        fast, plain = execute(query, fast=True), execute(query, fast=False)
        assert fast.data == plain.data, query
        assert [e.formatted for e in fast.errors or []] == [
            e.formatted for e in plain.errors or []
        ], query
    assert execute("{ broken { size } }", fast=True).errors


class CountingContext(FastLeafExecutionContext):
    fields: list[str] = []  # noqa: RUF012 - one test's record

    def execute_field(self, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        CountingContext.fields.append(details[0].node.name.value)
        return super().execute_field(parent_type, source, details, *rest)


def test_plain_objects_and_leaves_are_answered_without_per_field_execution() -> None:
    """Below a field with a resolver, plain attributes (objects and leaves, and ``__typename``)
    never reach per-field execution; only fields with resolvers do."""
    schema = strawberry.Schema(query=Root, execution_context_class=CountingContext)
    CountingContext.fields = []
    result = schema.execute_sync("{ box { leaf { name size maybe __typename } } }")
    assert result.data == {
        "box": {"leaf": {"name": "x", "size": 1, "maybe": None, "__typename": "Leaf"}}
    }
    assert CountingContext.fields == ["box"]
    CountingContext.fields = []
    schema.execute_sync("{ shelf { boxes { leaf { name } } counted } }")
    assert CountingContext.fields == ["shelf", "counted"]


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


class TracksUnavailable(CountingStore):
    """A store whose batched track read fails."""

    def __getattr__(self, name: str) -> Any:
        if name != "get_tracks":
            return super().__getattr__(name)

        async def failing(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            raise StoreUnavailableError("get_tracks: the store is down")

        return failing


async def test_a_failed_prefetch_fails_each_field_where_it_was_asked(tmp_path: Path) -> None:
    """When the listens' tracks cannot be loaded, each listen's track is null with its own masked
    error (as without prefetching) and the rest of the page is there, after one store call."""
    store = await graph(tmp_path / "g.db", 3)
    try:
        failing = TracksUnavailable(store)
        settings = Settings.from_env({}, env_file=None)
        state = AppState(settings=settings, store=failing, bus=EventBus())  # type: ignore[arg-type]
        viewer = Viewer(user=await store.get_user_by_name("listener"))
        loaders = Loaders(failing, page_size=100)  # type: ignore[arg-type]
        result = await build_schema(settings).execute(
            "{ me { listens(first: 3) { edges { node { listenedAt track { title } } } } } }",
            context_value=Context(state=state, viewer=viewer, loaders=loaders),
        )
        assert result.data is not None
        edges = result.data["me"]["listens"]["edges"]
        assert [e["node"]["track"] for e in edges] == [None, None, None]
        assert all(isinstance(e["node"]["listenedAt"], int) for e in edges)
        assert sorted(tuple(e.path or ()) for e in result.errors or []) == [
            ("me", "listens", "edges", i, "node", "track") for i in range(3)
        ]
        assert {e.message for e in result.errors or []} == {MASKED_MESSAGE}
        assert failing.calls["get_tracks"] == 1
    finally:
        await store.close()


class CollectingContext(FastLeafExecutionContext):
    collected: list[str] = []  # noqa: RUF012 - one test's record

    def _collect(self, type_: Any, details: Any) -> Any:
        CollectingContext.collected.append(type_.name)
        return super()._collect(type_, details)


def test_a_document_is_planned_once_unless_its_variables_change_the_selection() -> None:
    """Repeating a parsed document reuses its plans (no field is collected again) and still
    answers from the new data; a document whose ``@include`` reads a variable is planned per
    execution, so each gets the fields its variables select."""
    schema = strawberry.Schema(
        query=Root, extensions=[ParserCache], execution_context_class=CollectingContext
    )
    query = "{ shelf { boxes { leaf { name } } first { leaf { name } } } }"
    CollectingContext.collected = []
    first = schema.execute_sync(query)
    planned = len(CollectingContext.collected)
    assert planned > 0
    assert schema.execute_sync(query).data == first.data
    assert len(CollectingContext.collected) == planned

    dynamic = "query Q($on: Boolean!) { shelf { boxes { leaf { name size @include(if: $on) } } } }"
    answers = [
        schema.execute_sync(dynamic, variable_values={"on": on}).data for on in (True, False, True)
    ]
    sizes = [[b["leaf"].get("size") for b in a["shelf"]["boxes"]] for a in answers]  # type: ignore[index]
    assert sizes == [[1, 2], [None, None], [1, 2]]
    assert all("size" not in b["leaf"] for b in answers[1]["shelf"]["boxes"])  # type: ignore[index]


@strawberry.type
class Greeter:
    prefix: str

    @strawberry.field
    def greet(self, info: strawberry.Info, user_name: str, times: int = 1) -> str:
        return f"{self.prefix} {user_name}" * times + f" ({info.field_name})"

    @strawberry.field
    async def later(self, id: strawberry.ID | None = None, loud: bool = False) -> str | None:
        if id == "bad":
            raise ValueError("no such id")
        return None if id is None else (id.upper() if loud else id)

    @strawberry.field
    def echo(self, values: list[int]) -> list[int]:
        return values


@strawberry.type
class GreeterRoot:
    @strawberry.field
    def greeter(self, prefix: str = "hi") -> Greeter:
        return Greeter(prefix=prefix)


def test_direct_resolvers_answer_and_fail_as_strawberry_does() -> None:
    """Resolvers with plain scalar arguments, called directly, get the same arguments (Python
    names, defaults, ``self`` and ``Info``) and give the same answers and errors as through
    Strawberry; a field with a list argument keeps Strawberry's path."""

    def build(direct: bool) -> strawberry.Schema:
        schema = strawberry.Schema(query=GreeterRoot)
        if direct:
            assert sorted(install_direct_resolvers(schema)) == [
                ("Greeter", "greet"),
                ("Greeter", "later"),
                ("GreeterRoot", "greeter"),
            ]
        return schema

    fast, plain = build(True), build(False)
    for query in (
        '{ greeter { greet(userName: "ada") } }',
        '{ greeter(prefix: "yo") { greet(userName: "ada", times: 2) later } }',
        '{ greeter { a: later(id: "x", loud: true) b: later(id: "y") echo(values: [1, 2]) } }',
        '{ greeter { later(id: "bad") greet(userName: "z") } }',
    ):
        got, want = asyncio.run(fast.execute(query)), asyncio.run(plain.execute(query))
        assert got.data == want.data, query
        assert [e.formatted for e in got.errors or []] == [
            e.formatted for e in want.errors or []
        ], query
    assert asyncio.run(fast.execute('{ greeter { later(id: "bad") } }')).errors


def test_the_engines_reasons_answer_for_the_graphql_reason_type() -> None:
    """Every plain field of the GraphQL ``Reason`` is an attribute of the engine's ``Reason`` of
    a type the field accepts, so the engine's objects are served without copying."""
    from musicgraph.recommender.explain import Reason as EngineReason
    from musicgraph.schema.types.recommendation import Reason

    hints = typing.get_type_hints(EngineReason)
    engine_fields = {name: hints[name] for name in EngineReason._fields}
    graphql_fields = {
        f.python_name: f for f in Reason.__strawberry_definition__.fields if not f.base_resolver
    }
    assert set(graphql_fields) == set(engine_fields)
    same: dict[object, object] = {str: str, float: float, int: int, tuple[str, ...]: list[str]}
    for name, annotation in engine_fields.items():
        assert same[annotation] == graphql_fields[name].type, name
