"""The browser pages: GraphiQL at ``/graphql`` and the dashboard at ``/``, with no outside network.

Everything a page loads lives in the package's ``static/`` folder and is served under ``/static/``
(GraphiQL, React and the WebSocket client are vendored there; ``static/graphiql/README.md`` says
which versions, from where). A page names each file with a hash of its content
(``/static/x.js?v=<hash>``), so browsers may keep those for a year while the page itself is
always revalidated: a new release is picked up on the next load, never half of one.

Pages go out with a Content-Security-Policy that allows scripts, styles and connections only to
this server: a page cannot reach the internet even by mistake.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from functools import cache, lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = [
    "STATIC_DIR",
    "CachedStaticFiles",
    "asset_url",
    "content_security_policy",
    "dashboard",
    "graphiql_page",
    "page_response",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"

#: ``{{ static "path/in/static" }}`` in a page: replaced by the file's versioned URL
_PLACEHOLDER = re.compile(r'\{\{\s*static\s+"([^"]+)"\s*\}\}')

_HOST = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
_VERSIONED = re.compile(rb"(?:^|&)v=[0-9a-f]+(?:&|$)")

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@cache
def asset_url(path: str) -> str:
    """``/static/<path>?v=<hash of its content>`` for a file under ``static/``."""
    file = (STATIC_DIR / path).resolve()
    if STATIC_DIR not in file.parents or not file.is_file():
        raise FileNotFoundError(f"no static file {path!r} under {STATIC_DIR}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{path}?v={digest}"


@cache
def render_page(name: str) -> str:
    """The page ``static/<name>`` with every ``{{ static "..." }}`` replaced by its URL."""
    template = (STATIC_DIR / name).read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda m: asset_url(m.group(1)), template)


def content_security_policy(request: Request) -> str:
    """Only this server: scripts and styles from ``/static/``, fetches and WebSockets to the host
    the page came from. (Inline styles stay allowed: GraphiQL and CodeMirror set them.)"""
    host = request.headers.get("host") or request.url.netloc
    # CSP Level 3 browsers count ws:/wss: to the page's own host as 'self'; older ones need it named
    connect = f"'self' ws://{host} wss://{host}" if _HOST.fullmatch(host) else "'self'"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def page_response(name: str, request: Request) -> HTMLResponse:
    """A page from ``static/``: revalidated on every load, under the policy above."""
    return HTMLResponse(
        render_page(name),
        headers={
            "Cache-Control": REVALIDATE,
            "Content-Security-Policy": content_security_policy(request),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def graphiql_page(request: Request) -> HTMLResponse:
    """GraphiQL (what a browser gets at ``/graphql``)."""
    return page_response("graphiql/graphiql.html", request)


async def dashboard(request: Request) -> Response:
    """The dashboard at ``/``."""
    return page_response("dashboard/index.html", request)


class CachedStaticFiles(StaticFiles):
    """Static files; a versioned URL (``?v=``, as pages write them) is cached for a year, any
    other is revalidated (by ETag) on each use. Text files go out gzipped to a client that takes
    gzip (GraphiQL's 3.5 MB script is 0.7 MB so), compressed once per file and kept."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200 and isinstance(response, FileResponse):
            response = _gzipped(response, scope)
        if response.status_code in (200, 304):
            versioned = _VERSIONED.search(scope.get("query_string", b"")) is not None
            response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Vary"] = "Accept-Encoding"
        return response


_COMPRESSIBLE = (".js", ".css", ".html", ".svg", ".md", ".json")


def _gzipped(response: FileResponse, scope: Scope) -> Response:
    """The file gzipped, when it is text of some size and the client takes gzip; else as it is."""
    accept = dict(scope.get("headers") or []).get(b"accept-encoding", b"")
    path = Path(response.path)
    if (
        path.suffix not in _COMPRESSIBLE
        or response.stat_result is None
        or response.stat_result.st_size < 1024
        or not _accepts_gzip(accept.decode("latin-1"))
    ):
        return response
    body = _compress(str(path), response.stat_result.st_mtime_ns, response.stat_result.st_size)
    headers = {
        k: v for k, v in response.headers.items() if k not in ("content-length", "accept-ranges")
    }
    headers["Content-Encoding"] = "gzip"
    if "etag" in headers and not headers["etag"].startswith("W/"):
        # the same file, other bytes: a weak tag (304 still answers it; see is_not_modified)
        headers["etag"] = "W/" + headers["etag"]
    return Response(body, status_code=200, headers=headers, media_type=response.media_type)


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` takes gzip (listed, and not with ``q=0``)."""
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


@lru_cache(maxsize=64)
def _compress(path: str, mtime_ns: int, size: int) -> bytes:
    """``path`` gzipped; the modification time and size in the key make a changed file new."""
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)
