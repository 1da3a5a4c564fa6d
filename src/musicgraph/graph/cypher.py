"""Every Cypher statement :class:`~musicgraph.graph.neo4j_store.Neo4jGraphStore` runs, in one place.

The model of DESIGN.md section 2, natively:

- ``(:User {id, name, name_key, created_at, public, token_hash})``,
  ``(:Artist {id, name, name_norm, mbid, spotify_id, url})``,
  ``(:Track {id, title, name_norm, album, mbid, isrc, spotify_id, duration_ms, year, bpm, key, mode,
  energy, valence, moods, genres})``, ``(:Tag {name})``,
  ``(:Playlist {id, owner_id, name, description, public, created_at, updated_at})``;
- ``PLAYED {at, source, ms_played, skipped}``, ``LISTENED {count, skips, first_at, last_at}``,
  ``LISTENED_ARTIST {count}``, ``BY {position}``, ``TAGGED {count}``, ``FRIEND``, ``OWNS``,
  ``CONTAINS {position, added_at}``, ``RATED {score, at}``, ``CLEARED {at}``,
  ``SIMILAR {score, source}``;
- the enrichment queue as ``(:EnrichmentState {key, track_id, source, status, attempts, last_error,
  updated_at, not_before})`` nodes, ``key`` being ``track_id + "\\x1f" + source``.

Multi-row writes take ``$rows`` and run as one ``UNWIND`` per batch; ``name_key`` / ``name_norm`` are
:func:`musicgraph.graph.identity.normalise` of the name, computed in Python.
"""

from __future__ import annotations

# --- schema (each statement idempotent; open runs those whose name is missing) -----------------

#: Every constraint and index by name (the name is what ``SHOW`` reports).
SCHEMA: dict[str, str] = {
    "user_id": "CREATE CONSTRAINT user_id IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE",
    "user_name_key": "CREATE CONSTRAINT user_name_key IF NOT EXISTS FOR (n:User) REQUIRE n.name_key IS UNIQUE",
    "user_token_hash": "CREATE CONSTRAINT user_token_hash IF NOT EXISTS FOR (n:User) REQUIRE n.token_hash IS UNIQUE",
    "artist_id": "CREATE CONSTRAINT artist_id IF NOT EXISTS FOR (n:Artist) REQUIRE n.id IS UNIQUE",
    "track_id": "CREATE CONSTRAINT track_id IF NOT EXISTS FOR (n:Track) REQUIRE n.id IS UNIQUE",
    "tag_name": "CREATE CONSTRAINT tag_name IF NOT EXISTS FOR (n:Tag) REQUIRE n.name IS UNIQUE",
    "playlist_id": "CREATE CONSTRAINT playlist_id IF NOT EXISTS FOR (n:Playlist) REQUIRE n.id IS UNIQUE",
    "enrichment_key": "CREATE CONSTRAINT enrichment_key IF NOT EXISTS FOR (n:EnrichmentState) REQUIRE n.key IS UNIQUE",
    "track_mbid": "CREATE INDEX track_mbid IF NOT EXISTS FOR (n:Track) ON (n.mbid)",
    "track_isrc": "CREATE INDEX track_isrc IF NOT EXISTS FOR (n:Track) ON (n.isrc)",
    "track_spotify_id": "CREATE INDEX track_spotify_id IF NOT EXISTS FOR (n:Track) ON (n.spotify_id)",
    "track_name_norm": "CREATE TEXT INDEX track_name_norm IF NOT EXISTS FOR (n:Track) ON (n.name_norm)",
    "artist_mbid": "CREATE INDEX artist_mbid IF NOT EXISTS FOR (n:Artist) ON (n.mbid)",
    "artist_name_norm": "CREATE TEXT INDEX artist_name_norm IF NOT EXISTS FOR (n:Artist) ON (n.name_norm)",
    "playlist_owner": "CREATE INDEX playlist_owner IF NOT EXISTS FOR (n:Playlist) ON (n.owner_id)",
    "playlist_public": "CREATE INDEX playlist_public IF NOT EXISTS FOR (n:Playlist) ON (n.public, n.updated_at)",
    "enrichment_track": "CREATE INDEX enrichment_track IF NOT EXISTS FOR (n:EnrichmentState) ON (n.track_id)",
    "enrichment_queue": "CREATE INDEX enrichment_queue IF NOT EXISTS FOR (n:EnrichmentState) ON (n.source, n.status)",
}
SHOW_INDEX_NAMES = "SHOW INDEXES YIELD name RETURN collect(name) AS names"
SHOW_CONSTRAINT_NAMES = "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names"
AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"

