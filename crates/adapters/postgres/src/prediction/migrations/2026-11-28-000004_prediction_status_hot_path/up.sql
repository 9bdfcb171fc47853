-- The fleet's status row is rewritten for every machine on every feature batch (10,000
-- machines: 10,000 row versions a batch). Keep that write cheap and the table small:
--
-- - the latest feature vector is stored as json (checked text): nothing queries inside it,
--   and jsonb's conversion of every number to numeric was the largest single cost of a batch;
--   lz4 compresses it several times faster than the default pglz (where the server has lz4);
-- - no index on risk_score (the fleet view sorts one tenant's rows after the join; the index
--   was never used) and free space on every page: with the primary key as the only index,
--   an update can stay on its page (HOT), so dead versions are pruned in place instead of
--   bloating the table that the fleet view scans.

SET LOCAL ROLE aurumai_prediction;

ALTER TABLE prediction.machine_status ALTER COLUMN features TYPE json USING features::json;

DO $$
BEGIN
    ALTER TABLE prediction.machine_status ALTER COLUMN features SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL; -- a server built without lz4 keeps pglz
END
$$;

DROP INDEX prediction.machine_status_risk;

ALTER TABLE prediction.machine_status SET (fillfactor = 60);

RESET ROLE;
