"""Faster paths through graphql-core for the fields that only read an attribute.

graphql-core executes every field the same way: it builds a ``GraphQLResolveInfo``, calls
Strawberry's resolver wrapper (which calls ``getattr``), then completes the value through the
non-null wrapper, the list and the object or leaf type. A user page or a recommendation list is
several hundred such fields, and that machinery was most of the request's CPU.

:class:`FastLeafExecutionContext` plans each object selection once per request (once for every
execution of an operation whose selection does not depend on its variables): a field that
Strawberry itself treats as basic (no resolver, no field extensions, no arguments) is read with
``getattr``; a scalar or enum is coerced in place; an object, a list of objects or an interface or
union of Strawberry objects is completed recursively with its own plan (its type checked as
graphql-core checks it); ``__typename`` is the type's name; every other field (a resolver,
arguments, ``@stream``, ``@defer`` below) goes through graphql-core's ``execute_field``. Whenever
a value is anything but plainly valid (``None`` for a non-null field, an exception, a value the
scalar refuses, an object of another type, not a list), that field is executed again by
graphql-core, so errors are reported exactly as before, at the same path and with the same nulls;
errors of resolvers below a planned field are handled at each level as graphql-core handles
them. Schema extensions that wrap resolvers (``resolve`` hooks, middleware) turn the fast paths
off for the request.

:func:`install_prefetched` does the same for object fields whose resolver only returns what the
parent attached (a listen's track, a track's artists): it answers them with the attribute when
it is set, and calls the resolver through Strawberry otherwise; the plans read that attribute
directly. :func:`install_direct_resolvers` calls resolvers whose arguments are plain scalars
without Strawberry's per-call argument conversion.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast
from weakref import WeakKeyDictionary

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    StringValueNode,
    Undefined,
    visit,
)
from graphql import Visitor as Visitor_
from graphql.pyutils import Path, gather_with_cancel
from strawberry import ID
from strawberry.schema.schema import Schema, StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

from musicgraph.schema.decorators import PREFETCHED


class _Leaf(NamedTuple):
    python_name: str
    coerce: Any  # the leaf type's coerce_output_value
    nullable: bool


#: ``_Entry.kind``: a plain leaf, an object (or list of objects) read from an attribute, the
#: ``__typename`` meta field, or any other field (graphql-core's ``execute_field``)
_LEAF, _OBJECT, _TYPENAME, _OTHER = range(4)
#: a value the fast path does not complete (the field goes through graphql-core instead)
_MISS: Any = object()
_KEPT_DIRECTIVES = frozenset(("skip", "include"))  # applied when fields are collected
#: classes of values that are neither awaitable nor exceptions (answered objects and lists,
#: plain scalars): checked by identity before the slower generic tests
_SETTLED = frozenset((dict, list, str, int, float, bool, type(None)))


def _leaf_value(leaf: _Leaf, source: Any) -> Any:
    """``source``'s value of a plain leaf field, coerced, or ``_MISS`` when it is not plainly
    valid (``None`` where it may not be, an exception, a value the scalar refuses): graphql-core's
    path then reports it."""
    value = getattr(source, leaf.python_name, Undefined)
    if value is None:
        return None if leaf.nullable else _MISS
    if value is Undefined or (value.__class__ not in _SETTLED and isinstance(value, Exception)):
        return _MISS
    try:
        coerced = leaf.coerce(value)
    except Exception:
        return _MISS
    return _MISS if coerced is None or coerced is Undefined else coerced


class _Entry(NamedTuple):
    """One selected field of an object selection (see :meth:`FastLeafExecutionContext._plan`)."""

    name: str  # response name
    kind: int
    leaf: _Leaf | None
    attr: str  # _OBJECT: the attribute holding the value
    flag: str | None  # _OBJECT: the attribute that says ``attr`` is set (prefetched); None: always
    type_: GraphQLOutputType  # _OBJECT: the field's type
    details: Any  # the field details list
    #: _OBJECT: the selection below the field, per object type met there (see ``_selection``)
    children: dict[GraphQLObjectType, _Selection] | None


_Plan = tuple[_Entry, ...] | None


class _Selection(NamedTuple):
    """An object selection: its plan (``None``: graphql-core's path) and collected fields."""

    plan: _Plan
    grouped: Any
    defers: Any


#: Selections shared by every execution of one operation, when nothing in it depends on the
#: variables (no ``@skip``/``@include`` with a variable, no ``@defer``/``@stream``): by the
#: operation's id (graphql-core hashes a node by walking the whole tree, tens of microseconds
#: a request), with a weak reference that drops the entry when the parser cache drops the
#: document. Within an entry, selections are keyed by schema, object type and the ids of the
#: field nodes (the document is alive, so they are its nodes).
_shared: dict[int, tuple[weakref.ref[OperationDefinitionNode], dict[Any, _Selection] | None]] = {}


class _Dynamic(Exception):
    """Raised by :func:`_check_static`'s visitor at the first thing that varies."""


def _check_static(node: Node) -> None:
    class Visitor(Visitor_):
        def enter_directive(self, directive: DirectiveNode, *_: Any) -> None:
            if directive.name.value in ("defer", "stream"):
                raise _Dynamic
            for argument in directive.arguments or ():
                if not isinstance(
                    argument.value, (BooleanValueNode, IntValueNode, StringValueNode)
                ):
                    raise _Dynamic

        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: Any) -> None:
            if getattr(spread, "arguments", None):
                raise _Dynamic

    visit(node, Visitor())


