-- The ingestion service's schema, owned by its own least-privilege role, readable by the
-- analytics role. Runs as an administrator (roles and schemas need one); the objects are
-- created as the service role so that it owns them and can add partitions at run time.

DO $$
BEGIN
    CREATE ROLE aurumai_ingestion LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: another database of this cluster created it already
END
$$;

DO $$
BEGIN
    CREATE ROLE aurumai_readonly NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aurumai_ingestion, aurumai_readonly',
                   current_database());
END
$$;

CREATE SCHEMA ingestion AUTHORIZATION aurumai_ingestion;
GRANT USAGE ON SCHEMA ingestion TO aurumai_readonly;

-- TimescaleDB, where the server has it, turns telemetry into a hypertable below.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            -- installed but not preloaded: native partitions serve instead
            RAISE NOTICE 'timescaledb unusable (%), using native partitions', SQLERRM;
        END;
    END IF;
END
$$;

SET LOCAL ROLE aurumai_ingestion;

ALTER DEFAULT PRIVILEGES IN SCHEMA ingestion GRANT SELECT ON TABLES TO aurumai_readonly;

CREATE TABLE ingestion.machines (
    machine_key   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text        NOT NULL,
    machine_id    text        NOT NULL,
    machine_type  text        NOT NULL
        CHECK (machine_type IN ('haul_truck', 'grinding_mill', 'industrial_boiler')),
    site_id       text,
    name          text,
    registered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, machine_id)
);

-- One row per message: the accepted readings as a JSON object. Keyed by (machine, ts, seq):
-- a redelivered message (same machine, seq and ts) conflicts and is skipped. The key leads
-- with (machine, ts), so it also serves the downsampling range scans: one index per row.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        CREATE TABLE ingestion.telemetry (
            machine_key bigint      NOT NULL,
            seq         bigint      NOT NULL,
            ts          timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            metrics     jsonb       NOT NULL,
            PRIMARY KEY (machine_key, ts, seq)
        );
        PERFORM create_hypertable('ingestion.telemetry', 'ts',
                                  chunk_time_interval => interval '1 day');
        ALTER TABLE ingestion.telemetry SET (timescaledb.compress,
                                             timescaledb.compress_segmentby = 'machine_key');
        PERFORM add_compression_policy('ingestion.telemetry', interval '2 days');
    ELSE
        CREATE TABLE ingestion.telemetry (
            machine_key bigint      NOT NULL,
            seq         bigint      NOT NULL,
            ts          timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            metrics     jsonb       NOT NULL,
            PRIMARY KEY (machine_key, ts, seq)
        ) PARTITION BY RANGE (ts);
    END IF;
END
$$;

-- Everything rejected, with its reason. dedup_key makes replays idempotent here too.
CREATE TABLE ingestion.quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key   text        NOT NULL UNIQUE,
    received_at timestamptz NOT NULL,
    source      text        NOT NULL CHECK (source IN ('mqtt', 'http')),
    tenant_id   text,
    machine_id  text,
    seq         bigint,
    topic       text,
    metric      text,
    value       text,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    payload     bytea
);
CREATE INDEX quarantine_received_at ON ingestion.quarantine (received_at);
CREATE INDEX quarantine_machine ON ingestion.quarantine (tenant_id, machine_id, received_at);

RESET ROLE;
