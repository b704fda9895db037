-- tradecore-eventbus: transactional outbox and inbox tables (PostgreSQL). Idempotent.

CREATE TABLE IF NOT EXISTS eventbus_outbox (
    id              BIGSERIAL PRIMARY KEY,
    event_id        TEXT        NOT NULL UNIQUE,
    stream_name     TEXT        NOT NULL,
    partition_key   TEXT,
    -- Position of the event among its key's events, in commit order (see eventbus_outbox_keys).
    key_seq         BIGINT,
    event_type      TEXT        NOT NULL,
    -- The encoded event exactly as it will be sent (UTF-8 JSON).
    payload         TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'published', 'dead')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at    TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS eventbus_outbox_pending
    ON eventbus_outbox (id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS eventbus_outbox_key_pending
    ON eventbus_outbox (partition_key, key_seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS eventbus_outbox_published
    ON eventbus_outbox (published_at) WHERE status = 'published';

-- One counter per partition key. queue_event increments it inside the caller's transaction;
-- the row lock it takes lasts until that transaction ends, so the transactions of one key
-- get their sequence numbers in the order they commit.
CREATE TABLE IF NOT EXISTS eventbus_outbox_keys (
    partition_key TEXT   PRIMARY KEY,
    seq           BIGINT NOT NULL
);

-- Idempotent consumers: one row per (consumer, event) applied.
CREATE TABLE IF NOT EXISTS eventbus_inbox (
    consumer     TEXT        NOT NULL,
    event_id     TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
