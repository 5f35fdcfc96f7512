-- Rate limits held in the database, so they hold across nodes: hits per key in the current window.
CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
);
