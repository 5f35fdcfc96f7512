-- When the session's user last proved who they are (a login, or a step-up for a sensitive change).
ALTER TABLE auth_sessions ADD COLUMN authenticated_at INTEGER;
UPDATE auth_sessions SET authenticated_at = created_at;