PING = "RETURN 1 AS ok"

#: Empties the database in batches (tests; needs an auto-commit transaction).
#: Relationships first: a node with a million of them (an imported history) cannot be detached
#: and deleted in one inner transaction's memory.
DELETE_ALL_IN_BATCHES = """
MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF $batch ROWS
WITH count(*) AS relationships
MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch ROWS
"""

COUNTS = """
CALL () { MATCH (n:User) RETURN count(n) AS users }
CALL () { MATCH (n:Artist) RETURN count(n) AS artists }
CALL () { MATCH (n:Track) RETURN count(n) AS tracks }
CALL () { MATCH (n:Tag) RETURN count(n) AS tags }
CALL () { MATCH (n:Playlist) RETURN count(n) AS playlists }
CALL () { MATCH ()-[r:PLAYED]->() RETURN count(r) AS played }
CALL () { MATCH ()-[r:PLAYED]->() WHERE r.skipped RETURN count(r) AS skips }
CALL () { MATCH ()-[r:LISTENED]->() RETURN count(r) AS listened }
CALL () { MATCH ()-[r:LISTENED_ARTIST]->() RETURN count(r) AS artist_listens }
CALL () { MATCH ()-[r:BY]->() RETURN count(r) AS track_artists }
CALL () { MATCH ()-[r:TAGGED]->() RETURN count(r) AS taggings }
CALL () { MATCH ()-[r:FRIEND]->() RETURN count(r) AS friendships }
CALL () { MATCH ()-[r:RATED]->() RETURN count(r) AS ratings }
CALL () { MATCH ()-[r:CONTAINS]->() RETURN count(r) AS playlist_entries }
CALL () { MATCH ()-[r:SIMILAR]->() RETURN count(r) AS similarities }
RETURN users, artists, tracks, tags, playlists, played, skips, listened, artist_listens,
       track_artists, taggings, friendships, ratings, playlist_entries, similarities
"""

# --- projections ----------------------------------------------------------------------------------

_USER = "u {.id, .name, .created_at, .public}"
_ARTIST = "a {.id, .name, .mbid, .spotify_id, .url}"
_TRACK = (
    "t {.*, artist_ids: COLLECT { MATCH (t)-[b:BY]->(ba:Artist) "
    "RETURN ba.id ORDER BY b.position, ba.id }}"
)
_PLAYLIST = "p {.id, .owner_id, .name, .description, .public, .created_at, .updated_at}"
_LISTEN = (
    "{user_id: u.id, track_id: t.id, listened_at: r.at, source: r.source, "
    "ms_played: r.ms_played, skipped: r.skipped}"
)
_AGGREGATE = (
    "{user_id: u.id, track_id: t.id, count: r.count, skips: r.skips, "
    "first_at: r.first_at, last_at: r.last_at}"
)
_STATE = "e {.track_id, .source, .status, .attempts, .last_error, .updated_at, .not_before}"

# --- users ------------------------------------------------------------------------------------------

CREATE_USER = f"""
CREATE (u:User {{id: $id, name: $name, name_key: $name_key, created_at: $created_at,
                 public: $public, token_hash: $token_hash}})
RETURN {_USER} AS user
"""

ENSURE_USERS = f"""
UNWIND $rows AS row
MERGE (u:User {{name_key: row.name_key}})
  ON CREATE SET u.id = row.id, u.name = row.name, u.created_at = row.created_at,
                u.public = row.public
RETURN row.i AS i, {_USER} AS user
"""

GET_USERS = f"""
UNWIND $ids AS id
MATCH (u:User {{id: id}})
RETURN {_USER} AS user
"""

GET_USER_BY_NAME_KEY = f"MATCH (u:User {{name_key: $name_key}}) RETURN {_USER} AS user"

GET_USER_BY_TOKEN_HASH = f"MATCH (u:User {{token_hash: $token_hash}}) RETURN {_USER} AS user"

SET_USER_TOKEN_HASH = """
MATCH (u:User {id: $id})
SET u.token_hash = $token_hash
RETURN count(u) AS n
"""

SET_USER_PUBLIC = """
MATCH (u:User {id: $id})
SET u.public = $public
RETURN count(u) AS n
"""

LIST_USERS = f"""
MATCH (u:User)
RETURN {_USER} AS user
ORDER BY u.name_key, u.id
SKIP $offset LIMIT $limit
"""

