"""The listening graph: models, the ``GraphStore`` protocol and its two implementations."""

from __future__ import annotations

from musicgraph.graph.base import GraphStore
from musicgraph.settings import Settings

__all__ = ["GraphStore", "create_store"]


def create_store(settings: Settings) -> GraphStore:
    """The store the settings choose: Neo4j when ``NEO4J_URI`` is set, else the SQLite file.

    The caller opens it (``await store.open()``) and closes it.
    """
    if settings.neo4j_uri:
        from neo4j import AsyncGraphDatabase

        from musicgraph.graph.neo4j_store import Neo4jGraphStore

        auth = (settings.neo4j_user, settings.neo4j_password) if settings.neo4j_password else None
        driver = AsyncGraphDatabase.driver(settings.neo4j_uri, auth=auth)
        return Neo4jGraphStore(driver, database=settings.neo4j_database, owns_driver=True)
    from musicgraph.graph.sqlite_store import SqliteGraphStore

    return SqliteGraphStore(settings.db_path)
