-- Context items a registration flow declares unique (`additional_unique_items`): the primary key makes a value
-- unique across users atomically, however many nodes register at once.
CREATE TABLE unique_items (
    item    TEXT NOT NULL,
    value   TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (item, value)
);
CREATE INDEX unique_items_user ON unique_items (user_id);

-- Solved CAPTCHA challenges (keyed hashes), so that each solution is accepted once across all nodes; kept until
-- the challenge expires.
CREATE TABLE captcha_solutions (
    tag        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX captcha_solutions_expiry ON captcha_solutions (expires_at);
