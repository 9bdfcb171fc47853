-- The gateway's audit log of data access: one hash chain per tenant, append-only for the
-- gateway's own role. The schema belongs to the gateway role (as each service's schema does);
-- the tables and the retention function belong to the migration role, so the gateway may
-- only append and read entries and move its chain heads. Retention deletes old entries
-- through a SECURITY DEFINER function that keeps an anchor (the last deleted entry's hash),
-- so the remaining chain still verifies.

DO $$
BEGIN
    CREATE ROLE aurumai_gateway LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: another database of this cluster created it already
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aurumai_gateway', current_database());
END
$$;

CREATE SCHEMA audit AUTHORIZATION aurumai_gateway;
GRANT USAGE ON SCHEMA audit TO aurumai_readonly;

-- One row per access. hash = sha256(prev_hash || canonical entry); see the adapter for the
-- canonical encoding.
CREATE TABLE audit.entries (
    tenant_id  text        NOT NULL,
    seq        bigint      NOT NULL CHECK (seq > 0),
    actor      text        NOT NULL,
    action     text        NOT NULL,
    resource   text        NOT NULL,
    outcome    smallint    NOT NULL,
    request_id text        NOT NULL,
    at         timestamptz NOT NULL,
    prev_hash  bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash       bytea       NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX entries_at ON audit.entries (at);
CREATE INDEX entries_actor ON audit.entries (tenant_id, actor, seq);

-- The head of each tenant's chain (writers lock it to take turns) and its retention anchor.
CREATE TABLE audit.chains (
    tenant_id   text   PRIMARY KEY,
    last_seq    bigint NOT NULL,
    last_hash   bytea  NOT NULL CHECK (length(last_hash) = 32),
    anchor_seq  bigint NOT NULL DEFAULT 0,
    anchor_hash bytea  NOT NULL CHECK (length(anchor_hash) = 32)
);

REVOKE ALL ON audit.entries, audit.chains FROM PUBLIC;
GRANT SELECT, INSERT ON audit.entries TO aurumai_gateway;
REVOKE UPDATE, DELETE, TRUNCATE ON audit.entries FROM aurumai_gateway;
GRANT SELECT, INSERT ON audit.chains TO aurumai_gateway;
GRANT UPDATE (last_seq, last_hash) ON audit.chains TO aurumai_gateway;
GRANT SELECT ON audit.entries, audit.chains TO aurumai_readonly;

-- The only way to delete entries: those older than `days`, per tenant, leaving the hash of
-- the newest deleted entry as the chain's anchor.
CREATE FUNCTION audit.apply_retention(days integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
    cut record;
    deleted bigint := 0;
    n bigint;
BEGIN
    IF days < 1 THEN
        RAISE EXCEPTION 'retention must be at least one day';
    END IF;
    FOR c IN SELECT tenant_id FROM audit.chains ORDER BY tenant_id LOOP
        PERFORM 1 FROM audit.chains WHERE tenant_id = c.tenant_id FOR UPDATE;
        SELECT e.seq, e.hash INTO cut FROM audit.entries e
         WHERE e.tenant_id = c.tenant_id AND e.at < now() - make_interval(days => days)
         ORDER BY e.seq DESC LIMIT 1;
        IF FOUND THEN
            UPDATE audit.chains SET anchor_seq = cut.seq, anchor_hash = cut.hash
             WHERE tenant_id = c.tenant_id;
            DELETE FROM audit.entries WHERE tenant_id = c.tenant_id AND seq <= cut.seq;
            GET DIAGNOSTICS n = ROW_COUNT;
            deleted := deleted + n;
        END IF;
    END LOOP;
    RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION audit.apply_retention(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.apply_retention(integer) TO aurumai_gateway;