COUNT_USERS = "MATCH (u:User) RETURN count(u) AS n"

# --- catalogue: identity resolution --------------------------------------------------------------

LOAD_ARTISTS_BY_KEYS = """
CALL () {
  UNWIND $ids AS id MATCH (a:Artist {id: id}) RETURN a
  UNION
  UNWIND $mbids AS mbid MATCH (a:Artist {mbid: mbid}) RETURN a
}
RETURN collect(a {.id, .name, .mbid, .spotify_id, .url}) AS artists
"""

LOAD_TRACKS_BY_KEYS = """
CALL () {
  UNWIND $ids AS id MATCH (t:Track {id: id}) RETURN t
  UNION
  UNWIND $mbids AS mbid MATCH (t:Track {mbid: mbid}) RETURN t
  UNION
  UNWIND $isrcs AS isrc MATCH (t:Track {isrc: isrc}) RETURN t
  UNION
  UNWIND $spotify_ids AS sid MATCH (t:Track {spotify_id: sid}) RETURN t
}
RETURN collect(t {.id, .title, .mbid, .isrc, .spotify_id, .duration_ms, .album,
                  eid: elementId(t)}) AS tracks
"""

CREATE_ARTISTS = """
UNWIND $rows AS row
MERGE (a:Artist {id: row.id})
  ON CREATE SET a.name = row.name, a.name_norm = row.name_norm, a.mbid = row.mbid,
                a.spotify_id = row.spotify_id, a.url = row.url
"""

FILL_ARTISTS = """
UNWIND $rows AS row
MATCH (a:Artist {id: row.id})
SET a.mbid = coalesce(a.mbid, row.mbid),
    a.spotify_id = coalesce(a.spotify_id, row.spotify_id),
    a.url = coalesce(a.url, row.url)
"""

#: New tracks with their BY edge, each queued for enrichment by ``$sources`` (may be empty).
CREATE_TRACKS = """
UNWIND $rows AS row
MATCH (a:Artist {id: row.artist_id})
MERGE (t:Track {id: row.id})
  ON CREATE SET t.title = row.title, t.name_norm = row.name_norm, t.mbid = row.mbid,
                t.isrc = row.isrc, t.spotify_id = row.spotify_id,
                t.duration_ms = row.duration_ms, t.album = row.album
MERGE (t)-[b:BY]->(a)
  ON CREATE SET b.position = 0
FOREACH (source IN $sources |
  MERGE (e:EnrichmentState {key: t.id + $separator + source})
    ON CREATE SET e.track_id = t.id, e.source = source, e.status = 'pending', e.attempts = 0,
                  e.updated_at = $now, e.not_before = 0)
RETURN collect([t.id, elementId(t)]) AS eids
"""

FILL_TRACKS = """
UNWIND $rows AS row
MATCH (t:Track {id: row.id})
SET t.mbid = coalesce(t.mbid, row.mbid),
    t.isrc = coalesce(t.isrc, row.isrc),
    t.spotify_id = coalesce(t.spotify_id, row.spotify_id),
    t.duration_ms = coalesce(t.duration_ms, row.duration_ms),
    t.album = coalesce(t.album, row.album)
"""

# --- catalogue: reads --------------------------------------------------------------------------------

GET_ARTISTS = f"""
UNWIND $ids AS id
MATCH (a:Artist {{id: id}})
RETURN {_ARTIST} AS artist
"""

GET_TRACKS = f"""
UNWIND $ids AS id
MATCH (t:Track {{id: id}})
RETURN {_TRACK} AS track
"""

FIND_TRACKS_BY_MBID = f"MATCH (t:Track {{mbid: $value}}) RETURN {_TRACK} AS track ORDER BY t.id"
FIND_TRACKS_BY_ISRC = f"MATCH (t:Track {{isrc: $value}}) RETURN {_TRACK} AS track ORDER BY t.id"
FIND_TRACKS_BY_SPOTIFY_ID = (
    f"MATCH (t:Track {{spotify_id: $value}}) RETURN {_TRACK} AS track ORDER BY t.id"
)

SEARCH_ARTISTS = f"""
MATCH (a:Artist)
WHERE a.name_norm CONTAINS $query
RETURN {_ARTIST} AS artist
ORDER BY size(a.name_norm), a.name_norm, a.id
SKIP $offset LIMIT $limit
"""

COUNT_SEARCH_ARTISTS = """
MATCH (a:Artist) WHERE a.name_norm CONTAINS $query RETURN count(a) AS n
"""

