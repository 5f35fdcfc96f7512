-- Checks in flight are counted apart from failures: a lock follows the failures alone, so checks that end
-- without an answer (503) and give their slot back can never leave a user locked below the limit.
ALTER TABLE failed_attempts ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
