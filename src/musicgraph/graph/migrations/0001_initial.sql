-- The listening graph of DESIGN.md section 2: one table per node type and per relationship type.
-- Text ids are the ones musicgraph.graph.identity mints; times are Unix seconds (UTC).
-- Edge tables are WITHOUT ROWID, keyed by the edge's identity, so the key is the only B-tree.

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,          -- normalise(name): names are unique case-insensitively
    created_at  INTEGER NOT NULL,
    public      INTEGER NOT NULL DEFAULT 0,
    token_hash  TEXT
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_token_hash ON users (token_hash) WHERE token_hash IS NOT NULL;

CREATE TABLE artists (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_norm   TEXT NOT NULL,                 -- normalise(name), for search
    mbid        TEXT,
    spotify_id  TEXT,
    url         TEXT
) WITHOUT ROWID;
CREATE INDEX artists_mbid ON artists (mbid) WHERE mbid IS NOT NULL;
CREATE INDEX artists_name_norm ON artists (name_norm);

CREATE TABLE tracks (
    id          TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    title_norm  TEXT NOT NULL,                 -- normalise(title), for search
    album       TEXT,
    mbid        TEXT,
    isrc        TEXT,
    spotify_id  TEXT,
    duration_ms INTEGER,
    year        INTEGER,
    bpm         REAL,
    key         INTEGER,
    mode        INTEGER,
    energy      REAL,
    valence     REAL,
    moods       TEXT,                          -- JSON array
    genres      TEXT                           -- JSON array
) WITHOUT ROWID;
CREATE INDEX tracks_mbid ON tracks (mbid) WHERE mbid IS NOT NULL;
CREATE INDEX tracks_isrc ON tracks (isrc) WHERE isrc IS NOT NULL;
CREATE INDEX tracks_spotify_id ON tracks (spotify_id) WHERE spotify_id IS NOT NULL;
CREATE INDEX tracks_title_norm ON tracks (title_norm);

CREATE TABLE tags (
    name        TEXT PRIMARY KEY NOT NULL      -- normalised
) WITHOUT ROWID;

CREATE TABLE playlists (
    id          TEXT PRIMARY KEY NOT NULL,
    owner_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    public      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX playlists_owner ON playlists (owner_id, name);
CREATE INDEX playlists_public ON playlists (public, updated_at);

-- (Track)-[:BY {position}]->(Artist)
CREATE TABLE track_artists (
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    artist_id   TEXT NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, artist_id)
) WITHOUT ROWID;
CREATE INDEX track_artists_artist ON track_artists (artist_id);

-- (User)-[:PLAYED {at, ms_played, source}]->(Track): one row per listen, unique per (user, track, at)
CREATE TABLE played (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    listened_at INTEGER NOT NULL,
    source      TEXT NOT NULL,
    ms_played   INTEGER,
    skipped     INTEGER NOT NULL DEFAULT 0,
    -- (user, at, track): the same unique triple, ordered so that a user's new listens append
    -- to the end of their range and history reads walk the key itself.
    PRIMARY KEY (user_id, listened_at, track_id)
) WITHOUT ROWID;

-- (User)-[:LISTENED {count, first_at, last_at, skips}]->(Track)
CREATE TABLE listened (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    count       INTEGER NOT NULL,
    skips       INTEGER NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id)
) WITHOUT ROWID;
CREATE INDEX listened_track ON listened (track_id);

-- (User)-[:LISTENED_ARTIST {count}]->(Artist)
CREATE TABLE artist_listens (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    artist_id   TEXT NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
    count       INTEGER NOT NULL,
    PRIMARY KEY (user_id, artist_id)
) WITHOUT ROWID;
CREATE INDEX artist_listens_artist ON artist_listens (artist_id);

-- (Artist)-[:TAGGED {count}]->(Tag) and (Track)-[:TAGGED {count}]->(Tag)
CREATE TABLE artist_tags (
    artist_id   TEXT NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL REFERENCES tags (name) ON DELETE CASCADE,
    count       INTEGER NOT NULL,
    PRIMARY KEY (artist_id, tag)
) WITHOUT ROWID;
CREATE INDEX artist_tags_tag ON artist_tags (tag, count);

CREATE TABLE track_tags (
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL REFERENCES tags (name) ON DELETE CASCADE,
    count       INTEGER NOT NULL,
    PRIMARY KEY (track_id, tag)
) WITHOUT ROWID;
CREATE INDEX track_tags_tag ON track_tags (tag, count);

-- (User)-[:FRIEND]->(User)
CREATE TABLE friendships (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;
CREATE INDEX friendships_friend ON friendships (friend_id);

-- (User)-[:RATED {score, at}]->(Track)
CREATE TABLE ratings (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    score       INTEGER NOT NULL CHECK (score IN (-1, 1)),
    at          INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id)
) WITHOUT ROWID;
CREATE INDEX ratings_track ON ratings (track_id);

-- (Playlist)-[:CONTAINS {position, added_at}]->(Track); OWNS is playlists.owner_id
CREATE TABLE playlist_entries (
    playlist_id TEXT NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, position)
) WITHOUT ROWID;
CREATE INDEX playlist_entries_track ON playlist_entries (track_id);

-- (Track)-[:SIMILAR {score, source}]->(Track) and (Artist)-[:SIMILAR {score, source}]->(Artist)
CREATE TABLE track_similar (
    source_id   TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    target_id   TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    score       REAL NOT NULL,
    PRIMARY KEY (source_id, target_id, source)
) WITHOUT ROWID;
CREATE INDEX track_similar_target ON track_similar (target_id);

CREATE TABLE artist_similar (
    source_id   TEXT NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
    target_id   TEXT NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    score       REAL NOT NULL,
    PRIMARY KEY (source_id, target_id, source)
) WITHOUT ROWID;
CREATE INDEX artist_similar_target ON artist_similar (target_id);

-- The enrichment queue: one state per (track, source)
CREATE TABLE enrichment (
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    updated_at  INTEGER NOT NULL,
    not_before  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, source)
) WITHOUT ROWID;
CREATE INDEX enrichment_queue ON enrichment (source, status, not_before, updated_at);
