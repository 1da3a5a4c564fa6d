"""Every access rule, attacked: anonymous callers, other users, bad tokens, the admin.

alice is private, bob is public; alice owns one public and one private playlist.
"""

from __future__ import annotations

import json
import time

import pytest
import websockets
from gql import GraphQLRequest
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from websockets.typing import Subprotocol

from tests.e2e.live import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    BOB_TOKEN,
    LiveServer,
    Seed,
    execute,
    get,
    raw_post,
)

PRIVATE_FIELDS = """listenCount listens(first: 2) { totalCount } ratings { score }
  topArtists { count } stats { listenCount } playlists { name }"""


async def test_anonymous_reads_catalogue_and_public_playlists_only(
    live: LiveServer, seed: Seed
) -> None:
    """Without a token: the catalogue and public playlists are readable, private playlists and
    private profiles are not, and a public profile shows no listens, ratings or stats."""
    data = await execute(
        live,
        "query($pub: ID!, $priv: ID!, $t: ID!) { track(id: $t) { title } "
        "pub: playlist(id: $pub) { name owner { name } } priv: playlist(id: $priv) { name } "
        f'alice: user(name: "alice") {{ name }} bob: user(name: "bob") {{ name {PRIVATE_FIELDS} }} me {{ id }} }}',
        {
            "pub": seed.playlists["public"],
            "priv": seed.playlists["private"],
            "t": seed.tracks["Words"],
        },
    )
    assert data["track"] == {"title": "Words"}
    assert data["pub"] == {"name": "alice public", "owner": None}  # alice's profile is private
    assert data["priv"] is None and data["alice"] is None and data["me"] is None
    bob = data["bob"]
    assert bob["name"] == "bob"
    assert bob["listenCount"] is None and bob["listens"] is None and bob["ratings"] is None
    assert bob["topArtists"] is None and bob["stats"] is None and bob["playlists"] == []


async def test_user_cannot_read_another_users_private_data(live: LiveServer, seed: Seed) -> None:
    """alice sees bob's public profile but none of his listens, ratings, stats or
    recommendations, and bob cannot see alice's private playlist or profile."""
    data = await execute(
        live,
        f'{{ user(name: "bob") {{ name {PRIVATE_FIELDS} }} '
        f'listeningStats(user: "{seed.users["bob"]}") {{ __typename }} '
        f'recommendations(user: "{seed.users["bob"]}") {{ __typename ... on Error {{ message }} }} }}',
        token=ALICE_TOKEN,
    )
    assert data["user"]["listens"] is None and data["user"]["ratings"] is None
    assert data["listeningStats"]["__typename"] == "AccessDenied"
    assert data["recommendations"]["__typename"] == "AccessDenied"
    data = await execute(
        live,
        f'{{ playlist(id: "{seed.playlists["private"]}") {{ name }} '
        f'user(id: "{seed.users["alice"]}") {{ name }} }}',
        token=BOB_TOKEN,
    )
    assert data == {"playlist": None, "user": None}


async def test_owner_reads_own_private_data(live: LiveServer, seed: Seed) -> None:
    """alice reads her own listens, private playlist and recommendations."""
    data = await execute(
        live,
        f'{{ me {{ name {PRIVATE_FIELDS} }} playlist(id: "{seed.playlists["private"]}") {{ name }} }}',
        token=ALICE_TOKEN,
    )
    assert data["me"]["listens"]["totalCount"] >= 15
    assert {p["name"] for p in data["me"]["playlists"]} >= {"alice public", "alice private"}
    assert data["playlist"] == {"name": "alice private"}


WRITE_AS = """mutation($u: ID, $t: Int!) {
  recordListens(user: $u, listens: [{artist: "Low", title: "Words", listenedAt: $t}]) {
    __typename ... on Error { message } } }"""


async def test_nobody_writes_for_someone_else(live: LiveServer, seed: Seed) -> None:
    """Recording listens for another user is refused for users and anonymous callers; the admin
    must name the user and then may."""
    t = int(time.time()) - 5
    as_bob = await execute(live, WRITE_AS, {"u": seed.users["alice"], "t": t}, token=BOB_TOKEN)
    assert as_bob["recordListens"]["__typename"] == "AccessDenied"
    anon = await execute(live, WRITE_AS, {"u": None, "t": t})
    assert anon["recordListens"]["__typename"] == "AccessDenied"
    assert "token" in anon["recordListens"]["message"]
    admin_unnamed = await execute(live, WRITE_AS, {"u": None, "t": t}, token=ADMIN_TOKEN)
    assert admin_unnamed["recordListens"]["__typename"] == "AccessDenied"
    admin = await execute(live, WRITE_AS, {"u": seed.users["carol"], "t": t}, token=ADMIN_TOKEN)
    assert admin["recordListens"]["__typename"] == "RecordListensSuccess"
    ghost = await execute(live, WRITE_AS, {"u": "u_nobody", "t": t}, token=ADMIN_TOKEN)
    assert ghost["recordListens"]["__typename"] == "NotFound"


