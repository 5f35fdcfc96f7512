-- Which node runs which housekeeping task until when: a task runs on one node at a time.
CREATE TABLE housekeeping_leases (
    task        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
-- Housekeeping looks rows up by these times.
CREATE INDEX outbox_finished ON outbox (finished_at);
CREATE INDEX approvals_expiry ON approvals (expires_at);
CREATE INDEX auth_sessions_expiry ON auth_sessions (expires_at);
CREATE INDEX flow_sessions_last_seen ON flow_sessions (last_seen_at);
