-- The prediction service's schema: models, the machines it has seen, their latest features and
-- status, the history of predictions, and alerts. Owned by its own least-privilege role,
-- readable by the analytics role; same conventions as the ingestion schema.

DO $$
BEGIN
    CREATE ROLE aurumai_prediction LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: another database of this cluster created it already
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aurumai_prediction', current_database());
END
$$;

CREATE SCHEMA prediction AUTHORIZATION aurumai_prediction;
GRANT USAGE ON SCHEMA prediction TO aurumai_readonly;

SET LOCAL ROLE aurumai_prediction;

ALTER DEFAULT PRIVILEGES IN SCHEMA prediction GRANT SELECT ON TABLES TO aurumai_readonly;

-- Every registered model artifact, byte for byte as uploaded (its checksum is verified when it
-- is loaded). At most one is active; replicas poll for a change and swap without restart.
CREATE TABLE prediction.models (
    version       text        PRIMARY KEY,
    trained_at    timestamptz NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    sha256        text        NOT NULL,
    artifact      bytea       NOT NULL,
    evaluation    jsonb,
    active        boolean     NOT NULL DEFAULT false,
    activated_at  timestamptz,
    activated_by  text
);
CREATE UNIQUE INDEX models_one_active ON prediction.models (active) WHERE active;

-- Machines as prediction learns of them from feature batches.
CREATE TABLE prediction.machines (
    machine_key  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text        NOT NULL,
    machine_id   text        NOT NULL,
    machine_type text        NOT NULL
        CHECK (machine_type IN ('haul_truck', 'grinding_mill', 'industrial_boiler')),
    site_id      text,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, machine_id)
);

-- The newest feature vector and prediction of each machine: what on-demand scoring and the
-- fleet view read, one row per machine.
CREATE TABLE prediction.machine_status (
    machine_key         bigint PRIMARY KEY REFERENCES prediction.machines ON DELETE CASCADE,
    window_end          timestamptz NOT NULL,
    features            jsonb       NOT NULL,
    predicted_at        timestamptz,
    model_version       text,
    risk_score          double precision,
    failure_probability double precision,
    horizon_h           double precision,
    rul_hours           double precision,
    anomaly_score       double precision,
    confidence          double precision,
    top_features        jsonb,
    -- The latest scores, newest last, that the alert policy debounces over.
    recent_risk         double precision[] NOT NULL DEFAULT '{}',
    recent_anomaly      double precision[] NOT NULL DEFAULT '{}'
);
CREATE INDEX machine_status_risk ON prediction.machine_status (risk_score DESC NULLS LAST);

CREATE TABLE prediction.predictions (
    machine_key         bigint      NOT NULL REFERENCES prediction.machines ON DELETE CASCADE,
    ts                  timestamptz NOT NULL,
    model_version       text        NOT NULL,
    risk_score          double precision NOT NULL,
    failure_probability double precision NOT NULL,
    horizon_h           double precision NOT NULL,
    rul_hours           double precision NOT NULL,
    anomaly_score       double precision NOT NULL,
    confidence          double precision NOT NULL,
    top_features        jsonb       NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (machine_key, ts, model_version)
);
CREATE INDEX predictions_created_at ON prediction.predictions (created_at);

-- Alerts: one open (or acknowledged) alert per machine and category, updated rather than
-- repeated; the partial unique index makes that hold across replicas.
CREATE TABLE prediction.alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_key     bigint      NOT NULL REFERENCES prediction.machines ON DELETE CASCADE,
    category        text        NOT NULL
        CHECK (category IN ('predictive', 'esg', 'energy', 'operational', 'safety')),
    severity        text        NOT NULL
        CHECK (severity IN ('info', 'warning', 'critical', 'emergency')),
    state           text        NOT NULL
        CHECK (state IN ('open', 'acknowledged', 'resolved')),
    score           double precision NOT NULL,
    peak_score      double precision NOT NULL,
    message         text        NOT NULL,
    model_version   text,
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    resolved_by     text,
    resolution_note text
);
CREATE UNIQUE INDEX alerts_one_unresolved ON prediction.alerts (machine_key, category)
    WHERE state <> 'resolved';
CREATE INDEX alerts_by_state ON prediction.alerts (state, severity, opened_at DESC);

RESET ROLE;
