"""A faster path through graphql-core for the most common field: a plain attribute of a scalar or
enum type.

graphql-core executes every field the same way: it builds a ``GraphQLResolveInfo``, calls
Strawberry's resolver wrapper (which calls ``getattr``), then completes the value through the
non-null wrapper and the leaf type. A recommendation list with its reasons is several hundred such
fields, and that machinery was most of the request's CPU. For a field that Strawberry itself
treats as basic (no resolver, no field extensions, no arguments) and whose type is a scalar or an
enum, :class:`FastLeafExecutionContext` reads the attribute and coerces it directly; whenever the
value is anything but plainly valid (``None`` for a non-null field, an exception, a value the
scalar refuses) it hands the field to graphql-core's own path, so errors are reported exactly as
before. An object whose selected fields are all such leaves (a reason's ``seedId seedKind share
evidence``, an artist's ``id name``) is answered in one loop, without graphql-core's per-field
paths and completion; if any of its values is not plainly valid, the whole object goes through
graphql-core's path instead. Schema extensions that wrap resolvers (``resolve`` hooks, middleware) turn the fast path
off for the request.

:func:`install_prefetched` does the same for object fields whose resolver only returns what the
parent attached (a listen's track, a track's artists): it answers them with the attribute when
it is set, and calls the resolver through Strawberry otherwise.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLEnumType,
    GraphQLFieldResolver,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from musicgraph.schema.decorators import PREFETCHED


class _Leaf(NamedTuple):
    python_name: str
    coerce: Any  # the leaf type's coerce_output_value
    nullable: bool


_Table = dict[tuple[str, str], _Leaf]
#: An object selection answered in one loop: (response name, leaf) per selected field, or
#: ``None`` when some selected field is not a fast leaf.
_Plan = tuple[tuple[str, _Leaf], ...] | None
_tables: WeakKeyDictionary[GraphQLSchema, _Table] = WeakKeyDictionary()


def _leaf_table(schema: GraphQLSchema) -> _Table:
    """The fast-path fields of ``schema``, by (object type, field name); built once per schema."""
    table = _tables.get(schema)
    if table is not None:
        return table
    table = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
                continue
            if field.args or not getattr(field.resolve, "_is_default", False):
                continue
            if definition.default_resolver is not getattr:
                continue
            leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if not isinstance(leaf, (GraphQLScalarType, GraphQLEnumType)):
                continue
            nullable = not isinstance(field.type, GraphQLNonNull)
            table[type_.name, name] = _Leaf(
                definition.python_name, leaf.coerce_output_value, nullable
            )
    _tables[schema] = table
    return table


def weak_async_helpers(executor: Any) -> None:
    """Point ``executor.async_helpers`` at the executor through a weak reference.

    graphql-core's executor keeps two of its own bound methods on itself (``async_helpers``): a
    reference cycle that kept each finished request's whole object graph (its context,
    DataLoaders, their futures and every model read) alive until a garbage collection, ~300
    objects a user page, and made the collector's pauses the latency tail (gen-1 collections of
    100k objects: 140-180 ms every second or two under load). Without the cycle a finished
    request is freed by reference counting."""
    this = weakref.ref(executor)

    def alive() -> Any:
        found = this()
        if found is None:  # pragma: no cover - a resolver outlived its execution
            raise RuntimeError("the GraphQL execution this work belongs to has finished")
        return found

    def gather(values: Any) -> Any:
        return alive().gather_async_work(values)

    def track(values: Any) -> None:
        alive().track_async_work(values)

    executor.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with the plain-attribute leaf fast path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._leaves = (
            _leaf_table(self.schema) if manager is None or not manager.middlewares else {}
        )
        self._plans: dict[tuple[GraphQLObjectType, int], _Plan] = {}
        weak_async_helpers(self)

    def _plan(self, parent_type: GraphQLObjectType, grouped: Mapping[str, Any]) -> _Plan:
        plan = []
        for response_name, field_details_list in grouped.items():
            node = field_details_list[0].node
            leaf = self._leaves.get((parent_type.name, node.name.value))
            if leaf is None or node.arguments:
                return None
            plan.append((response_name, leaf))
        return tuple(plan)

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        grouped, new_defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        if self._leaves and not new_defer_usages:
            # collect_subfields memoises on the same key and keeps the list alive, so the id
            # stays this selection's for the whole execution.
            key = (return_type, id(field_details_list))
            try:
                plan = self._plans[key]
            except KeyError:
                plan = self._plans[key] = self._plan(return_type, grouped)
            if plan:
                answer = self._answer(plan, result)
                if answer is not None:
                    return answer
        return self.execute_collected_subfields(
            return_type, result, path, grouped, new_defer_usages, position_context
        )

    @staticmethod
    def _answer(plan: tuple[tuple[str, _Leaf], ...], source: Any) -> dict[str, Any] | None:
        """The object's data, or ``None`` when a value needs graphql-core's path (an error)."""
        out: dict[str, Any] = {}
        for response_name, leaf in plan:
            value = getattr(source, leaf.python_name, Undefined)
            if value is None:
                if not leaf.nullable:
                    return None
                out[response_name] = None
                continue
            if value is Undefined or isinstance(value, Exception):
                return None
            try:
                coerced = leaf.coerce(value)
            except Exception:
                return None
            if coerced is None or coerced is Undefined:
                return None
            out[response_name] = coerced
        return out

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        leaf = self._leaves.get((parent_type.name, node.name.value))
        if leaf is not None and not node.arguments:
            value = getattr(source, leaf.python_name, Undefined)
            if value is None:
                if leaf.nullable:
                    return None
            elif value is not Undefined and not isinstance(value, Exception):
                try:
                    coerced = leaf.coerce(value)
                except Exception:
                    coerced = None  # graphql-core's path reports it
                if coerced is not None and coerced is not Undefined:
                    return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


_SHORTCUT = "_musicgraph_prefetched"


def _prefetched_resolver(
    resolve: GraphQLFieldResolver, flag: str, value: str
) -> GraphQLFieldResolver:
    def resolve_prefetched(source: Any, info: Any, **args: Any) -> Any:
        if getattr(source, flag, False):
            return getattr(source, value)
        return resolve(source, info, **args)

    setattr(resolve_prefetched, _SHORTCUT, True)
    return resolve_prefetched


def install_prefetched(schema: GraphQLSchema) -> list[tuple[str, str]]:
    """Give each field declared with ``prefetched=(flag, value)`` (see
    :func:`musicgraph.schema.decorators.field`) a resolve function that returns
    ``source.<value>`` when ``source.<flag>`` is true, and calls Strawberry's resolver otherwise.

    Strawberry's wrapper around a resolver (its ``Info``, argument conversion, field extensions)
    costs several microseconds a call, and a user page's 20 listens with their tracks' artists
    make 40 such calls that only read an attribute. The shortcut sits under any schema
    middleware (extensions' ``resolve`` hooks still see the field); a field with arguments, field
    extensions or permission classes keeps Strawberry's path. Returns the fields that got it, as
    (type, field) names."""
    installed: list[tuple[str, str]] = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if not isinstance(definition, StrawberryField) or field.resolve is None:
                continue
            metadata: Mapping[str, Any] = definition.metadata or {}
            spec = metadata.get(PREFETCHED)
            if spec is None or field.args or definition.extensions:
                continue
            if definition.permission_classes or getattr(field.resolve, _SHORTCUT, False):
                continue
            flag, value = spec
            field.resolve = _prefetched_resolver(field.resolve, flag, value)
            installed.append((type_.name, name))
    return installed
