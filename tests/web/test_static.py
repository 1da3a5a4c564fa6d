"""The pages' files over plain HTTP (no browser): what is cached how, under which policy, and that
the pages name nothing outside the server."""

from __future__ import annotations

import re

from musicgraph.web import IMMUTABLE, REVALIDATE, STATIC_DIR, render_page
from tests.e2e.live import LiveServer, get

PAGES = {"/": "dashboard/index.html", "/graphql": "graphiql/graphiql.html"}
VENDORED = ["graphiql-3.8.3", "react-18.2.0", "react-dom-18.2.0", "plugin-explorer-1.0.2"]


def assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


async def test_pages_are_revalidated_and_carry_a_strict_policy(web: LiveServer) -> None:
    """Both pages are HTML that is revalidated on every load, under a Content-Security-Policy
    that allows scripts only from the server and connections only to it."""
    for path in PAGES:
        r = await get(web, path, headers={"Accept": "text/html"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == REVALIDATE
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        host = r.request.url.netloc.decode()
        assert f"connect-src 'self' ws://{host} wss://{host}" in policy


async def test_page_assets_are_versioned_and_cached_for_a_year(web: LiveServer) -> None:
    """Every file a page names is served, with a content-hash version, as immutable for a year."""
    for path in PAGES:
        page = (await get(web, path, headers={"Accept": "text/html"})).text
        named = assets(page)
        assert named, f"{path} names no static files"
        for url in named:
            assert re.search(r"\?v=[0-9a-f]{12}$", url), url
            r = await get(web, url)
            assert r.status_code == 200, url
            assert r.headers["cache-control"] == IMMUTABLE, url


async def test_unversioned_static_files_are_revalidated(web: LiveServer) -> None:
    """A static file asked for without a version is revalidated by its ETag (304 when unchanged),
    and a missing one is 404."""
    r = await get(web, "/static/dashboard/dashboard.js")
    assert r.status_code == 200 and r.headers["cache-control"] == REVALIDATE
    again = await get(
        web, "/static/dashboard/dashboard.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304
    assert (await get(web, "/static/nothing-here.js")).status_code == 404


def test_pages_name_nothing_outside_the_server() -> None:
    """No page names an outside address (a CDN, a font service) for anything it loads."""
    for name in PAGES.values():
        html = render_page(name)
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html), name
        assert "unpkg" not in html and "jsdelivr" not in html


def test_each_vendored_package_keeps_its_licence() -> None:
    """Every vendored package folder holds its licence next to its files."""
    folders = sorted(p.name for p in (STATIC_DIR / "graphiql").iterdir() if p.is_dir())
    assert set(VENDORED) <= set(folders)
    for folder in folders:
        assert any((STATIC_DIR / "graphiql" / folder).glob("LICENSE*")), folder


async def test_text_files_go_out_gzipped_to_clients_that_take_gzip(web: LiveServer) -> None:
    """GraphiQL's script goes out gzipped to a client that takes gzip and plain to one that does
    not, the same bytes either way once decoded."""
    path = "graphiql/graphiql-3.8.3/graphiql.min.js"
    original = (STATIC_DIR / path).read_bytes()
    zipped = await get(web, f"/static/{path}", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(original) / 3
    assert zipped.content == original  # httpx decodes
    assert zipped.headers["content-type"].startswith("text/javascript")
    plain = await get(web, f"/static/{path}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == original
    assert zipped.headers["etag"] == "W/" + plain.headers["etag"]
    again = await get(
        web,
        f"/static/{path}",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]},
    )
    assert again.status_code == 304


async def test_a_strange_host_header_does_not_reach_the_policy(web: LiveServer) -> None:
    """A Host header that is no host name cannot add anything to the page's policy."""
    r = await get(web, "/", headers={"Host": "x; script-src *"})
    policy = r.headers["content-security-policy"]
    assert "connect-src 'self';" in policy and "script-src *" not in policy
