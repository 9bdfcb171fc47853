-- Devices: a machine's own MQTT identity. The broker holds the credential (its
-- dynamic-security plugin stores only a salted hash); this table records who provisioned which
-- device for which machine, and when it was revoked. One live device per machine.

SET LOCAL ROLE aurumai_auth;

CREATE TABLE auth.devices (
    id             uuid        PRIMARY KEY,
    tenant_id      text        NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    machine_id     text        NOT NULL,
    -- The broker login: also the certificate's common name for mutual TLS.
    username       text        NOT NULL UNIQUE,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_by     text,
    -- Serial numbers of client certificates issued to the device (hex), for audit and CRLs.
    cert_serials   text[]      NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX devices_one_live_per_machine
    ON auth.devices (tenant_id, machine_id) WHERE revoked_at IS NULL;
CREATE INDEX devices_by_tenant ON auth.devices (tenant_id, created_at DESC);

RESET ROLE;
