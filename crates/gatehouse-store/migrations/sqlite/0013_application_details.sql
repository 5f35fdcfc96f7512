-- What the v1 API was told and did not keep yet: the application's display name for a person it enrolled, the
-- application's session id given when an access token is used (for a remote logout later), and whether the widget
-- already turned an approved request into an access token (it does so once).
ALTER TABLE app_enrollments ADD COLUMN name TEXT;
ALTER TABLE app_tokens ADD COLUMN sid TEXT;
ALTER TABLE app_approvals ADD COLUMN token_issued_at BIGINT;
