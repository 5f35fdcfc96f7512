-- A keyed hash made with the server key of the first node: every node compares its own (`gatehouse doctor`,
-- server start) and so finds out when it holds another key.
CREATE TABLE key_fingerprint (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
