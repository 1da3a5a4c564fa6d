"""Fields declared ``prefetched``: answered from the attribute the parent attached, through the
resolver otherwise, with schema extensions still seeing them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension

from musicgraph.schema.build import build_schema
from musicgraph.schema.decorators import PREFETCHED, field
from musicgraph.schema.execution import FastLeafExecutionContext, install_prefetched
from musicgraph.settings import Settings

calls: list[str] = []


@strawberry.type
class Item:
    name: str


@strawberry.type
class Holder:
    attached: strawberry.Private[bool] = False
    item_value: strawberry.Private[Item | None] = None

    @field(description="The item.", graphql_type=Item | None, prefetched=("attached", "item_value"))
    def item(self) -> Item | None:
        calls.append("item")
        return Item(name="loaded")

    @field(description="With an argument: never shortcut.", graphql_type=Item | None)
    def other(self, name: str = "x") -> Item | None:
        calls.append("other")
        return Item(name=name)


@strawberry.type
class Root:
    @strawberry.field
    def holders(self) -> list[Holder]:
        return [
            Holder(attached=True, item_value=Item(name="attached")),
            Holder(),
            Holder(attached=True),
        ]


class SeesResolves(SchemaExtension):
    def resolve(
        self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        calls.append(f"hook:{info.field_name}")
        return _next(root, info, *args, **kwargs)


def schema(*extensions: type[SchemaExtension]) -> strawberry.Schema:
    s = strawberry.Schema(
        query=Root, extensions=list(extensions), execution_context_class=FastLeafExecutionContext
    )
    assert install_prefetched(s._schema) == [("Holder", "item")]
    return s


def test_a_prefetched_field_answers_from_the_attribute_and_loads_otherwise() -> None:
    """With the flag set the attached value (also None) is the answer and the resolver is not
    called; without it the resolver answers, as before."""
    calls.clear()
    result = schema().execute_sync("{ holders { item { name } } }")
    assert result.errors is None
    assert result.data == {
        "holders": [{"item": {"name": "attached"}}, {"item": {"name": "loaded"}}, {"item": None}]
    }
    assert calls == ["item"]


def test_schema_extensions_still_see_prefetched_fields() -> None:
    """An extension's ``resolve`` hook runs for a shortcut field as for any other."""
    calls.clear()
    result = schema(SeesResolves).execute_sync("{ holders { item { name } } }")
    assert result.errors is None
    assert calls.count("hook:item") == 3 and calls.count("item") == 1


def test_the_api_shortcuts_the_four_attached_fields_by_attributes_that_exist() -> None:
    """The API's schema shortcuts a listen's track, a track's artists, a recommendation's item and
    an artist count's artist, and each names attributes its type has (a misspelt one would
    silently fall back to the slower resolver)."""
    built = build_schema(Settings.from_env({}, env_file=None))
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for type_ in built._schema.type_map.values():
        for name, f in (getattr(type_, "fields", None) or {}).items():
            definition = (f.extensions or {}).get("strawberry-definition")
            spec = getattr(definition, "metadata", {}).get(PREFETCHED)
            if spec is not None:
                assert getattr(f.resolve, "_musicgraph_prefetched", False), (type_.name, name)
                origin = definition.origin
                attrs = {x.name for x in dataclasses.fields(origin)}
                assert set(spec) <= attrs, (type_.name, spec, attrs)
                found[type_.name, name] = spec
    assert sorted(found) == [
        ("ArtistCount", "artist"),
        ("Listen", "track"),
        ("Recommendation", "item"),
        ("Track", "artists"),
    ]
