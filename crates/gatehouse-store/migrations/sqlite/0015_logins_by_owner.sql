-- Login names point at their user by username instead of by id, and are stored in the order of the name.
--
-- The admin search reads a page of login names in order and, for each, the user and the user's other names. By
-- id, each of those was a descent into a B-tree of millions of entries at a random place: a page at 10 million
-- users read hundreds of pages the page before it had not. By username, neighbouring names of the page are
-- neighbouring entries of the users' username index and of `logins_owner`, so a page reads a few pages of each.
-- Usernames never change once written, which is what makes them usable as the reference.
--
-- WITHOUT ROWID keeps the rows themselves in the order of the name: a range of names is read from the table's
-- own B-tree, with no second descent per name from an index into the table.
--
-- Only this table is rebuilt: no other table refers to it, so dropping it with foreign keys on deletes nothing
-- elsewhere.
CREATE TABLE logins_by_owner (
    login TEXT PRIMARY KEY,
    owner TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    kind  TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO logins_by_owner (login, owner, kind)
    SELECT l.login, u.username, l.kind FROM logins l JOIN users u ON u.id = l.user_id ORDER BY l.login;
DROP TABLE logins;
ALTER TABLE logins_by_owner RENAME TO logins;
CREATE INDEX logins_owner ON logins (owner, kind, login);