def _is_static(operation: OperationDefinitionNode, fragments: Mapping[str, Any]) -> bool:
    try:
        _check_static(operation)
        for fragment in fragments.values():
            _check_static(fragment)
    except _Dynamic:
        return False
    return True


def _shared_selections(
    operation: OperationDefinitionNode, fragments: Mapping[str, Any]
) -> dict[Any, _Selection] | None:
    """The selections every execution of ``operation`` shares, or ``None`` when its selection
    depends on its variables."""
    key = id(operation)
    found = _shared.get(key)
    if found is not None and found[0]() is operation:
        return found[1]
    shared: dict[Any, _Selection] | None = {} if _is_static(operation, fragments) else None

    def forget(ref: weakref.ref[OperationDefinitionNode]) -> None:
        entry = _shared.get(key)
        if entry is not None and entry[0] is ref:
            del _shared[key]

    _shared[key] = (weakref.ref(operation, forget), shared)
    return shared


_Table = dict[tuple[str, str], _Entry]
_tables: WeakKeyDictionary[GraphQLSchema, _Table] = WeakKeyDictionary()


def _shape(field: GraphQLField) -> _Entry | None:
    """The fast path of a schema field, whatever the query (``name`` and ``details`` unset), or
    ``None`` when it has none."""
    definition = (field.extensions or {}).get("strawberry-definition")
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
        if (
            definition.is_basic_field
            and getattr(field.resolve, "_is_default", False)
            and definition.default_resolver is getattr
        ):
            leaf = _Leaf(
                definition.python_name,
                named.coerce_output_value,
                not isinstance(field.type, GraphQLNonNull),
            )
            return _Entry("", _LEAF, leaf, "", None, field.type, None, None)
        return None
    if isinstance(named, GraphQLList):
        item = named.of_type
        named = item.of_type if isinstance(item, GraphQLNonNull) else item
    if not isinstance(named, (GraphQLObjectType, GraphQLUnionType, GraphQLInterfaceType)):
        return None  # a list of lists, or of leaves
    if getattr(field.resolve, _SHORTCUT, False):
        metadata: Mapping[str, Any] = definition.metadata or {}
        flag, value = metadata[PREFETCHED]
        return _Entry("", _OBJECT, None, value, flag, field.type, None, None)
    if (
        definition.is_basic_field
        and getattr(field.resolve, "_is_default", False)
        and definition.default_resolver is getattr
        and not definition.extensions
        and not definition.permission_classes
    ):
        return _Entry("", _OBJECT, None, definition.python_name, None, field.type, None, None)
    return None