SEARCH_TRACKS = f"""
MATCH (t:Track)
WHERE t.name_norm CONTAINS $query
RETURN {_TRACK} AS track
ORDER BY size(t.name_norm), t.name_norm, t.id
SKIP $offset LIMIT $limit
"""

COUNT_SEARCH_TRACKS = """
MATCH (t:Track) WHERE t.name_norm CONTAINS $query RETURN count(t) AS n
"""

TRACKS_BY_ARTISTS = f"""
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {{
  MATCH (t:Track)-[:BY]->(:Artist {{id: $ids[i]}})
  WITH t ORDER BY t.title, t.id LIMIT $limit
  RETURN collect({_TRACK}) AS tracks
}}
RETURN i, tracks
"""

COUNT_TRACKS_BY_ARTISTS = """
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {
  OPTIONAL MATCH (t:Track)-[:BY]->(:Artist {id: $ids[i]})
  RETURN count(DISTINCT t) AS n
}
RETURN i, n
"""

UPDATE_TRACKS = """
UNWIND $rows AS row
MATCH (t:Track {id: row.id})
SET t += row.props
"""

# --- listens -------------------------------------------------------------------------------------

#: Write-locks the batch's users (in id order, so concurrent batches cannot deadlock for long):
#: with the lock held, "which listens are stored already" stays true until the batch commits.
#: Answers, per user, the newest listen stored before the batch (``newest_listen_at``) and
#: whether any is (a user without the property but with listens: unknown), and moves the marker
#: to the batch's newest listen (``$newest``, by user id) in the same step: every listen of the
#: batch is either written by it or stored already, so the marker stays the newest stored. A
#: user whose marker is unknown keeps it unknown.
LOCK_USERS = """
UNWIND $ids AS id
MATCH (u:User {id: id})
SET u.locked_by_batch = true
REMOVE u.locked_by_batch
WITH u, u.newest_listen_at AS newest, EXISTS { (u)-[:PLAYED]->() } AS has_played
SET u.newest_listen_at = CASE
  WHEN newest IS NULL AND has_played THEN null
  WHEN newest IS NULL OR $newest[u.id] > newest THEN $newest[u.id]
  ELSE newest END
RETURN collect({id: u.id, eid: elementId(u), newest: newest, has_played: has_played}) AS users
"""

#: Element ids of tracks by id (for WRITE_LISTENS, when the store has not remembered them).
TRACK_ELEMENT_IDS = """
UNWIND $ids AS id
MATCH (t:Track {id: id})
RETURN collect([t.id, elementId(t)]) AS eids
"""

#: Which listens of the batch are stored already. A (user, track) pair can hold one of them
#: only if its LISTENED edge exists and spans the group's times (LISTENED covers every PLAYED of
#: the pair), so only those pairs read their PLAYED edges. One row per group: ``g`` its index.
STORED_LISTENS = """
UNWIND $groups AS g
MATCH (u:User {id: g.user_id})-[l:LISTENED]->(t:Track {id: g.track_id})
WHERE g.first_at <= l.last_at AND g.last_at >= l.first_at
WITH g, COLLECT { MATCH (u)-[r:PLAYED]->(t) WHERE r.at IN g.ats RETURN r.at } AS ats
WHERE size(ats) > 0
RETURN collect({g: g.g, ats: ats}) AS stored
"""

#: The new listens of each (user, track) group: PLAYED edges, folded into LISTENED. Run with the
#: batch's users locked (LOCK_USERS) since STORED_LISTENS, so "new" holds until the commit.
#: User and track are found by element id (``g.u``, ``g.t``: a direct record read, no index
#: seek); ``t.id`` is checked, since an element id may be reused once its node is deleted.
#: A group's listens travel as columns: ``g.ats``, and ``g.src`` / ``g.ms`` / ``g.sk`` (source,
#: ms_played, skipped) only when they differ from ``$source`` / null / false.
#: Answers the PLAYED edges written: fewer than sent means a track was not found.
WRITE_LISTENS = """
UNWIND $rows AS g
MATCH (u:User) WHERE elementId(u) = g.u
MATCH (t:Track) WHERE elementId(t) = g.t AND t.id = g.track_id
MERGE (u)-[r:LISTENED]->(t)
  ON CREATE SET r.count = g.count, r.skips = g.skips, r.first_at = g.first_at,
                r.last_at = g.last_at
  ON MATCH SET r.count = r.count + g.count, r.skips = r.skips + g.skips,
               r.first_at = CASE WHEN g.first_at < r.first_at THEN g.first_at
                                 ELSE r.first_at END,
               r.last_at = CASE WHEN g.last_at > r.last_at THEN g.last_at ELSE r.last_at END
WITH u, t, g
UNWIND range(0, size(g.ats) - 1) AS i
CREATE (u)-[:PLAYED {at: g.ats[i], source: coalesce(g.src[i], $source), ms_played: g.ms[i],
                     skipped: coalesce(g.sk[i], false)}]->(t)
RETURN count(*) AS written
"""

