"""The recommendation engine: methods, controls, cold starts and errors, on a graph with known
answers (two taste communities)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest
import structlog

from musicgraph.errors import RecommenderError
from musicgraph.events import Event, EventBus
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import Friendship, ListenInput, Tagging, Track, TrackRef
from musicgraph.recommender.engine import Controls, RecommendationEngine
from musicgraph.recommender.projection import Projection

DAY = 86_400
NOW = 1_700_000_000


def community_projection() -> Projection:
    """Rock: tracks r0-r5 by artists A (r0-r2) and B (r3-r5), played by users 0-5.
    Jazz: tracks j0-j3 by artist C, played by users 6-9. User "me" played r0 and r1 (r0 long ago).
    Track r5 is the most popular rock track (also played by users 6 and 7)."""
    tracks = [f"r{i}" for i in range(6)] + [f"j{i}" for i in range(4)]
    users = [f"u{i}" for i in range(10)] + ["me"]
    rows, cols, counts, times = [], [], [], []

    def play(u: int, t: int, n: int = 1, at: int = NOW - DAY) -> None:
        rows.append(u), cols.append(t), counts.append(n), times.append(at)

    for u in range(6):
        for t in range(6):
            if (u + t) % 3 != 0 or t == 5:
                play(u, t)
    for u in range(6, 10):
        for t in range(6, 10):
            play(u, t)
    play(6, 5)
    play(7, 5)
    me = users.index("me")
    play(me, 0, 5, NOW - 400 * DAY)
    play(me, 1, 2, NOW - DAY)
    p = Projection.from_arrays(
        user_ids=users,
        track_ids=tracks,
        artist_ids=["A", "B", "C"],
        tag_names=["rock", "jazz", "loud"],
        listens=(np.array(rows), np.array(cols), np.array(counts), np.array(times)),
        track_artist=np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2]),
        track_tags=(np.array([0, 1, 2, 3, 4, 5, 6, 7, 3]), np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])),
        artist_tags=(np.array([0, 1, 2]), np.array([0, 0, 1])),
        friends=(np.array([me, me]), np.array([2, 3])),
    )
    p.update_tracks(
        [
            Track("r2", "Second", artist_ids=("A",), bpm=120.0, energy=0.9, valence=0.2),
            Track("r3", "Third", artist_ids=("B",), bpm=90.0, energy=0.3, valence=0.8),
            Track("r4", "Fourth", artist_ids=("B",), bpm=125.0, energy=0.7, valence=0.5),
        ]
    )
    return p


@pytest.fixture
def engine() -> RecommendationEngine:
    return RecommendationEngine(community_projection(), clock=lambda: NOW, popularity_beta=0.0)


def ids(result: object) -> list[str]:
    return [r.item_id for r in result.items]  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["auto", "exact", "sampled"])
def test_recommends_the_users_community_and_says_how(mode: str) -> None:
    """A rock listener gets rock tracks first, not heard ones, with the method named."""
    engine = RecommendationEngine(community_projection(), mode=mode, clock=lambda: NOW)
    res = engine.recommend("me", controls=Controls(limit=4))
    assert set(ids(res)) == {"r2", "r3", "r4", "r5"}
    assert res.method == ("pixie-sampled" if mode == "sampled" else "exact-ppr")
    assert res.elapsed_ms > 0
    assert [r.score for r in res.items] == sorted((r.score for r in res.items), reverse=True)


def test_small_graphs_are_scored_exactly_and_big_budgets_are_sampled() -> None:
    """The engine picks exact power iteration within its budget and sampling above it."""
    p = community_projection()
    assert RecommendationEngine(p).choose("track") == "exact"
    assert RecommendationEngine(p, exact_budget=10).choose("track") == "sampled"
    assert RecommendationEngine(p, exact_budget=10).recommend("me").method == "pixie-sampled"


def test_unknown_user_is_a_clear_error(engine: RecommendationEngine) -> None:
    """An id the graph has never seen raises RecommenderError naming it."""
    with pytest.raises(RecommenderError, match="unknown user 'nobody'"):
        engine.recommend("nobody")


def test_cold_starts_fall_back_to_popularity_or_seed_radio(engine: RecommendationEngine) -> None:
    """No user and no seeds is popularity; seeds make seed radio, also for unknown users."""
    pop = engine.recommend(None, controls=Controls(limit=3))
    assert pop.method == "popularity"
    assert ids(pop)[0] == "r5"
    assert pop.items[0].reasons[0].evidence.endswith("8 listeners")
    radio = engine.recommend("nobody", controls=Controls(limit=3, seeds=("j0",)))
    assert radio.method == "seed-radio:exact-ppr"
    assert set(ids(radio)) <= {"j1", "j2", "j3", "r5"} and "j0" not in ids(radio)
    engine.add_user("newcomer")
    assert engine.recommend("newcomer").method == "popularity"


def test_artist_and_tag_seeds(engine: RecommendationEngine) -> None:
    """An artist seed radios its neighbourhood; a tag seed starts from the items tagged with it."""
    res = engine.recommend(None, kind="artist", controls=Controls(limit=2, seeds=("C",)))
    assert ids(res)[0] == "B"  # C's listeners 6 and 7 also play r5 by B
    res = engine.recommend(None, controls=Controls(limit=3, seeds=("tag:jazz",)))
    assert set(ids(res)) <= {"j0", "j1", "j2", "j3"}
    assert res.items[0].reasons[0].seed_kind == "tag"
    with pytest.raises(RecommenderError, match="unknown seed 'zzz'"):
        engine.recommend(None, controls=Controls(seeds=("zzz",)))


def test_artist_recommendations(engine: RecommendationEngine) -> None:
    """Artist-level recommendations exclude the user's artists and find the community's."""
    res = engine.recommend("me", kind="artist", controls=Controls(limit=2))
    assert ids(res)[0] == "B"
    assert "A" not in ids(res)


def test_exclude_heard_ever_or_within_days(engine: RecommendationEngine) -> None:
    """Heard items are excluded by default, all of them, or only those heard in the last N days."""
    everything = ids(engine.recommend("me", controls=Controls(limit=10, exclude_heard=False)))
    assert {"r0", "r1"} <= set(everything)
    recent = ids(engine.recommend("me", controls=Controls(limit=10, exclude_heard_within_days=30)))
    assert "r0" in recent and "r1" not in recent  # r0 was heard 400 days ago


def test_max_per_artist(engine: RecommendationEngine) -> None:
    """No more than N tracks of one artist."""
    res = engine.recommend("me", controls=Controls(limit=3, max_per_artist=1, exclude_heard=False))
    artists = [engine.projection.artist_of(engine.projection.tracks.index[i]) for i in ids(res)]
    assert len(artists) == len(set(artists)) == 3


def test_tag_filters_cover_track_and_artist_tags(engine: RecommendationEngine) -> None:
    """include_tags keeps only tagged items (own tags or the artist's); exclude_tags drops them."""
    loud = ids(engine.recommend("me", controls=Controls(include_tags=("loud",))))
    assert loud == ["r3"]
    jazz = ids(engine.recommend("me", controls=Controls(limit=10, include_tags=("jazz",))))
    assert set(jazz) == {"j0", "j1", "j2", "j3"}  # C is tagged jazz, so all of its tracks
    no_rock = ids(engine.recommend("me", controls=Controls(limit=10, exclude_tags=("rock",))))
    assert no_rock and all(i.startswith("j") for i in no_rock)


def test_audio_feature_ranges(engine: RecommendationEngine) -> None:
    """bpm, energy and valence ranges keep only enriched tracks inside them."""
    assert set(ids(engine.recommend("me", controls=Controls(bpm=(100, 130))))) == {"r2", "r4"}
    assert ids(engine.recommend("me", controls=Controls(energy=(0.0, 0.5)))) == ["r3"]
    assert ids(engine.recommend("me", controls=Controls(valence=(0.4, 0.6)))) == ["r4"]
    with pytest.raises(RecommenderError, match="bpm ranges apply to tracks only"):
        engine.recommend("me", kind="artist", controls=Controls(bpm=(1, 2)))
    with pytest.raises(RecommenderError, match="low <= high"):
        engine.recommend("me", controls=Controls(energy=(0.9, 0.1)))


def test_novelty_pushes_popular_items_down(engine: RecommendationEngine) -> None:
    """With the novelty knob up, the most popular track loses rank."""
    plain = ids(engine.recommend("me", controls=Controls(limit=4)))
    novel = ids(engine.recommend("me", controls=Controls(limit=4, novelty=1.0)))
    assert novel.index("r5") > plain.index("r5")
    with pytest.raises(RecommenderError, match="novelty"):
        engine.recommend("me", controls=Controls(novelty=2.0))


def test_dislikes_never_come_back_and_likes_boost(engine: RecommendationEngine) -> None:
    """A disliked track disappears; a liked jazz track brings jazz into the list."""
    p = engine.projection
    before = ids(engine.recommend("me", controls=Controls(limit=10)))
    assert "r2" in before
    p.set_ratings("me", [("r2", -1)])
    after = ids(engine.recommend("me", controls=Controls(limit=10, exclude_heard=False)))
    assert "r2" not in after
    p.set_ratings("me", [("r2", -1), ("j0", 1)])
    liked = ids(engine.recommend("me", controls=Controls(limit=4)))
    assert {"j1", "j2", "j3"} & set(liked)


def test_similar_items(engine: RecommendationEngine) -> None:
    """similar() ranks the item's community first and never returns the item itself."""
    res = engine.similar("j0", kind="track", limit=3)
    assert set(ids(res)) == {"j1", "j2", "j3"}
    assert res.items[0].reasons[0].seed_id == "j0"
    with pytest.raises(RecommenderError, match="unknown track 'zz'"):
        engine.similar("zz", kind="track")


def test_limits_are_checked(engine: RecommendationEngine) -> None:
    """A limit out of range is refused with the allowed range."""
    with pytest.raises(RecommenderError, match="limit must be between 1 and"):
        engine.recommend("me", controls=Controls(limit=0))


def test_stats(engine: RecommendationEngine) -> None:
    """Stats count users, items and edges, and report the memory held."""
    s = engine.stats
    assert s.loaded and s.users == 11 and s.items == 13 and s.edges > 30 and s.memory_bytes > 0


# --- against the real SQLite store ---------------------------------------------------------------


async def seed_store(store: GraphStore) -> dict[str, str]:
    """Four users on a real store: alice, bob and carol share rock, dave plays jazz."""
    users = {u.name: u.id for u in await store.ensure_users(["alice", "bob", "carol", "dave"])}
    refs = [TrackRef("Rocker", f"Rock {i}") for i in range(4)] + [
        TrackRef("Jazzer", f"Jazz {i}") for i in range(3)
    ]
    plays = {
        "alice": [0, 1],
        "bob": [0, 1, 2, 3],
        "carol": [1, 2],
        "dave": [4, 5, 6],
    }
    listens = [
        ListenInput(users[name], refs[t], NOW - 1000 * t - i, "test")
        for i, (name, ts) in enumerate(plays.items())
        for t in ts
    ]
    await store.record_listens(listens)
    tracks = await store.resolve_tracks(refs)
    ids = {t.title: t.id for t in tracks}
    await store.set_tags([Tagging("track", ids["Rock 2"], "rock", 3)])
    await store.add_friendships([Friendship(users["alice"], users["bob"])])
    return {**users, **ids}


async def test_engine_loads_from_the_store_and_recommends(sqlite_store: GraphStore) -> None:
    """A real SQLite store streams into the engine, which recommends alice the rock she missed."""
    ids_ = await seed_store(sqlite_store)
    engine = await RecommendationEngine.load(sqlite_store, clock=lambda: NOW)
    res = engine.recommend(ids_["alice"], controls=Controls(limit=2))
    assert set(ids(res)) == {ids_["Rock 2"], ids_["Rock 3"]}
    assert engine.projection.item_name("track", engine.projection.tracks.index[ids_["Rock 2"]]) == (
        "Rock 2"
    )
    art = engine.recommend(ids_["dave"], kind="artist", controls=Controls(limit=1))
    assert art.items == () or art.items[0].kind == "artist"
    assert engine.stats.loaded and engine.stats.users == 4


async def test_live_listen_changes_recommendations_within_a_second(
    sqlite_store: GraphStore,
) -> None:
    """record_listens on the bus reaches the engine, which re-ranks and announces it in < 1 s."""
    from musicgraph.ingest.service import record_listens

    ids_ = await seed_store(sqlite_store)
    bus = EventBus()
    engine = await RecommendationEngine.load(sqlite_store, bus, clock=lambda: NOW)
    await engine.start()
    try:
        before = ids(engine.recommend(ids_["alice"], controls=Controls(limit=5)))
        assert ids_["Rock 2"] in before
        async with bus.subscription(["recommendations.updated"], user_id=ids_["alice"]) as sub:
            t0 = time.perf_counter()
            await record_listens(
                sqlite_store,
                [
                    ListenInput(ids_["alice"], TrackRef("Rocker", "Rock 2"), NOW + 10, "test"),
                    ListenInput(ids_["alice"], TrackRef("Jazzer", "Jazz 0"), NOW + 20, "test"),
                    ListenInput(ids_["alice"], TrackRef("Newbie", "Fresh"), NOW + 30, "test"),
                ],
                bus=bus,
            )
            event = await asyncio.wait_for(sub.get(), timeout=1.0)
            elapsed = time.perf_counter() - t0
        assert event.payload["kinds"] == ["track", "artist"]
        assert elapsed < 1.0
        after = ids(engine.recommend(ids_["alice"], controls=Controls(limit=5)))
        assert ids_["Rock 2"] not in after  # heard now
        assert {ids_["Jazz 1"], ids_["Jazz 2"]} <= set(after)  # the jazz listen opened jazz
        # the live projection equals a fresh one read from the store
        fresh = await Projection.load(sqlite_store)
        for name in ("user_track", "track_user", "user_artist", "artist_user", "artist_track"):
            assert engine.projection.edge_dict(name) == fresh.edge_dict(name), name
    finally:
        await engine.stop()


async def test_rating_and_playlist_events_apply_in_place(sqlite_store: GraphStore) -> None:
    """A dislike published on the bus removes the track; a playlist change lands in the graph."""
    ids_ = await seed_store(sqlite_store)
    bus = EventBus()
    engine = await RecommendationEngine.load(sqlite_store, bus, clock=lambda: NOW)
    await engine.start()
    try:
        alice = ids_["alice"]
        async with bus.subscription(["recommendations.updated"], user_id=alice) as sub:
            await sqlite_store.set_rating(alice, ids_["Rock 2"], -1, NOW)
            bus.publish(
                Event("ratings.changed", {"track_id": ids_["Rock 2"], "score": -1}, user_id=alice)
            )
            await asyncio.wait_for(sub.get(), timeout=1.0)
            assert ids_["Rock 2"] not in ids(engine.recommend(alice, controls=Controls(limit=5)))
            pl = await sqlite_store.create_playlist(
                alice, "mix", track_ids=[ids_["Jazz 0"], ids_["Rock 0"]]
            )
            bus.publish(Event("playlists.changed", {"playlist_id": pl.id}, user_id=alice))
            await asyncio.wait_for(sub.get(), timeout=1.0)
        assert set(engine.projection.edge_dict("playlist_track")) == {
            (pl.id, ids_["Jazz 0"]),
            (pl.id, ids_["Rock 0"]),
        }
        fresh = await Projection.load(sqlite_store)
        assert engine.projection.edge_dict("playlist_track") == fresh.edge_dict("playlist_track")
        assert fresh.ratings == {fresh.users.index[alice]: {fresh.tracks.index[ids_["Rock 2"]]: -1}}
    finally:
        await engine.stop()


async def test_batched_rating_event_applies_without_a_store(sqlite_store: GraphStore) -> None:
    """An engine without a store applies every change of a batched ratings event (as an import
    publishes them): two dislikes and a clear of an earlier like."""
    ids_ = await seed_store(sqlite_store)
    bus = EventBus()
    engine = RecommendationEngine(await Projection.load(sqlite_store), bus=bus, hybrid=False)
    await engine.start()
    try:
        alice = ids_["alice"]
        async with bus.subscription(["recommendations.updated"], user_id=alice) as sub:
            bus.publish(
                Event("ratings.changed", {"track_id": ids_["Jazz 0"], "score": 1}, user_id=alice)
            )
            await asyncio.wait_for(sub.get(), timeout=1.0)
            changes = [
                {"track_id": ids_["Rock 2"], "score": -1},
                {"track_id": ids_["Jazz 1"], "score": -1},
                {"track_id": ids_["Jazz 0"], "score": None},
            ]
            bus.publish(Event("ratings.changed", {"ratings": changes}, user_id=alice))
            await asyncio.wait_for(sub.get(), timeout=1.0)
        p = engine.projection
        assert p.ratings[p.users.index[alice]] == {
            p.tracks.index[ids_["Rock 2"]]: -1,
            p.tracks.index[ids_["Jazz 1"]]: -1,
        }
        recommended = ids(engine.recommend(alice, controls=Controls(limit=10)))
        assert ids_["Rock 2"] not in recommended and ids_["Jazz 1"] not in recommended
    finally:
        await engine.stop()


def test_cli_recommend_and_similar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`musicgraph recommend NAME --json` and `musicgraph similar ID --json` answer from a file."""
    from musicgraph.cli import main
    from musicgraph.graph.sqlite_store import SqliteGraphStore

    db = tmp_path / "cli.db"

    async def fill() -> dict[str, str]:
        store = SqliteGraphStore(db)
        await store.open()
        try:
            return await seed_store(store)
        finally:
            await store.close()

    ids_ = asyncio.run(fill())
    try:
        assert (
            main(["recommend", "alice", "--db", str(db), "--json", "--limit", "2", "--explain"])
            == 0
        )
        out = json.loads(capsys.readouterr().out)
        assert out["method"] == "exact-ppr"
        assert {i["item_id"] for i in out["items"]} == {ids_["Rock 2"], ids_["Rock 3"]}
        reason = out["items"][0]["reasons"][0]
        assert reason["seed_kind"] == "track" and reason["evidence"] and 0 < reason["share"] <= 1
        assert main(["similar", ids_["Jazz 0"], "--db", str(db), "--json", "--limit", "2"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert {i["item_id"] for i in out["items"]} == {ids_["Jazz 1"], ids_["Jazz 2"]}
        assert main(["recommend", "nobody", "--db", str(db)]) == 1
        assert "no user 'nobody'" in capsys.readouterr().err
    finally:
        structlog.reset_defaults()  # main() bound the logger to the captured stderr


def write_hetrec(folder: Path) -> Path:
    """A HetRec-format folder of three users (hetrec-1..3) who play three artists."""
    folder.mkdir()
    files = {
        "artists.dat": "id\tname\turl\tpictureURL\n1\tAlpha\tu\tp\n2\tBeta\tu\tp\n3\tGamma\tu\tp\n",
        "user_artists.dat": "userID\tartistID\tweight\n1\t1\t50\n1\t2\t40\n2\t1\t30\n2\t2\t20\n"
        "2\t3\t10\n3\t1\t5\n",
        "tags.dat": "tagID\ttagValue\n1\tpost-rock\n",
        "user_taggedartists.dat": "userID\tartistID\ttagID\tday\tmonth\tyear\n1\t3\t1\t1\t4\t2009\n",
        "user_friends.dat": "userID\tfriendID\n1\t2\n2\t1\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


async def test_a_bulk_import_event_rebuilds_the_projection(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    """A HetRec import sends no event per row: its one graph.imported event makes the engine
    build the projection again from the store, keep serving the users it had, and announce to
    every user's subscription that their recommendations may have changed."""
    from musicgraph.ingest.hetrec import import_hetrec

    ids_ = await seed_store(sqlite_store)
    bus = EventBus()
    engine = await RecommendationEngine.load(sqlite_store, bus, clock=lambda: NOW)
    await engine.start()
    try:
        before = ids(engine.recommend(ids_["alice"], controls=Controls(limit=5)))
        await import_hetrec(sqlite_store, write_hetrec(tmp_path / "hetrec"))
        user3 = await sqlite_store.get_user_by_name("hetrec-3")
        assert user3 is not None
        with pytest.raises(RecommenderError, match="unknown user"):
            engine.recommend(user3.id, kind="artist")  # not announced yet
        async with bus.subscription(["recommendations.updated"], user_id=ids_["alice"]) as sub:
            bus.publish(Event("graph.imported", payload={"source": "hetrec"}))
            event = await asyncio.wait_for(sub.get(), timeout=5.0)
        assert event.user_id is None and event.payload["kinds"] == ["track", "artist"]
        got = engine.recommend(user3.id, kind="artist", controls=Controls(limit=3))
        names = [
            engine.projection.item_name("artist", engine.projection.artists.index[r.item_id])
            for r in got.items
        ]
        assert names[:1] == ["Beta"]  # what the other listeners of Alpha play
        assert ids(engine.recommend(ids_["alice"], controls=Controls(limit=5))) == before
        assert engine.stats.users == 4 + 3
    finally:
        await engine.stop()
