"""The browser tests: a real Chromium (Debian's ``chromium`` package, driven by Playwright) against
one real server per session on the seeded SQLite graph, with the default limits (the pages must
work with what a deployment gets out of the box).

Without Chromium or Playwright the tests skip with the reason; under ``CI=true`` they fail instead
(``make browser`` installs Chromium; ``.ci/run`` runs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

from musicgraph.settings import Settings
from tests.e2e.live import ADMIN_TOKEN, LiveServer, Seed, seed_graph

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Request

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("MUSICGRAPH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: how long a page may take to show what a test waits for (ms); generous for a loaded 2-core box
WAIT_MS = 20_000


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run; `make browser` installs it)")
    pytest.skip(reason)


def web_settings(db: Path, **overrides: object) -> Settings:
    """Default limits; the outside APIs at a closed local port (nothing reaches the internet)."""
    nowhere = "http://127.0.0.1:9"
    apis = {f"{name}_url": nowhere for name in ("musicbrainz", "lastfm", "spotify", "cyanite")}
    values: dict[str, Any] = {**apis, "spotify_auth_url": nowhere, **overrides}
    return Settings.from_env(
        {}, env_file=None, db_path=db, admin_token=ADMIN_TOKEN, health_interval=3600, **values
    )


@pytest.fixture(scope="session")
async def web_seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seed]:
    db = tmp_path_factory.mktemp("web") / "graph.db"
    return db, await seed_graph(db)


@pytest.fixture(scope="session")
async def web(web_seeded: tuple[Path, Seed]) -> AsyncIterator[LiveServer]:
    """The server the browser talks to."""
    # the enrichment pipeline runs (against closed ports), so every source is on the dashboard
    server = LiveServer(web_settings(web_seeded[0], enrich_autostart=True)).start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def web_seed(web_seeded: tuple[Path, Seed]) -> Seed:
    return web_seeded[1]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Chromium, headless, from the system (Playwright's own download is not reachable here)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc}); pip install -e '.[dev]'")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or `make browser`)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageLog:
    """What a page did: every request it made, console errors, uncaught errors, CSP violations."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def outside(self, host: str = "127.0.0.1") -> list[str]:
        """The requests that went anywhere but ``host`` (data: and blob: URLs stay in the page)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != host
        ]


@dataclass
class WebPage:
    page: Page
    log: PageLog


@pytest.fixture
async def web_page(browser: Browser) -> AsyncIterator[WebPage]:
    """A fresh browser context (no storage shared between tests) and a page that logs its traffic."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    log = PageLog()

    def on_request(request: Request) -> None:
        log.requests.append(request.url)

    page.on("request", on_request)
    # WebSockets are not "requests" to Playwright: record their URLs too
    page.on("websocket", lambda ws: log.requests.append(ws.url))
    page.on(
        "console",
        lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    try:
        yield WebPage(page, log)
    finally:
        await context.close()
