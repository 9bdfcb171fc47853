SET LOCAL ROLE aurumai_ingestion;
DROP INDEX ingestion.machines_profile;
ALTER TABLE ingestion.machines DROP CONSTRAINT machines_builtin_type;
DELETE FROM ingestion.machines WHERE machine_type IS NULL;
ALTER TABLE ingestion.machines ALTER COLUMN machine_type SET NOT NULL;
ALTER TABLE ingestion.machines DROP COLUMN profile_id;
DROP TABLE ingestion.profile_changes;
DROP TABLE ingestion.profiles;

RESET ROLE;