def _shape_table(schema: GraphQLSchema) -> _Table:
    """The fast paths of ``schema``'s fields, by (object type, field name); built once per schema
    (after :func:`install_prefetched`)."""
    table = _tables.get(schema)
    if table is not None:
        return table
    table = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        table[type_.name, "__typename"] = _Entry("", _TYPENAME, None, "", None, type_, None, None)
        for name, field in type_.fields.items():
            shape = _shape(field)
            if shape is not None:
                table[type_.name, name] = shape
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


def _generated_is_type_of(type_: GraphQLObjectType) -> bool:
    """Whether ``type_`` has no ``is_type_of`` or Strawberry's own (an ``isinstance`` check that
    ignores its info argument)."""
    check = type_.is_type_of
    return check is None or getattr(check, "__qualname__", "").endswith(
        "_get_is_type_of.<locals>.is_type_of"
    )


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with the plain-attribute fast paths."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._fast = manager is None or not manager.middlewares
        self._shapes = _shape_table(self.schema) if self._fast else {}
        self._plans: dict[Any, _Selection] = {}
        self._shared = (
            _shared_selections(self.operation, self.fragment_definitions) if self._fast else None
        )
        weak_async_helpers(self)

    # --- plans ------------------------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, grouped: Mapping[str, Any]) -> _Plan:
        """How to answer an object selection, field by field; ``None`` when no field is faster
        than graphql-core's own path."""
        shapes = self._shapes
        type_name = parent_type.name
        plan: list[_Entry] = []
        fast = False
        for name, details in grouped.items():
            node = details[0].node
            shape = shapes.get((type_name, node.name.value))
            if (
                shape is None
                or node.arguments
                or (
                    shape.kind == _OBJECT
                    and node.directives
                    and any(d.name.value not in _KEPT_DIRECTIVES for d in node.directives)
                )  # @stream and the like: graphql-core's path
            ):
                plan.append(_Entry(name, _OTHER, None, "", None, parent_type, details, None))
            else:
                children: dict[GraphQLObjectType, _Selection] | None = (
                    {} if shape.kind == _OBJECT else None
                )
                plan.append(shape._replace(name=name, details=details, children=children))
                fast = True
        return tuple(plan) if fast else None

    def _selection(self, type_: GraphQLObjectType, details: Any) -> _Selection:
        """The selection of ``details`` on ``type_``, planned once per execution, or once for
        all executions of an operation that does not depend on its variables."""
        shared = self._shared
        if shared is not None:
            key: Any = (self.schema, type_, *(id(d.node) for d in details))
            found = shared.get(key)
        else:
            # collect_subfields memoises on the same key and keeps the list alive, so the id
            # stays this selection's for the whole execution.
            key = (type_, id(details))
            found = self._plans.get(key)
        if found is None:
            found = self._collect(type_, details)
            (shared if shared is not None else self._plans)[key] = found
        return found

    def _collect(self, type_: GraphQLObjectType, details: Any) -> _Selection:
        grouped, new_defer_usages, _ = self.collect_subfields(type_, details)
        plan = None if new_defer_usages else self._plan(type_, grouped)
        return _Selection(plan, grouped, new_defer_usages)

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if self._fast:
            plan, grouped, new_defer_usages = self._selection(return_type, field_details_list)
            if plan is not None:
                return self._answer(return_type, plan, result, path)
        else:
            grouped, new_defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        return self.execute_collected_subfields(
            return_type, result, path, grouped, new_defer_usages, position_context
        )

    # --- answering ----------------------------------------------------------------------------

    def _answer(
        self, parent_type: GraphQLObjectType, plan: tuple[_Entry, ...], source: Any, path: Path
    ) -> Any:
        """The object's data (or an awaitable of it), as ``execute_fields`` gives it: plain
        leaves coerced in place, objects read from attributes completed recursively, and every
        field whose value is not plainly valid executed by graphql-core (which reports it)."""
        out: dict[str, Any] = {}
        pending: list[str] | None = None
        for entry in plan:
            kind = entry.kind
            result: Any = _MISS
            field_path: Path | None = None
            if kind == _LEAF:
                assert entry.leaf is not None
                result = _leaf_value(entry.leaf, source)
                if result is not _MISS:
                    out[entry.name] = result
                    continue
            elif kind == _TYPENAME:
                out[entry.name] = parent_type.name
                continue
            elif kind == _OBJECT:
                field_path = Path(path, entry.name, parent_type.name)
                if entry.flag is None or getattr(source, entry.flag, False):
                    value = getattr(source, entry.attr, _MISS)
                    if value is not _MISS and not isinstance(value, Exception):
                        try:
                            result = self._complete(entry, value, field_path)
                        except Exception as error:
                            self.handle_field_error(error, entry.type_, entry.details, field_path)
                            result = None
            if result is _MISS:  # any other field, or a value that is not plainly valid
                result = self.execute_field(
                    parent_type,
                    source,
                    entry.details,
                    field_path or Path(path, entry.name, parent_type.name),
                    None,
                )
            if result is Undefined:
                continue
            out[entry.name] = result
            if result.__class__ not in _SETTLED and self.is_awaitable(result):
                if pending is None:
                    pending = []
                pending.append(entry.name)
        if pending is None:
            return out
        return self._settle_fields(out, pending)

    async def _settle_fields(self, out: dict[str, Any], pending: list[str]) -> dict[str, Any]:
        if len(pending) == 1:
            out[pending[0]] = await out[pending[0]]
        else:
            values = await gather_with_cancel(*(out[name] for name in pending))
            out.update(zip(pending, values, strict=True))
        return out

    def _complete(self, entry: _Entry, value: Any, path: Path) -> Any:
        """``value`` completed as ``entry``'s type, or ``_MISS`` when graphql-core must do it (a
        null where none may be, not a list, an object of an unexpected type); an awaitable
        reports its errors at this field, as graphql-core's would."""
        type_: Any = entry.type_
        non_null = isinstance(type_, GraphQLNonNull)
        if non_null:
            type_ = type_.of_type
        if value is None:
            return _MISS if non_null else None
        if isinstance(type_, GraphQLList):
            if not isinstance(value, (list, tuple)):
                return _MISS
            result = self._complete_list(type_.of_type, entry, value, path)
        else:
            result = self._complete_object(type_, entry, value, path)
        if result is _MISS or result.__class__ in _SETTLED or not self.is_awaitable(result):
            return result
        return self._guard(result, entry.type_, entry.details, path)

    async def _guard(
        self, awaitable: Any, type_: GraphQLOutputType, details: Any, path: Path
    ) -> Any:
        try:
            return await awaitable
        except Exception as error:
            self.handle_field_error(error, type_, details, path)
            return None

    def _complete_list(
        self, item_type: GraphQLOutputType, entry: _Entry, items: Any, path: Path
    ) -> Any:
        details = entry.details
        non_null = isinstance(item_type, GraphQLNonNull)
        named: Any = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        out: list[Any] = []
        pending: list[int] | None = None
        for index, item in enumerate(items):
            if item is None:
                if non_null:
                    self._drop(out, pending)
                    return _MISS
                out.append(None)
                continue
            item_path = Path(path, index, None)
            try:
                completed = self._complete_object(named, entry, item, item_path)
            except Exception as error:
                if pending:
                    self.settle_in_background([out[i] for i in pending])
                    pending = None
                self.handle_field_error(error, item_type, details, item_path)
                completed = None
            if completed is _MISS:
                self._drop(out, pending)
                return _MISS
            if completed.__class__ not in _SETTLED and self.is_awaitable(completed):
                if pending is None:
                    pending = []
                pending.append(index)
                completed = self._guard(completed, item_type, details, item_path)
            out.append(completed)
        if pending is None:
            return out
        return self._settle_items(out, pending)

    async def _settle_items(self, out: list[Any], pending: list[int]) -> list[Any]:
        if len(pending) == 1:
            out[pending[0]] = await out[pending[0]]
        else:
            values = await gather_with_cancel(*(out[i] for i in pending))
            for i, value in zip(pending, values, strict=True):
                out[i] = value
        return out

    @staticmethod
    def _drop(out: list[Any], pending: list[int] | None) -> None:
        """Close the not yet started completions of an abandoned list (graphql-core redoes it)."""
        for i in pending or ():
            if inspect.iscoroutine(out[i]):
                out[i].close()

    def _complete_object(self, type_: Any, entry: _Entry, value: Any, path: Path) -> Any:
        if not isinstance(type_, GraphQLObjectType):
            type_ = self._runtime_type(type_, value)
            if type_ is None:
                return _MISS
        check = type_.is_type_of
        if check is not None and (not _generated_is_type_of(type_) or not check(value, None)):
            return _MISS
        children = entry.children
        assert children is not None
        selection = children.get(type_)
        if selection is None:
            selection = children[type_] = self._collect(type_, entry.details)
        plan, grouped, new_defer_usages = selection
        if plan is None:
            return self.execute_collected_subfields(
                type_, value, path, grouped, new_defer_usages, None
            )
        return self._answer(type_, plan, value, path)

    def _runtime_type(self, abstract: Any, value: Any) -> GraphQLObjectType | None:
        """The object type of a Strawberry object in an interface or union field, when it is
        one of the field's possible types (otherwise graphql-core resolves it)."""
        definition = getattr(type(value), "__strawberry_definition__", None)
        if definition is None or not isinstance(abstract, (GraphQLUnionType, GraphQLInterfaceType)):
            return None
        runtime = self.schema.get_type(definition.name)
        if not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
            abstract, runtime
        ):
            return None
        return runtime

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        shape = self._shapes.get((parent_type.name, node.name.value))
        if shape is not None and shape.leaf is not None and not node.arguments:
            value = _leaf_value(shape.leaf, source)
            if value is not _MISS:
                return value
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


