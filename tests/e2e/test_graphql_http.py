"""The GraphQL API over real HTTP with the gql client: catalogue, history, mutations, stats."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from musicgraph.auth import hash_token
from musicgraph.graph.sqlite_store import SqliteGraphStore
from tests.e2e.live import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, LiveServer, Seed, execute, get

TRACK = """query($id: ID!) { track(id: $id) {
  id title mbid musicbrainzUrl artists { name tracks(first: 5) { totalCount nodes { title } } }
  tags { name count tag { name } } } }"""


async def test_track_with_artists_and_tags(live: LiveServer, seed: Seed) -> None:
    """A track answers with its credited artists, the artists' tracks and its tags by count."""
    data = await execute(live, TRACK, {"id": seed.tracks["Alison"]})
    track = data["track"]
    assert track["title"] == "Alison"
    assert track["musicbrainzUrl"].startswith("https://musicbrainz.org/recording/")
    assert [a["name"] for a in track["artists"]] == ["Slowdive"]
    assert track["artists"][0]["tracks"]["totalCount"] == 2
    assert [t["name"] for t in track["tags"]] == ["shoegaze", "dream pop"]


async def test_unknown_ids_are_null(live: LiveServer) -> None:
    """Looking up something that does not exist answers null, not an error."""
    data = await execute(
        live,
        '{ track(id: "tr_nope") { id } artist(id: "x") { id } '
        'playlist(id: "pl_x") { id } tag(name: "polka") { name } }',
    )
    assert data == {"track": None, "artist": None, "playlist": None, "tag": None}


