"""Which documents the response cache may answer, and how its entries go stale."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType
from strawberry.types.field import StrawberryField

from musicgraph.schema.build import build_schema
from musicgraph.schema.response_cache import (
    ENGINE_FIELDS,
    STORE_FIELDS,
    Plan,
    ResponseCache,
    plan_document,
)
from musicgraph.settings import Settings

SCHEMA = build_schema(Settings.from_env({}, env_file=None))._schema

USER_PAGE = """query($id: ID!) { user(id: $id) { id listenCount
  listens(first: 20) { edges { node { listenedAt track { title artists { name } } } } }
  topArtists(limit: 10) { count artist { name } } } }"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_listed_fields_exist_and_every_other_resolver_is_uncacheable() -> None:
    """Every field named in the lists is a real field with a resolver; the only resolvers left
    out are the ones reading the clock or live state."""
    resolved = set()
    for type_ in SCHEMA.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        if type_.name in ("Mutation", "Subscription"):
            continue
        for name, field in type_.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if isinstance(definition, StrawberryField) and definition.base_resolver is not None:
                resolved.add((type_.name, name))
    assert resolved >= STORE_FIELDS | ENGINE_FIELDS
    assert not STORE_FIELDS & ENGINE_FIELDS
    assert resolved - STORE_FIELDS - ENGINE_FIELDS == {
        ("Query", "health"),
        ("Query", "listeningStats"),
        ("User", "stats"),
        # only mutations return these (and mutations are never cached)
        ("StoredListen", "track"),
        ("RateTrackSuccess", "track"),
    }


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (USER_PAGE, Plan(engine=False)),
        ("{ recommendations { __typename } }", Plan(engine=True)),
        ("query { me { tasteClusters { label } } }", Plan(engine=True)),
        ("{ health { name } }", None),
        ("{ me { stats { listenCount } } }", None),
        ("query { me { ...F } } fragment F on User { stats { listenCount } }", None),
        ("{ me { noSuchField } }", None),
        ("mutation { rateTrack(trackId: 1, rating: LIKE) { __typename } }", None),
        ("{ me { id", None),
        ("{ __schema { queryType { name } } }", Plan(engine=False)),
    ],
)
def test_plans(document: str, expected: Plan | None) -> None:
    """Queries of store and engine fields are cacheable (engine ones marked); clock-dependent
    fields (also inside fragments), unknown fields, mutations and unparsable text are not."""
    assert plan_document(SCHEMA, document, None) == expected


def test_operation_name_picks_the_operation() -> None:
    """In a document with a query and a mutation, only the query may be cached, and an unknown
    or missing operation name plans nothing."""
    document = (
        "query Q { me { id } } mutation M { rateTrack(trackId: 1, rating: LIKE) { __typename } }"
    )
    assert plan_document(SCHEMA, document, "Q") == Plan(engine=False)
    assert plan_document(SCHEMA, document, "M") is None
    assert plan_document(SCHEMA, document, None) is None
    assert plan_document(SCHEMA, document, "Nope") is None


def test_entries_hold_only_for_their_stamp_and_engine_ones_expire() -> None:
    """An entry answers only under the stamp it was stored with; recommender answers also
    expire after the ttl, store-only ones do not."""
    clock = Clock()
    cache = ResponseCache(SCHEMA, engine_ttl=30, clock=clock)
    cache.put("store", (1, 0, 0), b"a", Plan(engine=False))
    cache.put("engine", (1, 0, 0), b"b", Plan(engine=True))
    assert cache.get("store", (1, 0, 0)) == b"a" and cache.get("engine", (1, 0, 0)) == b"b"
    assert cache.get("store", (2, 0, 0)) is None and cache.get("engine", (1, 1, 0)) is None
    clock.now = 31
    assert cache.get("store", (1, 0, 0)) == b"a" and cache.get("engine", (1, 0, 0)) is None


def test_size_is_bounded_in_entries_and_bytes() -> None:
    """Past maxsize or max_bytes the least recently used entries go; oversized bodies are never
    stored."""
    plan, stamp = Plan(engine=False), (0, 0, 0)
    cache = ResponseCache(SCHEMA, maxsize=2)
    cache.put(1, stamp, b"x", plan)
    cache.put(2, stamp, b"y", plan)
    assert cache.get(1, stamp) == b"x"  # 2 is now the least recently used
    cache.put(3, stamp, b"z", plan)
    assert cache.get(2, stamp) is None and len(cache) == 2
    cache = ResponseCache(SCHEMA, max_bytes=10, max_entry_bytes=6)
    cache.put(1, stamp, b"xxxx", plan)
    cache.put(2, stamp, b"yyyy", plan)
    cache.put(3, stamp, b"zzzzzz", plan)  # 14 bytes: 1 goes, then 10 is within bounds
    assert cache.get(1, stamp) is None and cache.get(2, stamp) == b"yyyy"
    cache.put(4, stamp, b"1234567", plan)
    assert cache.get(4, stamp) is None and len(cache) == 2


def test_plan_for_body_reads_the_json_request() -> None:
    """The plan of a POSTed body is that of its query and operation name; a batch or
    anything but a JSON object plans nothing."""
    cache = ResponseCache(SCHEMA)
    assert cache.plan_for_body(b'{"query": "{ me { id } }"}') == Plan(engine=False)
    assert cache.plan_for_body(b'[{"query": "{ me { id } }"}]') is None
    assert cache.plan_for_body(b"not json") is None
    assert cache.plan_for_body(b'{"query": 3}') is None
