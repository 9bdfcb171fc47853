-- The platform operator's role: users and clients may hold `platform_admin` (granted only by
-- the auth service's configuration; the API refuses it from tenant admins).

SET LOCAL ROLE aurumai_auth;

ALTER TABLE auth.users DROP CONSTRAINT users_roles_check,
    ADD CONSTRAINT users_roles_check
        CHECK (roles <@ ARRAY['admin', 'operator', 'viewer', 'platform_admin']::text[]);
ALTER TABLE auth.clients DROP CONSTRAINT clients_roles_check,
    ADD CONSTRAINT clients_roles_check
        CHECK (roles <@ ARRAY['admin', 'operator', 'viewer', 'platform_admin']::text[]);

RESET ROLE;
