-- What the contexts' schemas share: the analytics role every schema grants reads to. Each
-- service's `migrate` applies this set before its own, so the schemas can be created in any
-- order (on databases migrated before the sets were split, the role exists already).

DO $$
BEGIN
    CREATE ROLE aurumai_readonly NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: another database of this cluster created it already
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aurumai_readonly', current_database());
END
$$;
