"""A finished GraphQL request leaves nothing for the garbage collector: its objects are freed by
reference counting (collections of request garbage were the API's latency tail)."""

from __future__ import annotations

import gc
from pathlib import Path

from musicgraph.events import EventBus
from musicgraph.schema.build import build_schema
from musicgraph.schema.context import AppState, Context, Viewer
from musicgraph.schema.loaders import Loaders
from musicgraph.settings import Settings
from tests.schema.test_round_trips import graph

USER_PAGE = """{ me { id name listenCount
  listens(first: 20) { edges { node { listenedAt source
    track { id title album artists { id name } } } } }
  topArtists(limit: 10) { count artist { id name } } } }"""


async def test_a_user_page_request_leaves_no_reference_cycles(tmp_path: Path) -> None:
    """Executing a user page (nested lists, DataLoaders, prefetched fields) ten times leaves no
    object that only the cycle collector could free."""
    store = await graph(tmp_path / "g.db", 30)
    try:
        settings = Settings.from_env({}, env_file=None)
        schema = build_schema(settings)
        state = AppState(settings=settings, store=store, bus=EventBus())
        viewer = Viewer(user=await store.get_user_by_name("listener"))

        async def execute() -> None:
            context = Context(state=state, viewer=viewer, loaders=Loaders(store))
            result = await schema.execute(USER_PAGE, context_value=context)
            assert result.errors is None and result.data and result.data["me"]["listens"]

        await execute()  # caches (parsed document, validation) filled once
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(10):
                await execute()
            gc.collect()
            # A parsed document's tokens are a doubly linked list: when a document of an earlier
            # test dies (its last reference, e.g. a cached plan, goes), its tokens are cycle
            # garbage whenever that happens. None may be this request's own document (it is
            # parsed once and cached), and nothing else may be left.
            tokens = [o for o in gc.garbage if type(o).__name__ == "Token"]
            left = [type(o).__qualname__ for o in gc.garbage if type(o).__name__ != "Token"]
            own = [t for t in tokens if getattr(t, "value", None) == "topArtists"]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert left == []
        assert own == []
    finally:
        await store.close()
