-- Gatehouse authenticator devices: an Ed25519 public key for push decisions, and a sealed symmetric key for
-- offline codes.
CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key     TEXT NOT NULL UNIQUE,
    sealed_offline TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER
);
CREATE INDEX devices_user ON devices (user_id);

-- One-time activation codes (keyed hashes), valid for a short time.
CREATE TABLE activations (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- Push approval requests: decided once, by a device of the user, before they expire.
CREATE TABLE approvals (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    context    TEXT NOT NULL,
    number     INTEGER NOT NULL,
    choices    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    status     TEXT NOT NULL,
    device_id  TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER
);
CREATE INDEX approvals_user ON approvals (user_id, status);