SET_ARTIST_LISTENS = """
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
MATCH (a:Artist {id: row.artist_id})
MERGE (u)-[r:LISTENED_ARTIST]->(a)
SET r.count = row.count
RETURN count(r) AS n
"""

RECENT_LISTENS = f"""
MATCH (u:User {{id: $user_id}})-[r:PLAYED]->(t:Track)
WHERE ($before IS NULL OR r.at < $before) AND ($include_skips OR NOT r.skipped)
RETURN {_LISTEN} AS listen
ORDER BY r.at DESC, t.id DESC
LIMIT $limit
"""

COUNT_LISTENS = """
MATCH (u:User {id: $user_id})-[r:PLAYED]->(:Track)
WHERE $include_skips OR NOT r.skipped
RETURN count(r) AS n
"""

LISTENS_BETWEEN = f"""
MATCH (u:User {{id: $user_id}})-[r:PLAYED]->(t:Track)
WHERE $start <= r.at < $end AND NOT r.skipped
RETURN {_LISTEN} AS listen
ORDER BY r.at, t.id
"""

GET_AGGREGATES = f"""
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {{
  MATCH (u:User {{id: $ids[i]}})-[r:LISTENED]->(t:Track)
  WITH u, r, t ORDER BY r.count DESC, t.id
  RETURN collect({_AGGREGATE}) AS rows
}}
RETURN i, rows
"""

GET_ARTIST_LISTENS = """
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {
  MATCH (u:User {id: $ids[i]})-[r:LISTENED_ARTIST]->(a:Artist)
  WITH u, r, a ORDER BY r.count DESC, a.id
  RETURN collect({user_id: u.id, artist_id: a.id, count: r.count}) AS rows
}
RETURN i, rows
"""

# per user: (first artist, count) per LISTENED edge in aggregate order, and the LISTENED_ARTIST
# counts; the store ranks them with rank_top_artists
TOP_ARTISTS = """
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {
  MATCH (u:User {id: $ids[i]})-[r:LISTENED]->(t:Track)
  WITH r, t, COLLECT {
    MATCH (t)-[b:BY]->(a:Artist) RETURN a.id ORDER BY b.position, a.id LIMIT 1
  } AS first
  WHERE size(first) > 0
  WITH first[0] AS artist, r.count AS count, t.id AS track ORDER BY count DESC, track
  RETURN collect([artist, count]) AS tracks
}
CALL (i) {
  MATCH (u:User {id: $ids[i]})-[r:LISTENED_ARTIST]->(a:Artist)
  WITH r, a ORDER BY r.count DESC, a.id
  RETURN collect([a.id, r.count]) AS artists
}
RETURN i, tracks, artists
"""

# --- tags, friends, ratings, similarity ----------------------------------------------------------

SET_ARTIST_TAGS = """
UNWIND $rows AS row
MATCH (i:Artist {id: row.item_id})
MERGE (g:Tag {name: row.tag})
MERGE (i)-[r:TAGGED]->(g)
SET r.count = row.count
RETURN count(r) AS n
"""

SET_TRACK_TAGS = """
UNWIND $rows AS row
MATCH (i:Track {id: row.item_id})
MERGE (g:Tag {name: row.tag})
MERGE (i)-[r:TAGGED]->(g)
SET r.count = row.count
RETURN count(r) AS n
"""

_GET_TAGS = """
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {{
  MATCH (n:{label} {{id: $ids[i]}})-[r:TAGGED]->(g:Tag)
  WITH n, r, g ORDER BY r.count DESC, g.name
  RETURN collect({{item_id: n.id, tag: g.name, count: r.count}}) AS rows
}}
RETURN i, rows
"""
GET_ARTIST_TAGS = _GET_TAGS.format(label="Artist")
GET_TRACK_TAGS = _GET_TAGS.format(label="Track")

