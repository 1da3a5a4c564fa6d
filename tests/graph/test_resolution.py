"""The store-agnostic identity plan both stores follow (pure: no store involved)."""

from __future__ import annotations

import pytest

from musicgraph.graph import identity
from musicgraph.graph.models import ArtistRef, TrackRef
from musicgraph.graph.resolution import (
    Catalogue,
    KnownArtist,
    KnownTrack,
    clean_artist,
    clean_track,
    plan_artists,
    plan_tracks,
    track_keys,
)

MBID_A = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
MBID_B = "1c1b34a0-8d3f-4b3a-9b70-0c5d3c3f1a2e"


def _plan(refs: list[TrackRef], catalogue: Catalogue | None = None):  # type: ignore[no-untyped-def]
    clean = [clean_track(r, f"track {i}") for i, r in enumerate(refs)]
    return plan_tracks(clean, catalogue or Catalogue([], []))


def test_new_tracks_get_the_name_key_id() -> None:
    """A new track's id is the id of its normalised (artist, title) key, with its artist."""
    plan = _plan([TrackRef("Air", "Playground Love")])
    key_id = identity.track_id_for_key(identity.track_key("Air", "Playground Love"))
    assert plan.ids == [key_id]
    [track] = plan.new_tracks
    assert (track.id, track.artist_id) == (key_id, identity.artist_id_for("Air"))
    assert [a.id for a in plan.new_artists] == [identity.artist_id_for("Air")]


def test_stored_track_is_matched_and_filled_in() -> None:
    """A ref matching a stored track by name fills in the identifiers it lacks."""
    key_id = identity.track_id_for_key(identity.track_key("Air", "Sexy Boy"))
    stored = KnownTrack(key_id, "Sexy Boy")
    plan = _plan(
        [TrackRef("AIR", "sexy boy", mbid=MBID_A, duration_ms=298_000)], Catalogue([], [stored])
    )
    assert plan.ids == [key_id]
    assert plan.new_tracks == []
    [updated] = plan.updated_tracks
    assert (updated.mbid, updated.duration_ms) == (MBID_A, 298_000)


def test_name_match_refused_mints_the_strong_id() -> None:
    """A different MBID under a taken name key gets the MBID's id."""
    key_id = identity.track_id_for_key(identity.track_key("X", "Y"))
    stored = KnownTrack(key_id, "Y", mbid=MBID_A)
    plan = _plan([TrackRef("X", "Y", mbid=MBID_B)], Catalogue([], [stored]))
    assert plan.ids == [identity.track_id_for_strong("mbid", MBID_B)]


def test_smallest_id_wins_a_shared_identifier() -> None:
    """When two stored tracks share an ISRC, the one with the smaller id is matched."""
    a = KnownTrack("tr_a", "One", isrc="USUM71703861")
    b = KnownTrack("tr_b", "Two", isrc="USUM71703861")
    plan = _plan([TrackRef("Z", "Z", isrc="USUM71703861")], Catalogue([], [b, a]))
    assert plan.ids == ["tr_a"]


def test_lookup_keys_cover_every_identifier() -> None:
    """The keys a store must load include name ids, strong ids and raw identifiers."""
    clean = [clean_track(TrackRef("A", "B", mbid=MBID_A, isrc="USUM71703861"), "t")]
    keys = track_keys(clean)
    assert keys.track_mbids == {MBID_A}
    assert keys.isrcs == {"USUM71703861"}
    assert identity.track_id_for_strong("mbid", MBID_A) in keys.track_ids
    assert identity.artist_id_for("A") in keys.artist_ids


def test_artist_plan_fills_in_and_refuses() -> None:
    """Artists match by MBID then name, gain missing fields, and a different MBID splits."""
    stored = KnownArtist(identity.artist_id_for("Nirvana"), "Nirvana", mbid=MBID_A)
    refs = [
        clean_artist(ArtistRef("nirvana", url="https://nirvana.com"), "a0"),
        clean_artist(ArtistRef("Nirvana", mbid=MBID_B), "a1"),
    ]
    plan = plan_artists(refs, Catalogue([stored], []))
    assert plan.ids == [stored.id, identity.artist_id_for_mbid(MBID_B)]
    assert [a.url for a in plan.updated_artists] == ["https://nirvana.com"]


def test_unusable_refs_name_their_position() -> None:
    """A blank title or bad identifier raises ValueError naming where it came from."""
    with pytest.raises(ValueError, match="listen 4: track title is blank"):
        clean_track(TrackRef("A", " "), "listen 4")
    with pytest.raises(ValueError, match="listen 2: invalid MBID"):
        clean_track(TrackRef("A", "B", mbid="x"), "listen 2")
    with pytest.raises(ValueError, match="artist 1: artist name is blank"):
        clean_artist(ArtistRef(""), "artist 1")
