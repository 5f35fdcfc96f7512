CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    context_data        TEXT NOT NULL DEFAULT '{}',
    roles               TEXT NOT NULL DEFAULT '[]',
    password_hash       TEXT,
    valid_from          INTEGER,
    valid_until         INTEGER,
    locked              INTEGER NOT NULL DEFAULT 0,
    lock_reason         TEXT,
    locked_at           INTEGER,
    unlock_count        INTEGER NOT NULL DEFAULT 0,
    auth_method         TEXT,
    password_changed_at INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
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
    count   INTEGER NOT NULL,
    PRIMARY KEY (user_id, method)
);

CREATE TABLE flow_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    flow_id      TEXT NOT NULL,
    state        TEXT NOT NULL,
    status       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX flow_sessions_expiry ON flow_sessions (expires_at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    sealed          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claimed_until   INTEGER,
    last_error      TEXT,
    status          TEXT NOT NULL DEFAULT 'pending',
    finished_at     INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    at         INTEGER NOT NULL,
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
