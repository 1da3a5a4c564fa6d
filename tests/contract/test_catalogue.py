"""Artists and tracks: identity resolution, identifiers, batched reads, search, updates."""

from __future__ import annotations

import pytest

from musicgraph.errors import StoreError
from musicgraph.graph import identity
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import ArtistRef, TrackRef, TrackUpdate

from .conftest import ARTIST_MBID, ISRC, MBID_A, MBID_B, SPOTIFY


async def test_resolve_creates_track_artist_and_by_edge(store: GraphStore) -> None:
    """A new ref creates its track (with the name-key id) and its artist, linked by BY."""
    [track] = await store.resolve_tracks(
        [TrackRef("Sigur Rós", "Hoppípolla", album="Takk...", duration_ms=268_000)]
    )
    assert track.id == identity.track_id_for_key(identity.track_key("Sigur Rós", "Hoppípolla"))
    assert track.title == "Hoppípolla"
    assert track.album == "Takk..."
    assert track.duration_ms == 268_000
    assert track.artist_ids == (identity.artist_id_for("Sigur Rós"),)
    [artist] = await store.get_artists(list(track.artist_ids))
    assert artist is not None and artist.name == "Sigur Rós"
    assert await store.tracks_by_artists([artist.id]) == [[track]]


async def test_resolve_is_idempotent_and_normalises_names(store: GraphStore) -> None:
    """Case, spacing and "feat." credits do not make a new track."""
    [a] = await store.resolve_tracks([TrackRef("Daft Punk", "Get Lucky")])
    again = await store.resolve_tracks(
        [
            TrackRef("daft  punk", "GET LUCKY"),
            TrackRef("Daft Punk feat. Pharrell Williams", "Get Lucky (feat. Nile Rodgers)"),
        ]
    )
    assert [t.id for t in again] == [a.id, a.id]
    counts = await store.counts()
    assert (counts.tracks, counts.artists, counts.track_artists) == (1, 1, 1)


async def test_same_track_by_mbid_and_by_name(store: GraphStore) -> None:
    """A ref with an MBID and a later ref with only the name reach the same track."""
    [by_mbid] = await store.resolve_tracks([TrackRef("Radiohead", "Creep", mbid=MBID_A)])
    [by_name] = await store.resolve_tracks([TrackRef("RADIOHEAD", "creep")])
    [by_mbid_other_name] = await store.resolve_tracks(
        [TrackRef("Radiohead (band)", "Creep - Remastered", mbid=MBID_A.upper())]
    )
    assert by_mbid.id == by_name.id == by_mbid_other_name.id
    assert by_mbid.mbid == MBID_A
    assert await store.find_tracks(mbid=MBID_A) == [by_mbid]


async def test_name_match_gains_identifiers(store: GraphStore) -> None:
    """A track first seen by name gets the MBID, ISRC and Spotify id later refs carry."""
    [plain] = await store.resolve_tracks([TrackRef("Björk", "Jóga")])
    [rich] = await store.resolve_tracks(
        [TrackRef("björk", "jóga", mbid=MBID_A, isrc=ISRC, spotify_id=f"spotify:track:{SPOTIFY}")]
    )
    assert rich.id == plain.id
    assert (rich.mbid, rich.isrc, rich.spotify_id) == (MBID_A, ISRC, SPOTIFY)
    [stored] = await store.get_tracks([plain.id])
    assert stored == rich


async def test_same_track_by_isrc_and_by_spotify_id(store: GraphStore) -> None:
    """Refs with a different name still reach the track through its ISRC or Spotify id."""
    [t] = await store.resolve_tracks([TrackRef("A", "Song", isrc=ISRC, spotify_id=SPOTIFY)])
    [by_isrc] = await store.resolve_tracks([TrackRef("Other", "Name", isrc=ISRC.lower())])
    [by_spotify] = await store.resolve_tracks(
        [TrackRef("Third", "Title", spotify_id=f"https://open.spotify.com/track/{SPOTIFY}")]
    )
    assert by_isrc.id == t.id == by_spotify.id
    assert await store.find_tracks(isrc=ISRC) == [t]
    assert await store.find_tracks(spotify_id=SPOTIFY) == [t]
    assert (await store.counts()).tracks == 1


