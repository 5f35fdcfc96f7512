-- Each login name carries its user's name just before it in code point order (`previous`, NULL for the user's
-- first), and each user its aliases (a JSON list in code point order). A user's names are written with the user and
-- never change, so neither copy can go stale.
--
-- The admin search keeps of each user only the smallest name that matches the prefix. It asked `logins_owner`
-- for every name of the page's range, and `logins_owner` again for each user's aliases: three descents into
-- B-trees of tens of millions of entries per user of a page at 10 M users, which made a page cost twice what it
-- costs at 1,000 (docs/benchmarks.md, tenth session). Now the range's own entries answer the first question
-- (`previous` is before the prefix or absent) and the user's row the second. Every other read of a user (identify,
-- login) also saves its descent for the aliases.
--
-- `logins` is rebuilt, as in 0015, rather than updated in place (an UPDATE of every row would leave as many dead
-- rows); its foreign key is added after the rows, which checks them in one pass instead of one lookup per row.
-- `users` is updated in place: other tables refer to it. That leaves one dead row per user with aliases, which
-- autovacuum makes reusable.
ALTER TABLE logins RENAME TO logins_before_0017;
ALTER INDEX logins_pkey RENAME TO logins_before_0017_pkey;
ALTER INDEX logins_owner RENAME TO logins_before_0017_owner;
CREATE TABLE logins (
    login    TEXT COLLATE "C" NOT NULL,
    owner    TEXT COLLATE "C" NOT NULL,
    kind     TEXT NOT NULL,
    previous TEXT COLLATE "C",
    CONSTRAINT logins_pkey PRIMARY KEY (login) INCLUDE (owner, kind, previous)
);
INSERT INTO logins (login, owner, kind, previous)
    SELECT login, owner, kind, lag(login) OVER (PARTITION BY owner ORDER BY login)
    FROM logins_before_0017 ORDER BY login;
DROP TABLE logins_before_0017;
ALTER TABLE logins ADD CONSTRAINT logins_owner_fkey FOREIGN KEY (owner) REFERENCES users (username) ON DELETE CASCADE;
-- No statement reads names by owner any more: `logins_owner` serves only the cascade from a deleted user, for which
-- the owner alone is enough (the old index also held the kind and the name).
CREATE INDEX logins_owner ON logins (owner);
ALTER TABLE logins SET (parallel_workers = 0);

ALTER TABLE users ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
UPDATE users SET aliases = a.list
    FROM (SELECT owner, json_agg(login ORDER BY login)::text AS list FROM logins WHERE kind = 'alias' GROUP BY owner) a
    WHERE users.username = a.owner;
ANALYZE logins;
