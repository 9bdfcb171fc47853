-- Machine profiles: a tenant's own kinds of machine, as data. Every edit is a new version,
-- in force from its valid_from; readings are judged by the version in force when measured.
-- The platform's built-in kinds (haul_truck, grinding_mill, industrial_boiler) are not rows:
-- they come with the service, the same for every tenant.

SET LOCAL ROLE aurumai_ingestion;

CREATE TABLE ingestion.profiles (
    tenant_id        text        NOT NULL,
    profile_id       text        NOT NULL,
    version          integer     NOT NULL CHECK (version >= 1),
    name             text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    -- [{name, unit, min, max, kind, activity?, description}], checked by the service
    metrics          jsonb       NOT NULL,
    feature_window_s integer     NOT NULL CHECK (feature_window_s > 0),
    valid_from       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL,
    PRIMARY KEY (tenant_id, profile_id, version)
);

-- What changed when: every replica polls it and drops what it cached of a changed profile,
-- so an edit reaches all of them within the poll interval, without a restart.
CREATE TABLE ingestion.profile_changes (
    change_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  text        NOT NULL,
    profile_id text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX profile_changes_changed_at ON ingestion.profile_changes (changed_at);

-- Machines name their profile; the machine type remains for the built-in kinds, which the
-- platform's models are trained for, and is NULL for a tenant's own.
ALTER TABLE ingestion.machines ADD COLUMN profile_id text;
UPDATE ingestion.machines SET profile_id = machine_type;
ALTER TABLE ingestion.machines ALTER COLUMN profile_id SET NOT NULL;
ALTER TABLE ingestion.machines ALTER COLUMN machine_type DROP NOT NULL;
ALTER TABLE ingestion.machines ADD CONSTRAINT machines_builtin_type
    CHECK (machine_type IS NULL OR machine_type = profile_id);
CREATE INDEX machines_profile ON ingestion.machines (tenant_id, profile_id);

RESET ROLE;
