-- Third-party applications that use Gatehouse's authenticator as their second factor (the v1 API). The API key
-- is stored as a keyed hash only; a revoked application's key opens nothing.
CREATE TABLE applications (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    origin         TEXT NOT NULL,
    callback_url   TEXT,
    key_hash       TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    key_rotated_at BIGINT,
    revoked_at     BIGINT
);

-- Which people an application enrolled: each application sees only its own. After a denied push the next
-- authentication needs a code from the device (`token_required`); a code's time step works once.
CREATE TABLE app_enrollments (
    app_id         TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    token_required BOOLEAN NOT NULL DEFAULT FALSE,
    last_code_step BIGINT,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_enrollments_user ON app_enrollments (user_id);

-- Access tokens of approved authentications (keyed hashes): single use, for a minute, for their application only.
CREATE TABLE app_tokens (
    token_hash  TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    approval_id TEXT,
    method      TEXT NOT NULL,
    ip          TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX app_tokens_expiry ON app_tokens (expires_at);

-- The push requests an application made (enrollment consents, logins): its approvals list, and no other's.
CREATE TABLE app_approvals (
    approval_id TEXT PRIMARY KEY REFERENCES approvals (id) ON DELETE CASCADE,
    app_id      TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX app_approvals_app ON app_approvals (app_id, created_at);
