"""Local stand-ins for MusicBrainz, Last.fm, Spotify and Cyanite: real HTTP on 127.0.0.1.

One Starlette app served by uvicorn (in a background thread, or as its own process with
``python -m tests.support.fake_apis``) mounts each API under its own prefix, so each source's base
URL setting points at ``http://127.0.0.1:<port>/<api>``. Each API keeps its documented contract as
far as musicgraph uses it: URLs and parameters, authentication (MusicBrainz's User-Agent rule,
Last.fm's ``api_key``, Spotify's client-credentials token and bearer tokens, Cyanite's bearer token
on a real GraphQL schema), JSON shapes, error formats, and a rate limit enforced over a sliding
window (see :class:`ApiState`): MusicBrainz answers 503, Last.fm error 29 (with HTTP 200), Spotify
and Cyanite 429 with ``Retry-After``.

The catalogue is derived from the request itself: any (artist, title) exists and gets stable
MBIDs, an ISRC and a Spotify id, except titles containing "obscure", which no service knows. Tests
register the tracks they import with :meth:`FakeApis.add_tracks` so lookups by MBID, ISRC or Spotid
id work and similar tracks/artists point at tracks of the same catalogue.

Faults are injected per API (``inject``: the next N requests fail a given way; ``set_down``: every
request fails until cleared; ``set_suspended``: Last.fm error 26) through Python calls or the admin
routes ``/_admin/*``. Every request is counted, and every successful answer is counted per
(endpoint, key), so a test can assert that everything was enriched exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

APIS = ("musicbrainz", "lastfm", "spotify", "cyanite")
LASTFM_KEY = "lastfm-test-key"
SPOTIFY_CLIENT = ("spotify-client-id", "spotify-client-secret")
CYANITE_TOKEN = "cyanite-test-token"
_NS = uuid.UUID("6f1d2f8e-0c4e-4f7e-9d7e-2b0f4d6c1a11")
_TAGS = ("rock", "indie", "electronic", "jazz", "hip-hop", "ambient", "folk", "shoegaze", "pop")
_MOODS = ("energetic", "calm", "dark", "happy", "sad", "uplifting", "chilled")
_KEYS = ("Cmajor", "Aminor", "Gmajor", "Eminor", "Dmajor", "Bminor", "FsharpMinor", "Ebmajor")
_UA = re.compile(r"^\S+/\S+ \( \S.* \)$")


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class FakeRecording:
    artist: str
    title: str
    mbid: str
    artist_mbid: str
    isrc: str
    spotify_id: str
    artist_spotify_id: str
    year: int
    length_ms: int
    tags: tuple[str, ...]


def recording_for(artist: str, title: str) -> FakeRecording:
    """The recording every fake API agrees on for (artist, title)."""
    key = _norm(artist) + "|" + _norm(title)
    h = _h(key)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    def b62(seed: int, n: int) -> str:
        out = []
        for _ in range(n):
            seed, r = divmod(seed, 62)
            out.append(alphabet[r])
            if seed == 0:
                seed = _h(str(n), key, str(len(out)))
        return "".join(out)

    return FakeRecording(
        artist=artist,
        title=title,
        mbid=str(uuid.uuid5(_NS, "recording:" + key)),
        artist_mbid=str(uuid.uuid5(_NS, "artist:" + _norm(artist))),
        isrc=f"QZFAK{h % 10_000_000:07d}",
        spotify_id=b62(_h("spotify", key), 22),
        artist_spotify_id=b62(_h("spotify-artist", _norm(artist)), 22),
        year=1960 + h % 60,
        length_ms=120_000 + h % 240_000,
        tags=tuple(dict.fromkeys(_TAGS[(h >> (4 * i)) % len(_TAGS)] for i in range(3))),
    )


def _unknown(title: str) -> bool:
    return "obscure" in title.casefold()


# --- per-API state ----------------------------------------------------------------------------------


@dataclass
class ApiState:
    """Counters, rate limit and pending faults of one fake API.

    The limit is a sliding window: at most ``rate * WINDOW + slack`` requests accepted in any
    ``WINDOW`` seconds (slack ``max(2, rate / 2)``), an average of ``rate`` per second with room
    for half a second's burst, as MusicBrainz ("1 per second on average") and Spotify (a rolling window)
    describe theirs. A window, unlike a small token bucket, is not fooled by this server's own
    event loop stalling for a moment and reading a queue of requests at once.
    """

    name: str
    rate: float | None = None
    accepted_at: deque[float] = field(default_factory=deque)
    faults: deque[tuple[str, float | None]] = field(default_factory=deque)
    down: bool = False
    requests: int = 0
    rate_limited: int = 0
    faults_served: int = 0
    ok: Counter[str] = field(default_factory=Counter)
    first_at: float | None = None
    last_at: float | None = None
    accepted: int = 0

    WINDOW = 2.0

    @property
    def allowance(self) -> float:
        rate = self.rate or 0.0
        return rate * self.WINDOW + max(2.0, rate / 2.0)

    def take_token(self, now: float) -> bool:
        if self.rate is None:
            return True
        window = self.accepted_at
        while window and window[0] <= now - self.WINDOW:
            window.popleft()
        if len(window) + 1 > self.allowance:
            return False
        window.append(now)
        return True


class FakeWorld:
    """Everything the fake APIs share: catalogue, per-API state, Spotify tokens, Cyanite jobs."""

    def __init__(
        self,
        *,
        rates: dict[str, float | None] | None = None,
        token_ttl: float = 3600.0,
        audio_features_forbidden: bool = True,
        cyanite_preanalysed: bool = True,
        cyanite_delay: float = 0.0,
        timeout_sleep: float = 3.0,
    ) -> None:
        self.lock = threading.Lock()
        self.apis = {name: ApiState(name) for name in APIS}
        for name, rate in (rates or {}).items():
            self.set_rate(name, rate)
        self.token_ttl = token_ttl
        self.audio_features_forbidden = audio_features_forbidden
        self.cyanite_preanalysed = cyanite_preanalysed
        self.cyanite_delay = cyanite_delay
        self.cyanite_failing: set[str] = set()
        self.timeout_sleep = timeout_sleep
        self.suspended = False
        self.catalogue: list[FakeRecording] = []
        self.by_key: dict[str, int] = {}
        self.by_mbid: dict[str, FakeRecording] = {}
        self.by_isrc: dict[str, FakeRecording] = {}
        self.by_spotify: dict[str, FakeRecording] = {}
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.analyses: dict[str, tuple[str, float]] = {}

    # --- configuration ---------------------------------------------------------------------------------
    def set_rate(self, api: str, rate: float | None) -> None:
        with self.lock:
            st = self.apis[api]
            st.rate = rate
            st.accepted_at.clear()

    def inject(self, api: str, kind: str, count: int = 1, retry_after: float | None = None) -> None:
        """The next ``count`` requests to ``api`` fail: 500, 502, timeout, 429, 503, lastfm29."""
        with self.lock:
            self.apis[api].faults.extend([(kind, retry_after)] * count)

    def set_down(self, api: str, down: bool = True) -> None:
        with self.lock:
            self.apis[api].down = down

    def set_suspended(self, suspended: bool = True) -> None:
        with self.lock:
            self.suspended = suspended

    def add_tracks(self, pairs: Iterable[tuple[str, str]]) -> list[FakeRecording]:
        out = []
        with self.lock:
            for artist, title in pairs:
                rec = self._register(recording_for(artist, title))
                key = _norm(artist) + "|" + _norm(title)
                if key not in self.by_key:
                    self.by_key[key] = len(self.catalogue)
                    self.catalogue.append(rec)
                out.append(rec)
        return out

    def _register(self, rec: FakeRecording) -> FakeRecording:
        self.by_mbid[rec.mbid] = rec
        self.by_isrc[rec.isrc] = rec
        self.by_spotify[rec.spotify_id] = rec
        return rec

    def lookup(self, artist: str, title: str) -> FakeRecording | None:
        if _unknown(title):
            return None
        with self.lock:
            return self._register(recording_for(artist, title))

    def neighbours(self, rec: FakeRecording, n: int = 3) -> list[FakeRecording]:
        """Similar tracks: the next ``n`` entries of the registered catalogue."""
        with self.lock:
            idx = self.by_key.get(_norm(rec.artist) + "|" + _norm(rec.title))
            if idx is None or len(self.catalogue) < 2:
                return []
            size = len(self.catalogue)
            return [self.catalogue[(idx + i) % size] for i in range(1, min(n, size - 1) + 1)]

    # --- accounting ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {}
            for name, st in self.apis.items():
                span = (st.last_at - st.first_at) if st.first_at and st.last_at else 0.0
                out[name] = {
                    "requests": st.requests,
                    "accepted": st.accepted,
                    "rate_limited": st.rate_limited,
                    "faults_served": st.faults_served,
                    "ok_total": sum(st.ok.values()),
                    "ok_max_per_key": max(st.ok.values(), default=0),
                    "ok_keys": len(st.ok),
                    "span_seconds": span,
                    "rate": st.rate,
                }
            out["spotify_token_requests"] = self.token_requests
            return out

    def ok_counts(self, api: str) -> Counter[str]:
        with self.lock:
            return Counter(self.apis[api].ok)

    def reset_stats(self) -> None:
        with self.lock:
            for st in self.apis.values():
                st.requests = st.accepted = st.rate_limited = st.faults_served = 0
                st.ok.clear()
                st.first_at = st.last_at = None
            self.token_requests = 0

    def mark_ok(self, api: str, key: str) -> None:
        with self.lock:
            self.apis[api].ok[key] += 1

    async def gate(self, api: str) -> tuple[str, float | None] | None:
        """Count the request; say which fault or rate-limit answer it gets, if any."""
        now = time.monotonic()
        with self.lock:
            st = self.apis[api]
            st.requests += 1
            if st.down:
                st.faults_served += 1
                return ("500", None)
            if st.faults:
                st.faults_served += 1
                return st.faults.popleft()
            if not st.take_token(now):
                st.rate_limited += 1
                return ("rate_limited", max(1.0, 1.0 / (st.rate or 1.0)))
            st.accepted += 1
            st.first_at = st.first_at or now
            st.last_at = now
        return None

    async def fault_response(
        self, fault: tuple[str, float | None], style: Callable[[int, str], Response]
    ) -> Response:
        kind, retry_after = fault
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        if kind == "timeout":
            await asyncio.sleep(self.timeout_sleep)
            return style(504, "gateway timeout")
        if kind == "garbage":  # a proxy's error page where JSON was promised
            return Response("<html><body>Bad gateway</body></html>", 200, media_type="text/html")
        status = {"500": 500, "502": 502, "503": 503, "429": 429}.get(kind, 500)
        resp = style(status, f"injected fault {kind}")
        resp.headers.update(headers)
        return resp


# --- MusicBrainz ---------------------------------------------------------------------------------------


def _mb_error(status: int, message: str) -> Response:
    return JSONResponse(
        {
            "error": message,
            "help": "For usage, please see: https://musicbrainz.org/development/mmd",
        },
        status,
    )


def _mb_recording(rec: FakeRecording, inc: set[str], *, score: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rec.mbid,
        "title": rec.title,
        "length": rec.length_ms,
        "video": False,
        "disambiguation": "",
        "first-release-date": f"{rec.year}-01-01",
    }
    if score is not None:
        out["score"] = score
    credit = [
        {
            "name": rec.artist,
            "joinphrase": "",
            "artist": {"id": rec.artist_mbid, "name": rec.artist, "sort-name": rec.artist},
        }
    ]
    if score is not None or "artist-credits" in inc or "artists" in inc:
        out["artist-credit"] = credit
    if score is not None or "isrcs" in inc:
        out["isrcs"] = [rec.isrc]
    if score is not None or "releases" in inc:
        out["releases"] = [
            {
                "id": str(uuid.uuid5(_NS, "release:" + rec.mbid)),
                "title": f"{rec.title} (single)",
                "status": "Official",
                "date": f"{rec.year}-01-01",
            }
        ]
    if "tags" in inc or (score is not None):
        out["tags"] = [{"count": 3 - i, "name": t} for i, t in enumerate(rec.tags)]
    if "genres" in inc:
        out["genres"] = [
            {
                "id": str(uuid.uuid5(_NS, "genre:" + t)),
                "name": t,
                "count": 3 - i,
                "disambiguation": "",
            }
            for i, t in enumerate(rec.tags[:2])
        ]
    return out


def _lucene_field(query: str, name: str) -> str | None:
    m = re.search(name + r':"((?:[^"\\]|\\.)*)"', query)
    if m is None:
        return None
    return re.sub(r"\\(.)", r"\1", m.group(1))


def musicbrainz_app(world: FakeWorld) -> Starlette:
    async def guard(request: Request) -> Response | None:
        ua = request.headers.get("user-agent", "")
        if not _UA.match(ua):
            # MusicBrainz blocks anonymous user agents.
            return _mb_error(403, "a meaningful User-Agent (app/version ( contact )) is required")
        if request.query_params.get("fmt") != "json":
            return _mb_error(400, "this fake only speaks fmt=json")
        fault = await world.gate("musicbrainz")
        if fault is None:
            return None
        if fault[0] == "rate_limited":
            return _mb_error(
                503,
                "Your requests are exceeding the allowable rate limit. Please see "
                "http://wiki.musicbrainz.org/XMLWebService for more information.",
            )
        return await world.fault_response(fault, _mb_error)

    async def search(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        query = request.query_params.get("query", "")
        title = _lucene_field(query, "recording")
        artist = _lucene_field(query, "artist")
        isrc = _lucene_field(query, "isrc")
        recs: list[dict[str, Any]] = []
        if isrc and (found := world.by_isrc.get(isrc)):
            recs.append(_mb_recording(found, set(), score=100))
        elif title and artist and (rec := world.lookup(artist, title)):
            recs.append(_mb_recording(rec, set(), score=100))
            decoy = recording_for(artist + " tribute band", title + " (karaoke)")
            recs.append(_mb_recording(decoy, set(), score=62))
        world.mark_ok("musicbrainz", f"search:{query}")
        return JSONResponse(
            {
                "created": "2026-01-01T00:00:00.000Z",
                "count": len(recs),
                "offset": 0,
                "recordings": recs,
            }
        )

    async def lookup(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        mbid = request.path_params["mbid"]
        rec = world.by_mbid.get(mbid)
        if rec is None:
            return _mb_error(404, "Not Found")
        inc = set(request.query_params.get("inc", "").split("+")) - {""}
        world.mark_ok("musicbrainz", f"recording:{mbid}")
        return JSONResponse(_mb_recording(rec, inc))

    async def isrc(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        code = request.path_params["isrc"]
        if not re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}", code):
            return _mb_error(400, f"Invalid isrc: {code}")
        rec = world.by_isrc.get(code)
        if rec is None:
            return _mb_error(404, "Not Found")
        world.mark_ok("musicbrainz", f"isrc:{code}")
        body = {
            "isrc": code,
            "recordings": [
                {
                    "id": rec.mbid,
                    "title": rec.title,
                    "length": rec.length_ms,
                    "video": False,
                    "disambiguation": "",
                }
            ],
        }
        return JSONResponse(body)

    async def genres(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        return JSONResponse(
            {
                "genre-count": len(_TAGS),
                "genre-offset": 0,
                "genres": [{"id": str(uuid.uuid5(_NS, t)), "name": t} for t in _TAGS[:1]],
            }
        )

    return Starlette(
        routes=[
            Route("/ws/2/recording", search),
            Route("/ws/2/recording/{mbid}", lookup),
            Route("/ws/2/isrc/{isrc}", isrc),
            Route("/ws/2/genre/all", genres),
        ]
    )


# --- Last.fm ---------------------------------------------------------------------------------------------


def _lfm_error(code: int, message: str, status: int = 200) -> Response:
    return JSONResponse({"error": code, "message": message, "links": []}, status)


def lastfm_app(world: FakeWorld) -> Starlette:
    async def endpoint(request: Request) -> Response:
        q = request.query_params
        if q.get("format") != "json":
            return Response("<lfm status='failed'/>", 400, media_type="text/xml")
        if q.get("api_key") != LASTFM_KEY:
            return _lfm_error(
                10, "Invalid API key - You must be granted a valid key by last.fm", 403
            )
        fault = await world.gate("lastfm")
        if fault is not None:
            kind = fault[0]
            if kind in ("rate_limited", "lastfm29"):
                return _lfm_error(
                    29, "Rate Limit Exceeded - Your IP has made too many requests in a short period"
                )
            return await world.fault_response(
                fault, lambda s, m: _lfm_error(16 if s < 500 else 8, m, s)
            )
        if world.suspended:
            return _lfm_error(
                26,
                "Suspended API key - Access for your account has been suspended, please contact Last.fm",
            )
        method = (q.get("method") or "").lower()
        artist = q.get("artist", "")
        title = q.get("track", "")
        if method == "chart.gettoptags":
            return JSONResponse(
                {
                    "tags": {
                        "tag": [{"name": "rock", "url": "https://www.last.fm/tag/rock"}],
                        "@attr": {"page": "1", "perPage": "1", "totalPages": "1", "total": "1"},
                    }
                }
            )
        if method == "artist.getsimilar":
            if not artist:
                return _lfm_error(6, "Artist not found")
            similar: list[dict[str, Any]] = []
            with world.lock:
                mine = [r for r in world.catalogue if _norm(r.artist) == _norm(artist)]
            if mine:
                seen: set[str] = {_norm(artist)}
                for n in world.neighbours(mine[0], 4):
                    if _norm(n.artist) not in seen:
                        seen.add(_norm(n.artist))
                        similar.append(
                            {
                                "name": n.artist,
                                "mbid": n.artist_mbid,
                                "match": f"{1.0 - 0.2 * len(similar):.2f}",
                                "url": f"https://www.last.fm/music/{n.artist}",
                                "image": [],
                                "streamable": "0",
                            }
                        )
            world.mark_ok("lastfm", f"artist.getsimilar:{_norm(artist)}")
            return JSONResponse(
                {"similarartists": {"artist": similar, "@attr": {"artist": artist}}}
            )
        if method not in ("track.getinfo", "track.gettoptags", "track.getsimilar"):
            return _lfm_error(3, "Invalid Method - No method with that name in this package")
        if q.get("mbid"):
            found = world.by_mbid.get(q["mbid"])
        elif artist and title:
            found = world.lookup(artist, title)
        else:
            return _lfm_error(
                6, "Invalid parameters - Your request is missing a required parameter"
            )
        if found is None:
            return _lfm_error(6, "Track not found")
        world.mark_ok("lastfm", f"{method}:{found.mbid}")
        if method == "track.getinfo":
            return JSONResponse(
                {
                    "track": {
                        "name": found.title,
                        "mbid": found.mbid,
                        "url": f"https://www.last.fm/music/{found.artist}/_/{found.title}",
                        "duration": str(found.length_ms),
                        "streamable": {"#text": "0", "fulltrack": "0"},
                        "listeners": str(1000 + _h(found.mbid) % 100_000),
                        "playcount": str(5000 + _h(found.mbid) % 1_000_000),
                        "artist": {
                            "name": found.artist,
                            "mbid": found.artist_mbid,
                            "url": f"https://www.last.fm/music/{found.artist}",
                        },
                        "album": {
                            "artist": found.artist,
                            "title": f"{found.title} (single)",
                            "mbid": "",
                            "url": "",
                            "image": [],
                        },
                        "toptags": {
                            "tag": [
                                {"name": t, "url": f"https://www.last.fm/tag/{t}"}
                                for t in found.tags
                            ]
                        },
                    }
                }
            )
        if method == "track.gettoptags":
            return JSONResponse(
                {
                    "toptags": {
                        "tag": [
                            {
                                "count": 100 - 30 * i,
                                "name": t,
                                "url": f"https://www.last.fm/tag/{t}",
                            }
                            for i, t in enumerate(found.tags)
                        ],
                        "@attr": {"artist": found.artist, "track": found.title},
                    }
                }
            )
        tracks = [
            {
                "name": n.title,
                "playcount": 1000,
                "mbid": n.mbid,
                "match": round(1.0 - 0.25 * i, 3),
                "url": f"https://www.last.fm/music/{n.artist}/_/{n.title}",
                "streamable": {"#text": "0", "fulltrack": "0"},
                "duration": n.length_ms // 1000,
                "artist": {"name": n.artist, "mbid": n.artist_mbid, "url": ""},
                "image": [],
            }
            for i, n in enumerate(world.neighbours(found, 3))
        ]
        return JSONResponse({"similartracks": {"track": tracks, "@attr": {"artist": found.artist}}})

    return Starlette(routes=[Route("/2.0/", endpoint), Route("/2.0", endpoint)])


# --- Spotify ----------------------------------------------------------------------------------------------


def _sp_error(status: int, message: str) -> Response:
    return JSONResponse({"error": {"status": status, "message": message}}, status)


def _sp_track(rec: FakeRecording) -> dict[str, Any]:
    return {
        "id": rec.spotify_id,
        "name": rec.title,
        "type": "track",
        "uri": f"spotify:track:{rec.spotify_id}",
        "duration_ms": rec.length_ms,
        "explicit": False,
        "popularity": _h(rec.spotify_id) % 100,
        "external_ids": {"isrc": rec.isrc},
        "artists": [
            {
                "id": rec.artist_spotify_id,
                "name": rec.artist,
                "type": "artist",
                "uri": f"spotify:artist:{rec.artist_spotify_id}",
            }
        ],
        "album": {
            "id": rec.artist_spotify_id[::-1],
            "name": f"{rec.title} (single)",
            "album_type": "single",
            "release_date": f"{rec.year}-01-01",
            "release_date_precision": "day",
        },
    }


def spotify_accounts_app(world: FakeWorld) -> Starlette:
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(":".join(SPOTIFY_CLIENT).encode()).decode()
        with world.lock:
            world.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
                400,
            )
        if auth != expected:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Invalid client"}, 400
            )
        value = uuid.uuid4().hex
        with world.lock:
            world.tokens[value] = time.monotonic() + world.token_ttl
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": int(world.token_ttl)}
        )

    return Starlette(routes=[Route("/api/token", token, methods=["POST"])])


def spotify_app(world: FakeWorld) -> Starlette:
    async def guard(request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _sp_error(401, "No token provided")
        with world.lock:
            expires = world.tokens.get(auth[7:])
        if expires is None:
            return _sp_error(401, "Invalid access token")
        if expires < time.monotonic():
            return _sp_error(401, "The access token expired")
        fault = await world.gate("spotify")
        if fault is None:
            return None
        if fault[0] == "rate_limited":
            resp = _sp_error(429, "API rate limit exceeded")
            resp.headers["Retry-After"] = str(int(fault[1] or 1))
            return resp
        return await world.fault_response(fault, _sp_error)

    async def search(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        q = request.query_params.get("q", "")
        if request.query_params.get("type") != "track":
            return _sp_error(400, "this fake only searches type=track")
        items: list[dict[str, Any]] = []
        if m := re.fullmatch(r"isrc:([A-Z0-9]{12})", q.strip()):
            if rec := world.by_isrc.get(m.group(1)):
                items.append(_sp_track(rec))
        elif m := re.fullmatch(r"track:(.+?) artist:(.+)", q.strip()):
            if rec := world.lookup(m.group(2).strip(), m.group(1).strip()):
                items.append(_sp_track(rec))
        else:
            return _sp_error(400, "Bad search query")
        world.mark_ok("spotify", f"search:{q}")
        return JSONResponse(
            {
                "tracks": {
                    "href": str(request.url),
                    "items": items,
                    "limit": 5,
                    "next": None,
                    "offset": 0,
                    "previous": None,
                    "total": len(items),
                }
            }
        )

    async def track(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        sid = request.path_params["id"]
        if not re.fullmatch(r"[0-9A-Za-z]{22}", sid):
            return _sp_error(400, "invalid id")
        rec = world.by_spotify.get(sid)
        if rec is None:
            return _sp_error(404, "Resource not found")
        world.mark_ok("spotify", f"track:{sid}")
        return JSONResponse(_sp_track(rec))

    async def features(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        sid = request.path_params["id"]
        if world.audio_features_forbidden:
            world.mark_ok("spotify", "audio-features:403")
            return _sp_error(403, "Forbidden")
        rec = world.by_spotify.get(sid)
        if rec is None:
            return _sp_error(404, "Resource not found")
        h = _h("features", sid)
        world.mark_ok("spotify", f"audio-features:{sid}")
        return JSONResponse(
            {
                "id": sid,
                "type": "audio_features",
                "uri": f"spotify:track:{sid}",
                "danceability": (h % 100) / 100,
                "energy": ((h >> 8) % 100) / 100,
                "key": (h >> 16) % 12,
                "mode": (h >> 20) % 2,
                "loudness": -7.5,
                "speechiness": 0.05,
                "acousticness": 0.2,
                "instrumentalness": 0.0,
                "liveness": 0.1,
                "valence": ((h >> 24) % 100) / 100,
                "tempo": 80 + (h >> 32) % 80,
                "duration_ms": rec.length_ms,
                "time_signature": 4,
                "track_href": "",
                "analysis_url": "",
            }
        )

    async def markets(request: Request) -> Response:
        if (bad := await guard(request)) is not None:
            return bad
        return JSONResponse({"markets": ["DE", "GB", "US"]})

    return Starlette(
        routes=[
            Route("/v1/search", search),
            Route("/v1/tracks/{id}", track),
            Route("/v1/audio-features/{id}", features),
            Route("/v1/markets", markets),
        ]
    )


# --- Cyanite ------------------------------------------------------------------------------------------------

CYANITE_SDL = """
type Query {
  spotifyTrack(id: ID!): SpotifyTrackResult!
}
type Mutation {
  spotifyTrackEnqueue(input: SpotifyTrackEnqueueInput!): SpotifyTrackEnqueueResult!
}
input SpotifyTrackEnqueueInput { spotifyTrackId: ID! }
union SpotifyTrackResult = SpotifyTrack | SpotifyTrackError
type SpotifyTrackError { message: String! }
type SpotifyTrack { id: ID! title: String! audioAnalysisV6: AudioAnalysisV6! }
union AudioAnalysisV6 = AudioAnalysisV6NotStarted | AudioAnalysisV6Enqueued
  | AudioAnalysisV6Processing | AudioAnalysisV6Finished | AudioAnalysisV6Failed
