"""Schema-level behaviour that needs no server: introspection by setting, the SDL's shape."""

from __future__ import annotations

from musicgraph.schema.build import build_schema
from musicgraph.settings import Settings


async def test_introspection_follows_the_setting() -> None:
    """Introspection works by default and is refused when the setting turns it off."""
    on = build_schema(Settings.from_env({}, env_file=None))
    off = build_schema(Settings.from_env({"MUSICGRAPH_INTROSPECTION": "false"}, env_file=None))
    query = "{ __schema { queryType { name } } }"
    assert (await on.execute(query)).data == {"__schema": {"queryType": {"name": "Query"}}}
    refused = await off.execute(query)
    assert refused.errors and "introspection" in refused.errors[0].message.lower()


def test_mutations_answer_typed_errors() -> None:
    """Every mutation answers a union that includes its typed errors, never a bare type."""
    sdl = str(build_schema(Settings.from_env({}, env_file=None)))
    mutation = sdl[sdl.index("type Mutation {") :]
    mutation = mutation[: mutation.index("\n}")]
    results = [line.split("):")[-1].strip() for line in mutation.splitlines() if "):" in line]
    assert results and all(r.endswith("Result!") for r in results), results
    for union in set(results):
        line = next(x for x in sdl.splitlines() if x.startswith(f"union {union[:-1]} ="))
        assert any(e in line for e in ("AccessDenied", "NotFound", "InvalidInput"))
