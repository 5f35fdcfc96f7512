-- Counters of public flows in throttle mode: past the limit, the next check waits until this time (ms since
-- the epoch) instead of the user being locked. NULL on every counter that locks.
ALTER TABLE failed_attempts ADD COLUMN blocked_until BIGINT;
