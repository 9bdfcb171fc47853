-- ESG accounting in the prediction schema: versioned emission factors, the activity
-- ingestion integrated from rate metrics, and each site's electricity grid region.
-- See docs/esg.md for the method and the sources of the seeded factors.

-- The exclusion constraint below compares text with `=` inside a GiST index, which needs
-- btree_gist. Extensions need an administrator, so this runs before switching role.
CREATE EXTENSION IF NOT EXISTS btree_gist;

SET LOCAL ROLE aurumai_prediction;

-- One row per factor version. A version is valid over [valid_from, valid_to); editing a factor
-- closes the open version (valid_to, closed_at) and inserts the next one, in one transaction.
-- recorded_at and closed_at say when the platform learned each fact, so a report "as of" any
-- instant can be recomputed exactly.
CREATE TABLE prediction.emission_factors (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('diesel', 'fuel_oil', 'electricity')),
    region           text        NOT NULL CHECK (region ~ '^[A-Z0-9][A-Z0-9-]{0,31}$'),
    version          integer     NOT NULL CHECK (version > 0),
    kg_co2e_per_unit double precision NOT NULL
        CHECK (kg_co2e_per_unit >= 0 AND kg_co2e_per_unit <= 1000),
    unit             text        NOT NULL CHECK (unit IN ('L', 'kWh')),
    source           text        NOT NULL CHECK (source IN ('ipcc', 'epa', 'defra', 'other')),
    citation         text        NOT NULL CHECK (length(citation) BETWEEN 1 AND 500),
    valid_from       timestamptz NOT NULL,
    valid_to         timestamptz CHECK (valid_to > valid_from),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    CHECK ((valid_to IS NULL) = (closed_at IS NULL)),
    CHECK ((kind = 'electricity') = (unit = 'kWh')),
    UNIQUE (kind, region, version),
    -- At most one version of a (kind, region) is valid at any instant, whatever the number of
    -- replicas writing.
    CONSTRAINT emission_factors_no_overlap
        EXCLUDE USING gist (kind WITH =, region WITH =, tstzrange(valid_from, valid_to) WITH &&)
);

-- Past versions are evidence for past reports: nothing may rewrite them. The only change a row
-- ever sees is being closed once. Enforced twice: by privileges (the service role may update
-- only the two closing columns and may not delete) and by a trigger (which also binds anyone
-- holding broader privileges).
CREATE FUNCTION prediction.emission_factors_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'emission factor versions are never deleted; close them instead'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.valid_to IS NOT NULL THEN
        RAISE EXCEPTION 'emission factor % version % is closed and immutable', OLD.id, OLD.version
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.valid_to IS NULL
       OR (NEW.id, NEW.kind, NEW.region, NEW.version, NEW.kg_co2e_per_unit, NEW.unit,
           NEW.source, NEW.citation, NEW.valid_from, NEW.recorded_at)
          IS DISTINCT FROM
          (OLD.id, OLD.kind, OLD.region, OLD.version, OLD.kg_co2e_per_unit, OLD.unit,
           OLD.source, OLD.citation, OLD.valid_from, OLD.recorded_at) THEN
        RAISE EXCEPTION 'only closing an open emission factor version is allowed; add a new version instead'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER emission_factors_append_only
    BEFORE UPDATE OR DELETE ON prediction.emission_factors
    FOR EACH ROW EXECUTE FUNCTION prediction.emission_factors_append_only();
CREATE TRIGGER emission_factors_no_truncate
    BEFORE TRUNCATE ON prediction.emission_factors
    FOR EACH STATEMENT EXECUTE FUNCTION prediction.emission_factors_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON prediction.emission_factors FROM aurumai_prediction;
GRANT UPDATE (valid_to, closed_at) ON prediction.emission_factors TO aurumai_prediction;

-- Rate metrics integrated over [period_from, period_to) by ingestion (litres, kWh, tonnes).
-- A redelivered batch repeats (machine, metric, period_from) and is skipped, so retries never
-- count activity twice. recorded_at lets a report leave out activity that arrived later.
CREATE TABLE prediction.activity (
    machine_key bigint      NOT NULL REFERENCES prediction.machines ON DELETE CASCADE,
    metric      text        NOT NULL,
    period_from timestamptz NOT NULL,
    period_to   timestamptz NOT NULL,
    amount      double precision NOT NULL CHECK (amount >= 0 AND amount < 'Infinity'),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (machine_key, metric, period_from),
    CHECK (period_to > period_from)
);
-- Reports select the periods of a machine that overlap a window: period_to > from, and
-- period_from < to.
CREATE INDEX activity_machine_to ON prediction.activity (machine_key, period_to);

