"""The per-request context every resolver receives, and the access rules it answers.

One :class:`AppState` lives for the whole process (store, bus, recommender engine, health monitor,
enrichment pipeline). A :class:`Context` is built per HTTP request, and per WebSocket connection,
by the view's context getter: it carries the viewer (from the bearer token), fresh DataLoaders and
the limits.

Access rules (DESIGN.md section 5), in one place so every resolver asks the same questions:

- anyone reads the catalogue (tracks, artists, tags), public users and public playlists;
- a user reads and changes only their own listens, ratings, private playlists, statistics and
  recommendations;
- the admin (``MUSICGRAPH_ADMIN_TOKEN``) may do anything.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import strawberry

from musicgraph.auth import hash_token, tokens_equal
from musicgraph.events import EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Playlist, User
from musicgraph.resolvers.cache import ResultCache
from musicgraph.schema.loaders import Loaders
from musicgraph.settings import Settings


@dataclass
class AppState:
    """What the whole process shares. ``engine``, ``monitor`` and ``pipeline`` are ``None`` until
    (or unless) they could be started."""

    settings: Settings
    store: GraphStore
    bus: EventBus
    engine: Any = None
    monitor: Any = None
    pipeline: Any = None
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    projection_loaded: bool = False
    recommendations: ResultCache = field(default_factory=ResultCache)


class PublicError(Exception):
    """An error whose message is meant for the client (a bad argument, a limit): never masked."""


@dataclass
class Viewer:
    """Who is asking: a user, the admin, or nobody."""

    user: User | None = None
    is_admin: bool = False

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user is not None else None

    @property
    def anonymous(self) -> bool:
        return self.user is None and not self.is_admin


async def resolve_viewer(state: AppState, token: str | None) -> Viewer | None:
    """The viewer a token names; ``Viewer()`` without a token; ``None`` for a token that is wrong."""
    if not token:
        return Viewer()
    admin = state.settings.admin_token
    if admin is not None and tokens_equal(token, admin):
        return Viewer(is_admin=True)
    user = await state.store.get_user_by_token_hash(hash_token(token))
    if user is None:
        return None
    return Viewer(user=user)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (``None`` when absent)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@dataclass
class Context:
    """The typed context of every resolver (``strawberry.Info[Context, None]``)."""

    state: AppState
    viewer: Viewer
    loaders: Loaders
    request_id: str | None = None
    #: set by strawberry from the WebSocket ``connection_init`` payload
    connection_params: dict[str, Any] | None = None
    #: a wrong token on a WebSocket is only known once ``connection_init`` arrives
    rejected: bool = False
    #: a WebSocket connection's context serves many operations (each gets fresh loaders)
    long_lived: bool = False

    @property
    def store(self) -> GraphStore:
        return self.state.store

    @property
    def bus(self) -> EventBus:
        return self.state.bus

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def renew_loaders(self) -> None:
        """Drop cached loads (a WebSocket connection lives long; each event reads fresh data)."""
        self.loaders = Loaders(self.state.store, page_size=self.settings.max_page_size)

    # --- access rules ---------------------------------------------------------------------------
    def may_read_private(self, user_id: str) -> bool:
        """Listens, ratings, private playlists, stats and recommendations of ``user_id``."""
        return self.viewer.is_admin or self.viewer.user_id == user_id

    def may_see_user(self, user: User) -> bool:
        return user.public or self.may_read_private(user.id)

    def may_see_playlist(self, playlist: Playlist) -> bool:
        return playlist.public or self.may_read_private(playlist.owner_id)


Info: TypeAlias = strawberry.Info[Context, None]