async def test_name_match_refused_for_different_mbid(store: GraphStore) -> None:
    """Two recordings with the same name but different MBIDs stay two tracks."""
    [first] = await store.resolve_tracks([TrackRef("Nirvana", "Lithium", mbid=MBID_A)])
    [second] = await store.resolve_tracks([TrackRef("Nirvana", "Lithium", mbid=MBID_B)])
    assert first.id != second.id
    assert second.id == identity.track_id_for_strong("mbid", MBID_B)
    assert (first.mbid, second.mbid) == (MBID_A, MBID_B)
    # Each MBID keeps reaching its own recording; a plain name reaches the first one.
    [again_b, again_a, plain] = await store.resolve_tracks(
        [
            TrackRef("Nirvana", "Lithium", mbid=MBID_B),
            TrackRef("Nirvana", "Lithium", mbid=MBID_A),
            TrackRef("nirvana", "lithium"),
        ]
    )
    assert (again_b.id, again_a.id, plain.id) == (second.id, first.id, first.id)


async def test_isrc_match_refused_for_different_mbid(store: GraphStore) -> None:
    """A shared ISRC does not merge two recordings whose MBIDs differ."""
    [first] = await store.resolve_tracks([TrackRef("X", "One", mbid=MBID_A, isrc=ISRC)])
    [second] = await store.resolve_tracks([TrackRef("Y", "Two", mbid=MBID_B, isrc=ISRC)])
    assert first.id != second.id


async def test_refs_within_one_batch_resolve_in_order(store: GraphStore) -> None:
    """Inside a batch, later refs see the tracks earlier refs created or enriched."""
    tracks = await store.resolve_tracks(
        [
            TrackRef("Air", "La Femme d'Argent"),
            TrackRef("Air", "La Femme d'Argent", mbid=MBID_A),
            TrackRef("Someone", "Else", mbid=MBID_A),
            TrackRef("Air", "La Femme d'Argent", mbid=MBID_B),
        ]
    )
    assert tracks[0].id == tracks[1].id == tracks[2].id != tracks[3].id
    assert tracks[2].mbid == MBID_A
    assert tracks[3].mbid == MBID_B
    assert (await store.counts()).tracks == 2


async def test_invalid_identifier_fails_the_batch(store: GraphStore) -> None:
    """An invalid MBID raises StoreError naming the input, and nothing of the batch is stored."""
    with pytest.raises(StoreError, match="track 1"):
        await store.resolve_tracks([TrackRef("A", "Fine"), TrackRef("B", "Bad", mbid="nope")])
    assert (await store.counts()).tracks == 0


async def test_blank_title_fails_the_batch(store: GraphStore) -> None:
    """A blank title raises StoreError and stores nothing."""
    with pytest.raises(StoreError):
        await store.resolve_tracks([TrackRef("A", "  ")])
    assert (await store.counts()).artists == 0


async def test_empty_inputs_give_empty_outputs(store: GraphStore) -> None:
    """Empty batches are no-ops that return empty lists."""
    assert await store.resolve_tracks([]) == []
    assert await store.upsert_artists([]) == []
    assert await store.get_tracks([]) == []
    assert await store.get_artists([]) == []
    assert await store.tracks_by_artists([]) == []
    assert await store.count_tracks_by_artists([]) == []
    assert await store.find_tracks() == []
    await store.update_tracks([])


async def test_unknown_ids_give_none_in_order(store: GraphStore) -> None:
    """get_tracks and get_artists return None for unknown ids, in the order asked."""
    [t] = await store.resolve_tracks([TrackRef("A", "B")])
    assert await store.get_tracks(["tr_nope", t.id, "tr_nope"]) == [None, t, None]
    assert await store.get_artists(["ar_nope", t.artist_ids[0]]) == [
        None,
        (await store.get_artists([t.artist_ids[0]]))[0],
    ]


async def test_upsert_artists_matches_by_mbid_then_name(store: GraphStore) -> None:
    """Artists match by MBID, then by normalised name, and gain missing identifiers."""
    [a] = await store.upsert_artists([ArtistRef("Sigur Rós")])
    [b] = await store.upsert_artists(
        [ArtistRef("SIGUR RÓS", mbid=ARTIST_MBID, url="https://sigur-ros.is")]
    )
    [c] = await store.upsert_artists([ArtistRef("Sigur Ros (Iceland)", mbid=ARTIST_MBID)])
    assert a.id == b.id == c.id
    assert (c.name, c.mbid, c.url) == ("Sigur Rós", ARTIST_MBID, "https://sigur-ros.is")
    assert (await store.counts()).artists == 1


