"""The session's Neo4j test server answers over Bolt."""

from __future__ import annotations

import pytest
from neo4j import AsyncGraphDatabase
from tests.support.neo4j_server import Neo4jServer

pytestmark = pytest.mark.neo4j


async def test_server_answers_a_query(neo4j_server: Neo4jServer) -> None:
    """A Cypher query over Bolt returns its result from the Neo4j 5.26 test server."""
    async with AsyncGraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        records, _, _ = await driver.execute_query(
            "CALL dbms.components() YIELD versions RETURN versions[0] AS version",
            database_=neo4j_server.database,
        )
    assert records[0]["version"].startswith("5.")