type AudioAnalysisV6NotStarted { _: Boolean }
type AudioAnalysisV6Enqueued { _: Boolean }
type AudioAnalysisV6Processing { _: Boolean }
type AudioAnalysisV6Failed { error: AudioAnalysisV6Error! }
type AudioAnalysisV6Error { message: String! }
type AudioAnalysisV6Finished { result: AudioAnalysisV6Result! }
type AudioAnalysisV6Result {
  bpmPrediction: BpmPrediction!
  keyPrediction: KeyPrediction!
  moodTags: [String!]!
  genreTags: [String!]!
  energyLevel: String!
  valence: Float!
  arousal: Float!
}
type BpmPrediction { value: Float! confidence: Float! }
type KeyPrediction { value: String! confidence: Float! }
union SpotifyTrackEnqueueResult = SpotifyTrackEnqueueSuccess | SpotifyTrackEnqueueError
type SpotifyTrackEnqueueSuccess { enqueuedSpotifyTrack: SpotifyTrack! }
type SpotifyTrackEnqueueError { message: String! }
"""


def cyanite_app(world: FakeWorld) -> Starlette:
    schema = build_schema(CYANITE_SDL)

    def analysis(sid: str) -> dict[str, Any]:
        now = time.monotonic()
        with world.lock:
            state, ready_at = world.analyses.get(
                sid, ("Finished" if world.cyanite_preanalysed else "NotStarted", 0.0)
            )
        if state in ("Enqueued", "Processing"):
            if now >= ready_at:
                state = "Failed" if sid in world.cyanite_failing else "Finished"
            elif now >= ready_at - world.cyanite_delay / 2:
                state = "Processing"
            with world.lock:
                world.analyses[sid] = (state, ready_at)
        if state == "Failed":
            return {
                "__typename": "AudioAnalysisV6Failed",
                "error": {"message": "the audio could not be decoded"},
            }
        if state != "Finished":
            return {"__typename": f"AudioAnalysisV6{state}"}
        h = _h("cyanite", sid)
        return {
            "__typename": "AudioAnalysisV6Finished",
            "result": {
                "bpmPrediction": {"value": float(70 + h % 90), "confidence": 0.9},
                "keyPrediction": {"value": _KEYS[(h >> 8) % len(_KEYS)], "confidence": 0.8},
                "moodTags": [_MOODS[(h >> 12) % len(_MOODS)], _MOODS[(h >> 16) % len(_MOODS)]],
                "genreTags": [_TAGS[(h >> 20) % len(_TAGS)]],
                "energyLevel": ("low", "medium", "high")[(h >> 24) % 3],
                "valence": round(((h >> 28) % 200) / 100 - 1.0, 2),
                "arousal": round(((h >> 36) % 200) / 100 - 1.0, 2),
            },
        }

    def track(sid: str) -> dict[str, Any]:
        rec = world.by_spotify.get(sid)
        if rec is None:
            return {"__typename": "SpotifyTrackError", "message": f"Spotify track {sid} not found"}
        return {
            "__typename": "SpotifyTrack",
            "id": sid,
            "title": rec.title,
            "audioAnalysisV6": analysis(sid),
        }

    def spotify_track(info: Any, id: str) -> dict[str, Any]:
        world.mark_ok("cyanite", f"query:{id}")
        return track(id)

    def enqueue(info: Any, input: dict[str, Any]) -> dict[str, Any]:
        sid = input["spotifyTrackId"]
        if sid not in world.by_spotify:
            return {
                "__typename": "SpotifyTrackEnqueueError",
                "message": f"Spotify track {sid} not found",
            }
        world.mark_ok("cyanite", f"enqueue:{sid}")
        with world.lock:
            state, _ = world.analyses.get(sid, ("NotStarted", 0.0))
            if state == "NotStarted":
                world.analyses[sid] = ("Enqueued", time.monotonic() + world.cyanite_delay)
        return {"__typename": "SpotifyTrackEnqueueSuccess", "enqueuedSpotifyTrack": track(sid)}

    root = {"spotifyTrack": spotify_track, "spotifyTrackEnqueue": enqueue}

    async def endpoint(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {CYANITE_TOKEN}":
            return JSONResponse(
                {
                    "errors": [
                        {"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}
                    ]
                },
                401,
            )
        fault = await world.gate("cyanite")
        if fault is not None:

            def style(status: int, message: str) -> Response:
                return JSONResponse({"errors": [{"message": message}]}, status)

            if fault[0] == "rate_limited":
                resp = style(429, "Too many requests")
                resp.headers["Retry-After"] = str(int(fault[1] or 1))
                return resp
            return await world.fault_response(fault, style)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"errors": [{"message": "body must be JSON"}]}, 400)
        result = await graphql(
            schema, body.get("query", ""), root_value=root, variable_values=body.get("variables")
        )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(out, 200 if result.data is not None else 400)

    return Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])


# --- the app, the admin routes, the server ---------------------------------------------------------------------


def build_app(world: FakeWorld) -> Starlette:
    async def admin(request: Request) -> Response:
        action = request.path_params["action"]
        body = await request.json() if request.method == "POST" else {}
        if action == "stats":
            return JSONResponse(world.stats())
        if action == "reset_stats":
            world.reset_stats()
        elif action == "inject":
            world.inject(
                body["api"], body["kind"], int(body.get("count", 1)), body.get("retry_after")
            )
        elif action == "down":
            world.set_down(body["api"], bool(body.get("down", True)))
        elif action == "rate":
            world.set_rate(body["api"], body.get("rate"))
        elif action == "tracks":
            world.add_tracks([(a, t) for a, t in body["tracks"]])
        else:
            return JSONResponse({"error": f"unknown action {action}"}, 404)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/_admin/{action}", admin, methods=["GET", "POST"]),
            Mount("/musicbrainz", app=musicbrainz_app(world)),
            Mount("/lastfm", app=lastfm_app(world)),
            Mount("/spotify-accounts", app=spotify_accounts_app(world)),
            Mount("/spotify", app=spotify_app(world)),
            Mount("/cyanite", app=cyanite_app(world)),
        ]
    )


class FakeApis:
    """The fake APIs served by uvicorn in a background thread on 127.0.0.1 (a free port)."""

    def __init__(self, world: FakeWorld | None = None) -> None:
        self.world = world or FakeWorld()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeApis:
        config = uvicorn.Config(
            build_app(self.world),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, name="fake-apis", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake API server did not start")
            time.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def env(self) -> dict[str, str]:
        """The environment that points musicgraph at these servers, with working credentials."""
        return env_for(self.url)

    def __enter__(self) -> FakeApis:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def env_for(url: str) -> dict[str, str]:
    return {
        "MUSICGRAPH_MUSICBRAINZ_URL": f"{url}/musicbrainz",
        "MUSICGRAPH_LASTFM_URL": f"{url}/lastfm",
        "MUSICGRAPH_LASTFM_API_KEY": LASTFM_KEY,
        "MUSICGRAPH_SPOTIFY_URL": f"{url}/spotify",
        "MUSICGRAPH_SPOTIFY_AUTH_URL": f"{url}/spotify-accounts",
        "MUSICGRAPH_SPOTIFY_CLIENT_ID": SPOTIFY_CLIENT[0],
        "MUSICGRAPH_SPOTIFY_CLIENT_SECRET": SPOTIFY_CLIENT[1],
        "MUSICGRAPH_CYANITE_URL": f"{url}/cyanite",
        "MUSICGRAPH_CYANITE_TOKEN": CYANITE_TOKEN,
        "MUSICGRAPH_CONTACT": "tests@musicgraph.invalid",
    }


def main(argv: list[str] | None = None) -> None:
    """Serve the fake APIs in the foreground (the benchmark runs them as their own process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", action="append", default=[], help="api=requests_per_second")
    args = parser.parse_args(argv)
    rates = {k: float(v) for k, v in (r.split("=", 1) for r in args.rate)}
    world = FakeWorld(rates=rates)
    config = uvicorn.Config(
        build_app(world),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
