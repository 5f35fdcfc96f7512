CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    context_data        TEXT NOT NULL DEFAULT '{}',
    roles               TEXT NOT NULL DEFAULT '[]',
    password_hash       TEXT,
    valid_from          BIGINT,
    valid_until         BIGINT,
    locked              BOOLEAN NOT NULL DEFAULT FALSE,
    lock_reason         TEXT,
    locked_at           BIGINT,
    unlock_count        BIGINT NOT NULL DEFAULT 0,
    auth_method         TEXT,
    password_changed_at BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- Usernames and aliases share one namespace: every login name of a user is a row here, so the primary key
-- makes a name unique across both, atomically, however many nodes create users at once.
CREATE TABLE logins (
    login   TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL
);
CREATE INDEX logins_user ON logins (user_id);

CREATE TABLE failed_attempts (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method  TEXT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (user_id, method)
);

CREATE TABLE flow_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    flow_id      TEXT NOT NULL,
    state        TEXT NOT NULL,
    status       TEXT NOT NULL,
    version      BIGINT NOT NULL,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX flow_sessions_expiry ON flow_sessions (expires_at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    sealed          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    claimed_until   BIGINT,
    last_error      TEXT,
    status          TEXT NOT NULL DEFAULT 'pending',
    finished_at     BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    user_id    TEXT,
    username   TEXT,
    flow_id    TEXT,
    session_id TEXT,
    ip         TEXT,
    outcome    TEXT NOT NULL,
    details    TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id);
