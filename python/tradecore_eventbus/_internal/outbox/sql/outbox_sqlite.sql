-- tradecore-eventbus: transactional outbox and inbox tables (SQLite). Idempotent.
-- SQLite runs one write transaction at a time, so ids are assigned in commit order.

CREATE TABLE IF NOT EXISTS eventbus_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    stream_name     TEXT    NOT NULL,
    partition_key   TEXT,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'published', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      REAL    NOT NULL,
    published_at    REAL,
    -- A relay's lease on a row it is publishing (several relay processes may share the file).
    claimed_by      TEXT,
    claimed_until   REAL
);

CREATE INDEX IF NOT EXISTS eventbus_outbox_pending ON eventbus_outbox (status, id);
CREATE INDEX IF NOT EXISTS eventbus_outbox_key ON eventbus_outbox (partition_key, id);

CREATE TABLE IF NOT EXISTS eventbus_inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at REAL NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
