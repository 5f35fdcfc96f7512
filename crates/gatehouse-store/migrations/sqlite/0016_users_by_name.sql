-- Users are stored in the order of their usernames: WITHOUT ROWID with the username as primary key. A page of the
-- admin search, and the list by username, then read neighbouring rows of one B-tree; in a rowid table the rows lie
-- in the order they were created, so the users of a page were as many random places in a table of millions. A user
-- found by a login name (which refers to its user by username since 0015) is one descent instead of two. The id
-- stays unique: every other table refers to users by id.
--
-- SQLite cannot change a table into WITHOUT ROWID, so the table is rebuilt (the procedure of "Making Other Kinds
-- Of Table Schema Changes" in SQLite's ALTER TABLE documentation). Dropping the old table with foreign keys on
-- would delete every row that refers to a user, so they are off for the rebuild, and PRAGMA foreign_keys does
-- nothing inside a transaction: this migration runs without the migrator's transaction and opens its own.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_by_name (
    id                  TEXT NOT NULL UNIQUE,
    username            TEXT PRIMARY KEY,
    context_data        TEXT NOT NULL DEFAULT '{}',
    roles               TEXT NOT NULL DEFAULT '[]',
    password_hash       TEXT,
    valid_from          INTEGER,
    valid_until         INTEGER,
    locked              INTEGER NOT NULL DEFAULT 0,
    lock_reason         TEXT,
    locked_at           INTEGER,
    unlock_count        INTEGER NOT NULL DEFAULT 0,
    auth_method         TEXT,
    password_changed_at INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    temp_locked_until   INTEGER
) WITHOUT ROWID;
INSERT INTO users_by_name (
    id, username, context_data, roles, password_hash, valid_from, valid_until, locked, lock_reason, locked_at,
    unlock_count, auth_method, password_changed_at, created_at, updated_at, temp_locked_until
)
SELECT
    id, username, context_data, roles, password_hash, valid_from, valid_until, locked, lock_reason, locked_at,
    unlock_count, auth_method, password_changed_at, created_at, updated_at, temp_locked_until
FROM users ORDER BY username;
DROP TABLE users;
ALTER TABLE users_by_name RENAME TO users;
COMMIT;
PRAGMA foreign_keys = ON;
