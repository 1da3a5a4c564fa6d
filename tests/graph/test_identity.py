"""Identity: normalisation, feat. folding, identifier validation and deterministic ids."""

from __future__ import annotations

import pytest

from musicgraph.graph import identity


def test_normalise_casefolds_and_collapses_whitespace() -> None:
    """Case, Unicode compatibility forms and runs of whitespace do not matter."""
    assert identity.normalise("  Sigur   RÓS\t") == "sigur rós"
    assert identity.normalise("ＡＢＣ") == "abc"  # full-width letters (NFKC)
    assert identity.normalise("Straße") == "strasse"


def test_track_key_folds_featuring_credits() -> None:
    """ "feat." credits in artist or title do not change the (artist, title) key."""
    plain = identity.track_key("Daft Punk", "Get Lucky")
    assert identity.track_key("Daft Punk feat. Pharrell Williams", "Get Lucky") == plain
    assert identity.track_key("daft punk", "Get Lucky (feat. Nile Rodgers)") == plain
    assert identity.track_key("Daft Punk ft Pharrell", "get  lucky [with Nile]") == plain
    assert identity.track_key("Daft Punk", "Get Lucky (Radio Edit)") != plain


def test_ids_are_deterministic_and_distinct_by_kind() -> None:
    """The same input mints the same id; names, MBIDs and kinds never collide."""
    assert identity.user_id_for("Alice") == identity.user_id_for("ALICE")
    assert identity.artist_id_for("Björk") == identity.artist_id_for("björk feat. Someone")
    mbid = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
    ids = {
        identity.artist_id_for(mbid),
        identity.artist_id_for_mbid(mbid),
        identity.track_id_for_strong("mbid", mbid),
        identity.track_id_for_key(mbid),
    }
    assert len(ids) == 4
    assert identity.artist_id_for_mbid(mbid).startswith("ar_")


def test_identifier_cleaning() -> None:
    """MBIDs are lower-cased, ISRCs upper-cased without hyphens, Spotify URIs reduced to ids."""
    assert identity.clean_mbid(" 8F3471B5-7E6A-48DA-86A9-C1C07A0F47AE ") == (
        "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
    )
    assert identity.clean_isrc("us-um7-17-03861") == "USUM71703861"
    sid = "4uLU6hMCjMI75M1A2tKUQC"
    assert identity.spotify_track_id(f"spotify:track:{sid}") == sid
    assert identity.spotify_track_id(f"https://open.spotify.com/intl-de/track/{sid}?si=x") == sid
    assert identity.clean_mbid("") is None and identity.clean_isrc(None) is None


@pytest.mark.parametrize(
    ("fn", "value"),
    [
        (identity.clean_mbid, "not-a-uuid"),
        (identity.clean_isrc, "123"),
        (identity.spotify_track_id, "spotify:album:4uLU6hMCjMI75M1A2tKUQC"),
    ],
)
def test_invalid_identifiers_raise_value_error_naming_them(fn: object, value: str) -> None:
    """An invalid identifier raises ValueError quoting the bad value."""
    with pytest.raises(ValueError, match="invalid"):
        fn(value)  # type: ignore[operator]