_PLAIN_ARGUMENTS = (int, float, str, bool, ID)


def _plain_argument(argument: StrawberryArgument) -> bool:
    type_ = argument.type
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    return type_ in _PLAIN_ARGUMENTS and not argument.directives


def _direct_resolver(
    definition: StrawberryField, names: Mapping[str, str], info_class: Any
) -> GraphQLFieldResolver:
    resolver = definition.base_resolver
    assert resolver is not None
    func = cast(Callable[..., Any], resolver.wrapped_func)
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    with_self = resolver.self_parameter is not None

    def resolve_directly(source: Any, info: Any, **kwargs: Any) -> Any:
        arguments = {names[name]: value for name, value in kwargs.items()}
        if info_name is not None:
            arguments[info_name] = info_class(_raw_info=info, _field=definition)
        if with_self:
            return func(source, **arguments)
        return func(**arguments)

    setattr(resolve_directly, _DIRECT, True)
    return resolve_directly


_DIRECT = "_musicgraph_direct"


def install_direct_resolvers(schema: Schema) -> list[tuple[str, str]]:
    """Call the resolvers of query and object fields whose arguments are all plain scalars
    (``int``, ``float``, ``str``, ``bool``, ``ID``, optional or not) directly: graphql-core has
    already coerced those values, so Strawberry's per-call argument conversion (its argument
    types and names looked up again on every call), ``Info`` wrapper chain and ``await_maybe``
    add nothing but time. Only the GraphQL argument names are mapped to the Python ones and the
    ``Info`` built, as Strawberry does. Fields with field extensions, permission classes,
    directives, ``root``/``parent`` parameters, or any other argument type (inputs, enums,
    lists), and the mutation and subscription roots, keep Strawberry's path. Returns the fields
    that got it, as (type, field) names; run it before :func:`install_prefetched`."""
    core = schema._schema
    skipped = {t.name for t in (core.mutation_type, core.subscription_type) if t is not None}
    converter = schema.config.name_converter
    info_class = schema.config.info_class
    installed: list[tuple[str, str]] = []
    for type_ in core.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        if type_.name in skipped:
            continue
        for name, field in type_.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if not isinstance(definition, StrawberryField) or field.resolve is None:
                continue
            resolver = definition.base_resolver
            if resolver is None or definition.extensions or definition.permission_classes:
                continue
            if definition.directives or resolver.parent_parameter or resolver.root_parameter:
                continue
            if not all(_plain_argument(a) for a in definition.arguments):
                continue
            if getattr(field.resolve, _SHORTCUT, False) or getattr(field.resolve, _DIRECT, False):
                continue
            names = {converter.from_argument(a): a.python_name for a in definition.arguments}
            field.resolve = _direct_resolver(definition, names, info_class)
            installed.append((type_.name, name))
    return installed
