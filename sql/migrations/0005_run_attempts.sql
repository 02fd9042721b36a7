-- Migration 0005_run_attempts: how many attempts a run took. runs.wall_time_s sums every
-- attempt of a resumed run, killed ones included: an attempt killed outright (SIGKILL,
-- power loss) never records its end, so it is counted up to its last write (the latest
-- of its logs and the checkpoints it saved), a lower bound on the time it ran.
--   attempts         attempts of the run (1 for a run that never stopped; search runs: 1 or NULL)
--   killed_attempts  of them, attempts killed outright and counted to their last write
ALTER TABLE runs ADD COLUMN IF NOT EXISTS attempts INTEGER;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS killed_attempts INTEGER;
