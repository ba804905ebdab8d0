-- Snapshot cache, schema 3: a rollback that holds. `flipt-offline cache rollback` pins the generation it makes
-- last good; while pinned, a fetched document with the content rolled back from is not stored again. A document
-- with any other content, an import, `cache unpin` or another rollback lifts or moves the pin.

CREATE TABLE rollback_pins (
    entry_id INTEGER PRIMARY KEY REFERENCES cache_entries (id) ON DELETE CASCADE,
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    rolled_back_from_hash TEXT NOT NULL,        -- SHA-256 of the document rolled back from, lowercase hex
    rolled_back_from_generation INTEGER NOT NULL,
    pinned_at TEXT NOT NULL
) STRICT;

-- The readable view gains the pin: when pinned_at is set, the last good generation is held by a rollback.
DROP VIEW cached_snapshots;
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
    (SELECT count(*) FROM snapshots g WHERE g.entry_id = e.id) AS generations,
    p.pinned_at,
    p.rolled_back_from_generation,
    p.rolled_back_from_hash
FROM cache_entries e
LEFT JOIN snapshots s ON s.id = e.last_good_snapshot_id
LEFT JOIN rollback_pins p ON p.entry_id = e.id AND p.snapshot_id = e.last_good_snapshot_id;
