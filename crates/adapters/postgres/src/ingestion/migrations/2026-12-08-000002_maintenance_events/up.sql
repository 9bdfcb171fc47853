-- Maintenance events: what happened to a machine (failure with its mode, repair, inspection,
-- part replaced), when, and who recorded it. The ground truth alerts are judged against.

SET LOCAL ROLE aurumai_ingestion;

CREATE TABLE ingestion.maintenance_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text        NOT NULL,
    machine_id   text        NOT NULL,
    kind         text        NOT NULL
        CHECK (kind IN ('failure', 'repair', 'inspection', 'part_replaced')),
    failure_mode text CHECK (kind <> 'failure' OR failure_mode IS NOT NULL),
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text        NOT NULL,
    note         text        NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, machine_id) REFERENCES ingestion.machines (tenant_id, machine_id)
);
CREATE INDEX maintenance_events_machine
    ON ingestion.maintenance_events (tenant_id, machine_id, occurred_at);

RESET ROLE;
