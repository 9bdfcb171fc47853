-- The auth service's schema: users, OAuth clients, signing keys, authorization codes, refresh
-- tokens, revoked access tokens, brute-force state and security events. Owned by its own
-- least-privilege role. Unlike the other schemas it is NOT readable by the analytics role: it
-- holds password hashes, key material and personal data.

DO $$
BEGIN
    CREATE ROLE aurumai_auth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: another database of this cluster created it already
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aurumai_auth', current_database());
END
$$;

CREATE SCHEMA auth AUTHORIZATION aurumai_auth;

SET LOCAL ROLE aurumai_auth;

-- People. Usernames are unique across tenants (sign-in asks for a username only). Deleting a
-- user anonymises the row: personal fields replaced or cleared, the id kept for audit.
CREATE TABLE auth.users (
    id            uuid        PRIMARY KEY,
    tenant_id     text        NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    username      text        NOT NULL CHECK (length(username) BETWEEN 1 AND 200),
    display_name  text,
    email         text,
    -- argon2id PHC string; NULL once anonymised (nobody can sign in as the row).
    password_hash text,
    roles         text[]      NOT NULL DEFAULT '{}'
        CHECK (roles <@ ARRAY['admin', 'operator', 'viewer']::text[]),
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    anonymised_at timestamptz
);
CREATE UNIQUE INDEX users_username ON auth.users (lower(username));
CREATE INDEX users_tenant ON auth.users (tenant_id);

-- OAuth clients: applications users sign in to, and services with their own credentials.
-- tenant_id NULL: a platform service client (no tenant claim in its tokens).
CREATE TABLE auth.clients (
    client_id                 text        PRIMARY KEY
        CHECK (client_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    -- argon2id PHC string of the secret; NULL for public clients (PKCE only).
    secret_hash               text,
    tenant_id                 text,
    owner_user_id             uuid        REFERENCES auth.users (id),
    name                      text,
    redirect_uris             text[]      NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[]      NOT NULL DEFAULT '{}',
    grant_types               text[]      NOT NULL DEFAULT '{}'
        CHECK (grant_types <@ ARRAY['authorization_code', 'refresh_token', 'client_credentials']::text[]),
    audiences                 text[]      NOT NULL DEFAULT '{}',
    roles                     text[]      NOT NULL DEFAULT '{}'
        CHECK (roles <@ ARRAY['admin', 'operator', 'viewer']::text[]),
    seeded                    boolean     NOT NULL DEFAULT false,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_tenant ON auth.clients (tenant_id);
CREATE INDEX clients_owner ON auth.clients (owner_user_id);

-- Token signing keys. The newest key whose retire_after has not passed signs; every key stays
-- in the JWKS until expires_at, which rotation sets past the last token the key signed.
CREATE TABLE auth.signing_keys (
    kid          text        PRIMARY KEY,
    algorithm    text        NOT NULL DEFAULT 'RS256',
    -- PEM (PKCS#8), or 'enc:v1:' + AES-256-GCM envelope when a key-encryption key is set.
    private_key  text        NOT NULL,
    public_jwk   jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retire_after timestamptz,
    expires_at   timestamptz
);

-- Authorization codes by SHA-256 digest: single use (used_at), short-lived, PKCE-bound.
CREATE TABLE auth.authorization_codes (
    code_hash      text        PRIMARY KEY,
    client_id      text        NOT NULL REFERENCES auth.clients ON DELETE CASCADE,
    user_id        uuid        NOT NULL REFERENCES auth.users (id),
    redirect_uri   text        NOT NULL,
    scope          text        NOT NULL,
    nonce          text,
    code_challenge text        NOT NULL,
    session_id     uuid        NOT NULL,
    auth_time      timestamptz NOT NULL,
    family_id      uuid        NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

-- Refresh tokens by SHA-256 digest. Rotation spends a token (rotated_at) and adds its
-- successor to the same family; a spent token presented again revokes the family.
CREATE TABLE auth.refresh_tokens (
    token_hash text        PRIMARY KEY,
    family_id  uuid        NOT NULL,
    client_id  text        NOT NULL REFERENCES auth.clients ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES auth.users (id),
    session_id uuid        NOT NULL,
    scope      text        NOT NULL,
    auth_time  timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON auth.refresh_tokens (user_id);
CREATE INDEX refresh_tokens_session ON auth.refresh_tokens (session_id);

-- Access tokens (JWTs) revoked before their expiry, by jti; purged once expired.
CREATE TABLE auth.revoked_access_tokens (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

-- Brute-force state per account ('user:<name>') and per address ('ip:<address>').
CREATE TABLE auth.login_attempts (
    key             text        PRIMARY KEY,
    failures        integer     NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until    timestamptz
);

-- Security events (failed sign-ins, lockouts, token reuse, bad client credentials, ...).
-- Never a password, secret or token.
CREATE TABLE auth.security_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    event      text        NOT NULL,
    tenant_id  text,
    user_id    uuid,
    username   text,
    client_id  text,
    ip         text,
    user_agent text
);
CREATE INDEX security_events_user ON auth.security_events (user_id, at);
CREATE INDEX security_events_at ON auth.security_events (at);

RESET ROLE;