async def test_admin_reads_anyones_private_data(live: LiveServer, seed: Seed) -> None:
    """The admin token reads a private user's listens and private playlists."""
    data = await execute(
        live,
        f'{{ user(name: "alice") {{ listens(first: 1) {{ totalCount }} }} '
        f'playlist(id: "{seed.playlists["private"]}") {{ name }} }}',
        token=ADMIN_TOKEN,
    )
    assert data["user"]["listens"]["totalCount"] >= 15
    assert data["playlist"] == {"name": "alice private"}


PLAYLIST_WRITES = [
    'renamePlaylist(id: $id, name: "mine now")',
    'describePlaylist(id: $id, description: "x")',
    "setPlaylistPublic(id: $id, public: false)",
    "addToPlaylist(id: $id, trackIds: [$t])",
    "removeFromPlaylist(id: $id, positions: [0])",
    "moveInPlaylist(id: $id, fromPosition: 0, toPosition: 1)",
    "deletePlaylist(id: $id)",
]


@pytest.mark.parametrize("mutation", PLAYLIST_WRITES)
@pytest.mark.parametrize("who", ["bob", "anonymous"])
async def test_only_the_owner_changes_a_playlist(
    live: LiveServer, seed: Seed, mutation: str, who: str
) -> None:
    """Every playlist change by someone other than the owner is refused (AccessDenied on a public
    playlist, NotFound on a private one, so its existence does not leak), and nothing changes."""
    token = BOB_TOKEN if who == "bob" else None
    for key, expected in (("public", "AccessDenied"), ("private", "NotFound")):
        params = "$id: ID!, $t: ID!" if "$t" in mutation else "$id: ID!"
        variables = {"id": seed.playlists[key]}
        if "$t" in mutation:
            variables["t"] = seed.tracks["Words"]
        data = await execute(
            live, f"mutation({params}) {{ {mutation} {{ __typename }} }}", variables, token=token
        )
        (result,) = data.values()
        assert result["__typename"] == expected
    check = await execute(
        live,
        f'{{ playlist(id: "{seed.playlists["public"]}") {{ name public tracks {{ totalCount }} }} }}',
    )
    assert check["playlist"] == {
        "name": "alice public",
        "public": True,
        "tracks": {"totalCount": 3},
    }


async def test_ratings_and_enrichment_need_the_right_token(live: LiveServer, seed: Seed) -> None:
    """Anonymous callers cannot rate; users cannot start enrichment (admin only)."""
    rate = await execute(
        live,
        f'mutation {{ rateTrack(trackId: "{seed.tracks["Words"]}", rating: LIKE) {{ __typename }} }}',
    )
    assert rate["rateTrack"]["__typename"] == "AccessDenied"
    enrich = await execute(
        live,
        f'mutation {{ startEnrichment(trackIds: ["{seed.tracks["Words"]}"]) {{ __typename }} }}',
        token=ALICE_TOKEN,
    )
    assert enrich["startEnrichment"]["__typename"] == "AccessDenied"


@pytest.mark.parametrize("token", ["mg_wrong", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1]])
async def test_bad_token_is_401(live: LiveServer, token: str) -> None:
    """A token that matches no user (nor the admin, even nearly) is refused with 401, not
    treated as anonymous."""
    r = await raw_post(live, {"query": "{ me { id } }"}, token=token)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"errors": [{"message": "the bearer token is not valid"}]}
    with pytest.raises(
        (TransportServerError, TransportQueryError), match=r"token is not valid|401"
    ):
        await execute(live, "{ me { id } }", token=token)


async def test_websocket_token_rules(live: LiveServer, seed: Seed) -> None:
    """Over WebSocket a wrong token in connection_init closes the connection (4403), and a user
    cannot subscribe to another user's listens."""
    async with websockets.connect(
        f"ws://127.0.0.1:{live.port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": "mg_wrong"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    with pytest.raises(TransportConnectionFailed):
        async with live.ws_client("mg_wrong") as session:
            await session.execute(GraphQLRequest("{ me { id } }"))
    async with live.ws_client(BOB_TOKEN) as session:
        me = await session.execute(GraphQLRequest("{ me { name } }"))
        assert me == {"me": {"name": "bob"}}
        with pytest.raises(TransportQueryError, match="only the user themself"):
            async for _ in session.subscribe(
                GraphQLRequest(
                    "subscription($u: ID!) { listenRecorded(user: $u) { listenedAt } }",
                    variable_values={"u": seed.users["alice"]},
                )
            ):
                pass


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 404), (BOB_TOKEN, 404), (ALICE_TOKEN, 200), (ADMIN_TOKEN, 200), ("mg_bad", 401)],
)
async def test_private_playlist_export_needs_the_owner(
    live: LiveServer, seed: Seed, token: str | None, status: int
) -> None:
    """A private playlist exports only for its owner and the admin; others get 404, a bad token 401."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await get(live, f"/playlists/{seed.playlists['private']}.jspf", headers=headers)
    assert r.status_code == status
