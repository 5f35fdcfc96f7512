-- Usernames and login names compare in code point order whatever the database's collation, as they do on SQLite.
-- The admin search reads the names between a prefix and its successor in code point order; under a linguistic
-- collation (en_US.UTF-8, the default of many installations and of the official container image) that range
-- holds other names too ("éa" for the prefix "e"), and where punctuation only counts last (glibc's en_US) it can
-- miss some. Byte comparison is also cheaper than a locale's.
-- The column types stay text; their indexes are rebuilt.
ALTER TABLE users ALTER COLUMN username TYPE TEXT COLLATE "C";
ALTER TABLE logins ALTER COLUMN login TYPE TEXT COLLATE "C", ALTER COLUMN owner TYPE TEXT COLLATE "C";

-- No parallel plans on login names. Every statement on this table reads a few index entries; a prepared statement's
-- generic plan, which cannot see its parameters, estimates a range of names at 0.5 % of the table (100,000 rows at
-- 10 M users) and would gather it with parallel workers: 25 times slower than reading the range in order and stopping
-- at the page's end (docs/benchmarks.md, eighth session).
ALTER TABLE logins SET (parallel_workers = 0);
