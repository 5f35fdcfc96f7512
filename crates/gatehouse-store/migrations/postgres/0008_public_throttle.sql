-- Counters of public flows in throttle mode: past the limit, the next check waits until this time (ms since
-- the epoch) instead of the user being locked. NULL on every counter that locks.
ALTER TABLE failed_attempts ADD COLUMN blocked_until BIGINT;
-- When the latest check in flight was reserved: a slot still held long after (its check ended in a failure
-- that could not be written) is reclaimed by housekeeping.
ALTER TABLE failed_attempts ADD COLUMN pending_since BIGINT;
