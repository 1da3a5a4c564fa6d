"""The dashboard at / in a real Chromium: health and enrichment from this server alone, updated
live; with a token, the user's recommendations and listens, updated live."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.e2e.live import ALICE_TOKEN, LiveServer, execute, seed_graph
from tests.web.conftest import WebPage, web_settings
from tests.web.pages import Page, expect, record_until_shown

SOURCES = ("musicbrainz", "lastfm", "spotify", "cyanite")


def status_of(page: Page, service: str) -> Any:
    row = page.locator("#health tbody tr").filter(has=page.locator(f'th[data-service="{service}"]'))
    return row.locator("td.status")


def in_server_loop(live: LiveServer, fn: Any, *args: Any) -> None:
    """Call ``fn(*args)`` on the server's event loop (where the monitor and the bus live)."""
    (server,) = live.server.servers
    server.get_loop().call_soon_threadsafe(fn, *args)


async def open_dashboard(page: Page, live: LiveServer) -> None:
    await page.goto(live.url + "/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "open")


async def test_dashboard_shows_health_and_enrichment_offline(
    web: LiveServer, web_page: WebPage
) -> None:
    """The dashboard lists the store and every outside API with a status, and the enrichment
    sources, with every request (WebSocket included) going to 127.0.0.1 and no script error."""
    page = web_page.page
    await open_dashboard(page, web)
    await expect(status_of(page, "store")).to_have_text("ok")
    for source in SOURCES:
        await expect(status_of(page, source)).not_to_be_empty()
    await expect(status_of(page, "lastfm")).to_have_text("disabled")  # no API key configured
    await expect(page.locator('#enrichment th[data-source="musicbrainz"]')).to_be_visible()
    assert web_page.log.outside() == []
    assert any(u.startswith("ws://127.0.0.1") for u in web_page.log.requests)
    assert web_page.log.page_errors == []
    assert web_page.log.console_errors == []


async def test_dashboard_updates_when_health_changes(web: LiveServer, web_page: WebPage) -> None:
    """A failure the monitor records (here: an outside API refusing, told to the real monitor)
    reaches the open page through the apiHealth subscription, without a reload."""
    page = web_page.page
    await open_dashboard(page, web)
    await expect(status_of(page, "store")).to_have_text("ok")
    # the page has heard from its apiHealth subscription: what changes from now on is live
    await expect(page.locator("#health")).to_have_attribute("data-live", "yes")
    message = f"connection refused (browser test {time.monotonic_ns()})"
    in_server_loop(web, web.state.monitor.record_failure, "musicbrainz", "connect", message)
    row = page.locator("#health tbody tr").filter(has_text=message)
    await expect(row.locator("td.status")).to_have_text("degraded")
    assert web_page.log.outside() == []


async def test_dashboard_shows_and_follows_the_users_listening(
    web: LiveServer, web_page: WebPage
) -> None:
    """With a token entered, the dashboard shows the user's recommendations and listens; a listen
    recorded elsewhere appears at the top of the list, counted, and the recommendations are
    redrawn."""
    page = web_page.page
    await open_dashboard(page, web)
    await page.get_by_label("Token").fill(ALICE_TOKEN)
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#me-title")).to_have_text("Listening of alice")
    await expect(page.locator("#recommendations li").first).to_be_visible()
    await expect(page.locator("#listens li").first).to_be_visible()
    # mark what is drawn now: a redrawn list has no marked items
    await page.locator("#recommendations li").evaluate_all(
        "items => items.forEach(li => li.dataset.old = '1')"
    )
    title = await record_until_shown(
        web, ALICE_TOKEN, "Low", lambda title: page.locator("#listens li").filter(has_text=title)
    )
    await expect(page.locator("#listens li").first).to_contain_text(f"Low – {title}")
    count = (await execute(web, "{ me { listenCount } }", token=ALICE_TOKEN))["me"]["listenCount"]
    await expect(page.locator("#listen-count")).to_have_text(f"{count} listens in all")
    await expect(page.locator("#recommendations li[data-old]")).to_have_count(0)
    await expect(page.locator("#recommendations li").first).to_be_visible()
    assert web_page.log.outside() == []


async def test_dashboard_says_when_a_token_is_refused(web: LiveServer, web_page: WebPage) -> None:
    """A wrong token gets a message saying so, and no personal section."""
    page = web_page.page
    await open_dashboard(page, web)
    await page.get_by_label("Token").fill("not-a-token")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#me-status")).to_contain_text("Could not sign in")
    await expect(page.locator("#me-status")).to_contain_text("token is not valid")
    await expect(page.locator("#me")).to_be_hidden()


async def test_dashboard_follows_the_server_across_a_restart(
    tmp_path: Path, web_page: WebPage
) -> None:
    """When the server restarts, the open dashboard reconnects and subscribes again: a health
    change on the new server shows without a reload."""
    db = tmp_path / "graph.db"
    await seed_graph(db)
    first = LiveServer(web_settings(db)).start()
    await asyncio.to_thread(first.wait_ready)
    port = first.port
    page = web_page.page
    try:
        await open_dashboard(page, first)
        await expect(page.locator("#health")).to_have_attribute("data-live", "yes")
    finally:
        await asyncio.to_thread(first.stop)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "closed")
    second = LiveServer(web_settings(db))
    second.server.config.port = port  # the address the page knows
    second.start()
    try:
        await asyncio.to_thread(second.wait_ready)
        await expect(page.locator("#connection")).to_have_attribute("data-state", "open")
        message = f"refused after the restart ({time.monotonic_ns()})"
        row = page.locator("#health tbody tr").filter(has_text=message)
        for _ in range(40):  # until the page's new subscription is in place
            in_server_loop(
                second, second.state.monitor.record_failure, "spotify", "connect", message
            )
            try:
                await expect(row).to_be_visible(timeout=500)
                break
            except AssertionError:
                continue
        await expect(row.locator("td.status")).to_have_text("degraded")
    finally:
        await asyncio.to_thread(second.stop)
