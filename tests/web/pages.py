"""What the browser tests share: Playwright's ``expect`` (or a module-level skip without
Playwright; under ``CI=true`` the import error stands), and helpers that act as a user would."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.live import LiveServer, execute
from tests.web.conftest import IN_CI, WAIT_MS

try:
    from playwright.async_api import Locator, Page, expect
except ImportError as exc:  # pragma: no cover - depends on the machine
    if IN_CI:
        raise
    pytest.skip(
        f"playwright is not installed ({exc}); pip install -e '.[dev]'", allow_module_level=True
    )

expect.set_options(timeout=WAIT_MS)

__all__ = ["Locator", "Page", "expect", "record_until_shown", "type_into"]

RECORD = "mutation($l: [ListenInput!]!) { recordListens(listens: $l) { __typename } }"


async def type_into(page: Page, selector: str, text: str) -> None:
    """Replace a CodeMirror editor's text the way a user does: click, select all, type."""
    await page.locator(selector).click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    # key by key: CodeMirror closes a bracket or quote as it opens and types over the closer
    # when it comes, so balanced text typed on one line ends up exactly as written
    await page.keyboard.type(text)


async def record_until_shown(
    live: LiveServer, token: str, artist: str, shown: Callable[[str], Locator]
) -> str:
    """Record a listen (as the user of ``token``, a new title each time) until ``shown(title)``
    is visible; returns that title. A page subscribes asynchronously and says nothing when the
    server has its subscription, so a first listen may come before it: only a listen the page
    then shows proves the path."""
    for _ in range(40):
        title = f"Heard in the browser {time.monotonic_ns()}"
        at = int(time.time()) - 2
        listen = {"artist": artist, "title": title, "listenedAt": at}
        await execute(live, RECORD, {"l": [listen]}, token=token)
        try:
            await expect(shown(title)).to_be_visible(timeout=500)
        except AssertionError:
            continue
        return title
    raise AssertionError("no recorded listen showed up on the page in 40 tries")
