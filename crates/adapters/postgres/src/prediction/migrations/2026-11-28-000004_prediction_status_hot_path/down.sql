SET LOCAL ROLE aurumai_prediction;
ALTER TABLE prediction.machine_status RESET (fillfactor);
CREATE INDEX machine_status_risk ON prediction.machine_status (risk_score DESC NULLS LAST);
ALTER TABLE prediction.machine_status ALTER COLUMN features SET COMPRESSION default;
ALTER TABLE prediction.machine_status ALTER COLUMN features TYPE jsonb USING features::jsonb;
RESET ROLE;
