"""GraphiQL at /graphql in a real Chromium: it loads from this server alone, runs what a user types,
and runs subscriptions with the Authorization the user sets."""

from __future__ import annotations

import re

from tests.e2e.live import ALICE_TOKEN, LiveServer
from tests.web.conftest import WebPage
from tests.web.pages import Page, expect, record_until_shown, type_into

EDITOR = ".graphiql-query-editor .CodeMirror"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESPONSE = ".graphiql-response"


async def open_graphiql(page: Page, live: LiveServer) -> None:
    """Open GraphiQL and wait until it has read the schema (the docs explorer can show it)."""
    await page.goto(live.url + "/graphql")
    await expect(page.locator(EDITOR)).to_be_visible()
    await page.wait_for_load_state("networkidle")


async def single_operation(page: Page) -> None:
    """Wait until GraphiQL has read the typed document (it does so a moment after the typing):
    until then the run button still offers the example's two operations as a menu."""
    await expect(page.locator(".graphiql-execute-button")).not_to_have_attribute(
        "aria-haspopup", "menu"
    )


async def run(page: Page) -> None:
    """Press the run button for the one operation in the editor."""
    await single_operation(page)
    await page.locator(".graphiql-execute-button").click()


async def test_graphiql_loads_with_nothing_from_outside(web: LiveServer, web_page: WebPage) -> None:
    """GraphiQL renders and reads the schema with every request going to 127.0.0.1, and without a
    script error or a Content-Security-Policy violation."""
    await open_graphiql(web_page.page, web)
    assert web_page.log.outside() == []
    assert any(
        "/static/graphiql/graphiql-3.8.3/graphiql.min.js" in u for u in web_page.log.requests
    )
    await expect(web_page.page.locator(".graphiql-execute-button")).to_be_enabled()
    assert web_page.log.page_errors == []
    assert web_page.log.console_errors == []


async def test_graphiql_runs_a_typed_query(web: LiveServer, web_page: WebPage) -> None:
    """A query typed into the editor and run with the play button shows its result."""
    page = web_page.page
    await open_graphiql(page, web)
    await type_into(page, EDITOR, '{ searchTracks(query: "Alison") { nodes { title } } }')
    await run(page)
    await expect(page.locator(RESPONSE)).to_contain_text(re.compile(r'"title":\s+"Alison"'))
    assert web_page.log.outside() == []


async def test_graphiql_sends_the_authorization_header(web: LiveServer, web_page: WebPage) -> None:
    """The Authorization set in the Headers tab reaches the server: `me` answers as that user."""
    page = web_page.page
    await open_graphiql(page, web)
    await page.locator('button[data-name="headers"]').click()
    await type_into(page, HEADERS_EDITOR, f'{{"Authorization": "Bearer {ALICE_TOKEN}"}}')
    await type_into(page, EDITOR, "{ me { name } }")
    await single_operation(page)
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(RESPONSE)).to_contain_text(re.compile(r'"name":\s+"alice"'))


async def test_graphiql_runs_a_subscription_as_the_user(web: LiveServer, web_page: WebPage) -> None:
    """A listenRecorded subscription run in GraphiQL (signed in through the Headers tab, so over a
    WebSocket whose connection_init carries the token) shows the listen recorded elsewhere."""
    page = web_page.page
    await open_graphiql(page, web)
    await page.locator('button[data-name="headers"]').click()
    await type_into(page, HEADERS_EDITOR, f'{{"Authorization": "Bearer {ALICE_TOKEN}"}}')
    await type_into(page, EDITOR, "subscription { listenRecorded { source track { title } } }")
    await run(page)
    await record_until_shown(
        web, ALICE_TOKEN, "Yo La Tengo", lambda title: page.locator(RESPONSE).get_by_text(title)
    )
    assert [u for u in web_page.log.requests if u.startswith("ws://")] == [
        web.url.replace("http", "ws") + "/graphql"
    ]
    assert web_page.log.outside() == []
