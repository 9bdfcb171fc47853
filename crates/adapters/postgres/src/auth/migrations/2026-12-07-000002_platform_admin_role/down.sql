SET LOCAL ROLE aurumai_auth;
UPDATE auth.users SET roles = array_remove(roles, 'platform_admin');
UPDATE auth.clients SET roles = array_remove(roles, 'platform_admin');
ALTER TABLE auth.users DROP CONSTRAINT users_roles_check,
    ADD CONSTRAINT users_roles_check CHECK (roles <@ ARRAY['admin', 'operator', 'viewer']::text[]);
ALTER TABLE auth.clients DROP CONSTRAINT clients_roles_check,
    ADD CONSTRAINT clients_roles_check CHECK (roles <@ ARRAY['admin', 'operator', 'viewer']::text[]);
RESET ROLE;
