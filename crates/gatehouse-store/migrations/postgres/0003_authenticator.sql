-- Gatehouse authenticator devices: an Ed25519 public key for push decisions, and a sealed symmetric key for
-- offline codes.
CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key     TEXT NOT NULL UNIQUE,
    sealed_offline TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

-- One-time activation codes (keyed hashes), valid for a short time.
CREATE TABLE activations (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Push approval requests: decided once, by a device of the user, before they expire.
CREATE TABLE approvals (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    context    TEXT NOT NULL,
    number     BIGINT NOT NULL,
    choices    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    status     TEXT NOT NULL,
    device_id  TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX approvals_user ON approvals (user_id, status);