async def test_artist_name_match_refused_for_different_mbid(store: GraphStore) -> None:
    """Two artists with the same name and different MBIDs stay two artists."""
    [a, b] = await store.upsert_artists(
        [ArtistRef("Nirvana", mbid=MBID_A), ArtistRef("Nirvana", mbid=MBID_B)]
    )
    assert a.id != b.id
    assert b.id == identity.artist_id_for_mbid(MBID_B)


async def test_search_is_substring_on_normalised_text_shortest_first(store: GraphStore) -> None:
    """Search finds substrings regardless of case, best (shortest) names first, with counts."""
    await store.upsert_artists(
        [ArtistRef("The Beatles"), ArtistRef("Beat Happening"), ArtistRef("坂本龍一")]
    )
    await store.resolve_tracks(
        [
            TrackRef("The Beatles", "Let It Be"),
            TrackRef("The Beatles", "Let It Be (Remastered 2009)"),
            TrackRef("Björk", "It's Oh So Quiet"),
        ]
    )
    assert [a.name for a in await store.search_artists("BEAT")] == [
        "The Beatles",
        "Beat Happening",
    ]
    assert await store.count_search_artists("beat") == 2
    assert [a.name for a in await store.search_artists("龍")] == ["坂本龍一"]
    found = await store.search_tracks("let it")
    assert [t.title for t in found] == ["Let It Be", "Let It Be (Remastered 2009)"]
    assert [t.title for t in await store.search_tracks("let it", offset=1, limit=5)] == [
        "Let It Be (Remastered 2009)"
    ]
    assert await store.count_search_tracks("LET IT") == 2
    assert await store.search_tracks("no such title") == []
    assert await store.count_search_tracks("no such title") == 0


async def test_tracks_by_artists_per_artist_ordered_by_title(store: GraphStore) -> None:
    """Each artist gets its tracks ordered by title, limited, with counts; unknown gets none."""
    await store.resolve_tracks(
        [TrackRef("A", "c"), TrackRef("A", "a"), TrackRef("A", "b"), TrackRef("B", "z")]
    )
    a, b = identity.artist_id_for("A"), identity.artist_id_for("B")
    per = await store.tracks_by_artists([b, "ar_nope", a], limit=2)
    assert [[t.title for t in ts] for ts in per] == [["z"], [], ["a", "b"]]
    assert await store.count_tracks_by_artists([a, "ar_nope", b]) == [3, 0, 1]


async def test_update_tracks_sets_only_given_fields(store: GraphStore) -> None:
    """An update sets its non-None fields, leaves the rest, and ignores unknown ids."""
    [t] = await store.resolve_tracks([TrackRef("A", "B", album="Album", duration_ms=1000)])
    await store.update_tracks(
        [
            TrackUpdate(t.id, bpm=120.5, key=5, mode=1, energy=0.8, moods=("happy", "calm")),
            TrackUpdate("tr_nope", bpm=99.0),
        ]
    )
    await store.update_tracks([TrackUpdate(t.id, valence=0.25, genres=("post-rock",), year=2005)])
    [u] = await store.get_tracks([t.id])
    assert u is not None
    assert (u.album, u.duration_ms, u.bpm, u.key, u.mode) == ("Album", 1000, 120.5, 5, 1)
    assert (u.energy, u.valence, u.year) == (0.8, 0.25, 2005)
    assert (u.moods, u.genres) == (("happy", "calm"), ("post-rock",))


async def test_update_tracks_sets_identifiers_for_find(store: GraphStore) -> None:
    """Identifiers set by an update make the track findable by them."""
    [t] = await store.resolve_tracks([TrackRef("A", "B")])
    await store.update_tracks([TrackUpdate(t.id, mbid=MBID_A, isrc=ISRC, spotify_id=SPOTIFY)])
    [found] = await store.find_tracks(mbid=MBID_A)
    assert found.id == t.id
    assert [x.id for x in await store.find_tracks(isrc=ISRC, spotify_id=SPOTIFY)] == [t.id]
    assert await store.find_tracks(isrc="not an isrc") == []


async def test_track_ref_artist_mbid_reaches_the_artist(store: GraphStore) -> None:
    """A track ref's artist MBID is stored on its artist, which later refs then match by MBID."""
    [t] = await store.resolve_tracks(
        [TrackRef("Sigur Rós", "Svefn-g-englar", artist_mbid=ARTIST_MBID)]
    )
    [artist] = await store.get_artists(list(t.artist_ids))
    assert artist is not None and artist.mbid == ARTIST_MBID
    [same] = await store.upsert_artists([ArtistRef("Sigur Ros", mbid=ARTIST_MBID)])
    assert same.id == artist.id
