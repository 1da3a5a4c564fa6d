"""Each parsed document is validated once: repeated requests get the same verdict (errors and
limits included) without validating again, and another document is validated on its own."""

from __future__ import annotations

from typing import Any

import pytest

import musicgraph.schema.build as build
from musicgraph.events import EventBus
from musicgraph.graph.sqlite_store import SqliteGraphStore
from musicgraph.schema.context import AppState, Context, Viewer
from musicgraph.schema.loaders import Loaders
from musicgraph.settings import Settings


async def test_documents_are_validated_once_with_the_same_verdict(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid query, an invalid one and one over the depth limit each keep their verdict over
    three requests, and each text is validated once."""
    calls: list[int] = []
    real = build.validate_document

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(build, "validate_document", counting)
    settings = Settings.from_env({"MUSICGRAPH_MAX_QUERY_DEPTH": "3"}, env_file=None)
    schema = build.build_schema(settings)
    async with SqliteGraphStore(tmp_path / "g.db") as store:
        state = AppState(settings=settings, store=store, bus=EventBus())

        async def run(query: str) -> list[str]:
            context = Context(state=state, viewer=Viewer(), loaders=Loaders(store))
            result = await schema.execute(query, context_value=context)
            return [e.message for e in result.errors or []]

        deep = (
            '{ searchTracks(query: "x") { edges { node { artists { tracks { totalCount } } } } } }'
        )
        for query, refused in (
            ("{ health { status } }", False),
            ("{ health { nope } }", True),
            (deep, True),
        ):
            before = len(calls)
            verdicts = [await run(query) for _ in range(3)]
            assert verdicts[0] == verdicts[1] == verdicts[2]
            assert bool(verdicts[0]) is refused, verdicts[0]
            assert len(calls) - before == 1
