-- Snapshot cache, schema 1: one row per cache key, one row per stored snapshot generation.
-- Times are ISO-8601 UTC text with milliseconds (2026-11-24T23:41:05.123Z).

CREATE TABLE cache_entries (
    id INTEGER PRIMARY KEY,
    server_url TEXT NOT NULL,            -- normalised: no credentials, no trailing slash
    environment TEXT NOT NULL,
    namespace TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',  -- '' when no reference is configured
    last_good_snapshot_id INTEGER REFERENCES snapshots (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    UNIQUE (server_url, environment, namespace, reference)
) STRICT;

CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES cache_entries (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL CHECK (generation > 0),
    source TEXT NOT NULL CHECK (source IN ('network', 'seed', 'import')),
    etag TEXT,
    fetched_at TEXT NOT NULL,
    server_date TEXT,
    last_confirmed_at TEXT NOT NULL,     -- the fetch, or the latest 304 that confirmed this snapshot
    content_hash TEXT NOT NULL,          -- SHA-256 of document, lowercase hex
    size INTEGER NOT NULL,               -- bytes of document
    document TEXT NOT NULL CHECK (json_valid(document)),
    UNIQUE (entry_id, generation)
) STRICT;
