-- The revocation feed the resource servers follow (`GET /revocations?after=<seq>`): access
-- tokens by jti, and every token of a subject or a sign-in session issued up to an instant.
-- Entries are dropped once every token they cover has expired.

SET LOCAL ROLE aurumai_auth;

CREATE TABLE auth.revocations (
    seq           bigserial   PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('token', 'subject', 'session')),
    value         text        NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
    issued_before timestamptz,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revocations_expires_at ON auth.revocations (expires_at);

RESET ROLE;
