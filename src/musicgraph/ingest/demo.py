"""A deterministic synthetic listening graph, so the server has something to serve without a
download (``musicgraph demo``).

What it holds, all drawn from one seeded numpy generator:

- genres that make taste communities; every user belongs to one (and leans towards a related
  one), so listening, friendships and playlists cluster the way real ones do;
- artists, each with a genre, related-genre and mood tags; tracks per artist and track popularity
  both follow Zipf laws (a few hits, a long tail);
- listening sessions: a user, a genre, a run of tracks played back to back (timestamps advance by
  the track's length), repeat plays of each user's favourites, and about 7% skipped plays;
- friendships, mostly inside a community; playlists (public and private) built from a genre's
  tracks; a few likes and dislikes.

The same seed and size give the same graph, and loading it twice adds nothing. Listens land
through :func:`musicgraph.ingest.service.record_listens` in batches, without queuing the invented
tracks for enrichment (outside APIs would find nothing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from musicgraph.errors import MusicgraphError
from musicgraph.graph.base import GraphStore
from musicgraph.graph.identity import normalise
from musicgraph.graph.models import ArtistRef, Friendship, ListenInput, Tagging, TrackRef
from musicgraph.ingest.service import record_listens

#: The demo's listening year ends here (2026-01-01T00:00:00Z): fixed, so the graph is the same
#: whenever it is loaded.
DEMO_END = 1_767_225_600
DAY = 86_400
BATCH = 5_000
SOURCE = "demo"

# genre -> (related genres, moods)
GENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "indie rock": (("shoegaze", "post-punk"), ("melancholic", "energetic")),
    "shoegaze": (("dream pop", "indie rock"), ("dreamy", "melancholic")),
    "dream pop": (("shoegaze", "synthpop"), ("dreamy", "chill")),
    "post-punk": (("indie rock", "synthpop"), ("dark", "energetic")),
    "synthpop": (("dream pop", "house"), ("upbeat", "nostalgic")),
    "house": (("techno", "synthpop"), ("upbeat", "danceable")),
    "techno": (("house", "ambient"), ("dark", "hypnotic")),
    "ambient": (("techno", "modern classical"), ("calm", "dreamy")),
    "modern classical": (("ambient", "jazz"), ("calm", "melancholic")),
    "jazz": (("soul", "modern classical"), ("smooth", "calm")),
    "soul": (("jazz", "hip hop"), ("warm", "smooth")),
    "hip hop": (("soul", "trap"), ("confident", "energetic")),
    "trap": (("hip hop", "house"), ("dark", "energetic")),
    "folk": (("indie rock", "modern classical"), ("warm", "calm")),
    "metal": (("post-punk", "indie rock"), ("aggressive", "dark")),
}
GENRE_NAMES = tuple(GENRES)
_ADJ = [
    "Velvet",
    "Silver",
    "Hollow",
    "Neon",
    "Paper",
    "Glass",
    "Golden",
    "Quiet",
    "Electric",
    "Wild",
    "Lunar",
    "Crimson",
    "Static",
    "Blue",
    "Broken",
    "Northern",
    "Pale",
    "Burning",
    "Distant",
    "Hidden",
    "Secret",
    "Frozen",
    "Gentle",
    "Violet",
    "Amber",
    "Iron",
    "Soft",
    "Midnight",
    "Copper",
    "Stray",
    "Faded",
    "Bright",
    "Sunken",
    "Restless",
    "Feral",
    "Tender",
    "Solar",
    "Cobalt",
    "Scarlet",
]
_NOUN = [
    "Foxes",
    "Rivers",
    "Lanterns",
    "Engines",
    "Gardens",
    "Ghosts",
    "Satellites",
    "Harbors",
    "Wolves",
    "Mirrors",
    "Comets",
    "Oceans",
    "Sparrows",
    "Cities",
    "Machines",
    "Tides",
    "Forests",
    "Signals",
    "Horses",
    "Echoes",
    "Islands",
    "Clouds",
    "Bridges",
    "Planets",
    "Flowers",
    "Storms",
    "Rooms",
    "Wires",
    "Swans",
    "Canyons",
    "Shadows",
    "Orchards",
    "Cathedrals",
    "Parades",
    "Deserts",
]
_FIRST = [
    "Ada",
    "Ben",
    "Cleo",
    "Dara",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Juno",
    "Kai",
    "Lena",
    "Milo",
    "Nia",
    "Oren",
    "Pia",
    "Quin",
    "Rosa",
    "Sami",
    "Tove",
    "Uma",
    "Vito",
    "Wren",
    "Xena",
    "Yuri",
    "Zoe",
    "Ines",
    "Luca",
    "Mina",
    "Noor",
    "Otto",
    "Rhea",
    "Saul",
    "Tara",
    "Vera",
]
_LAST = [
    "Hart",
    "Vale",
    "Moreau",
    "Lind",
    "Okafor",
    "Reyes",
    "Novak",
    "Brandt",
    "Sato",
    "Kovac",
    "Lowe",
    "Ferreira",
    "Haas",
    "Quinn",
    "Byrne",
    "Castell",
    "Dune",
    "Ekberg",
    "Frost",
    "Grey",
    "Ito",
    "Jansen",
    "Kade",
    "Lark",
    "Marsh",
    "Nyberg",
]
_WORD = [
    "Rain",
    "Light",
    "Heart",
    "Night",
    "Summer",
    "Dust",
    "Fire",
    "Water",
    "Stars",
    "Gold",
    "Smoke",
    "Sleep",
    "Dreams",
    "Glass",
    "Wire",
    "Bloom",
    "Static",
    "Silence",
    "Echo",
    "Ghost",
    "Motion",
    "Gravity",
    "Honey",
    "Salt",
    "Velvet",
    "Thunder",
    "Winter",
    "Marble",
    "Ember",
    "Orbit",
    "Paper",
    "Signal",
    "Harbor",
    "Mirror",
    "Shadow",
    "Neon",
    "Garden",
    "Tide",
    "Wolf",
    "Comet",
]
_PLAYLIST_WORDS = [
    "Evenings",
    "Mornings",
    "Commute",
    "Focus",
    "Rainy",
    "Days",
    "Late",
    "Night",
    "Weekend",
    "Essentials",
    "Deep",
    "Cuts",
    "Discoveries",
]


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """How big the demo graph is. ``listens`` is a target: the total lands within a few percent."""

    users: int = 3_000
    artists: int = 3_000
    tracks: int = 30_000
    listens: int = 300_000
    seed: int = 42
    end: int = DEMO_END

    @classmethod
    def for_size(cls, size: str, *, seed: int = 42) -> DemoConfig:
        """``small``, ``default``, ``large`` or a number of listens (``1000000``, ``2m``, ``500k``)."""
        presets = {
            "small": cls(users=300, artists=300, tracks=3_000, listens=30_000, seed=seed),
            "default": cls(seed=seed),
            "large": cls(
                users=20_000, artists=20_000, tracks=200_000, listens=3_000_000, seed=seed
            ),
        }
        key = size.strip().lower()
        if key in presets:
            return presets[key]
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([km]?)", key.replace("_", "").replace(",", ""))
        if not m:
            raise MusicgraphError(
                f"--size: expected small, default, large or a number of listens (like 1000000 "
                f"or 2m), got {size!r}"
            )
        listens = int(float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2)])
        if listens < 100:
            raise MusicgraphError(f"--size: at least 100 listens, got {listens}")
        tracks = min(max(listens // 10, 500), 1_000_000)
        return cls(
            users=min(max(listens // 100, 50), 100_000),
            artists=max(tracks // 10, 50),
            tracks=tracks,
            listens=listens,
            seed=seed,
        )


@dataclass
class DemoGraph:
    """The generated graph as arrays and lists (indices into ``user_names``, ``track_*``)."""

    user_names: list[str]
    user_public: npt.NDArray[np.bool_]
    user_genre: npt.NDArray[np.int64]
    artist_names: list[str]
    artist_tags: list[tuple[int, str, int]]
    track_artist: npt.NDArray[np.int64]
    track_titles: list[str]
    track_albums: list[str]
    track_seconds: npt.NDArray[np.int64]
    track_tags: list[tuple[int, str, int]]
    listen_user: npt.NDArray[np.int64]
    listen_track: npt.NDArray[np.int64]
    listen_at: npt.NDArray[np.int64]
    listen_skipped: npt.NDArray[np.bool_]
    listen_ms: npt.NDArray[np.int64]
    friendships: list[tuple[int, int]]
    playlists: list[tuple[int, str, str, bool, list[int]]]
    ratings: list[tuple[int, int, int, int]]


@dataclass
class DemoResult:
    """What loading did."""

    seed: int
    users: int = 0
    artists: int = 0
    tracks: int = 0
    listens: int = 0
    skips: int = 0
    duplicates: int = 0
    taggings: int = 0
    friendships: int = 0
    playlists: int = 0
    ratings: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 2)
        d["phases"] = {k: round(v, 2) for k, v in self.phases.items()}
        return d

    def lines(self) -> list[str]:
        rate = self.listens / self.phases["listens"] if self.phases.get("listens") else 0.0
        return [
            f"demo graph (seed {self.seed}) loaded in {self.seconds:.1f}s",
            f"  users: {self.users:,}   artists: {self.artists:,}   tracks: {self.tracks:,}",
            f"  listens: {self.listens:,} new ({self.skips:,} of them skips; "
            f"{self.duplicates:,} already there) at {rate:,.0f} listens/s",
            f"  tag edges: {self.taggings:,}   friendships: {self.friendships:,}   "
            f"playlists: {self.playlists:,}   ratings: {self.ratings:,}",
        ]


# --- generation -----------------------------------------------------------------------------


def _unique(names: Iterator[str], count: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate = name
        k = 2
        while normalise(candidate) in seen:
            candidate = f"{name} {k}"
            k += 1
        seen.add(normalise(candidate))
        out.append(candidate)
        if len(out) == count:
            break
    return out


def _zipf(n: int, exponent: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Zipf weights over a random order of ``n`` items, summing to one."""
    ranks = rng.permutation(n) + 1
    w = ranks.astype(np.float64) ** -exponent
    out: npt.NDArray[np.float64] = w / w.sum()
    return out


