-- Email-link tokens of continuation flows: keyed hashes, single use, bound to the target flow.
CREATE TABLE continuation_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    flow_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX continuation_tokens_expiry ON continuation_tokens (expires_at);

-- Answers to secret questions: keyed hashes of the normalised answer, one per question.
CREATE TABLE secret_answers (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    question    TEXT NOT NULL,
    answer_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, question)
);
