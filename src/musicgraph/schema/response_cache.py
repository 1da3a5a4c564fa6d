"""Whole GraphQL responses, cached per viewer and request, served while nothing they read changed.

A user page or a recommendation list is asked for again and again between two listens; executing
it costs milliseconds of CPU, sending the bytes of the last answer microseconds. The view
(:class:`musicgraph.app.GraphQLView`) keys an entry by the viewer's scope (``user:<id>``,
``admin`` or ``anonymous``), the ``Accept`` header and the raw request body (document, variables
and operation name), and stamps it, *before* executing, with:

- the store's :meth:`~musicgraph.graph.base.GraphStore.data_version`, which changes on every
  commit by any process (so a listen recorded through another worker, an import, a rating, a
  playlist change or enrichment drop every entry at once); a store that cannot tell cheaply
  (``None``, e.g. Neo4j) gets no caching at all;
- the recommendation result cache's ``generation`` and the engine's identity, for answers that
  come from the recommender's in-memory projection (which follows the bus, not the store).

An entry is served only while its stamp is the current one. What is cached: POSTed queries
(never mutations or subscriptions) that produced 200 with no errors at all (so masked errors and
their request ids are never replayed), and whose every field with a resolver is in
:data:`STORE_FIELDS` (a function of the store and the viewer) or :data:`ENGINE_FIELDS` (also of
the recommender; such entries expire with the result cache's ttl too). Fields that depend on the
clock or on live state (``health``, ``listeningStats``, ``User.stats``) and any field not listed
here make a document uncacheable. A request with ``Cache-Control: no-cache`` (or ``no-store``) is
executed whatever the cache holds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    visit,
)
from strawberry.types.field import StrawberryField

#: Fields with resolvers whose answer depends only on the store, the viewer and the arguments.
STORE_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("Query", "me"),
        ("Query", "user"),
        ("Query", "track"),
        ("Query", "artist"),
        ("Query", "tag"),
        ("Query", "playlist"),
        ("Query", "publicPlaylists"),
        ("Query", "searchTracks"),
        ("Query", "searchArtists"),
        ("Query", "enrichmentJobs"),
        ("Query", "enrichmentQueues"),
        ("User", "listens"),
        ("User", "listenCount"),
        ("User", "playlists"),
        ("User", "ratings"),
        ("User", "topArtists"),
        ("User", "topTracks"),
        ("User", "friends"),
        ("ListenConnection", "totalCount"),
        ("ListenConnection", "nodes"),
        ("Listen", "track"),
        ("Listen", "user"),
        ("Track", "musicbrainzUrl"),
        ("Track", "artists"),
        ("Track", "tags"),
        ("Artist", "musicbrainzUrl"),
        ("Artist", "tags"),
        ("Artist", "tracks"),
        ("TagCount", "tag"),
        ("Tag", "tracks"),
        ("Tag", "artists"),
        ("TrackConnection", "totalCount"),
        ("TrackConnection", "nodes"),
        ("ArtistConnection", "totalCount"),
        ("ArtistConnection", "nodes"),
        ("Playlist", "owner"),
        ("Playlist", "exportPaths"),
        ("Playlist", "tracks"),
        ("PlaylistEntryConnection", "totalCount"),
        ("PlaylistEntryConnection", "nodes"),
        ("PlaylistEntry", "track"),
        ("Rating", "track"),
        ("ArtistCount", "artist"),
        ("TrackCount", "track"),
        ("TasteCluster", "artists"),
        ("Recommendation", "item"),
        ("Reason", "seed"),
        ("EnrichmentJob", "track"),
    }
)

#: Fields answered from the recommender's projection (plus the store, for the items shown).
ENGINE_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("Query", "recommendations"),
        ("Query", "similarTracks"),
        ("Query", "similarArtists"),
        ("User", "tasteClusters"),
    }
)


@dataclass(frozen=True, slots=True)
class Plan:
    """A cacheable document: ``engine`` when some of its answer comes from the recommender."""

    engine: bool


def plan_document(schema: GraphQLSchema, query: str, operation_name: str | None) -> Plan | None:
    """The plan for caching answers to ``query`` (``None``: never cache them): the operation run
    must be a query, and every field with a resolver anywhere in the document must be listed
    in :data:`STORE_FIELDS` or :data:`ENGINE_FIELDS`."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [
            o for o in operations if o.name is not None and o.name.value == operation_name
        ]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return None
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    type_info = TypeInfo(schema)
    check = _FieldCheck(type_info)
    visit(DocumentNode(definitions=(operations[0], *fragments)), TypeInfoVisitor(type_info, check))
    if not check.cacheable:
        return None
    return Plan(engine=check.engine)


class _FieldCheck(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.cacheable = True
        self.engine = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.type_info.get_parent_type()
        definition = self.type_info.get_field_def()
        if parent is None or definition is None:
            # an unknown field: validation refuses the document, never cache its answer
            self.cacheable = False
            return
        name = node.name.value
        if name.startswith("__") or parent.name.startswith("__"):
            return  # __typename, introspection: fixed by the schema
        key = (parent.name, name)
        if key in ENGINE_FIELDS:
            self.engine = True
            return
        if key in STORE_FIELDS:
            return
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        if isinstance(strawberry_field, StrawberryField) and strawberry_field.base_resolver is None:
            return  # a plain attribute of what the parent resolved
        self.cacheable = False


Stamp = tuple[int, int, int]


@dataclass(slots=True)
class _Entry:
    stamp: Stamp
    expires: float
    body: bytes


class ResponseCache:
    """Response bodies by key (see the module docstring), bounded in entries and bytes (oldest
    used first out). ``engine_ttl`` bounds the age of answers that used the recommender."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        maxsize: int = 4096,
        max_bytes: int = 64 * 2**20,
        max_entry_bytes: int = 2**20,
        max_key_bytes: int = 16 * 2**10,
        engine_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schema = schema
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.max_key_bytes = max_key_bytes
        self.engine_ttl = engine_ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._plans: OrderedDict[tuple[str, str | None], Plan | None] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, stamp: Stamp) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp or entry.expires < self._clock():
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.body

    def plan_for_body(self, body: bytes) -> Plan | None:
        """The plan for a POSTed JSON body (``None`` for a batch, or anything but one request)."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(request, dict):
            return None
        query, name = request.get("query"), request.get("operationName")
        if not isinstance(query, str) or not (name is None or isinstance(name, str)):
            return None
        key = (query, name)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = plan_document(self.schema, query, name)
        self._plans[key] = plan
        if len(self._plans) > 512:
            self._plans.popitem(last=False)
        return plan

    def put(self, key: Hashable, stamp: Stamp, body: bytes, plan: Plan) -> None:
        if len(body) > self.max_entry_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        expires = self._clock() + self.engine_ttl if plan.engine else float("inf")
        self._entries[key] = _Entry(stamp, expires, body)
        self._bytes += len(body)
        while len(self._entries) > self.maxsize or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
