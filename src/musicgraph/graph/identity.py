"""Identity of users, artists and tracks: normalisation, validation and deterministic ids.

A track is matched by MusicBrainz recording MBID, then ISRC, then Spotify id, then the normalised
(artist, title) pair. Normalisation case-folds, applies Unicode NFKC, collapses whitespace and folds
"feat." credits, so "Daft Punk feat. Pharrell Williams - Get Lucky (feat. Nile Rodgers)" and
"daft punk - get  lucky" are the same pair. Both stores use these functions, so they mint the same
ids for the same input.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

_WS = re.compile(r"\s+")
# " feat. X", " ft X", " featuring X", "(feat. X)", "[with X]" credits at the end of a name.
_FEAT_BRACKETED = re.compile(
    r"\s*[\(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s+[^\)\]]*[\)\]]", re.IGNORECASE
)
_FEAT_TRAILING = re.compile(r"\s+(?:feat\.?|ft\.?|featuring)\s+.*$", re.IGNORECASE)
_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_SPOTIFY_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
_SPOTIFY_URL = re.compile(r"^https?://open\.spotify\.com/(?:intl-[a-z]+/)?track/([0-9A-Za-z]{22})")

KEY_SEPARATOR = "\x1f"


def normalise(text: str) -> str:
    """Case-fold, NFKC-normalise and collapse whitespace."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def fold_featuring(name: str) -> str:
    """Drop "feat." credits from an artist name or a title."""
    folded = _FEAT_BRACKETED.sub("", name)
    folded = _FEAT_TRAILING.sub("", folded)
    return folded.strip() or name.strip()


def artist_key(name: str) -> str:
    """The normalised name an artist is matched by when it has no MBID."""
    return normalise(fold_featuring(name))


def track_key(artist: str, title: str) -> str:
    """The normalised (artist, title) pair a track is matched by when nothing stronger is known."""
    return artist_key(artist) + KEY_SEPARATOR + normalise(fold_featuring(title))


def _digest(kind: str, key: str) -> str:
    return hashlib.blake2b(f"{kind}:{key}".encode(), digest_size=8).hexdigest()


def user_id_for(name: str) -> str:
    return "u_" + _digest("user", normalise(name))


def artist_id_for(name: str) -> str:
    return "ar_" + _digest("artist", artist_key(name))


def artist_id_for_mbid(mbid: str) -> str:
    """Id of an artist whose name key is taken by a different artist (another MBID)."""
    return "ar_" + _digest("artist-mbid", mbid)


def track_id_for_key(key: str) -> str:
    """Id of a track first seen by its normalised (artist, title) key."""
    return "tr_" + _digest("track", key)


def track_id_for_strong(kind: str, value: str) -> str:
    """Id of a track whose name key is taken by a different recording (kind: mbid, isrc, spotify)."""
    return "tr_" + _digest(kind, value)


def new_playlist_id() -> str:
    return "pl_" + secrets.token_hex(8)


def is_mbid(value: str) -> bool:
    return bool(_MBID.match(value))


def clean_mbid(value: str | None) -> str | None:
    """Lower-case a MusicBrainz id; raise ``ValueError`` when it is not a UUID."""
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    if not _MBID.match(v):
        raise ValueError(
            f"invalid MBID {value!r} (expected a UUID like 8f3471b5-7e6a-48da-86a9-c1c07a0f47ae)"
        )
    return v


def clean_isrc(value: str | None) -> str | None:
    """Upper-case an ISRC and drop hyphens; raise ``ValueError`` when it is not one."""
    if value is None or not value.strip():
        return None
    v = value.strip().upper().replace("-", "")
    if not _ISRC.match(v):
        raise ValueError(f"invalid ISRC {value!r} (expected 12 characters like USUM71703861)")
    return v


def spotify_track_id(value: str | None) -> str | None:
    """The 22-character Spotify id from an id, a ``spotify:track:`` URI or an open.spotify.com URL."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    for pattern in (_SPOTIFY_URI, _SPOTIFY_URL):
        m = pattern.match(v)
        if m:
            return m.group(1)
    if _SPOTIFY_ID.match(v):
        return v
    raise ValueError(f"invalid Spotify track id {value!r}")