_ITEMS_TAGGED = """
MATCH (n:{label})-[r:TAGGED]->(:Tag {{name: $tag}})
RETURN n.id AS id
ORDER BY r.count DESC, n.id
SKIP $offset LIMIT $limit
"""
ARTISTS_TAGGED = _ITEMS_TAGGED.format(label="Artist")
TRACKS_TAGGED = _ITEMS_TAGGED.format(label="Track")

_COUNT_ITEMS_TAGGED = "MATCH (n:{label})-[r:TAGGED]->(:Tag {{name: $tag}}) RETURN count(r) AS n"
COUNT_ARTISTS_TAGGED = _COUNT_ITEMS_TAGGED.format(label="Artist")
COUNT_TRACKS_TAGGED = _COUNT_ITEMS_TAGGED.format(label="Track")

ADD_FRIENDSHIPS = """
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
MATCH (f:User {id: row.friend_id})
MERGE (u)-[r:FRIEND]->(f)
RETURN count(r) AS n
"""

GET_FRIENDS = """
MATCH (:User {id: $user_id})-[:FRIEND]->(f:User)
RETURN f.id AS id ORDER BY f.id
"""

SET_RATING = """
MATCH (u:User {id: $user_id})
MATCH (t:Track {id: $track_id})
MERGE (u)-[r:RATED]->(t)
SET r.score = $score, r.at = $at
"""

# A clearing is kept as (User)-[:CLEARED {at}]->(Track), the latest one: readers of ratings never
# see it, and a rating written "only if newer" must be later than it (so an older export
# imported again cannot bring back a rating the user cleared since). Writers of clearings lock
# the user first (a property set and removed: the write lock is held to the end of the
# transaction), and so does SET_RATINGS before it reads one.
CLEAR_RATING = """
MATCH (u:User {id: $user_id})
MATCH (t:Track {id: $track_id})
SET u._lock = true
REMOVE u._lock
WITH u, t
OPTIONAL MATCH (u)-[r:RATED]->(t)
DELETE r
MERGE (u)-[c:CLEARED]->(t)
ON CREATE SET c.at = $at
ON MATCH SET c.at = CASE WHEN c.at < $at THEN $at ELSE c.at END
"""

# $only_newer: write a row only later than the user's last clearing of the rating and over an
# older stored rating. The stored rating is locked before its time is read, so a rating written
# meanwhile by another transaction is read, not overwritten; a row whose clearing is later
# creates nothing.
SET_RATINGS = """
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
MATCH (t:Track {id: row.track_id})
SET u._lock = true
REMOVE u._lock
WITH u, t, row
OPTIONAL MATCH (u)-[c:CLEARED]->(t)
WITH u, t, row, c
WHERE NOT $only_newer OR c IS NULL OR c.at < row.at
MERGE (u)-[r:RATED]->(t)
ON CREATE SET r.at = -1
SET r._lock = true
REMOVE r._lock
WITH u, t, r, row
WHERE NOT $only_newer OR r.at < row.at
SET r.score = row.score, r.at = row.at
RETURN u.id AS user_id, t.id AS track_id
"""

CLEAR_RATINGS = """
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
MATCH (t:Track {id: row.track_id})
SET u._lock = true
REMOVE u._lock
WITH u, t, row
MERGE (u)-[c:CLEARED]->(t)
ON CREATE SET c.at = row.at
ON MATCH SET c.at = CASE WHEN c.at < row.at THEN row.at ELSE c.at END
WITH u, t, row
MATCH (u)-[r:RATED]->(t)
SET r._lock = true
REMOVE r._lock
WITH u, t, r, row
WHERE NOT $only_newer OR r.at < row.at
DELETE r
RETURN u.id AS user_id, t.id AS track_id
"""

GET_RATINGS = """
MATCH (u:User {id: $user_id})-[r:RATED]->(t:Track)
RETURN u.id AS user_id, t.id AS track_id, r.score AS score, r.at AS at
ORDER BY r.at DESC, t.id
"""

_SET_SIMILAR = """
UNWIND $rows AS row
MATCH (s:{label} {{id: row.source_id}})
MATCH (t:{label} {{id: row.target_id}})
MERGE (s)-[r:SIMILAR {{source: row.source}}]->(t)
SET r.score = row.score
RETURN count(r) AS n
"""
SET_ARTIST_SIMILAR = _SET_SIMILAR.format(label="Artist")
SET_TRACK_SIMILAR = _SET_SIMILAR.format(label="Track")

