-- Login names point at their user by username instead of by id (see the SQLite migration of the same name: a page
-- of the admin search then reads neighbouring entries of the username index and of `logins_owner` instead of one
-- random place per name). Usernames never change once written.
--
-- The table is rebuilt rather than altered in place: an UPDATE of every row would leave as many dead rows behind.
-- The primary key's index carries the owner and the kind, so the search's range of names is an index-only scan.
ALTER TABLE logins RENAME TO logins_by_user;
ALTER INDEX logins_pkey RENAME TO logins_by_user_pkey;
CREATE TABLE logins (
    login TEXT NOT NULL,
    owner TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    kind  TEXT NOT NULL,
    CONSTRAINT logins_pkey PRIMARY KEY (login) INCLUDE (owner, kind)
);
INSERT INTO logins (login, owner, kind)
    SELECT l.login, u.username, l.kind FROM logins_by_user l JOIN users u ON u.id = l.user_id ORDER BY l.login;
DROP TABLE logins_by_user;
CREATE INDEX logins_owner ON logins (owner, kind, login);
