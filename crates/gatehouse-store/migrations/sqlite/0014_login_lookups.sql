-- A user's login names are looked up by user for the user's aliases and for the admin search's "first matching
-- name of this user". An index of user ids alone sent each of those lookups on into the table, a second B-tree
-- descent for every name; with the kind and the name in the index, the index answers them by itself.
DROP INDEX logins_user;
CREATE INDEX logins_user ON logins (user_id, kind, login);
