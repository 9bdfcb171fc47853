-- Federation with upstream OpenID Connect providers: which upstream identity signs in as which
-- platform user, and the pending upstream sign-ins (single use, minutes long).

SET LOCAL ROLE aurumai_auth;

-- (provider, upstream subject) -> platform user. A user may be linked from several providers.
CREATE TABLE auth.federated_identities (
    provider      text        NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    subject       text        NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id       uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX federated_identities_by_user ON auth.federated_identities (user_id);

-- An anonymised user keeps no link to an upstream identity (the subject is personal data).
CREATE FUNCTION auth.federated_identities_forget() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM auth.federated_identities WHERE user_id = NEW.id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_anonymised_forget_federation
    AFTER UPDATE OF anonymised_at ON auth.users
    FOR EACH ROW WHEN (NEW.anonymised_at IS NOT NULL AND OLD.anonymised_at IS NULL)
    EXECUTE FUNCTION auth.federated_identities_forget();

-- A sign-in sent to an upstream provider, keyed by the SHA-256 of its `state`; taken (deleted)
-- by the callback, so it completes once. `browser_hash` is the SHA-256 of the cookie of the
-- browser that started it. `login_request` is the platform's own pending authorization
-- request (the signed login form).
CREATE TABLE auth.federation_pending (
    state_hash    text        PRIMARY KEY,
    provider      text        NOT NULL,
    browser_hash  text        NOT NULL,
    nonce         text        NOT NULL,
    pkce_verifier text        NOT NULL,
    login_request text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX federation_pending_expiry ON auth.federation_pending (expires_at);

RESET ROLE;