async def test_get_query_and_graphiql(live: LiveServer) -> None:
    """GET runs a query, and a browser asking for HTML gets GraphiQL."""
    r = await get(live, "/graphql", params={"query": '{ searchTracks(query: "a") { totalCount } }'})
    assert r.status_code == 200 and r.json()["data"]["searchTracks"]["totalCount"] > 0
    r = await get(live, "/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "graphiql" in r.text.lower()


SEARCH = """query($q: String!, $first: Int, $after: String, $last: Int, $before: String) {
  searchTracks(query: $q, first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { title } } } }"""


async def test_search_pages_forward_and_backward(live: LiveServer) -> None:
    """Cursor pages of a search cover every hit once, forward with first/after and back with
    last/before, and pageInfo says where the page sits."""
    everything = (await execute(live, SEARCH, {"q": "", "first": 25}))["searchTracks"]
    titles = [e["node"]["title"] for e in everything["edges"]]
    assert everything["totalCount"] == len(titles) >= 10
    seen, after = [], None
    while True:
        page = (await execute(live, SEARCH, {"q": "", "first": 3, "after": after}))["searchTracks"]
        seen += [e["node"]["title"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == titles
    last_page = (await execute(live, SEARCH, {"q": "", "last": 4}))["searchTracks"]
    assert [e["node"]["title"] for e in last_page["edges"]] == titles[-4:]
    assert last_page["pageInfo"]["hasPreviousPage"] and not last_page["pageInfo"]["hasNextPage"]
    before = last_page["pageInfo"]["startCursor"]
    prev = (await execute(live, SEARCH, {"q": "", "last": 2, "before": before}))["searchTracks"]
    assert [e["node"]["title"] for e in prev["edges"]] == titles[-6:-4]


LISTENS = """query($first: Int, $after: String, $last: Int, $before: String) { me {
  listenCount listens(first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    edges { cursor node { listenedAt source track { title artists { name } } } } } } }"""


async def test_listen_history_pages_by_time(live: LiveServer) -> None:
    """A user's listens page newest first without gaps or repeats, and back again with last/before."""
    me = (await execute(live, LISTENS, {"first": 25}, token=BOB_TOKEN))["me"]
    times = [e["node"]["listenedAt"] for e in me["listens"]["edges"]]
    assert times == sorted(times, reverse=True) and len(times) == me["listenCount"] == 15
    seen, after = [], None
    while True:
        page = (await execute(live, LISTENS, {"first": 4, "after": after}, token=BOB_TOKEN))["me"]
        seen += [e["node"]["listenedAt"] for e in page["listens"]["edges"]]
        if not page["listens"]["pageInfo"]["hasNextPage"]:
            break
        after = page["listens"]["pageInfo"]["endCursor"]
    assert seen == times
    cursor = me["listens"]["edges"][6]["cursor"]
    back = (await execute(live, LISTENS, {"last": 3, "before": cursor}, token=BOB_TOKEN))["me"]
    assert [e["node"]["listenedAt"] for e in back["listens"]["edges"]] == times[3:6]


RECORD = """mutation($listens: [ListenInput!]!, $user: ID) { recordListens(listens: $listens, user: $user) {
  __typename ... on RecordListensSuccess { inserted duplicates
    stored { index new listenedAt track { title artists { name } } }
    rejected { index reason field message } }
  ... on Error { message } } }"""


async def test_record_listens_reports_each_item(live: LiveServer) -> None:
    """recordListens stores the good items, rejects the bad ones with reason and field, and a
    second identical call stores nothing new."""
    now = int(time.time())
    listens = [
        {"artist": "Duster", "title": "Inside Out", "listenedAt": now - 100},
        {"artist": "", "title": "No Artist", "listenedAt": now - 90},
        {"artist": "Duster", "title": "Future", "listenedAt": now + 86400 * 365},
        {"artist": "Duster", "title": "Bad MBID", "listenedAt": now - 80, "mbid": "nope"},
        {
            "artist": "Duster",
            "title": "Constellations",
            "listenedAt": now - 70,
            "msPlayed": 5000,
            "skipped": True,
        },
    ]
    first = (await execute(live, RECORD, {"listens": listens}, token=ALICE_TOKEN))["recordListens"]
    assert first["__typename"] == "RecordListensSuccess"
    assert first["inserted"] == 2 and first["duplicates"] == 0
    assert [s["index"] for s in first["stored"]] == [0, 4]
    assert first["stored"][0]["track"]["artists"] == [{"name": "Duster"}]
    rejected = {r["index"]: r for r in first["rejected"]}
    assert rejected[1]["field"] == "artist" and rejected[1]["reason"] == "missing artist"
    assert rejected[2]["field"] == "listenedAt" and "future" in rejected[2]["reason"]
    assert rejected[3]["field"] == "mbid"
    again = (await execute(live, RECORD, {"listens": listens}, token=ALICE_TOKEN))["recordListens"]
    assert again["inserted"] == 0 and again["duplicates"] == 2
    assert [s["new"] for s in again["stored"]] == [False, False]


RATE = """mutation($t: ID!, $r: TrackRating!) { rateTrack(trackId: $t, rating: $r) {
  __typename ... on RateTrackSuccess { score track { title } } ... on Error { message } } }"""


async def test_rate_track_like_and_clear(live: LiveServer, seed: Seed) -> None:
    """A like shows in the user's ratings and clearing removes it; an unknown track is NotFound."""
    liked = await execute(live, RATE, {"t": seed.tracks["Words"], "r": "LIKE"}, token=BOB_TOKEN)
    assert liked["rateTrack"] == {
        "__typename": "RateTrackSuccess",
        "score": 1,
        "track": {"title": "Words"},
    }
    ratings = await execute(live, "{ me { ratings { score track { title } } } }", token=BOB_TOKEN)
    assert {"score": 1, "track": {"title": "Words"}} in ratings["me"]["ratings"]
    await execute(live, RATE, {"t": seed.tracks["Words"], "r": "CLEAR"}, token=BOB_TOKEN)
    ratings = await execute(live, "{ me { ratings { score track { title } } } }", token=BOB_TOKEN)
    assert {"score": 1, "track": {"title": "Words"}} not in ratings["me"]["ratings"]
    missing = await execute(live, RATE, {"t": "tr_missing", "r": "DISLIKE"}, token=BOB_TOKEN)
    assert missing["rateTrack"]["__typename"] == "NotFound"


PLAYLIST_FIELDS = (
    "id name description public tracks { totalCount nodes { position track { title } } }"
)


async def test_playlist_lifecycle(live: LiveServer, seed: Seed) -> None:
    """A playlist is created, renamed, described, made public, filled, reordered, trimmed and
    deleted, each step answering the playlist as it now is."""
    t = seed.tracks

    async def run(mutation: str, variables: dict[str, object]) -> dict[str, object]:
        data = await execute(live, mutation, variables, token=BOB_TOKEN)
        (result,) = data.values()
        assert isinstance(result, dict)
        return result

    body = f"__typename ... on PlaylistSuccess {{ playlist {{ {PLAYLIST_FIELDS} }} }} ... on Error {{ message }}"
    created = await run(
        f"mutation($i: CreatePlaylistInput!) {{ createPlaylist(input: $i) {{ {body} }} }}",
        {"i": {"name": "  rainy day ", "trackIds": [t["Words"], t["Tugboat"]]}},
    )
    p = created["playlist"]
    assert isinstance(p, dict) and p["name"] == "rainy day" and p["public"] is False
    pid = p["id"]
    await run(
        f'mutation($id: ID!) {{ renamePlaylist(id: $id, name: "drizzle") {{ {body} }} }}',
        {"id": pid},
    )
    await run(
        f'mutation($id: ID!) {{ describePlaylist(id: $id, description: "slow") {{ {body} }} }}',
        {"id": pid},
    )
    await run(
        f"mutation($id: ID!) {{ setPlaylistPublic(id: $id, public: true) {{ {body} }} }}",
        {"id": pid},
    )
    added = await run(
        f"mutation($id: ID!, $t: [ID!]!) {{ addToPlaylist(id: $id, trackIds: $t, position: 0) {{ {body} }} }}",
        {"id": pid, "t": [t["Space Song"]]},
    )
    titles = [n["track"]["title"] for n in added["playlist"]["tracks"]["nodes"]]  # type: ignore[index]
    assert titles == ["Space Song", "Words", "Tugboat"]
    moved = await run(
        f"mutation($id: ID!) {{ moveInPlaylist(id: $id, fromPosition: 0, toPosition: 2) {{ {body} }} }}",
        {"id": pid},
    )
    titles = [n["track"]["title"] for n in moved["playlist"]["tracks"]["nodes"]]  # type: ignore[index]
    assert titles == ["Words", "Tugboat", "Space Song"]
    removed = await run(
        f"mutation($id: ID!) {{ removeFromPlaylist(id: $id, positions: [1]) {{ {body} }} }}",
        {"id": pid},
    )
    final = removed["playlist"]
    assert isinstance(final, dict)
    assert final["name"] == "drizzle" and final["description"] == "slow" and final["public"]
    assert [n["position"] for n in final["tracks"]["nodes"]] == [0, 1]
    bad = await run(
        f"mutation($id: ID!) {{ moveInPlaylist(id: $id, fromPosition: 0, toPosition: 9) {{ {body} }} }}",
        {"id": pid},
    )
    assert bad["__typename"] == "InvalidInput"
    gone = await run(
        "mutation($id: ID!) { deletePlaylist(id: $id) { __typename ... on PlaylistDeleted { id } } }",
        {"id": pid},
    )
    assert gone == {"__typename": "PlaylistDeleted", "id": pid}
    assert (await execute(live, "query($id: ID!) { playlist(id: $id) { id } }", {"id": pid}))[
        "playlist"
    ] is None


RECS = """query($limit: Int!, $seeds: [ID!], $kind: ItemKind) {
  recommendations(limit: $limit, seeds: $seeds, kind: $kind) {
    __typename ... on RecommendationList { method items { kind score itemId
      item { __typename ... on Track { title } ... on Artist { name } }
      reasons { seedId seedKind share evidence seed { __typename } } } }
    ... on Error { message } } }"""


async def test_recommendations_with_reasons(live: LiveServer) -> None:
    """A user's recommendations are unheard tracks with the seeds and evidence behind them."""
    data = (await execute(live, RECS, {"limit": 5}, token=ALICE_TOKEN))["recommendations"]
    assert data["__typename"] == "RecommendationList", data
    heard = {"Alison", "When the Sun Hits", "Only Shallow", "Sometimes", "Vapour Trail"}
    items = data["items"]
    assert items and all(i["item"]["title"] not in heard for i in items)
    assert all(i["reasons"] and i["reasons"][0]["evidence"] for i in items)


async def test_recommendations_without_reasons_then_with_them(live: LiveServer) -> None:
    """A query that selects no reasons gets the same items, and a query that selects them next
    gets them (the list computed without explanations is not served for it)."""
    bare = "{ recommendations(limit: 4) { ... on RecommendationList { items { itemId } } } }"
    items = (await execute(live, bare, token=ALICE_TOKEN))["recommendations"]["items"]
    full = (await execute(live, RECS, {"limit": 4}, token=ALICE_TOKEN))["recommendations"]
    assert [i["itemId"] for i in full["items"]] == [i["itemId"] for i in items]
    assert all(i["reasons"] and i["reasons"][0]["evidence"] for i in full["items"])


async def test_seed_radio_for_anyone(live: LiveServer, seed: Seed) -> None:
    """Without a token, recommendations from seeds work (seed radio); similarTracks too."""
    data = await execute(live, RECS, {"limit": 3, "seeds": [seed.tracks["Words"]]})
    assert data["recommendations"]["__typename"] == "RecommendationList"
    assert data["recommendations"]["method"].startswith("seed-radio")
    similar = await execute(
        live,
        "query($id: ID!) { similarTracks(id: $id, limit: 3) { __typename "
        "... on RecommendationList { items { itemId } } } }",
        {"id": seed.tracks["Words"]},
    )
    assert similar["similarTracks"]["__typename"] == "RecommendationList"
    unknown = await execute(live, '{ similarArtists(id: "ar_nope") { __typename } }')
    assert unknown["similarArtists"]["__typename"] == "NotFound"


async def test_generate_playlist(live: LiveServer) -> None:
    """generatePlaylist saves a playlist of recommended tracks for the viewer."""
    data = await execute(
        live,
        'mutation { generatePlaylist(input: {name: "for carol", length: 3}) { __typename '
        "... on PlaylistSuccess { playlist { name owner { name } tracks { totalCount } } } "
        "... on Error { message } } }",
        token=BOB_TOKEN,
    )
    result = data["generatePlaylist"]
    assert result["__typename"] == "PlaylistSuccess", result
    assert result["playlist"]["name"] == "for carol"
    assert 1 <= result["playlist"]["tracks"]["totalCount"] <= 3


STATS = """query($p: Period!) { listeningStats(period: $p) { __typename ... on ListeningStats {
  listenCount uniqueTracks uniqueArtists diversity
  topArtists { count artist { name } } topTracks { count track { title } }
  topTags { name count } listensPerDay { day count } } ... on Error { message } } }"""


async def test_listening_stats(live: LiveServer) -> None:
    """listeningStats counts the viewer's listens of the period, by artist, track, tag and day."""
    week = (await execute(live, STATS, {"p": "WEEK"}, token=BOB_TOKEN))["listeningStats"]
    total = (await execute(live, STATS, {"p": "ALL_TIME"}, token=BOB_TOKEN))["listeningStats"]
    assert week["__typename"] == total["__typename"] == "ListeningStats"
    assert 0 < week["listenCount"] < total["listenCount"] == 15
    assert sum(d["count"] for d in total["listensPerDay"]) == 15
    assert total["topArtists"][0]["count"] >= total["topArtists"][-1]["count"]
    assert 0 < total["diversity"] <= 1
    assert {"shoegaze", "dream pop"} <= {t["name"] for t in total["topTags"]}


async def test_health_enrichment_and_probes(live: LiveServer, seed: Seed) -> None:
    """health lists the store; /healthz, /readyz and /metrics answer; the admin queues enrichment."""
    data = await execute(
        live, "{ health { name kind status } enrichmentQueues { source pending } }"
    )
    assert any(h["name"] == "store" for h in data["health"])
    assert {q["source"] for q in data["enrichmentQueues"]} >= {"musicbrainz"}
    assert (await get(live, "/healthz")).json() == {"status": "ok"}
    ready = await get(live, "/readyz")
    assert ready.status_code == 200 and ready.json()["projection"]["ok"] is True
    metrics = await get(live, "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'musicgraph_http_requests_total{route="/graphql",status="200"}' in metrics.text
    assert "musicgraph_http_request_seconds_bucket" in metrics.text
    assert "musicgraph_event_subscribers" in metrics.text
    started = await execute(
        live,
        'mutation($t: [ID!]!) { startEnrichment(trackIds: $t, sources: ["lastfm"]) { __typename '
        "... on EnrichmentStarted { sources } } }",
        {"t": [seed.tracks["Alison"]]},
        token=ADMIN_TOKEN,
    )
    assert started["startEnrichment"] == {"__typename": "EnrichmentStarted", "sources": ["lastfm"]}
    jobs = await execute(
        live,
        "query($t: ID!) { enrichmentJobs(trackId: $t) { source status } }",
        {"t": seed.tracks["Alison"]},
    )
    assert {"source": "lastfm", "status": "pending"} in jobs["enrichmentJobs"]


@pytest.mark.parametrize("header", ["X-Request-ID"])
async def test_request_id_header(live: LiveServer, header: str) -> None:
    """Every answer carries a request id, the client's own when it sent a sane one."""
    r = await get(live, "/healthz", headers={header: "abc-123"})
    assert r.headers[header] == "abc-123"
    r = await get(live, "/healthz", headers={header: "bad id with spaces"})
    assert r.headers[header] != "bad id with spaces" and len(r.headers[header]) == 32


async def test_recommendations_follow_new_listens(live: LiveServer) -> None:
    """After a user listens to a recommended track, their next recommendations leave it out
    (the answer is recomputed, not served stale)."""
    query = "{ recommendations(limit: 3) { ... on RecommendationList { items { itemId item { ... on Track { title artists { name } } } } } } }"
    before = (await execute(live, query, token=BOB_TOKEN))["recommendations"]["items"]
    top = before[0]["item"]
    listen = {
        "artist": top["artists"][0]["name"],
        "title": top["title"],
        "listenedAt": int(time.time()) - 30,
    }
    await execute(live, RECORD, {"listens": [listen]}, token=BOB_TOKEN)
    for _ in range(100):  # the engine applies the listen from the bus, then announces it
        after = (await execute(live, query, token=BOB_TOKEN))["recommendations"]["items"]
        if before[0]["itemId"] not in {i["itemId"] for i in after}:
            break
        await asyncio.sleep(0.02)
    assert before[0]["itemId"] not in {i["itemId"] for i in after}


async def test_new_user_gets_recommendations(live: LiveServer, seeded: tuple[Path, Seed]) -> None:
    """A user created after the projection was built (no listens yet) gets popular tracks."""
    store = SqliteGraphStore(seeded[0])  # a second connection to the server's database
    await store.open()
    try:
        await store.create_user("dave", token_hash=hash_token("mg_dave"))
    finally:
        await store.close()
    data = await execute(live, RECS, {"limit": 3}, token="mg_dave")
    assert data["recommendations"]["__typename"] == "RecommendationList"
    assert data["recommendations"]["method"] == "popularity" and data["recommendations"]["items"]


async def test_taste_clusters_are_private(live: LiveServer, seed: Seed) -> None:
    """A user sees their taste clusters (artists grouped, with shares); others see null."""
    query = "query($u: ID!) { user(id: $u) { tasteClusters { label share artists { name } } } }"
    own = await execute(live, query, {"u": seed.users["bob"]}, token=BOB_TOKEN)
    clusters = own["user"]["tasteClusters"]
    assert clusters and all(c["artists"] and 0 < c["share"] <= 1 for c in clusters)
    other = await execute(live, query, {"u": seed.users["bob"]}, token=ALICE_TOKEN)
    assert other["user"]["tasteClusters"] is None


async def test_mutations_are_refused_over_get(live: LiveServer) -> None:
    """GET runs queries only: a mutation sent as a GET request is refused and changes nothing."""
    mutation = 'mutation { createPlaylist(input: {name: "via get"}) { __typename } }'
    r = await get(
        live,
        "/graphql",
        params={"query": mutation},
        headers={"Authorization": f"Bearer {BOB_TOKEN}"},
    )
    assert r.status_code in (400, 405)
    mine = await execute(live, "{ me { playlists { name } } }", token=BOB_TOKEN)
    assert "via get" not in {p["name"] for p in mine["me"]["playlists"]}
