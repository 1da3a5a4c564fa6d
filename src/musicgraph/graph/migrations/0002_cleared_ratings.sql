-- (User)-[:CLEARED {at}]->(Track): when a user last cleared their rating of a track. Readers of
-- ratings never see it; a rating written "only if newer" (an import of an export) must be later
-- than it, so an older export cannot bring back a rating the user cleared since.
CREATE TABLE cleared_ratings (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id    TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id)
) WITHOUT ROWID;
CREATE INDEX cleared_ratings_track ON cleared_ratings (track_id);
