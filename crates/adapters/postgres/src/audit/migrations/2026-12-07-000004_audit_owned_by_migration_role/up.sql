-- The gateway's role owned the audit schema, so it could drop the tables and rebuild a forged
-- chain (which an unkeyed hash would verify), move a chain head back, and run retention with
-- any period. Now the migration role owns the schema and everything in it; the gateway may
-- read, and append entries that extend its tenant's chain, nothing else:
--   * a trigger of the owner's checks that each new entry links to the head and advances it;
--     the gateway cannot write heads at all;
--   * retention runs as the migration role (`aurum-gateway audit-retention`), not the gateway.
ALTER SCHEMA audit OWNER TO CURRENT_USER;
GRANT USAGE ON SCHEMA audit TO aurumai_gateway;

REVOKE INSERT, UPDATE ON audit.chains FROM aurumai_gateway;
REVOKE EXECUTE ON FUNCTION audit.apply_retention(integer) FROM aurumai_gateway;

CREATE FUNCTION audit.advance_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head record;
BEGIN
    SELECT last_seq, last_hash INTO head FROM audit.chains
     WHERE tenant_id = NEW.tenant_id FOR UPDATE;
    IF NOT FOUND THEN
        -- A tenant's first entry starts the chain from the genesis hash.
        INSERT INTO audit.chains (tenant_id, last_seq, last_hash, anchor_seq, anchor_hash)
        VALUES (NEW.tenant_id, 0, decode(repeat('00', 32), 'hex'), 0,
                decode(repeat('00', 32), 'hex'))
        RETURNING last_seq, last_hash INTO head;
    END IF;
    IF NEW.seq <> head.last_seq + 1 OR NEW.prev_hash <> head.last_hash THEN
        RAISE EXCEPTION 'audit entry % of tenant % does not extend the chain head %',
            NEW.seq, NEW.tenant_id, head.last_seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE audit.chains SET last_seq = NEW.seq, last_hash = NEW.hash
     WHERE tenant_id = NEW.tenant_id;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION audit.advance_head() FROM PUBLIC;

CREATE TRIGGER entries_extend_the_head BEFORE INSERT ON audit.entries
    FOR EACH ROW EXECUTE FUNCTION audit.advance_head();
