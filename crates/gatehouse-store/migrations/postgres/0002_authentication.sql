-- Temporary locking: no password check before this time.
ALTER TABLE users ADD COLUMN temp_locked_until BIGINT;

-- Authenticated sessions, carried by a cookie whose keyed hash is stored.
CREATE TABLE auth_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    factors      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

-- One TOTP credential per user; the secret is sealed with the server key. `last_step` is the last time step
-- accepted, so a code is accepted once only.
CREATE TABLE totp_credentials (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    confirmed     BOOLEAN NOT NULL,
    last_step     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Bearer tokens of the admin API (only their keyed hash).
CREATE TABLE admin_tokens (
    name         TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
