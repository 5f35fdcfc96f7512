-- Each login name carries its user's name just before it in code point order (`previous`, NULL for the user's
-- first), and each user its aliases (a JSON list in code point order). A user's names are written with the user and
-- never change, so neither copy can go stale.
--
-- The admin search keeps of each user only the smallest name that matches the prefix. It asked `logins_owner`
-- for every name of the page's range, and again for each user's aliases; now the range's own rows answer the first
-- question (`previous` is before the prefix or absent) and the user's row the second. Every other read of a user
-- (identify, login) also saves its lookup of the aliases. See the PostgreSQL migration of the same name.
--
-- `logins` is rebuilt as in 0015 (no other table refers to it); `users` gains a column.
CREATE TABLE logins_with_previous (
    login    TEXT PRIMARY KEY,
    owner    TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    previous TEXT
) WITHOUT ROWID;
INSERT INTO logins_with_previous (login, owner, kind, previous)
    SELECT login, owner, kind, lag(login) OVER (PARTITION BY owner ORDER BY login) FROM logins ORDER BY login;
DROP TABLE logins;
ALTER TABLE logins_with_previous RENAME TO logins;
-- No statement reads names by owner any more: `logins_owner` serves only the cascade from a deleted user, for which
-- the owner alone is enough.
CREATE INDEX logins_owner ON logins (owner);

ALTER TABLE users ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
UPDATE users SET aliases = (
    SELECT json_group_array(login) FROM (SELECT login FROM logins WHERE owner = users.username AND kind = 'alias' ORDER BY login)
) WHERE username IN (SELECT owner FROM logins WHERE kind = 'alias');
