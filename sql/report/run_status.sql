-- run_status: runs by status in the current universe, and runs of other universes (kept
-- in runs, never analysed here): the report's opening line.
SELECT
    count(*) FILTER (WHERE status = 'finished' AND here) AS finished,   -- finished runs of this universe
    count(*) FILTER (WHERE status = 'running' AND here) AS running,     -- running or killed
    count(*) FILTER (WHERE status = 'failed' AND here) AS failed,       -- failed
    count(*) FILTER (WHERE NOT here) AS other_universe                  -- runs of other data versions
FROM (SELECT status, data_version IS NOT DISTINCT FROM (SELECT value FROM meta WHERE key = 'data_version') AS here
      FROM runs);
