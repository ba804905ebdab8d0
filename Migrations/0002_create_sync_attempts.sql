-- Snapshot cache, schema 2: a bounded log of sync attempts per cache key, and a readable view of the cache.

CREATE TABLE sync_attempts (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES cache_entries (id) ON DELETE CASCADE,
    started_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('updated', 'not_modified', 'rejected', 'failed')),
    http_status INTEGER,
    error_class TEXT,                    -- a short class such as 'timeout' or 'http_5xx', never a message
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0)
) STRICT;

CREATE INDEX sync_attempts_by_entry ON sync_attempts (entry_id, id);

-- One row per cache key with its last good snapshot (if any) and how old it is.
CREATE VIEW cached_snapshots AS
SELECT
    e.server_url,
    e.environment,
    e.namespace,
    e.reference,
    s.generation,
    s.source,
    s.etag,
    s.fetched_at,
    s.last_confirmed_at,
    s.server_date,
    CAST(round((julianday('now') - julianday(s.last_confirmed_at)) * 86400) AS INTEGER) AS age_seconds,
    json_array_length(s.document, '$.flags') AS flag_count,
    s.size,
    s.content_hash,
    (SELECT count(*) FROM snapshots g WHERE g.entry_id = e.id) AS generations
FROM cache_entries e
LEFT JOIN snapshots s ON s.id = e.last_good_snapshot_id;
