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

-- Which people an application enrolled: each application sees only its own.
CREATE TABLE app_enrollments (
    app_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_enrollments_user ON app_enrollments (user_id);
