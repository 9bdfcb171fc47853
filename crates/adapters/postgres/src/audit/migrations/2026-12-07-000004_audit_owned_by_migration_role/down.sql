DROP TRIGGER entries_extend_the_head ON audit.entries;
DROP FUNCTION audit.advance_head();
GRANT EXECUTE ON FUNCTION audit.apply_retention(integer) TO aurumai_gateway;
GRANT SELECT, INSERT ON audit.chains TO aurumai_gateway;
GRANT UPDATE (last_seq, last_hash) ON audit.chains TO aurumai_gateway;
ALTER SCHEMA audit OWNER TO aurumai_gateway;