_GET_SIMILAR = """
MATCH (s:{label} {{id: $item_id}})-[r:SIMILAR]->(t:{label})
RETURN s.id AS source_id, t.id AS target_id, r.score AS score, r.source AS source
ORDER BY r.score DESC, t.id, r.source
LIMIT $limit
"""
GET_ARTIST_SIMILAR = _GET_SIMILAR.format(label="Artist")
GET_TRACK_SIMILAR = _GET_SIMILAR.format(label="Track")

# --- playlists -------------------------------------------------------------------------------------

CREATE_PLAYLIST = f"""
MATCH (u:User {{id: $owner_id}})
CREATE (u)-[:OWNS]->(p:Playlist {{id: $id, owner_id: $owner_id, name: $name,
                                  description: $description, public: $public,
                                  created_at: $at, updated_at: $at}})
RETURN {_PLAYLIST} AS playlist
"""

UPDATE_PLAYLIST = f"""
MATCH (p:Playlist {{id: $id}})
SET p.name = coalesce($name, p.name),
    p.description = coalesce($description, p.description),
    p.public = coalesce($public, p.public),
    p.updated_at = $at
RETURN {_PLAYLIST} AS playlist
"""

#: Setting a property write-locks the playlist, so concurrent edits of its entries serialise.
LOCK_PLAYLIST = "MATCH (p:Playlist {id: $id}) SET p.updated_at = p.updated_at RETURN p.id AS id"

TOUCH_PLAYLIST = "MATCH (p:Playlist {id: $id}) SET p.updated_at = $at"

DELETE_PLAYLIST = """
MATCH (p:Playlist {id: $id})
DETACH DELETE p
RETURN count(*) AS n
"""

GET_PLAYLISTS = f"""
UNWIND $ids AS id
MATCH (p:Playlist {{id: id}})
RETURN {_PLAYLIST} AS playlist
"""

LIST_PLAYLISTS = f"""
MATCH (p:Playlist {{owner_id: $owner_id}})
WHERE $include_private OR p.public
RETURN {_PLAYLIST} AS playlist
ORDER BY p.name, p.id
"""

LIST_PUBLIC_PLAYLISTS = f"""
MATCH (p:Playlist)
WHERE p.public = true
RETURN {_PLAYLIST} AS playlist
ORDER BY p.updated_at DESC, p.id
SKIP $offset LIMIT $limit
"""

PLAYLIST_ENTRIES = """
MATCH (p:Playlist {id: $id})-[c:CONTAINS]->(t:Track)
RETURN p.id AS playlist_id, t.id AS track_id, c.position AS position, c.added_at AS added_at
ORDER BY c.position
SKIP $offset LIMIT $limit
"""

PLAYLIST_ENTRIES_FOR_EDIT = """
MATCH (p:Playlist {id: $id})-[c:CONTAINS]->(t:Track)
RETURN elementId(c) AS eid, c.position AS position
ORDER BY c.position
"""

COUNT_PLAYLIST_ENTRIES = """
MATCH (:Playlist {id: $id})-[c:CONTAINS]->(:Track)
RETURN count(c) AS n
"""

_EXISTING = """
UNWIND $ids AS id
MATCH (n:{label} {{id: id}})
RETURN collect(DISTINCT n.id) AS found
"""
EXISTING_USERS = _EXISTING.format(label="User")
EXISTING_ARTISTS = _EXISTING.format(label="Artist")
EXISTING_TRACKS = _EXISTING.format(label="Track")
EXISTING_PLAYLISTS = _EXISTING.format(label="Playlist")

ADD_PLAYLIST_ENTRIES = """
MATCH (p:Playlist {id: $id})
UNWIND $rows AS row
MATCH (t:Track {id: row.track_id})
CREATE (p)-[:CONTAINS {position: row.position, added_at: row.added_at}]->(t)
"""

DELETE_PLAYLIST_ENTRIES = """
UNWIND $eids AS eid
MATCH ()-[c:CONTAINS]->()
WHERE elementId(c) = eid
DELETE c
"""

SET_ENTRY_POSITIONS = """
UNWIND $rows AS row
MATCH ()-[c:CONTAINS]->()
WHERE elementId(c) = row.eid
SET c.position = row.position
"""

# --- enrichment queue ----------------------------------------------------------------------------

#: The driver's summary counts the states created (``nodes_created``).
ENQUEUE_ENRICHMENT = """
UNWIND $rows AS row
MERGE (e:EnrichmentState {key: row.key})
  ON CREATE SET e.track_id = row.track_id, e.source = row.source, e.status = 'pending',
                e.attempts = 0, e.updated_at = $now, e.not_before = 0
"""