-- The electricity grid region of each site, for scope 2. Setting a region appends a row, so a
-- report as of an earlier instant still uses the region known then.
CREATE TABLE prediction.site_regions (
    tenant_id   text        NOT NULL,
    site_id     text        NOT NULL,
    grid_region text        NOT NULL CHECK (grid_region ~ '^[A-Z0-9][A-Z0-9-]{0,31}$'),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, site_id, recorded_at)
);

-- Seeded factors: published values, cited in docs/esg.md. Each is recorded as known from the
-- start of its validity, so reports over past periods use them. Fuels are region-independent
-- (GLOBAL); a region may add its own version, which then takes precedence there.
INSERT INTO prediction.emission_factors
    (kind, region, version, kg_co2e_per_unit, unit, source, citation,
     valid_from, valid_to, recorded_at, closed_at)
VALUES
    ('diesel', 'GLOBAL', 1, 2.69627, 'L', 'epa',
     'US EPA, 40 CFR Part 98 Subpart C, Table C-1: Distillate Fuel Oil No. 2, 0.138 mmBtu/gal x 73.96 kg CO2/mmBtu = 10.206 kg CO2/US gal; / 3.785411784 L/gal. CO2 only.',
     '2020-01-01T00:00:00Z', NULL, '2020-01-01T00:00:00Z', NULL),
    ('fuel_oil', 'GLOBAL', 1, 2.97590, 'L', 'epa',
     'US EPA, 40 CFR Part 98 Subpart C, Table C-1: Residual Fuel Oil No. 6, 0.150 mmBtu/gal x 75.10 kg CO2/mmBtu = 11.265 kg CO2/US gal; / 3.785411784 L/gal. CO2 only.',
     '2020-01-01T00:00:00Z', NULL, '2020-01-01T00:00:00Z', NULL),
    ('diesel', 'UK', 1, 2.66155, 'L', 'defra',
     'UK Government GHG Conversion Factors for Company Reporting 2025 (DESNZ/DEFRA), Fuels: Diesel (100% mineral diesel), kg CO2e per litre.',
     '2025-01-01T00:00:00Z', NULL, '2025-01-01T00:00:00Z', NULL),
    ('electricity', 'UK', 1, 0.19338, 'kWh', 'defra',
     'UK Government GHG Conversion Factors for Company Reporting 2022 (BEIS/DEFRA), UK electricity generation, kg CO2e per kWh.',
     '2022-01-01T00:00:00Z', '2023-01-01T00:00:00Z', '2022-01-01T00:00:00Z', '2023-01-01T00:00:00Z'),
    ('electricity', 'UK', 2, 0.20707, 'kWh', 'defra',
     'UK Government GHG Conversion Factors for Company Reporting 2023 (DESNZ/DEFRA), UK electricity generation, kg CO2e per kWh.',
     '2023-01-01T00:00:00Z', NULL, '2023-01-01T00:00:00Z', NULL),
    ('electricity', 'US', 1, 0.39009, 'kWh', 'other',
     'US EIA, FAQ "How much carbon dioxide is produced per kilowatthour of U.S. electricity generation?": 0.86 lb CO2/kWh in 2022 (utility-scale, all sources) x 0.45359237 kg/lb. CO2 only.',
     '2022-01-01T00:00:00Z', NULL, '2022-01-01T00:00:00Z', NULL),
    ('electricity', 'AU', 1, 0.63, 'kWh', 'other',
     'Australian Government DCCEEW, National Greenhouse Accounts Factors 2024: national average scope 2 (EF2) factor, kg CO2-e per kWh.',
     '2024-01-01T00:00:00Z', NULL, '2024-01-01T00:00:00Z', NULL),
    ('electricity', 'AU-NSW', 1, 0.66, 'kWh', 'other',
     'Australian Government DCCEEW, National Greenhouse Accounts Factors 2024: New South Wales and ACT scope 2 (EF2) factor, kg CO2-e per kWh.',
     '2024-01-01T00:00:00Z', NULL, '2024-01-01T00:00:00Z', NULL),
    ('electricity', 'AU-WA-SWIS', 1, 0.51, 'kWh', 'other',
     'Australian Government DCCEEW, National Greenhouse Accounts Factors 2024: Western Australia, South West Interconnected System, scope 2 (EF2), kg CO2-e per kWh.',
     '2024-01-01T00:00:00Z', NULL, '2024-01-01T00:00:00Z', NULL),
    ('electricity', 'AU-WA-NWIS', 1, 0.61, 'kWh', 'other',
     'Australian Government DCCEEW, National Greenhouse Accounts Factors 2024: Western Australia, North Western Interconnected System, scope 2 (EF2), kg CO2-e per kWh.',
     '2024-01-01T00:00:00Z', NULL, '2024-01-01T00:00:00Z', NULL);

RESET ROLE;