def generate(config: DemoConfig) -> DemoGraph:
    """Draw the whole graph from ``config.seed`` (no store involved)."""
    rng = np.random.default_rng(config.seed)
    n_genres = len(GENRE_NAMES)
    genre_weight = (np.arange(n_genres) + 1.0) ** -0.6
    genre_weight /= genre_weight.sum()
    genre_weight = genre_weight[rng.permutation(n_genres)]
    related = np.array(
        [[GENRE_NAMES.index(r) for r in GENRES[g][0]] for g in GENRE_NAMES], dtype=np.int64
    )

    # artists
    n_artists = config.artists
    artist_genre = rng.choice(n_genres, size=n_artists, p=genre_weight)

    def artist_names() -> Iterator[str]:
        while True:
            form = rng.integers(3)
            if form == 0:
                yield f"The {_ADJ[rng.integers(len(_ADJ))]} {_NOUN[rng.integers(len(_NOUN))]}"
            elif form == 1:
                yield f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}"
            else:
                yield f"{_ADJ[rng.integers(len(_ADJ))]} {_WORD[rng.integers(len(_WORD))]}"

    names = _unique(artist_names(), n_artists)
    artist_tags: list[tuple[int, str, int]] = []
    for a in range(n_artists):
        g = GENRE_NAMES[artist_genre[a]]
        rel, moods = GENRES[g]
        artist_tags.append((a, g, int(rng.integers(20, 120))))
        artist_tags.append((a, rel[int(rng.integers(2))], int(rng.integers(5, 40))))
        artist_tags.append((a, moods[int(rng.integers(2))], int(rng.integers(3, 30))))

    # tracks: every artist has one, the rest go to artists by a Zipf law
    n_tracks = max(config.tracks, n_artists)
    artist_pop = _zipf(n_artists, 1.0, rng)
    track_artist = np.concatenate(
        [np.arange(n_artists), rng.choice(n_artists, size=n_tracks - n_artists, p=artist_pop)]
    ).astype(np.int64)
    order = np.argsort(track_artist, kind="stable")
    track_artist = track_artist[order]
    titles: list[str] = []
    albums: list[str] = []
    per_artist: dict[int, set[str]] = {}
    for t in range(n_tracks):
        a = int(track_artist[t])
        seen = per_artist.setdefault(a, set())
        w1, w2 = _WORD[rng.integers(len(_WORD))], _WORD[rng.integers(len(_WORD))]
        title = w1 if w1 == w2 else f"{w1} {w2}" if rng.random() < 0.6 else f"{w1} of {w2}"
        k = 2
        candidate = title
        while normalise(candidate) in seen:
            candidate = f"{title} (Part {k})"
            k += 1
        seen.add(normalise(candidate))
        titles.append(candidate)
        albums.append(f"{_ADJ[(a * 7 + len(seen) // 10) % len(_ADJ)]} {_NOUN[a % len(_NOUN)]}")
    seconds = rng.integers(120, 420, size=n_tracks).astype(np.int64)
    track_genre = artist_genre[track_artist]
    track_pop = _zipf(n_tracks, 0.9, rng) * (artist_pop[track_artist] ** 0.3)
    track_tags: list[tuple[int, str, int]] = []
    for t in np.flatnonzero(rng.random(n_tracks) < 0.2).tolist():
        moods = GENRES[GENRE_NAMES[track_genre[t]]][1]
        track_tags.append((int(t), moods[int(rng.integers(2))], int(rng.integers(1, 10))))
    genre_tracks = [np.flatnonzero(track_genre == g) for g in range(n_genres)]
    genre_cum = []
    for g in range(n_genres):
        p = track_pop[genre_tracks[g]]
        genre_cum.append(np.cumsum(p) / p.sum() if len(p) else np.zeros(0))

    def pick(genres: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        out = np.empty(len(genres), dtype=np.int64)
        for g in range(n_genres):
            mask = genres == g
            k = int(mask.sum())
            if not k:
                continue
            if not len(genre_tracks[g]):
                out[mask] = rng.integers(n_tracks, size=k)
                continue
            idx = np.searchsorted(genre_cum[g], rng.random(k), side="right")
            out[mask] = genre_tracks[g][np.minimum(idx, len(genre_tracks[g]) - 1)]
        return out

    # users: a community, a related leaning, an activity level, favourites
    n_users = config.users
    user_genre = rng.choice(n_genres, size=n_users, p=genre_weight).astype(np.int64)
    taste = rng.dirichlet(np.full(n_genres, 0.2), size=n_users) * 0.4
    taste[np.arange(n_users), user_genre] += 1.0
    taste[np.arange(n_users), related[user_genre, rng.integers(2, size=n_users)]] += 0.4
    taste /= taste.sum(axis=1, keepdims=True)
    taste_cum = np.cumsum(taste, axis=1)
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    activity /= activity.sum()
    user_names = [f"{_FIRST[i % len(_FIRST)].lower()}{i}" for i in range(n_users)]
    user_public = rng.random(n_users) < 0.3
    n_favs = 20
    fav_genres = (rng.random((n_users, n_favs))[:, :, None] > taste_cum[:, None, :]).sum(axis=2)
    favourites = pick(np.minimum(fav_genres, n_genres - 1).ravel()).reshape(n_users, n_favs)

    def taste_genres(users: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        u = rng.random(len(users))
        g = (u[:, None] > taste_cum[users]).sum(axis=1)
        out: npt.NDArray[np.int64] = np.minimum(g, n_genres - 1).astype(np.int64)
        return out

    # sessions
    n_sessions = max(config.listens // 12, 1)
    session_user = rng.choice(n_users, size=n_sessions, p=activity).astype(np.int64)
    lengths = np.minimum(rng.geometric(1 / 12, size=n_sessions), 80).astype(np.int64)
    session_genre = taste_genres(session_user)
    total = int(lengths.sum())
    listen_user = np.repeat(session_user, lengths)
    listen_genre = np.repeat(session_genre, lengths)
    wander = rng.random(total) < 0.15
    listen_genre[wander] = taste_genres(listen_user[wander])
    listen_track = pick(listen_genre)
    fav = rng.random(total) < 0.3
    listen_track[fav] = favourites[listen_user[fav], rng.integers(n_favs, size=int(fav.sum()))]
    session_start = config.end - rng.integers(DAY, 365 * DAY, size=n_sessions)
    played = seconds[listen_track] + rng.integers(0, 5, size=total)
    csum = np.cumsum(played)
    before = csum - played
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    listen_at = np.repeat(session_start, lengths) + before - np.repeat(before[first], lengths)
    skipped = rng.random(total) < 0.07
    ms = np.where(skipped, rng.integers(2_000, 29_000, size=total), seconds[listen_track] * 1000)
    order = np.lexsort((listen_at, listen_user))

    # friendships, mostly inside a community
    community = [np.flatnonzero(user_genre == g) for g in range(n_genres)]
    pairs: set[tuple[int, int]] = set()
    for u in range(n_users):
        for _ in range(int(rng.poisson(3))):
            members = community[user_genre[u]]
            if rng.random() < 0.8 and len(members) > 1:
                v = int(members[rng.integers(len(members))])
            else:
                v = int(rng.integers(n_users))
            if v != u:
                pairs.add((min(u, v), max(u, v)))
    friendships = sorted(pairs)

    # playlists
    playlists: list[tuple[int, str, str, bool, list[int]]] = []
    for u in np.flatnonzero(rng.random(n_users) < 0.12).tolist():
        used: set[str] = set()
        for _ in range(int(rng.integers(1, 4))):
            g = int(taste_genres(np.array([u]))[0])
            pool = genre_tracks[g]
            if len(pool) == 0:
                continue
            size = min(int(rng.integers(8, 31)), len(pool))
            p = track_pop[pool] / track_pop[pool].sum()
            chosen = rng.choice(pool, size=size, replace=False, p=p)
            name = f"{GENRE_NAMES[g].title()} {_PLAYLIST_WORDS[rng.integers(len(_PLAYLIST_WORDS))]}"
            if name in used:
                continue
            used.add(name)
            description = f"{GENRE_NAMES[g]} picks ({size} tracks), made by the demo generator"
            playlists.append((int(u), name, description, bool(rng.random() < 0.6), chosen.tolist()))

    # ratings: mostly likes of favourites, a few dislikes
    rated: dict[tuple[int, int], tuple[int, int]] = {}
    for u in np.flatnonzero(rng.random(n_users) < 0.05).tolist():
        for t in rng.choice(favourites[u], size=int(rng.integers(1, 8)), replace=False).tolist():
            score = 1 if rng.random() < 0.85 else -1
            rated[(u, t)] = (score, config.end - int(rng.integers(DAY, 30 * DAY)))
    ratings = [(u, t, score, at) for (u, t), (score, at) in rated.items()]

    return DemoGraph(
        user_names=user_names,
        user_public=user_public,
        user_genre=user_genre,
        artist_names=names,
        artist_tags=artist_tags,
        track_artist=track_artist,
        track_titles=titles,
        track_albums=albums,
        track_seconds=seconds,
        track_tags=track_tags,
        listen_user=listen_user[order],
        listen_track=listen_track[order],
        listen_at=listen_at[order].astype(np.int64),
        listen_skipped=skipped[order],
        listen_ms=ms[order].astype(np.int64),
        friendships=friendships,
        playlists=playlists,
        ratings=ratings,
    )


# --- loading --------------------------------------------------------------------------------


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


async def load_demo(
    store: GraphStore, config: DemoConfig | None = None, *, progress: bool = False
) -> DemoResult:
    """Generate the demo graph and write it through the store's batch methods."""
    config = config or DemoConfig()
    started = time.perf_counter()
    result = DemoResult(seed=config.seed)
    with _bar(progress) as step:
        t = time.perf_counter()
        step("generating", 0, 1)
        graph = generate(config)
        result.phases["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        user_ids: list[str] = []
        public = np.flatnonzero(graph.user_public).tolist()
        n_users = len(graph.user_names)
        for a, b in _chunks(n_users, BATCH):
            step("users", a, n_users)
            users = await store.ensure_users(graph.user_names[a:b])
            user_ids.extend(u.id for u in users)
        for i in public:
            await store.set_user_public(user_ids[i], True)
        result.users = n_users

        artist_ids: list[str] = []
        n_artists = len(graph.artist_names)
        for a, b in _chunks(n_artists, BATCH):
            step("artists", a, n_artists)
            artists = await store.upsert_artists(
                [ArtistRef(name=name) for name in graph.artist_names[a:b]]
            )
            artist_ids.extend(x.id for x in artists)
        result.artists = n_artists

        track_ids: list[str] = []
        n_tracks = len(graph.track_titles)
        refs = [
            TrackRef(
                artist=graph.artist_names[graph.track_artist[t]],
                title=graph.track_titles[t],
                album=graph.track_albums[t],
                duration_ms=int(graph.track_seconds[t]) * 1000,
            )
            for t in range(n_tracks)
        ]
        for a, b in _chunks(n_tracks, BATCH):
            step("tracks", a, n_tracks)
            tracks = await store.resolve_tracks(refs[a:b])
            track_ids.extend(x.id for x in tracks)
        result.tracks = n_tracks

        taggings = [
            Tagging(item_kind="artist", item_id=artist_ids[a], tag=tag, count=count)
            for a, tag, count in graph.artist_tags
        ] + [
            Tagging(item_kind="track", item_id=track_ids[t], tag=tag, count=count)
            for t, tag, count in graph.track_tags
        ]
        for a, b in _chunks(len(taggings), BATCH):
            step("tags", a, len(taggings))
            await store.set_tags(taggings[a:b])
        result.taggings = len(taggings)
        result.phases["catalogue"] = time.perf_counter() - t

        t = time.perf_counter()
        n_listens = len(graph.listen_user)
        for a, b in _chunks(n_listens, BATCH):
            step("listens", a, n_listens)
            batch = _listens(graph, refs, user_ids, a, b)
            written = await record_listens(store, batch, enrich=False)
            result.listens += written.inserted
            result.duplicates += written.duplicates
            result.skips += sum(
                1 for x, new in zip(batch, written.new_mask, strict=True) if new and x.skipped
            )
        result.phases["listens"] = time.perf_counter() - t

        t = time.perf_counter()
        friendships = [
            f
            for u, v in graph.friendships
            for f in (Friendship(user_ids[u], user_ids[v]), Friendship(user_ids[v], user_ids[u]))
        ]
        for a, b in _chunks(len(friendships), BATCH):
            step("friends", a, len(friendships))
            await store.add_friendships(friendships[a:b])
        result.friendships = len(friendships)

        existing: dict[int, set[str]] = {}
        for k, (u, name, description, is_public, tracks_of) in enumerate(graph.playlists):
            step("playlists", k, len(graph.playlists))
            if u not in existing:
                existing[u] = {p.name for p in await store.list_playlists(user_ids[u])}
            if name in existing[u]:
                continue
            await store.create_playlist(
                user_ids[u],
                name,
                description=description,
                public=is_public,
                track_ids=[track_ids[x] for x in tracks_of],
                at=config.end - 7 * DAY,
            )
            result.playlists += 1
        for k, (u, x, score, at) in enumerate(graph.ratings):
            step("ratings", k, len(graph.ratings))
            await store.set_rating(user_ids[u], track_ids[x], score, at)
        result.ratings = len(graph.ratings)
        result.phases["social"] = time.perf_counter() - t
        step("done", 1, 1)
    result.seconds = time.perf_counter() - started
    return result


def _listens(
    graph: DemoGraph, refs: Sequence[TrackRef], user_ids: Sequence[str], a: int, b: int
) -> list[ListenInput]:
    users = graph.listen_user[a:b].tolist()
    tracks = graph.listen_track[a:b].tolist()
    ats = graph.listen_at[a:b].tolist()
    skipped = graph.listen_skipped[a:b].tolist()
    ms = graph.listen_ms[a:b].tolist()
    return [
        ListenInput(
            user_id=user_ids[u],
            track=refs[t],
            listened_at=at,
            source=SOURCE,
            ms_played=m,
            skipped=s,
        )
        for u, t, at, s, m in zip(users, tracks, ats, skipped, ms, strict=True)
    ]


@contextmanager
def _bar(enabled: bool) -> Iterator[Any]:
    """A rich progress line on a terminal; yields ``step(phase, done, total)``."""
    if not enabled:
        yield lambda phase, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("demo: {task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("generating", total=1)

        def step(phase: str, done: int, total: int) -> None:
            progress.update(task, description=phase, completed=done, total=max(total, 1))

        yield step