#: Leases what it returns (``not_before`` moves to ``$lease``) so concurrent claims skip it.
CLAIM_ENRICHMENT = f"""
MATCH (e:EnrichmentState {{source: $source}})
WHERE e.status IN ['pending', 'failed'] AND e.not_before <= $now
WITH e ORDER BY e.updated_at, e.track_id
LIMIT $limit
SET e.not_before = $lease
RETURN {_STATE} AS state
ORDER BY e.updated_at, e.track_id
"""

#: Frees the states one claim leased (``not_before`` exactly ``$lease``): due at ``$now``.
RELEASE_ENRICHMENT_LEASES = """
MATCH (e:EnrichmentState {source: $source})
WHERE e.status IN ['pending', 'failed'] AND e.not_before = $lease
SET e.not_before = $now
RETURN count(e) AS n
"""

SET_ENRICHMENT_STATES = """
UNWIND $rows AS row
MERGE (e:EnrichmentState {key: row.key})
SET e.track_id = row.track_id, e.source = row.source, e.status = row.status,
    e.attempts = row.attempts, e.last_error = row.last_error, e.updated_at = row.updated_at,
    e.not_before = row.not_before
"""

GET_ENRICHMENT_STATES = f"""
MATCH (e:EnrichmentState {{track_id: $track_id}})
RETURN {_STATE} AS state
ORDER BY e.source
"""

ENRICHMENT_COUNTS = """
MATCH (e:EnrichmentState)
RETURN e.source AS source, e.status AS status, count(*) AS n
ORDER BY source, status
"""

# --- streaming reads for the projection ----------------------------------------------------------

STREAM_AGGREGATES = f"""
MATCH (u:User)-[r:LISTENED]->(t:Track)
RETURN {_AGGREGATE} AS row
ORDER BY u.id, t.id
"""

STREAM_LISTENS = f"""
MATCH (u:User)-[r:PLAYED]->(t:Track)
WHERE NOT r.skipped AND ($since IS NULL OR r.at >= $since)
RETURN {_LISTEN} AS row
ORDER BY u.id, r.at, t.id
"""

STREAM_ARTIST_LISTENS = """
MATCH (u:User)-[r:LISTENED_ARTIST]->(a:Artist)
RETURN {user_id: u.id, artist_id: a.id, count: r.count} AS row
ORDER BY u.id, a.id
"""

STREAM_TRACK_ARTISTS = """
MATCH (t:Track)-[r:BY]->(a:Artist)
RETURN {track_id: t.id, artist_id: a.id, position: r.position} AS row
ORDER BY t.id, a.id
"""

_STREAM_TAGS = """
MATCH (n:{label})-[r:TAGGED]->(g:Tag)
RETURN {{item_id: n.id, tag: g.name, count: r.count}} AS row
ORDER BY n.id, g.name
"""
STREAM_ARTIST_TAGS = _STREAM_TAGS.format(label="Artist")
STREAM_TRACK_TAGS = _STREAM_TAGS.format(label="Track")

STREAM_FRIENDSHIPS = """
MATCH (u:User)-[:FRIEND]->(f:User)
RETURN {user_id: u.id, friend_id: f.id} AS row
ORDER BY u.id, f.id
"""

STREAM_RATINGS = """
MATCH (u:User)-[r:RATED]->(t:Track)
RETURN {user_id: u.id, track_id: t.id, score: r.score, at: r.at} AS row
ORDER BY u.id, t.id
"""

STREAM_PLAYLIST_ENTRIES = """
MATCH (p:Playlist)-[c:CONTAINS]->(t:Track)
RETURN {playlist_id: p.id, track_id: t.id, position: c.position, added_at: c.added_at} AS row
ORDER BY p.id, c.position
"""

_STREAM_SIMILAR = """
MATCH (s:{label})-[r:SIMILAR]->(t:{label})
RETURN {{source_id: s.id, target_id: t.id, score: r.score, source: r.source}} AS row
ORDER BY s.id, t.id, r.source
"""
STREAM_ARTIST_SIMILAR = _STREAM_SIMILAR.format(label="Artist")
STREAM_TRACK_SIMILAR = _STREAM_SIMILAR.format(label="Track")

STREAM_TRACKS = f"MATCH (t:Track) RETURN {_TRACK} AS row ORDER BY t.id"

STREAM_ARTISTS = f"MATCH (a:Artist) RETURN {_ARTIST} AS row ORDER BY a.id"

STREAM_USERS = f"MATCH (u:User) RETURN {_USER} AS row ORDER BY u.id"
